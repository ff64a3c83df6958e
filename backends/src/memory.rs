//! The memory backend: the whole state in process memory, lost when it is dropped.
//!
//! Atomicity: a batch is validated with [`LogBounds::validate_batch`] before any op is
//! applied, and applying a valid op cannot fail, so a refused batch leaves no trace.

use paxstore::{Ballot, Entry, LogBounds, StopSign, Storage, StorageOp, StorageResult};

/// A volatile [`Storage`]: fast, exact, and empty again after a restart.
#[derive(Clone, Debug)]
pub struct MemoryStorage<T: Entry> {
    /// The entries at absolute indices `[compacted_idx, compacted_idx + log.len())`.
    log: Vec<T>,
    compacted_idx: usize,
    decided_idx: usize,
    promise: Option<Ballot>,
    accepted_round: Option<Ballot>,
    stopsign: Option<StopSign>,
    snapshot: Option<T::Snapshot>,
}

impl<T: Entry> Default for MemoryStorage<T> {
    fn default() -> Self {
        MemoryStorage {
            log: Vec::new(),
            compacted_idx: 0,
            decided_idx: 0,
            promise: None,
            accepted_round: None,
            stopsign: None,
            snapshot: None,
        }
    }
}

impl<T: Entry> MemoryStorage<T> {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }

    fn bounds(&self) -> LogBounds {
        LogBounds {
            compacted_idx: self.compacted_idx,
            log_end: self.compacted_idx + self.log.len(),
            decided_idx: self.decided_idx,
            has_stopsign: self.stopsign.is_some(),
        }
    }

    /// Drops the entries below absolute index `idx`; if `idx` is past the end, the log
    /// becomes empty and starts at `idx`. The caller has validated `idx`.
    fn compact_to(&mut self, idx: usize) {
        let drop = (idx - self.compacted_idx).min(self.log.len());
        self.log.drain(..drop);
        self.compacted_idx = idx;
    }

    /// Applies one op that [`LogBounds::apply`] accepted.
    fn apply(&mut self, op: StorageOp<T>) {
        match op {
            StorageOp::AppendEntry(entry) => self.log.push(entry),
            StorageOp::AppendEntries(mut entries) => self.log.append(&mut entries),
            StorageOp::AppendOnPrefix(from_idx, mut entries) => {
                self.log.truncate(from_idx - self.compacted_idx);
                self.log.append(&mut entries);
            }
            StorageOp::SetPromise(ballot) => self.promise = Some(ballot),
            StorageOp::SetDecidedIndex(idx) => self.decided_idx = idx,
            StorageOp::SetAcceptedRound(ballot) => self.accepted_round = Some(ballot),
            StorageOp::SetCompactedIdx(idx) | StorageOp::Trim(idx) => self.compact_to(idx),
            StorageOp::SetStopsign(stopsign) => self.stopsign = stopsign,
            StorageOp::SetSnapshot(snapshot) => self.snapshot = snapshot,
        }
    }
}

impl<T: Entry> Storage<T> for MemoryStorage<T> {
    fn write_atomically(&mut self, ops: Vec<StorageOp<T>>) -> StorageResult<()> {
        self.bounds().validate_batch(&ops)?;
        for op in ops {
            self.apply(op);
        }
        Ok(())
    }

    fn get_entries(&self, from: usize, to: usize) -> StorageResult<Vec<T>> {
        self.bounds().check_range("get_entries", from, to)?;
        Ok(self.log[from - self.compacted_idx..to - self.compacted_idx].to_vec())
    }

    fn get_suffix(&self, from: usize) -> StorageResult<Vec<T>> {
        let bounds = self.bounds();
        bounds.check_range("get_suffix", from, bounds.log_end)?;
        Ok(self.log[from - self.compacted_idx..].to_vec())
    }

    fn get_log_len(&self) -> StorageResult<usize> {
        Ok(self.log.len())
    }

    fn get_decided_idx(&self) -> StorageResult<usize> {
        Ok(self.decided_idx)
    }

    fn get_promise(&self) -> StorageResult<Option<Ballot>> {
        Ok(self.promise)
    }

    fn get_accepted_round(&self) -> StorageResult<Option<Ballot>> {
        Ok(self.accepted_round)
    }

    fn get_compacted_idx(&self) -> StorageResult<usize> {
        Ok(self.compacted_idx)
    }

    fn get_stopsign(&self) -> StorageResult<Option<StopSign>> {
        Ok(self.stopsign.clone())
    }

    fn get_snapshot(&self) -> StorageResult<Option<T::Snapshot>> {
        Ok(self.snapshot.clone())
    }
}
