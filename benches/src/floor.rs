//! The floor: the least work a replicated log does under the replica driver
//! ([`crate::replica::Rounds`]), so the report can say how far a replica is from what the
//! driver allows, cell by cell.
//!
//! A [`FloorNode`] is not a consensus protocol. Replica 1 leads from the start (no
//! election, no ballots, no recovery, no forwarding, no retransmission); it keeps only
//! what any leader-based log must do in each round of the driver:
//!
//! - the leader moves the appended entries into its log at the take once a batch is full
//!   (or at a tick), and sends each follower **one copy** of them with its decided index;
//! - a follower appends what it receives and acknowledges it at its next take;
//! - the leader decides what a majority holds, and tells the followers in its next
//!   message (a decide of its own when no entries are waiting);
//! - trimming drops the prefix every replica decided, on every replica (a write of its
//!   own: over a durable store in upfront mode, where a run is a handful of writes, the
//!   floor may therefore sync more per entry than a replica that folds a trim into its
//!   next step; its figure there bounds the work, not the syncs).
//!
//! Its log is a [`FloorLog`]: a bare `Vec` ([`VecLog`], the work of the protocol alone),
//! or a paxstore backend through the storage contract ([`StoreLog`]: one
//! `write_atomically` per change, what a replica over that backend cannot avoid). Driven
//! by the same rounds, with the same entries and trims as paxstore's replica and
//! OmniPaxos, its decided entries per second over OmniPaxos' is the highest ratio that a
//! replica could show in that cell.

use std::path::Path;

use paxstore::{Durability, Storage, StorageOp};
use paxstore_backends::BackendKind;
use tempfile::TempDir;

use crate::replica::{BenchStorage, RoundNode, Rounds, REPLICAS};
use crate::workload::BenchEntry;
use crate::BenchError;

/// The leader's pid.
const LEADER: u64 = 1;

/// A floor replica's log.
pub trait FloorLog {
    /// Appends `entries` (moving them out of the vector).
    fn append(&mut self, entries: &mut Vec<BenchEntry>) -> Result<(), BenchError>;
    /// Drops the entries below `idx`.
    fn trim(&mut self, idx: usize) -> Result<(), BenchError>;
    /// One past the last entry.
    fn end(&self) -> usize;
    /// Writes so far.
    fn writes(&self) -> u64;
    /// Syncs so far, where counted.
    fn syncs(&self) -> Option<u64>;
}

/// The log in a `Vec`: no storage at all.
#[derive(Default)]
pub struct VecLog {
    entries: Vec<BenchEntry>,
    /// The index of `entries[0]`.
    first: usize,
}

impl FloorLog for VecLog {
    fn append(&mut self, entries: &mut Vec<BenchEntry>) -> Result<(), BenchError> {
        self.entries.append(entries);
        Ok(())
    }
    fn trim(&mut self, idx: usize) -> Result<(), BenchError> {
        let n = idx.saturating_sub(self.first).min(self.entries.len());
        self.entries.drain(..n);
        self.first += n;
        Ok(())
    }
    fn end(&self) -> usize {
        self.first + self.entries.len()
    }
    fn writes(&self) -> u64 {
        0
    }
    fn syncs(&self) -> Option<u64> {
        Some(0)
    }
}

/// The log in a paxstore backend: each append and each trim is one `write_atomically`.
pub struct StoreLog {
    storage: BenchStorage,
    end: usize,
    compacted: usize,
    label: &'static str,
}

impl StoreLog {
    fn write(&mut self, op: StorageOp<BenchEntry>) -> Result<(), BenchError> {
        self.storage.write_atomically(vec![op]).map_err(BenchError::storage(self.label))
    }
}

impl FloorLog for StoreLog {
    fn append(&mut self, entries: &mut Vec<BenchEntry>) -> Result<(), BenchError> {
        self.end += entries.len();
        self.write(StorageOp::AppendEntries(std::mem::take(entries)))
    }
    fn trim(&mut self, idx: usize) -> Result<(), BenchError> {
        let idx = idx.min(self.end);
        if idx <= self.compacted {
            return Ok(());
        }
        self.compacted = idx;
        self.write(StorageOp::Trim(idx))
    }
    fn end(&self) -> usize {
        self.end
    }
    fn writes(&self) -> u64 {
        self.storage.writes()
    }
    fn syncs(&self) -> Option<u64> {
        self.storage.syncs()
    }
}

/// What floor replicas send each other.
#[derive(Debug)]
pub struct FloorMsg {
    from: u64,
    to: u64,
    payload: FloorPayload,
}

