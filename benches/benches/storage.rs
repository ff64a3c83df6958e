//! Criterion benches of the storage workloads on every compiled-in backend, through the
//! same harness as the report (`paxstore_benches::workload`), at the sizes of the report's
//! full matrix (`paxstore_benches::runner::Matrix::full`).
//!
//! ```text
//! cargo bench -p paxstore-benches --bench storage -- 'append/wal/immediate'
//! ```
//!
//! Stores live in fresh directories under `$PAXSTORE_BENCH_DIR` (default `/var/tmp`), so
//! they are on a real disk even where `/tmp` is a tmpfs.

mod common;

use std::time::Duration;

use common::{bench_dir, ok};
use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use paxstore::Durability;
use paxstore_backends::BackendKind;
use paxstore_benches::report::HEADLINE_ENTRY_BYTES;
use paxstore_benches::runner::Matrix;
use paxstore_benches::workload::{
    durabilities, durability_label, read_durability, BenchStore, Budget, ReadRange, Rng,
};
use paxstore_benches::BenchError;

/// A store is replaced (untimed) once this many payload bytes were appended to it, so
/// long runs do not fill memory or the disk.
const MAX_BYTES_PER_STORE: usize = 256 << 20;

fn appends(c: &mut Criterion) {
    let (parent, m) = (bench_dir(), Matrix::full());
    for kind in BackendKind::compiled_in() {
        for durability in durabilities(kind) {
            let mut group =
                c.benchmark_group(format!("append/{kind}/{}", durability_label(durability)));
            group.sample_size(10).measurement_time(Duration::from_secs(2));
            for &bytes in &m.entry_sizes {
                for &batch in &m.append_batches {
                    group.throughput(Throughput::Elements(batch as u64));
                    let id = BenchmarkId::new(format!("{bytes}B"), batch);
                    group.bench_function(id, |b| {
                        let mut store = ok(BenchStore::create_in(kind, durability, &parent));
                        let mut written = 0;
                        b.iter_custom(|iters| {
                            let mut total = Duration::ZERO;
                            for _ in 0..iters {
                                if written > MAX_BYTES_PER_STORE {
                                    store = ok(BenchStore::create_in(kind, durability, &parent));
                                    written = 0;
                                }
                                total += ok(store.append_batch(batch, bytes));
                                written += batch * bytes;
                            }
                            total
                        });
                    });
                }
            }
            group.finish();
        }
    }
}

fn reads(c: &mut Criterion) {
    let (parent, m) = (bench_dir(), Matrix::full());
    for kind in BackendKind::compiled_in() {
        let mut store = ok(BenchStore::create_in(kind, read_durability(kind), &parent));
        ok(store.fill(m.read_fill, HEADLINE_ENTRY_BYTES));
        let mut group = c.benchmark_group(format!("read/{kind}"));
        group.sample_size(20).measurement_time(Duration::from_secs(2));
        let mut rng = Rng::new(7);
        for range in [ReadRange::Recent, ReadRange::Old] {
            for &batch in &m.read_batches {
                group.throughput(Throughput::Elements(batch as u64));
                group.bench_function(BenchmarkId::new(range.op_name(), batch), |b| {
                    b.iter_custom(|iters| {
                        let budget = Budget::calls(iters as usize);
                        ok(store.read_run(range, batch, &mut rng, budget)).total()
                    });
                });
            }
        }
        group.finish();
    }
}

fn trims(c: &mut Criterion) {
    let (parent, m) = (bench_dir(), Matrix::full());
    for kind in BackendKind::compiled_in() {
        for durability in durabilities(kind) {
            let mut group =
                c.benchmark_group(format!("trim/{kind}/{}", durability_label(durability)));
            group.sample_size(10).measurement_time(Duration::from_secs(2));
            for &per_trim in &m.trim_batches {
                group.throughput(Throughput::Elements(per_trim as u64));
                group.bench_function(BenchmarkId::new("trim", per_trim), |b| {
                    let mut store = ok(BenchStore::create_in(kind, durability, &parent));
                    b.iter_custom(|iters| {
                        let mut total = Duration::ZERO;
                        for _ in 0..iters {
                            // Untimed: keep at least one trim's worth of entries in the log.
                            if ok(store
                                .storage()
                                .get_log_len()
                                .map_err(BenchError::storage(kind.name())))
                                < per_trim
                            {
                                ok(store.fill(m.trim_fill, HEADLINE_ENTRY_BYTES));
                            }
                            total += ok(store.trim_run(per_trim, Budget::calls(1))).total();
                        }
                        total
                    });
                });
            }
            group.finish();
        }
    }
}

fn reopen(c: &mut Criterion) {
    let (parent, m) = (bench_dir(), Matrix::full());
    let mut group = c.benchmark_group("reopen");
    group.sample_size(10).measurement_time(Duration::from_secs(5));
    for kind in BackendKind::compiled_in().into_iter().filter(|k| k.is_persistent()) {
        let mut store = ok(BenchStore::create_in(kind, Some(Durability::Immediate), &parent));
        ok(store.fill(m.reopen_entries, HEADLINE_ENTRY_BYTES));
        group.bench_function(BenchmarkId::new(kind.name(), m.reopen_entries), |b| {
            b.iter_custom(|iters| (0..iters).map(|_| ok(store.reopen())).sum());
        });
    }
    group.finish();
}

criterion_group!(benches, appends, reads, trims, reopen);
criterion_main!(benches);
