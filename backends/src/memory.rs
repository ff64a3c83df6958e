//! The memory backend: the whole state in process memory, lost when it is dropped.
//!
//! Atomicity: a batch is validated with [`LogBounds::validate_batch`] before anything
//! changes, and applying the [`BatchPlan`] it returns cannot fail, so a refused batch
//! leaves no trace.
//!
//! The batches a replica writes at almost every step (entries appended at the end, the
//! decided index, a promise or an accepted round) take a shorter path, with the same
//! checks: each op is checked by [`LogBounds::apply`], the check `validate_batch` makes
//! of it, before any op takes effect, and such a batch's net effect needs no plan (its
//! entries follow the log in order, and each field takes the last value given).

use paxstore::{
    Ballot, BatchPlan, BatchValues, Entry, LogBounds, StopSign, Storage, StorageError, StorageOp,
    StorageResult,
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

    /// Writes any batch: validates it, then applies its plan.
    fn write_planned(&mut self, ops: Vec<StorageOp<T>>) -> StorageResult<()> {
        let plan = self.bounds().validate_batch(&ops)?;
        let values = plan.into_values(ops);
        self.apply(&plan, values);
        Ok(())
    }

    /// If every op of `ops` only appends at the end or sets a value the log's bounds do
    /// not depend on (no cut, trim, compaction, stop sign or snapshot), checks them and
    /// returns the bounds after them; `Ok(None)` for any other batch. An invalid op is
    /// refused with the error [`LogBounds::validate_batch`] gives.
    fn check_plain(&self, ops: &[StorageOp<T>]) -> StorageResult<Option<LogBounds>> {
        let mut after = self.bounds();
        for (position, op) in ops.iter().enumerate() {
            if !is_plain(op) {
                return Ok(None);
            }
            after.apply(op).map_err(|reason| StorageError::InvalidOp { position, reason })?;
        }
        Ok(Some(after))
    }

    /// Applies plain `ops` that [`check_plain`](Self::check_plain) accepted, leaving
    /// `after`. Nothing here can fail.
    fn apply_plain(&mut self, ops: impl Iterator<Item = StorageOp<T>>, after: LogBounds) {
        for op in ops {
            match op {
                StorageOp::AppendEntry(entry) => self.log.push(entry),
                StorageOp::AppendEntries(mut entries) => self.log.append(&mut entries),
                StorageOp::SetPromise(ballot) => self.promise = Some(ballot),
                StorageOp::SetAcceptedRound(ballot) => self.accepted_round = Some(ballot),
                _ => {}
            }
        }
        self.decided_idx = after.decided_idx;
    }
}

/// Whether `op` appends at the end of the log or sets a value no bound depends on.
fn is_plain<T: Entry>(op: &StorageOp<T>) -> bool {
    matches!(
        op,
        StorageOp::AppendEntry(_)
            | StorageOp::AppendEntries(_)
            | StorageOp::SetDecidedIndex(_)
            | StorageOp::SetPromise(_)
            | StorageOp::SetAcceptedRound(_)
    )
}

impl<T: Entry> Storage<T> for MemoryStorage<T> {
    // Not `write_atomically_from(&mut ops)`: applying by value from the vector handed over
    // is cheaper than draining it (about 55 instructions a write under callgrind).
    fn write_atomically(&mut self, ops: Vec<StorageOp<T>>) -> StorageResult<()> {
        match self.check_plain(&ops)? {
            Some(after) => {
                self.apply_plain(ops.into_iter(), after);
                Ok(())
            }
            None => self.write_planned(ops),
        }
    }

