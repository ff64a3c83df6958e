//! [`OmniStorage`]: OmniPaxos' `Storage` trait over any paxstore backend.

use omnipaxos::ballot_leader_election::Ballot as OpBallot;
use omnipaxos::storage::{
    StopSign as OpStopSign, Storage as OpStorage, StorageOp as OpOp, StorageResult as OpResult,
};
use paxstore::{LogBounds, Storage, StorageError, StorageResult};

use crate::convert::{ballot_to_omnipaxos, stopsign_to_omnipaxos, OmniEntry, OmniPaxosEntry};
use crate::normalize::{normalize, Rule};
use crate::OmniStorageError;

/// An OmniPaxos storage (`omnipaxos::storage::Storage<T>`) kept in a paxstore backend `S`.
///
/// Every OmniPaxos write (`write_atomically` or a single-op setter) is **one**
/// [`Storage::write_atomically`] of `S`, with the batch normalised by the
/// [`Rule`]s, so it is all or nothing with `S`'s durability. Reads follow
/// OmniPaxos' contract: a range that is not wholly stored reads as an empty `Vec`. An
/// error is an [`OmniStorageError`] (boxed); OmniPaxos 0.2.4 panics on any storage error,
/// so this adapter accepts every batch it writes in a correct run, and refuses, with
/// nothing written, one that would corrupt the log.
///
/// `S` is any paxstore backend: `OmniStorage<WalStorage<OmniEntry<T>>>`,
/// `OmniStorage<Box<dyn Storage<OmniEntry<T>>>>` for a backend chosen at run time, or a
/// user's own. The adapter caches the log's bounds, so it must be the only writer of `S`
/// while it holds it.
#[derive(Debug)]
pub struct OmniStorage<S> {
    inner: S,
    /// The bounds of `inner`, read at [`OmniStorage::new`] and moved by each write.
    bounds: LogBounds,
    applied: [u64; Rule::ALL.len()],
}

impl<S> OmniStorage<S> {
    /// Wraps `inner`, reading its bounds.
    pub fn new<T>(inner: S) -> StorageResult<Self>
    where
        S: Storage<OmniEntry<T>>,
        T: OmniPaxosEntry,
    {
        let compacted_idx = inner.get_compacted_idx()?;
        let bounds = LogBounds {
            compacted_idx,
            log_end: compacted_idx + inner.get_log_len()?,
            decided_idx: inner.get_decided_idx()?,
            has_stopsign: inner.get_stopsign()?.is_some(),
        };
        Ok(OmniStorage { inner, bounds, applied: [0; Rule::ALL.len()] })
    }

    /// The paxstore backend (for reads; writes go through OmniPaxos).
    pub fn inner(&self) -> &S {
        &self.inner
    }

    /// The paxstore backend, given back.
    pub fn into_inner(self) -> S {
        self.inner
    }

    /// How many OmniPaxos ops `rule` has rewritten since [`OmniStorage::new`].
    pub fn times_applied(&self, rule: Rule) -> u64 {
        self.applied[rule_slot(rule)]
    }

    /// Normalises `ops` and writes them as one paxstore batch.
    fn write<T>(&mut self, ops: Vec<OpOp<T>>) -> Result<(), OmniStorageError>
    where
        S: Storage<OmniEntry<T>>,
        T: OmniPaxosEntry,
    {
        let batch = normalize(self.bounds, ops)?;
        let at_origin = |err: StorageError| match err {
            StorageError::InvalidOp { position, reason } => StorageError::InvalidOp {
                position: batch.origin.get(position).copied().unwrap_or(position),
                reason,
            },
            err => err,
        };
        let after = self.bounds.validate_batch(&batch.ops).map_err(at_origin)?.after;
        self.inner.write_atomically(batch.ops).map_err(at_origin)?;
        self.bounds = after;
        for (rule, _) in &batch.applied {
            self.applied[rule_slot(*rule)] += 1;
        }
        Ok(())
    }
}

fn rule_slot(rule: Rule) -> usize {
    match rule {
        Rule::TrimThenCompact => 0,
        Rule::EmptySuffixAtEnd => 1,
        Rule::DecidedLast => 2,
        Rule::StopsignCountedTwice => 3,
    }
}