#[derive(Debug)]
enum FloorPayload {
    /// Entries from `start`, and the leader's decided index.
    Accept { start: usize, entries: Vec<BenchEntry>, decided: usize },
    /// The follower holds the log up to `end` and decided up to `decided`.
    Accepted { end: usize, decided: usize },
    /// The leader's decided index, with no entries to carry it.
    Decide { decided: usize },
    /// Drop the log below this index.
    Trim(usize),
}

/// One floor replica (see the module docs).
pub struct FloorNode<L: FloorLog> {
    pid: u64,
    followers: Vec<u64>,
    batch_size: usize,
    log: L,
    decided: usize,
    /// Appended on the leader, not yet in its log.
    pending: Vec<BenchEntry>,
    /// On the leader: each follower's log end and decided index, as it reported them.
    acked: Vec<(usize, usize)>,
    /// On the leader: the decided index the followers were last told.
    announced: usize,
    /// On a follower: an acknowledgement to send at the next take.
    ack_due: bool,
    /// On a follower: a trim the leader asked for.
    outbox: Vec<FloorMsg>,
}

impl<L: FloorLog> FloorNode<L> {
    fn new(pid: u64, batch_size: usize, log: L) -> Self {
        let followers: Vec<u64> = (1..=REPLICAS as u64).filter(|&p| p != LEADER).collect();
        FloorNode {
            pid,
            acked: vec![(0, 0); followers.len()],
            followers,
            batch_size,
            log,
            decided: 0,
            pending: Vec::new(),
            announced: 0,
            ack_due: false,
            outbox: Vec::new(),
        }
    }

    fn leads(&self) -> bool {
        self.pid == LEADER
    }

    /// On the leader: the pending entries into the log, one copy to each follower.
    fn propose(&mut self) -> Result<(), BenchError> {
        if self.pending.is_empty() {
            return Ok(());
        }
        let start = self.log.end();
        for &to in &self.followers {
            let entries = self.pending.clone();
            let payload = FloorPayload::Accept { start, entries, decided: self.decided };
            self.outbox.push(FloorMsg { from: self.pid, to, payload });
        }
        self.announced = self.decided;
        self.log.append(&mut self.pending)
    }

    /// On the leader: decides what a majority holds (the leader holds all it proposed).
    fn update_decided(&mut self) {
        let quorum = REPLICAS / 2 + 1;
        // The leader counts as one; the `quorum - 1`-th highest follower end completes it.
        let mut ends: Vec<usize> = self.acked.iter().map(|a| a.0).collect();
        ends.sort_unstable_by(|a, b| b.cmp(a));
        if let Some(&end) = ends.get(quorum - 2) {
            self.decided = self.decided.max(end.min(self.log.end()));
        }
    }
}

impl<L: FloorLog> RoundNode for FloorNode<L> {
    type Msg = FloorMsg;

    fn append(&mut self, entry: BenchEntry) -> Result<(), BenchError> {
        self.pending.push(entry);
        Ok(())
    }
    fn tick(&mut self) -> Result<(), BenchError> {
        if self.leads() {
            self.propose()?;
        }
        Ok(())
    }
    fn take(&mut self, out: &mut Vec<FloorMsg>) -> Result<(), BenchError> {
        if self.leads() {
            if self.pending.len() >= self.batch_size {
                self.propose()?;
            }
            if self.decided > self.announced {
                self.announced = self.decided;
                for &to in &self.followers {
                    let payload = FloorPayload::Decide { decided: self.decided };
                    self.outbox.push(FloorMsg { from: self.pid, to, payload });
                }
            }
        } else if std::mem::take(&mut self.ack_due) {
            let payload = FloorPayload::Accepted { end: self.log.end(), decided: self.decided };
            self.outbox.push(FloorMsg { from: self.pid, to: LEADER, payload });
        }
        out.append(&mut self.outbox);
        Ok(())
    }
    fn receiver(msg: &FloorMsg) -> u64 {
        msg.to
    }
    fn handle(&mut self, msg: FloorMsg) -> Result<(), BenchError> {
        match msg.payload {
            FloorPayload::Accept { start, mut entries, decided } => {
                if start == self.log.end() {
                    self.log.append(&mut entries)?;
                    self.ack_due = true;
                }
                self.decided = self.decided.max(decided.min(self.log.end()));
            }
            FloorPayload::Decide { decided } => {
                self.decided = self.decided.max(decided.min(self.log.end()));
                self.ack_due = true;
            }
            FloorPayload::Accepted { end, decided } => {
                if let Some(i) = self.followers.iter().position(|&p| p == msg.from) {
                    self.acked[i] = (end, decided);
                    self.update_decided();
                }
            }
            FloorPayload::Trim(idx) => self.log.trim(idx.min(self.decided))?,
        }
        Ok(())
    }
    fn decided_idx(&self) -> usize {
        self.decided
    }
    fn is_leader(&self) -> bool {
        self.leads()
    }
    fn trim(&mut self) -> Result<(), BenchError> {
        let everywhere = self.acked.iter().map(|a| a.1).fold(self.decided, usize::min);
        self.log.trim(everywhere)?;
        for &to in &self.followers {
            self.outbox.push(FloorMsg {
                from: self.pid,
                to,
                payload: FloorPayload::Trim(everywhere),
            });
        }
        Ok(())
    }
    fn writes(&self) -> u64 {
        self.log.writes()
    }
    fn syncs(&self) -> Option<u64> {
        self.log.syncs()
    }
}

