//! A 3-replica Sequence Paxos cluster in one process: messages passed in memory, each
//! replica over its own store of the backend under test, in its own directory.
//!
//! The driver is paxstore-paxos's own fault-free [`LocalCluster`]: after electing a
//! leader, the harness keeps a window of entries in flight on the leader, delivers every
//! released message, and records when each entry is decided on the leader. No ticks
//! happen while timing, so nothing but appends and their messages is measured; the
//! replica's `batch_size` is the variable, and appends come in whole batches so a batch
//! is proposed as soon as it is full. All three replicas run on one thread, so their
//! storage writes (and syncs) happen one after another, as they would on one disk.

use std::collections::VecDeque;
use std::path::Path;
use std::time::{Duration, Instant};

use paxstore::{ClusterConfig, Durability, Storage};
use paxstore_backends::BackendKind;
use paxstore_backends::MemoryStorage;
use paxstore_paxos::cluster::LocalCluster;
use paxstore_paxos::{PaxosError, ReplicaConfig};
use tempfile::TempDir;

use crate::workload::BenchEntry;
use crate::BenchError;

/// Replicas in the cluster.
pub const REPLICAS: usize = 3;

/// Whether this build has a cluster to measure.
pub const AVAILABLE: bool = true;

/// The entry size the cluster appends.
pub const ENTRY_BYTES: usize = 128;

/// Batches kept in flight on the leader (appended, not yet decided).
pub const WINDOW_BATCHES: usize = 4;

/// Steps (tick + deliver) allowed for electing a leader.
const ELECTION_STEPS: usize = 2_000;

/// Delivery rounds without any decision before the run is declared stuck.
const STALL_ROUNDS: usize = 10_000;

/// What one timed run of the cluster did.
#[derive(Clone, Debug, Default)]
pub struct ClusterRun {
    /// Entries decided on the leader during the timed part.
    pub decided: usize,
    /// Wall time of the timed part.
    pub elapsed: Duration,
    /// Per entry, from `append` on the leader until it was decided there.
    pub latencies: Vec<Duration>,
}

impl ClusterRun {
    /// Entries decided per second of wall time.
    pub fn decided_per_s(&self) -> f64 {
        let s = self.elapsed.as_secs_f64();
        if s > 0.0 {
            self.decided as f64 / s
        } else {
            0.0
        }
    }
}

type Boxed = Box<dyn Storage<BenchEntry>>;

/// Three replicas over fresh stores of one backend, with a leader elected.
pub struct Cluster {
    // The replicas (and their stores) drop before their directories.
    cluster: LocalCluster<BenchEntry, Boxed>,
    _dirs: Vec<TempDir>,
    kind: BackendKind,
    leader: u64,
    next_index: u64,
}

impl Cluster {
    /// Opens [`REPLICAS`] fresh stores of `kind` under `parent`, builds a
    /// [`LocalCluster`] with `batch_size` over them, and elects a leader.
    pub fn new(
        kind: BackendKind,
        durability: Option<Durability>,
        parent: &Path,
        batch_size: usize,
    ) -> Result<Self, BenchError> {
        let mut stores: Vec<Boxed> = Vec::new();
        let mut dirs = Vec::new();
        for pid in 1..=REPLICAS {
            if !kind.is_persistent() {
                // A volatile backend ignores its path: no directory to create and remove.
                let store = kind.open::<BenchEntry>(parent, durability.unwrap_or_default());
                stores.push(store.map_err(BenchError::storage(kind.name()))?);
                continue;
            }
            let dir = tempfile::Builder::new()
                .prefix(&format!("{}-replica{pid}-", kind.name()))
                .tempdir_in(parent)
                .map_err(BenchError::io("creating a replica directory", parent))?;
            stores.push(
                kind.open::<BenchEntry>(&dir.path().join("store"), durability.unwrap_or_default())
                    .map_err(BenchError::storage(kind.name()))?,
            );
            dirs.push(dir);
        }
        let fail = |what: &str, e: PaxosError| BenchError::Cluster {
            backend: kind.name().to_owned(),
            detail: format!("{what}: {e}"),
        };
        let template = ReplicaConfig::new(1, ClusterConfig::default()).with_batch_size(batch_size);
        // LocalCluster asks for the stores of pids 1..=n in order.
        let mut stores = stores.into_iter();
        let mut cluster = LocalCluster::new(REPLICAS, &template, |_pid| {
            stores.next().unwrap_or_else(|| Box::new(MemoryStorage::<BenchEntry>::new()))
        })
        .map_err(|e| fail("building the replicas", e))?;
        let leader =
            cluster.elect_leader(ELECTION_STEPS).map_err(|e| fail("electing a leader", e))?;
        Ok(Cluster { cluster, _dirs: dirs, kind, leader, next_index: 0 })
    }

