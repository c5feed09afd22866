//! Typed pipelines against the limits: the per-item cost of a typed `map → filter → sink`
//! chain, of the same chain as dynamic elements, and of a plain Rust iterator loop; and the
//! cost of validating an archived payload once. Run with `cargo bench --bench typed`.
//!
//! Each pipeline run moves `ITEMS` items end to end (thread start and pools included, spread
//! over the items); criterion reports items per second.

use std::hint::black_box;
use std::sync::Arc;

use criterion::{criterion_group, criterion_main, BatchSize, Criterion, Throughput};
use parallax::exec::{Pipeline, RunControl, RunOptions};
use parallax::typed::{for_each, from_iter, Payload};

const ITEMS: u64 = 100_000;

#[derive(rkyv::Archive, rkyv::Serialize, rkyv::Deserialize, Debug, Clone, PartialEq)]
struct Reading {
    sensor: u32,
    celsius: f32,
    label: String,
}

fn chains(c: &mut Criterion) {
    let mut g = c.benchmark_group("chain");
    g.throughput(Throughput::Elements(ITEMS));
    g.sample_size(10);
    g.bench_function("typed map-filter-sink", |b| {
        b.iter(|| {
            from_iter(0..ITEMS)
                .map(|x: u64| x * 3)
                .filter(|x: &u64| x % 2 == 0)
                .sink(for_each::<u64, _>(|x| {
                    black_box(x);
                }))
                .run()
                .expect("runs")
        })
    });
    // The same shape in dynamic elements: a source of 8-byte buffers and two one-in-one-out
    // elements before the sink (identity does the least work an element can do).
    let text = format!(
        "fakesrc num-buffers={ITEMS} sizetype=fixed sizemax=8 filltype=nothing ! identity ! identity ! fakesink"
    );
    g.bench_function("dynamic fakesrc-identity-identity-fakesink", |b| {
        let pipeline = Pipeline::parse(&text).expect("parses");
        b.iter(|| {
            pipeline
                .run(
                    Arc::new(RunControl::new().expect("control")),
                    &RunOptions::default(),
                )
                .expect("runs")
        })
    });
    g.bench_function("iterator map-filter-for_each (the limit)", |b| {
        b.iter(|| {
            (0..black_box(ITEMS))
                .map(|x| x * 3)
                .filter(|x| x % 2 == 0)
                .for_each(|x| {
                    black_box(x);
                })
        })
    });
    g.finish();
}

fn payloads(c: &mut Criterion) {
    let mut g = c.benchmark_group("payload");
    g.throughput(Throughput::Elements(1));
    let reading = Reading {
        sensor: 7,
        celsius: 21.5,
        label: "hall, north side".into(),
    };
    let bytes = reading.encode().expect("encodes");
    g.bench_function(
        "validate Reading once (bytecheck), then read in place",
        |b| b.iter(|| Reading::view(black_box(&bytes)).expect("valid").sensor),
    );
    g.bench_function("validate and deserialize Reading", |b| {
        b.iter(|| Reading::decode(black_box(&bytes)).expect("valid"))
    });
    g.bench_function("encode Reading", |b| {
        b.iter_batched(
            || reading.clone(),
            |r| r.encode().expect("encodes"),
            BatchSize::SmallInput,
        )
    });
    let n = 42u64.encode().expect("encodes");
    g.bench_function("validate u64 once", |b| {
        b.iter(|| *u64::view(black_box(&n)).expect("valid"))
    });
    g.finish();
}

criterion_group!(benches, chains, payloads);
criterion_main!(benches);