/// [`REPLICAS`] floor replicas over bare `Vec`s, with `batch_size`.
pub fn bare_cluster(batch_size: usize) -> Result<Rounds<FloorNode<VecLog>>, BenchError> {
    let nodes = (1..=REPLICAS as u64).map(|pid| FloorNode::new(pid, batch_size, VecLog::default()));
    Rounds::new(nodes.collect(), "floor".to_owned())
}

/// [`REPLICAS`] floor replicas, each over a fresh paxstore store of one backend, in
/// directories under `parent` (kept until the cluster is dropped), with `batch_size`.
pub struct FloorCluster {
    // The replicas (and their stores) drop before their directories.
    /// The replicas, driven in rounds.
    pub rounds: Rounds<FloorNode<StoreLog>>,
    _dirs: Vec<TempDir>,
}

impl FloorCluster {
    /// Builds the cluster over `kind` with `durability`.
    pub fn new(
        kind: BackendKind,
        durability: Option<Durability>,
        parent: &Path,
        batch_size: usize,
    ) -> Result<Self, BenchError> {
        let mut nodes = Vec::new();
        let mut dirs = Vec::new();
        for pid in 1..=REPLICAS as u64 {
            let (storage, dir) = BenchStorage::for_replica(kind, durability, parent, pid)?;
            dirs.extend(dir);
            let log = StoreLog { storage, end: 0, compacted: 0, label: kind.name() };
            nodes.push(FloorNode::new(pid, batch_size, log));
        }
        let label = format!("floor over {}", kind.name());
        Ok(FloorCluster { rounds: Rounds::new(nodes, label)?, _dirs: dirs })
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::replica::{timed_run, Mode};

    #[test]
    fn the_floor_decides_in_both_modes_at_every_batch_size() {
        let parent = tempfile::tempdir().unwrap();
        for batch in [1, 10, 100] {
            for mode in Mode::ALL {
                let mut bare = bare_cluster(batch).unwrap();
                let run = timed_run(&mut bare, mode, batch, Duration::ZERO).unwrap();
                assert!(run.decided >= batch, "{mode:?} {batch}: {run:?}");
                assert_eq!(run.latencies.len(), run.decided, "{mode:?} {batch}");
                assert_eq!(run.stalls, 0, "{mode:?} {batch}: a round moved nothing");
                assert_eq!(run.writes, 0);
                let mut c =
                    FloorCluster::new(BackendKind::Memory, None, parent.path(), batch).unwrap();
                let run = timed_run(&mut c.rounds, mode, batch, Duration::ZERO).unwrap();
                assert!(run.decided >= batch, "{mode:?} {batch}: {run:?}");
                assert_eq!(run.stalls, 0, "{mode:?} {batch}: a round moved nothing");
                assert!(run.writes > 0, "{mode:?} {batch}: {run:?}");
            }
        }
    }

    /// The floor's store holds what was decided, and the trims the driver asked for
    /// reached every replica: each log holds less than a trim interval.
    #[test]
    fn the_floor_stores_every_entry_and_trims_every_replica() {
        let parent = tempfile::tempdir().unwrap();
        let mut c = FloorCluster::new(BackendKind::Memory, None, parent.path(), 10).unwrap();
        let run = c.rounds.run(Mode::Upfront, 10_000, Duration::ZERO).unwrap();
        assert_eq!(run.decided, 10_000);
        // One more round delivers the last trim.
        c.rounds.round().unwrap();
        for node in c.rounds.nodes() {
            let s = &node.log.storage;
            let compacted = s.get_compacted_idx().unwrap();
            assert_eq!(compacted + s.get_log_len().unwrap(), node.log.end());
            assert!(node.log.end() >= 10_001, "{}", node.log.end());
            assert!(compacted > 10_001 - 4096, "{compacted}");
        }
    }
}
