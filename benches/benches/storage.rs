//! Criterion benches of the storage workloads on every compiled-in backend, through the
//! same harness as the report (`paxstore_benches::workload`).
//!
//! ```text
//! cargo bench -p paxstore-benches --bench storage -- 'append/wal/immediate'
//! ```
//!
//! Stores live in fresh directories under `$PAXSTORE_BENCH_DIR` (default `/var/tmp`), so
//! they are on a real disk even where `/tmp` is a tmpfs.

use std::path::PathBuf;
use std::time::Duration;

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use paxstore::Durability;
use paxstore_backends::BackendKind;
use paxstore_benches::workload::{durabilities, durability_label, BenchStore, ReadRange, Rng};
use paxstore_benches::BenchError;

/// Where the benches put their stores.
fn bench_dir() -> PathBuf {
    std::env::var_os("PAXSTORE_BENCH_DIR").map_or_else(|| PathBuf::from("/var/tmp"), PathBuf::from)
}

/// A bench cannot return an error from inside criterion's timing loop: it stops with the
/// backend's error message.
fn ok<T>(r: Result<T, BenchError>) -> T {
    r.unwrap_or_else(|e| panic!("benchmark failed: {e}"))
}

/// A store is replaced (untimed) once this many payload bytes were appended to it, so
/// long runs do not fill memory or the disk.
const MAX_BYTES_PER_STORE: usize = 256 << 20;

fn appends(c: &mut Criterion) {
    let parent = bench_dir();
    for kind in BackendKind::compiled_in() {
        for durability in durabilities(kind) {
            let mut group =
                c.benchmark_group(format!("append/{kind}/{}", durability_label(durability)));
            group.sample_size(10).measurement_time(Duration::from_secs(2));
            for bytes in [16, 128, 4096] {
                for batch in [1usize, 10, 100, 1000] {
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
    let parent = bench_dir();
    for kind in BackendKind::compiled_in() {
        let durability = kind.is_persistent().then_some(Durability::Immediate);
        let mut store = ok(BenchStore::create_in(kind, durability, &parent));
        ok(store.fill(100_000, 128));
        let mut group = c.benchmark_group(format!("read/{kind}"));
        group.sample_size(20).measurement_time(Duration::from_secs(2));
        let mut rng = Rng::new(7);
        for range in [ReadRange::Recent, ReadRange::Old] {
            for batch in [1usize, 100, 1000] {
                group.throughput(Throughput::Elements(batch as u64));
                group.bench_function(BenchmarkId::new(range.op_name(), batch), |b| {
                    b.iter_custom(|iters| {
                        let budget = paxstore_benches::workload::Budget {
                            time: Duration::ZERO,
                            min_calls: iters as usize,
                            max_calls: iters as usize,
                            max_bytes: u64::MAX,
                        };
                        ok(store.read_run(range, batch, &mut rng, budget)).total()
                    });
                });
            }
        }
        group.finish();
    }
}

fn trims(c: &mut Criterion) {
    let parent = bench_dir();
    const PER_TRIM: usize = 1000;
    for kind in BackendKind::compiled_in() {
        for durability in durabilities(kind) {
            let mut group =
                c.benchmark_group(format!("trim/{kind}/{}", durability_label(durability)));
            group.sample_size(10).measurement_time(Duration::from_secs(2));
            group.throughput(Throughput::Elements(PER_TRIM as u64));
            group.bench_function(BenchmarkId::new("trim", PER_TRIM), |b| {
                let mut store = ok(BenchStore::create_in(kind, durability, &parent));
                b.iter_custom(|iters| {
                    let mut total = Duration::ZERO;
                    for _ in 0..iters {
                        let budget = paxstore_benches::workload::Budget {
                            time: Duration::ZERO,
                            min_calls: 1,
                            max_calls: 1,
                            max_bytes: u64::MAX,
                        };
                        // Untimed: keep at least one trim's worth of entries in the log.
                        if ok(store
                            .storage()
                            .get_log_len()
                            .map_err(BenchError::storage(kind.name())))
                            < PER_TRIM
                        {
                            ok(store.fill(100 * PER_TRIM, 128));
                        }
                        total += ok(store.trim_run(PER_TRIM, budget)).total();
                    }
                    total
                });
            });
            group.finish();
        }
    }
}

fn reopen(c: &mut Criterion) {
    let parent = bench_dir();
    const ENTRIES: usize = 1_000_000;
    let mut group = c.benchmark_group("reopen");
    group.sample_size(10).measurement_time(Duration::from_secs(5));
    for kind in BackendKind::compiled_in().into_iter().filter(|k| k.is_persistent()) {
        let mut store = ok(BenchStore::create_in(kind, Some(Durability::Immediate), &parent));
        ok(store.fill(ENTRIES, 128));
        group.bench_function(BenchmarkId::new(kind.name(), ENTRIES), |b| {
            b.iter_custom(|iters| (0..iters).map(|_| ok(store.reopen())).sum());
        });
    }
    group.finish();
}

criterion_group!(benches, appends, reads, trims, reopen);
criterion_main!(benches);