    /// Applies a plain batch from the caller's vector, which keeps its capacity; any other
    /// batch is taken and written as `write_atomically` writes it.
    fn write_atomically_from(&mut self, ops: &mut Vec<StorageOp<T>>) -> StorageResult<()> {
        match self.check_plain(ops) {
            Ok(Some(after)) => {
                self.apply_plain(ops.drain(..), after);
                Ok(())
            }
            Ok(None) => self.write_planned(std::mem::take(ops)),
            Err(err) => {
                ops.clear();
                Err(err)
            }
        }
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

#[cfg(test)]
mod tests {
    use paxstore::{Ballot, ClusterConfig, NoSnapshot, StopSign, Storage, StorageOp};
    use proptest::prelude::*;

    use super::MemoryStorage;

    #[derive(Clone, Debug, PartialEq)]
    struct E(u8);
    impl paxstore::Entry for E {
        type Snapshot = NoSnapshot;
    }

    /// An op of the short path: appends, decided indices (valid or not), ballots.
    fn plain_op() -> impl Strategy<Value = StorageOp<E>> {
        prop_oneof![
            any::<u8>().prop_map(|v| StorageOp::AppendEntry(E(v))),
            prop::collection::vec(any::<u8>().prop_map(E), 0..4).prop_map(StorageOp::AppendEntries),
            (0usize..12).prop_map(StorageOp::SetDecidedIndex),
            (0u32..3).prop_map(|n| StorageOp::SetPromise(Ballot::new(1, n, 0, 1))),
            (0u32..3).prop_map(|n| StorageOp::SetAcceptedRound(Ballot::new(1, n, 0, 1))),
        ]
    }

    /// Any op the short path takes, or now and then one it leaves to the plan (so a
    /// batch may start on the short path's checks and end on the plan).
    fn any_op() -> impl Strategy<Value = StorageOp<E>> {
        prop_oneof![
            6 => plain_op(),
            1 => (0usize..8).prop_map(StorageOp::Trim),
            1 => (0usize..8, prop::collection::vec(any::<u8>().prop_map(E), 0..3))
                .prop_map(|(at, es)| StorageOp::AppendOnPrefix(at, es)),
            1 => Just(StorageOp::SetStopsign(None)),
        ]
    }

    /// A state to start from, written through the general path: entries, maybe a
    /// compacted prefix, a stop sign (decided or not), or a log that ends at the top of
    /// the index range (so an append overflows).
    fn start() -> impl Strategy<Value = Vec<StorageOp<E>>> {
        (0usize..5, 0usize..3, 0u8..4).prop_map(|(len, trim, kind)| {
            let mut ops = vec![StorageOp::AppendEntries((0..len as u8).map(E).collect())];
            ops.push(StorageOp::Trim(trim.min(len)));
            let stopsign = StopSign { next_config: ClusterConfig::default(), metadata: None };
            match kind {
                1 => ops.push(StorageOp::SetStopsign(Some(stopsign))),
                2 => {
                    ops.push(StorageOp::SetStopsign(Some(stopsign)));
                    ops.push(StorageOp::SetDecidedIndex(len + 1));
                }
                3 => ops.push(StorageOp::SetCompactedIdx(usize::MAX - 1)),
                _ => {}
            }
            ops
        })
    }

    proptest! {
        /// The short path does exactly what the general one does: the same state after
        /// a valid batch, and the same error, with nothing changed, after an invalid one.
        #[test]
        fn the_short_path_writes_and_refuses_as_the_plan_does(
            setup in start(),
            batch in prop::collection::vec(any_op(), 0..5),
        ) {
            let mut short = MemoryStorage::<E>::new();
            short.write_planned(setup).unwrap();
            let mut planned = short.clone();
            let before = format!("{short:?}");
            let by_short = short.write_atomically(batch.clone()).map_err(|e| e.to_string());
            let by_plan = planned.write_planned(batch).map_err(|e| e.to_string());
            prop_assert_eq!(&by_short, &by_plan);
            prop_assert_eq!(format!("{short:?}"), format!("{planned:?}"));
            if by_short.is_err() {
                prop_assert_eq!(format!("{short:?}"), before, "a refused batch changed the store");
            }
        }
    }
}
