//! Criterion benches of the hot paths: buffer clone, pool loan/release, a fused chain, one queue
//! hop and a tee fan-out. Run with `cargo bench`.

use std::sync::Arc;

use criterion::{criterion_group, criterion_main, BatchSize, Criterion, Throughput};
use parallax::exec::{Pipeline, RunControl, RunOptions};
use parallax::memory::{MemoryPool, PoolConfig, SharedArenaCache};

fn pool(slots: usize, slot_size: usize) -> MemoryPool {
    MemoryPool::new(&PoolConfig::new("bench", slots, slot_size)).unwrap()
}

fn memory(c: &mut Criterion) {
    let p = pool(16, 4096);
    let buf = p.try_loan().unwrap().freeze(4096);
    c.bench_function("buffer clone+drop", |b| {
        b.iter(|| std::hint::black_box(buf.clone()))
    });
    c.bench_function("pool loan+freeze+release", |b| {
        b.iter(|| std::hint::black_box(p.try_loan().unwrap().freeze(64)))
    });

    // A peer's view of the same slot: clone and drop are atomics on the shared refcount and the
    // peer's column (what a child process does).
    let ticket = p.admit_peer().unwrap();
    let mut cache = SharedArenaCache::new();
    cache
        .map_arena(ticket.fd, ticket.access, ticket.id)
        .unwrap();
    let peer_buf = cache.get_slot(p.lend(&buf, ticket.id).unwrap()).unwrap();
    c.bench_function("peer buffer clone+drop (shared refcount)", |b| {
        b.iter(|| std::hint::black_box(peer_buf.clone()))
    });

    // Acquire on one thread, release on another: the loan, the hand-over and the release of a
    // slot that crosses threads, with the producer waiting on the futex when the pool is empty.
    const N: u64 = 100_000;
    let mut g = c.benchmark_group("arena");
    g.throughput(Throughput::Elements(N));
    g.sample_size(10);
    g.bench_function("acquire on one thread, release on another", |b| {
        b.iter(|| {
            let p = pool(16, 4096);
            let (tx, rx) = kanal::bounded(8);
            let consumer = std::thread::spawn(move || {
                while let Ok(buf) = rx.recv() {
                    drop(std::hint::black_box(buf));
                }
            });
            for _ in 0..N {
                tx.send(p.loan_blocking(&|| false).unwrap().freeze(64))
                    .unwrap();
            }
            drop(tx);
            consumer.join().unwrap();
        })
    });
    g.finish();
}

/// Runs `desc` to end of stream once.
fn run(desc: &str) {
    let control = Arc::new(RunControl::new().unwrap());
    Pipeline::parse(desc)
        .unwrap()
        .run(control, &RunOptions::default())
        .unwrap();
}

fn pipelines(c: &mut Criterion) {
    const N: u64 = 100_000;
    let mut g = c.benchmark_group("pipeline");
    g.throughput(Throughput::Elements(N));
    g.sample_size(10);
    let fused = format!("fakesrc num-buffers={N} ! identity ! identity ! identity ! fakesink");
    g.bench_function("fused chain, 3 identities", |b| {
        b.iter_batched(|| (), |_| run(&fused), BatchSize::PerIteration)
    });
    let hop = format!("fakesrc num-buffers={N} ! queue ! fakesink");
    g.bench_function("one queue hop", |b| {
        b.iter_batched(|| (), |_| run(&hop), BatchSize::PerIteration)
    });
    let tee = format!(
        "fakesrc num-buffers={N} sizetype=fixed sizemax=65536 ! tee name=t ! fakesink t. ! fakesink t. ! fakesink t. ! fakesink"
    );
    g.bench_function("tee x4, 64 KiB buffers", |b| {
        b.iter_batched(|| (), |_| run(&tee), BatchSize::PerIteration)
    });
    g.finish();
}

criterion_group!(benches, memory, pipelines);
criterion_main!(benches);
