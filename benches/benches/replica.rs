//! Criterion benches of a 3-replica cluster in one process, driven in rounds
//! (`paxstore_benches::replica`, the report's driver, at the batch sizes of the report's
//! full matrix): paxstore's replica over every
//! compiled-in backend, and OmniPaxos 0.2.4 over its `MemoryStorage`, in the `upfront`
//! and `stream` modes at several batch sizes.
//!
//! ```text
//! cargo bench -p paxstore-benches --bench replica -- 'replica/paxstore/memory/upfront'
//! ```

mod common;

use std::time::Duration;

use common::{bench_dir, ok};
use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use paxstore_backends::BackendKind;
use paxstore_benches::omni;
use paxstore_benches::replica::{upfront_entries, Mode, PaxstoreCluster, RoundNode, Rounds};
use paxstore_benches::runner::Matrix;
use paxstore_benches::workload::{durabilities, durability_label};

/// Times `iters` runs of `mode` (one upfront run, or one streamed batch, per iteration).
fn time_runs<N: RoundNode>(
    rounds: &mut Rounds<N>,
    mode: Mode,
    batch: usize,
    iters: u64,
) -> Duration {
    let entries = match mode {
        Mode::Upfront => upfront_entries(batch),
        Mode::Stream => batch,
    };
    (0..iters).map(|_| ok(rounds.run(mode, entries, Duration::ZERO)).elapsed).sum()
}

fn replica(c: &mut Criterion) {
    let (parent, m) = (bench_dir(), Matrix::full());
    for &mode in &m.replica_modes {
        for kind in BackendKind::compiled_in() {
            // Immediate is the replica's durable setting; memory has none.
            let durability = durabilities(kind)[0];
            let name =
                format!("replica/paxstore/{kind}/{}/{}", durability_label(durability), mode.name());
            let mut group = c.benchmark_group(name);
            group.sample_size(10).measurement_time(Duration::from_secs(3));
            for &batch in &m.replica_batches {
                let per_iter = if mode == Mode::Upfront { upfront_entries(batch) } else { batch };
                group.throughput(Throughput::Elements(per_iter as u64));
                group.bench_function(BenchmarkId::new("batch_size", batch), |b| {
                    let mut cluster = ok(PaxstoreCluster::new(kind, durability, &parent, batch));
                    b.iter_custom(|iters| time_runs(&mut cluster.rounds, mode, batch, iters));
                });
            }
            group.finish();
        }
        let mut group =
            c.benchmark_group(format!("replica/omnipaxos/MemoryStorage/{}", mode.name()));
        group.sample_size(10).measurement_time(Duration::from_secs(3));
        for &batch in &m.replica_batches {
            let per_iter = if mode == Mode::Upfront { upfront_entries(batch) } else { batch };
            group.throughput(Throughput::Elements(per_iter as u64));
            group.bench_function(BenchmarkId::new("batch_size", batch), |b| {
                let mut rounds = ok(omni::memory_cluster(batch));
                b.iter_custom(|iters| time_runs(&mut rounds, mode, batch, iters));
            });
        }
        group.finish();
    }
}

criterion_group!(benches, replica);
criterion_main!(benches);
