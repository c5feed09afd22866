//! Per-buffer cost of each element family: one `process` call (or `route`) on a 100-byte buffer
//! (a log line), outside any pipeline, against `identity` as the floor (the call and a refcount
//! clone). Records are measured per record: a 64 KiB block of 100-byte lines cut and joined.
//! Run with `cargo bench --bench families`.

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use parallax::element::{DetachedRun, ElementImpl, Flow, Transform};
use parallax::memory::{Buffer, FieldValue};
use parallax::registry::{self, Props};

/// Builds the transform `factory` with `props` (`key=value` pairs), as a description would.
fn transform(factory: &str, props: &[(&str, &str)]) -> Box<dyn Transform> {
    match build(factory, props) {
        ElementImpl::Transform(t) => t,
        _ => panic!("{factory} is not a transform"),
    }
}

/// Builds `factory` with `props` (`key=value` pairs), as a description would.
fn build(factory: &str, props: &[(&str, &str)]) -> ElementImpl {
    let f = registry::find(factory).unwrap();
    let mut p = Props::defaults(f.name, f.props);
    for (k, v) in props {
        assert!(p.set(k, f.prop(k).unwrap().parse(v).unwrap()));
    }
    (f.build)(&p).unwrap_or_else(|e| panic!("{factory}: {e}"))
}

/// A log line of 100 bytes, newline included.
fn line() -> Vec<u8> {
    let mut line =
        b"2026-01-01T00:00:00Z worker-3 INFO request served in 12 ms, 200 OK, 512 bytes ....."
            .to_vec();
    line.resize(99, b'.');
    line.push(b'\n');
    line
}

/// A bench case: its name, the factory, and the properties it is built with.
type Case<'a> = (&'a str, &'a str, &'a [(&'a str, &'a str)]);

