//! The memory backend: the whole state in process memory, lost when it is dropped.
//!
//! Atomicity: a batch is validated with [`LogBounds::validate_batch`] before anything
//! changes, and applying the [`BatchPlan`] it returns cannot fail, so a refused batch
//! leaves no trace.

use paxstore::{
    Ballot, BatchPlan, BatchValues, Entry, LogBounds, StopSign, Storage, StorageOp, StorageResult,
};

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

    /// Applies a plan [`LogBounds::validate_batch`] returned for this store, with the
    /// values of its batch.
    fn apply(&mut self, plan: &BatchPlan, values: BatchValues<T>) {
        let kept = plan.kept();
        self.log.truncate(kept.end - self.compacted_idx);
        self.log.drain(..kept.start - self.compacted_idx);
        self.log.extend(values.entries);
        self.compacted_idx = plan.after.compacted_idx;
        self.decided_idx = plan.after.decided_idx;
        self.promise = plan.promise.or(self.promise);
        self.accepted_round = plan.accepted_round.or(self.accepted_round);
        if let Some(stopsign) = values.stopsign {
            self.stopsign = stopsign;
        }
        if let Some(snapshot) = values.snapshot {
            self.snapshot = snapshot;
        }
    }
}

impl<T: Entry> Storage<T> for MemoryStorage<T> {
    fn write_atomically(&mut self, ops: Vec<StorageOp<T>>) -> StorageResult<()> {
        let plan = self.bounds().validate_batch(&ops)?;
        let values = plan.into_values(ops);
        self.apply(&plan, values);
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
