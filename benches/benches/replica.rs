//! Criterion benches of a 3-replica cluster (one process, messages in memory, each
//! replica over its own store) on every compiled-in backend, at several `batch_size`s,
//! through the same harness as the report (`paxstore_benches::replica`).
//!
//! ```text
//! cargo bench -p paxstore-benches --bench replica -- 'replica/wal/immediate'
//! ```

use std::path::PathBuf;
use std::time::Duration;

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use paxstore_backends::BackendKind;
use paxstore_benches::replica::Cluster;
use paxstore_benches::workload::{durabilities, durability_label};
use paxstore_benches::BenchError;

/// Where the benches put their stores (a real disk, not a tmpfs).
fn bench_dir() -> PathBuf {
    std::env::var_os("PAXSTORE_BENCH_DIR").map_or_else(|| PathBuf::from("/var/tmp"), PathBuf::from)
}

/// A bench cannot return an error from inside criterion's timing loop: it stops with the
/// error message.
fn ok<T>(r: Result<T, BenchError>) -> T {
    r.unwrap_or_else(|e| panic!("benchmark failed: {e}"))
}

/// A cluster is rebuilt (untimed) after deciding this many entries.
const MAX_ENTRIES_PER_CLUSTER: usize = 500_000;

fn replica(c: &mut Criterion) {
    let parent = bench_dir();
    for kind in BackendKind::compiled_in() {
        // Immediate is the replica's durable setting; memory has none.
        let durability = durabilities(kind)[0];
        let mut group =
            c.benchmark_group(format!("replica/{kind}/{}", durability_label(durability)));
        group.sample_size(10).measurement_time(Duration::from_secs(3));
        for batch_size in [1usize, 10, 100, 1000] {
            group.throughput(Throughput::Elements(batch_size as u64));
            group.bench_function(BenchmarkId::new("batch_size", batch_size), |b| {
                let mut cluster = ok(Cluster::new(kind, durability, &parent, batch_size));
                let mut decided = 0;
                b.iter_custom(|iters| {
                    if decided > MAX_ENTRIES_PER_CLUSTER {
                        cluster = ok(Cluster::new(kind, durability, &parent, batch_size));
                        decided = 0;
                    }
                    let n = iters as usize * batch_size;
                    let run = ok(cluster.run(batch_size, Duration::ZERO, n));
                    decided += run.decided;
                    // Time per batch decided (criterion divides by `iters`).
                    run.elapsed.mul_f64(n as f64 / run.decided.max(1) as f64)
                });
            });
        }
        group.finish();
    }
}

criterion_group!(benches, replica);
criterion_main!(benches);