fn boxed<V>(result: Result<V, impl Into<OmniStorageError>>) -> OpResult<V> {
    result.map_err(|err| Box::new(err.into()) as Box<dyn std::error::Error>)
}

/// Entries read, or `[]` if the range is not wholly stored (OmniPaxos' contract).
fn entries_or_empty<T>(read: StorageResult<Vec<OmniEntry<T>>>) -> OpResult<Vec<T>> {
    match read {
        Ok(entries) => Ok(entries.into_iter().map(|e| e.0).collect()),
        Err(StorageError::InvalidRange { .. }) => Ok(Vec::new()),
        Err(err) => boxed(Err(err)),
    }
}

impl<T, S> OpStorage<T> for OmniStorage<S>
where
    T: OmniPaxosEntry,
    S: Storage<OmniEntry<T>>,
{
    fn write_atomically(&mut self, ops: Vec<OpOp<T>>) -> OpResult<()> {
        boxed(self.write(ops))
    }

    fn append_entry(&mut self, entry: T) -> OpResult<()> {
        boxed(self.write(vec![OpOp::AppendEntry(entry)]))
    }

    fn append_entries(&mut self, entries: Vec<T>) -> OpResult<()> {
        boxed(self.write(vec![OpOp::AppendEntries(entries)]))
    }

    fn append_on_prefix(&mut self, from_idx: usize, entries: Vec<T>) -> OpResult<()> {
        boxed(self.write(vec![OpOp::AppendOnPrefix(from_idx, entries)]))
    }

    fn set_promise(&mut self, n_prom: OpBallot) -> OpResult<()> {
        boxed(self.write::<T>(vec![OpOp::SetPromise(n_prom)]))
    }

    fn set_decided_idx(&mut self, ld: usize) -> OpResult<()> {
        boxed(self.write::<T>(vec![OpOp::SetDecidedIndex(ld)]))
    }

    fn get_decided_idx(&self) -> OpResult<usize> {
        boxed(self.inner.get_decided_idx())
    }

    fn set_accepted_round(&mut self, na: OpBallot) -> OpResult<()> {
        boxed(self.write::<T>(vec![OpOp::SetAcceptedRound(na)]))
    }

    fn get_accepted_round(&self) -> OpResult<Option<OpBallot>> {
        boxed(self.inner.get_accepted_round().map(|b| b.map(ballot_to_omnipaxos)))
    }

    fn get_entries(&self, from: usize, to: usize) -> OpResult<Vec<T>> {
        entries_or_empty(self.inner.get_entries(from, to))
    }

    fn get_log_len(&self) -> OpResult<usize> {
        boxed(self.inner.get_log_len())
    }

    fn get_suffix(&self, from: usize) -> OpResult<Vec<T>> {
        entries_or_empty(self.inner.get_suffix(from))
    }

    fn get_promise(&self) -> OpResult<Option<OpBallot>> {
        boxed(self.inner.get_promise().map(|b| b.map(ballot_to_omnipaxos)))
    }

    fn set_stopsign(&mut self, s: Option<OpStopSign>) -> OpResult<()> {
        boxed(self.write::<T>(vec![OpOp::SetStopsign(s)]))
    }

    fn get_stopsign(&self) -> OpResult<Option<OpStopSign>> {
        let stopsign = boxed(self.inner.get_stopsign())?;
        boxed(stopsign.map(stopsign_to_omnipaxos).transpose())
    }

    fn trim(&mut self, idx: usize) -> OpResult<()> {
        boxed(self.write::<T>(vec![OpOp::Trim(idx)]))
    }

    fn set_compacted_idx(&mut self, idx: usize) -> OpResult<()> {
        boxed(self.write::<T>(vec![OpOp::SetCompactedIdx(idx)]))
    }

    fn get_compacted_idx(&self) -> OpResult<usize> {
        boxed(self.inner.get_compacted_idx())
    }

    fn set_snapshot(&mut self, snapshot: Option<T::Snapshot>) -> OpResult<()> {
        boxed(self.write::<T>(vec![OpOp::SetSnapshot(snapshot)]))
    }

    fn get_snapshot(&self) -> OpResult<Option<T::Snapshot>> {
        boxed(self.inner.get_snapshot().map(|s| s.map(|s| s.0)))
    }
}