/// One call per buffer of each element in `cases`, on `buf`, in group `group`.
fn per_buffer(c: &mut Criterion, group: &str, buf: &Buffer, cases: &[Case<'_>]) {
    let run = DetachedRun::new();
    let mut g = c.benchmark_group(group);
    for &(name, factory, props) in cases {
        let mut t = transform(factory, props);
        let mut cx = run.ctx();
        g.bench_function(name, |b| {
            b.iter(|| {
                let out = t.process(buf.clone(), &mut cx).unwrap();
                let more = cx.take_pushed().count();
                (matches!(out, Flow::Push(_)), more)
            })
        });
    }
    g.finish();
}

fn records(c: &mut Criterion) {
    let run = DetachedRun::new();
    let block: Vec<u8> = line().repeat(655);
    let lines = 655u64;
    let block = Buffer::from_vec(block);
    let mut g = c.benchmark_group("records, per record (64 KiB block of 100-byte lines)");
    g.throughput(Throughput::Elements(lines));
    let mut split = transform("buffersplit", &[]);
    let mut cx = run.ctx();
    g.bench_function("buffersplit", |b| {
        b.iter(|| {
            split.process(block.clone(), &mut cx).unwrap();
            cx.take_pushed().count()
        })
    });
    let mut split = transform("buffersplit", &[]);
    let mut join = transform("bufferjoin", &[]);
    let mut cx2 = run.ctx();
    g.bench_function("buffersplit ! bufferjoin", |b| {
        b.iter(|| {
            split.process(block.clone(), &mut cx).unwrap();
            let records: Vec<Buffer> = cx.take_pushed().collect();
            for r in records {
                let _ = join.process(r, &mut cx2).unwrap();
            }
        })
    });
    let mut split = transform("buffersplit", &[]);
    let mut grep = transform("regexfilter", &[("pattern", "ERROR")]);
    g.bench_function("buffersplit ! regexfilter ERROR", |b| {
        b.iter(|| {
            split.process(block.clone(), &mut cx).unwrap();
            let records: Vec<Buffer> = cx.take_pushed().collect();
            records
                .into_iter()
                .filter(|r| matches!(grep.process(r.clone(), &mut cx2).unwrap(), Flow::Push(_)))
                .count()
        })
    });
    let mut chunk = transform("chunk", &[("size", "100")]);
    g.bench_function("chunk size=100", |b| {
        b.iter(|| {
            chunk.process(block.clone(), &mut cx).unwrap();
            cx.take_pushed().count()
        })
    });
    g.finish();
    let one = Buffer::from_vec(line());
    per_buffer(
        c,
        "records, per buffer",
        &one,
        &[
            ("floor: identity", "identity", &[]),
            ("bufferjoin", "bufferjoin", &[]),
            ("batch max-buffers=16", "batch", &[("max-buffers", "16")]),
            ("bufferconcat max-bytes=65536", "bufferconcat", &[]),
        ],
    );
}

fn bytes_and_metadata(c: &mut Criterion) {
    let one = Buffer::from_vec(line());
    per_buffer(
        c,
        "buffer operations, per buffer",
        &one,
        &[
            ("floor: identity", "identity", &[]),
            (
                "buffertrim max-size=50",
                "buffertrim",
                &[("max-size", "50")],
            ),
            (
                "bufferslice 10..60",
                "bufferslice",
                &[("offset", "10"), ("length", "50")],
            ),
            (
                "bufferpad min-size=128",
                "bufferpad",
                &[("min-size", "128")],
            ),
        ],
    );
    per_buffer(
        c,
        "metadata, per buffer",
        &one,
        &[
            ("floor: identity", "identity", &[]),
            ("sequencenumber", "sequencenumber", &[]),
            (
                "metadatafilter sequence-max=5",
                "metadatafilter",
                &[("sequence-max", "5")],
            ),
            (
                "metadatainject stream-id=3",
                "metadatainject",
                &[("stream-id", "3")],
            ),
            (
                "metadatainject set=kind=audio",
                "metadatainject",
                &[("set", "kind=audio")],
            ),
            ("timestamper", "timestamper", &[]),
        ],
    );
    per_buffer(
        c,
        "rate and timing, per buffer",
        &one,
        &[
            ("floor: identity", "identity", &[]),
            (
                "throttle buffers-per-second=1e9",
                "throttle",
                &[("buffers-per-second", "1000000000")],
            ),
            ("debounce (replace the held buffer)", "debounce", &[]),
        ],
    );
}

fn routing(c: &mut Criterion) {
    let one = Buffer::from_vec(line());
    let mut g = c.benchmark_group("routing, per buffer");
    for (name, factory, props) in [
        ("output-selector", "output-selector", &[][..]),
        ("streamiddemux", "streamiddemux", &[][..]),
    ] {
        let ElementImpl::Route(mut r) = build(factory, props) else {
            panic!("{factory} is not a router")
        };
        g.bench_function(name, |b| b.iter(|| r.route(&one)));
    }
    g.finish();
}

fn filters(c: &mut Criterion) {
    let run = DetachedRun::new();
    let mut buf = Buffer::from_vec(line());
    buf.meta.sequence = 10;
    // The same buffer with a user field `kind`, for the expressions that read it.
    let mut tagged = buf.clone();
    tagged
        .meta
        .set_field("kind", FieldValue::Str("audio".into()));
    let mut g = c.benchmark_group("filter per buffer");
    for (name, factory, props) in [
        ("floor: identity", "identity", &[][..]),
        ("filter size > 50", "filter", &[("expr", "size > 50")][..]),
        (
            "filter size > 50 && seq % 10 == 0",
            "filter",
            &[("expr", "size > 50 && seq % 10 == 0")][..],
        ),
        (
            // Issue 12's example; the 100-byte buffer stops it at `size > 100`.
            "filter size > 100 && seq % 10 == 0 && meta.kind == \"audio\"",
            "filter",
            &[(
                "expr",
                r#"size > 100 && seq % 10 == 0 && meta.kind == "audio""#,
            )][..],
        ),
        (
            // The same, every term evaluated (the buffer's `kind` is "audio").
            "filter size > 50 && seq % 10 == 0 && meta.kind == \"audio\"",
            "filter",
            &[(
                "expr",
                r#"size > 50 && seq % 10 == 0 && meta.kind == "audio""#,
            )][..],
        ),
        (
            "regexfilter ERROR (no match)",
            "regexfilter",
            &[("pattern", "ERROR")][..],
        ),
        (
            "regexfilter served (match)",
            "regexfilter",
            &[("pattern", "served")][..],
        ),
        (
            "samplefilter every=10",
            "samplefilter",
            &[("every", "10")][..],
        ),
        (
            "duplicatefilter window=16",
            "duplicatefilter",
            &[("window", "16")][..],
        ),
        (
            "rangefilter",
            "rangefilter",
            &[("min-size", "10"), ("max-size", "1000")][..],
        ),
    ] {
        let mut t = transform(factory, props);
        let mut cx = run.ctx();
        let buf = if name.contains("meta.") {
            &tagged
        } else {
            &buf
        };
        g.bench_function(name, |b| {
            b.iter(|| {
                let out = t.process(buf.clone(), &mut cx).unwrap();
                matches!(out, Flow::Push(_))
            })
        });
    }
    g.finish();
}

/// One 1080p frame through videoconvert (I420 to BGRx) and videoscale (to 720p), with the caps
/// negotiation would give them: gst-launch-1.0's orc code is the yardstick (see the README).
fn video(c: &mut Criterion) {
    use parallax::caps::Caps;
    let caps = |format: &str, w: u32, h: u32| {
        Caps::parse(&format!(
            "video/x-raw, format=(string){format}, width=(int){w}, height=(int){h}, framerate=(fraction)30/1"
        ))
        .unwrap()
    };
    let run = DetachedRun::new();
    let mut g = c.benchmark_group("video");
    g.throughput(Throughput::Elements(1));
    let frame = Buffer::from_vec(vec![100; 1920 * 1080 * 3 / 2]);
    for (name, factory, to) in [
        (
            "videoconvert I420->BGRx 1080p",
            "videoconvert",
            caps("BGRx", 1920, 1080),
        ),
        (
            "videoscale I420 1080p->720p",
            "videoscale",
            caps("I420", 1280, 720),
        ),
    ] {
        let f = registry::find(factory).unwrap();
        let mut p = Props::defaults(f.name, f.props);
        p.set_caps(caps("I420", 1920, 1080), to);
        let ElementImpl::Transform(mut t) = (f.build)(&p).unwrap() else {
            panic!("{factory} is a transform");
        };
        let mut cx = run.ctx();
        g.bench_function(name, |b| {
            b.iter(|| matches!(t.process(frame.clone(), &mut cx).unwrap(), Flow::Push(_)))
        });
    }
    g.finish();
}

criterion_group!(
    benches,
    filters,
    records,
    bytes_and_metadata,
    routing,
    video
);
criterion_main!(benches);