    fn fail(&self, what: &str, detail: impl std::fmt::Display) -> BenchError {
        BenchError::Cluster {
            backend: self.kind.name().to_owned(),
            detail: format!("{what}: {detail}"),
        }
    }

    fn leader_decided(&self) -> Result<usize, BenchError> {
        self.cluster.replica(self.leader).map(|r| r.decided_idx()).ok_or_else(|| {
            self.fail("reading the leader", format!("replica {} is gone", self.leader))
        })
    }

    /// Appends one whole batch of `batch_size` entries on the leader.
    fn append_batch(&mut self, batch_size: usize) -> Result<(), BenchError> {
        for _ in 0..batch_size {
            let entry = BenchEntry::new(self.next_index, ENTRY_BYTES);
            self.next_index += 1;
            if let Err(e) = self.cluster.append_at(self.leader, entry) {
                return Err(self.fail("appending on the leader", e));
            }
        }
        Ok(())
    }

    /// Runs appends for `time` (and at least three batches, at most `max_entries`
    /// decided), keeping [`WINDOW_BATCHES`] batches in flight.
    pub fn run(
        &mut self,
        batch_size: usize,
        time: Duration,
        max_entries: usize,
    ) -> Result<ClusterRun, BenchError> {
        let window = batch_size * WINDOW_BATCHES;
        let mut in_flight: VecDeque<Instant> = VecDeque::with_capacity(window);
        let mut decided = self.leader_decided()?;
        let mut run = ClusterRun::default();
        let mut stalled = 0;
        let started = Instant::now();
        while (started.elapsed() < time || run.decided < 3 * batch_size)
            && run.decided < max_entries
        {
            while in_flight.len() + batch_size <= window {
                let t = Instant::now();
                self.append_batch(batch_size)?;
                in_flight.extend(std::iter::repeat_n(t, batch_size));
            }
            if let Err(e) = self.cluster.deliver() {
                return Err(self.fail("delivering messages", e));
            }
            let now_decided = self.leader_decided()?;
            if now_decided == decided {
                stalled += 1;
                if stalled > STALL_ROUNDS {
                    return Err(self.fail(
                        "stalled",
                        format!("nothing decided after {STALL_ROUNDS} rounds at {decided}"),
                    ));
                }
                continue;
            }
            stalled = 0;
            let now = Instant::now();
            for _ in decided..now_decided {
                match in_flight.pop_front() {
                    Some(t) => run.latencies.push(now - t),
                    None => {
                        return Err(self
                            .fail("decided", format!("{now_decided} is past what was appended")))
                    }
                }
            }
            run.decided += now_decided - decided;
            decided = now_decided;
        }
        run.elapsed = started.elapsed();
        Ok(run)
    }
}

/// Runs a cluster of [`REPLICAS`] replicas over fresh stores of `kind` for about `time`:
/// one warm-up window, then appends on the leader in whole batches of `batch_size`.
pub fn run_cluster(
    kind: BackendKind,
    durability: Option<Durability>,
    parent: &Path,
    batch_size: usize,
    time: Duration,
) -> Result<ClusterRun, BenchError> {
    let mut cluster = Cluster::new(kind, durability, parent, batch_size)?;
    cluster.run(batch_size, Duration::ZERO, batch_size * WINDOW_BATCHES)?;
    cluster.run(batch_size, time, 1_000_000)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_memory_cluster_decides_at_every_batch_size() {
        let parent = tempfile::tempdir().unwrap();
        for batch in [1, 10, 100] {
            let run = run_cluster(BackendKind::Memory, None, parent.path(), batch, Duration::ZERO)
                .unwrap();
            assert!(run.decided >= 3 * batch, "{run:?}");
            assert_eq!(run.latencies.len(), run.decided);
        }
    }
}
