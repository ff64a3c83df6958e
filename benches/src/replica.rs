//! A 3-replica Sequence Paxos cluster in one process: messages passed in memory, each
//! replica over its own store of the backend under test, in its own directory.
//!
//! The driver is fault-free and deterministic: after electing replica 1 (the highest
//! priority), it keeps a window of entries in flight on the leader, delivers every
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
use paxstore_paxos::{Message, Replica, ReplicaConfig};
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

/// Ticks allowed for electing a leader before the run is declared stuck.
const ELECTION_TICKS: usize = 2_000;

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

type BoxedReplica = Replica<BenchEntry, Box<dyn Storage<BenchEntry>>>;

/// Three replicas over fresh stores of one backend, with a leader elected.
pub struct Cluster {
    // Replicas (and their stores) drop before their directories.
    replicas: Vec<BoxedReplica>,
    _dirs: Vec<TempDir>,
    kind: BackendKind,
    inbox: Vec<Message<BenchEntry>>,
    next_index: u64,
}

impl Cluster {
    /// Opens [`REPLICAS`] fresh stores of `kind` under `parent`, builds a replica with
    /// `batch_size` over each, and runs the election until replica 1 leads.
    pub fn new(
        kind: BackendKind,
        durability: Option<Durability>,
        parent: &Path,
        batch_size: usize,
    ) -> Result<Self, BenchError> {
        let nodes: Vec<u64> = (1..=REPLICAS as u64).collect();
        let cluster =
            ClusterConfig { configuration_id: 1, nodes: nodes.clone(), flexible_quorum: None };
        let mut replicas = Vec::new();
        let mut dirs = Vec::new();
        for &pid in &nodes {
            let dir = tempfile::Builder::new()
                .prefix(&format!("{}-replica{pid}-", kind.name()))
                .tempdir_in(parent)
                .map_err(BenchError::io("creating a replica directory", parent))?;
            let storage = kind
                .open::<BenchEntry>(&dir.path().join("store"), durability.unwrap_or_default())
                .map_err(BenchError::storage(kind.name()))?;
            let mut config = ReplicaConfig::new(pid, cluster.clone()).with_batch_size(batch_size);
            // Replica 1 wins the election, so the leader is known in advance.
            config.priority = if pid == 1 { 10 } else { 0 };
            let replica = Replica::new(config, storage).map_err(|(e, _)| BenchError::Cluster {
                backend: kind.name().to_owned(),
                detail: format!("building replica {pid}: {e}"),
            })?;
            replicas.push(replica);
            dirs.push(dir);
        }
        let mut c = Cluster { replicas, _dirs: dirs, kind, inbox: Vec::new(), next_index: 0 };
        c.elect()?;
        Ok(c)
    }

    fn fail(&self, detail: String) -> BenchError {
        BenchError::Cluster { backend: self.kind.name().to_owned(), detail }
    }

    fn elect(&mut self) -> Result<(), BenchError> {
        for _ in 0..ELECTION_TICKS {
            for r in &mut self.replicas {
                r.tick().map_err(|e| BenchError::Cluster {
                    backend: self.kind.name().to_owned(),
                    detail: format!("tick on replica {}: {e}", r.pid()),
                })?;
            }
            self.deliver_all()?;
            if self.replicas[0].is_leader() && self.replicas.iter().all(|r| r.leader() == Some(1)) {
                return Ok(());
            }
        }
        Err(self.fail(format!("no leader after {ELECTION_TICKS} ticks")))
    }

    /// Delivers every message released so far, and every message those release, until
    /// the network is quiet. Returns the number of messages delivered.
    fn deliver_all(&mut self) -> Result<usize, BenchError> {
        let mut delivered = 0;
        loop {
            for r in &mut self.replicas {
                r.drain_outgoing_into(&mut self.inbox);
            }
            if self.inbox.is_empty() {
                return Ok(delivered);
            }
            for msg in std::mem::take(&mut self.inbox) {
                let to = msg.to;
                let Some(r) =
                    usize::try_from(to).ok().and_then(|i| self.replicas.get_mut(i.wrapping_sub(1)))
                else {
                    return Err(self.fail(format!("message to unknown replica {to}")));
                };
                r.handle_incoming(msg).map_err(|e| BenchError::Cluster {
                    backend: self.kind.name().to_owned(),
                    detail: format!("replica {to} handling a message: {e}"),
                })?;
                delivered += 1;
            }
        }
    }

    /// Appends one whole batch of `batch_size` entries on the leader.
    fn append_batch(&mut self, batch_size: usize) -> Result<(), BenchError> {
        for _ in 0..batch_size {
            let entry = BenchEntry::new(self.next_index, ENTRY_BYTES);
            self.next_index += 1;
            let kind = self.kind;
            self.replicas[0].append(entry).map_err(|e| BenchError::Cluster {
                backend: kind.name().to_owned(),
                detail: format!("append on the leader: {e}"),
            })?;
        }
        Ok(())
    }

    /// Runs appends for `time` (and at least a few batches), keeping
    /// [`WINDOW_BATCHES`] batches in flight.
    pub fn run(
        &mut self,
        batch_size: usize,
        time: Duration,
        max_entries: usize,
    ) -> Result<ClusterRun, BenchError> {
        let window = batch_size * WINDOW_BATCHES;
        let mut in_flight: VecDeque<Instant> = VecDeque::with_capacity(window);
        let mut decided = self.replicas[0].decided_idx();
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
            self.deliver_all()?;
            let now_decided = self.replicas[0].decided_idx();
            if now_decided == decided {
                stalled += 1;
                if stalled > STALL_ROUNDS {
                    return Err(self.fail(format!(
                        "nothing decided after {STALL_ROUNDS} rounds at {decided}"
                    )));
                }
                continue;
            }
            stalled = 0;
            let now = Instant::now();
            for _ in decided..now_decided {
                match in_flight.pop_front() {
                    Some(t) => run.latencies.push(now - t),
                    None => {
                        return Err(
                            self.fail(format!("decided {now_decided} past what was appended"))
                        )
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
