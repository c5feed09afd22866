//! Per-buffer cost of the filters: one `process` call on a 100-byte buffer (a log line),
//! outside any pipeline, against `identity` as the floor (the call and a refcount clone).

use criterion::{criterion_group, criterion_main, Criterion};
use parallax::element::{DetachedRun, ElementImpl, Flow, Transform};
use parallax::memory::Buffer;
use parallax::registry::{self, Props};

/// Builds the transform `factory` with `props` (`key=value` pairs), as a description would.
fn transform(factory: &str, props: &[(&str, &str)]) -> Box<dyn Transform> {
    let f = registry::find(factory).unwrap();
    let mut p = Props::defaults(f.name, f.props);
    for (k, v) in props {
        assert!(p.set(k, f.prop(k).unwrap().parse(v).unwrap()));
    }
    match (f.build)(&p) {
        Ok(ElementImpl::Transform(t)) => t,
        _ => panic!("{factory} is not a transform"),
    }
}

fn filters(c: &mut Criterion) {
    let run = DetachedRun::new();
    let mut line =
        b"2026-01-01T00:00:00Z worker-3 INFO request served in 12 ms, 200 OK, 512 bytes ....."
            .to_vec();
    line.resize(100, b'.');
    let mut buf = Buffer::from_vec(line);
    buf.meta.sequence = 10;
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
        g.bench_function(name, |b| {
            b.iter(|| {
                let out = t.process(buf.clone(), &mut cx).unwrap();
                matches!(out, Flow::Push(_))
            })
        });
    }
    g.finish();
}

criterion_group!(benches, filters);
criterion_main!(benches);
