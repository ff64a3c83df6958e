//! The replica's view of its storage: a cache of the durable state, and the changes the
//! current step has staged but not yet written.
//!
//! Invariants:
//! - `durable` equals what storage holds (except `stopsign_decided`, which storage has
//!   no field for; see the crate docs);
//! - `state` is `durable` with `ops` applied; reads go through the staged `tail`, so a
//!   step sees its own changes before they are written;
//! - [`Store::commit`] writes all of `ops` in one `write_atomically`; only after `Ok` does
//!   `durable` become `state`. On `Err`, `state` is re-read from storage.
//! - When a snapshot is held, it covers exactly the indices below `compacted_idx`.

use paxstore::{
    Ballot, Entry, Snapshot, StopSign, Storage, StorageError, StorageOp, StorageResult,
};

/// The cached durable state.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct LogState {
    pub(crate) promise: Ballot,
    pub(crate) accepted_round: Ballot,
    pub(crate) decided_idx: usize,
    pub(crate) compacted_idx: usize,
    pub(crate) log_end: usize,
    pub(crate) stopsign: Option<StopSign>,
    /// Volatile: the storage contract has no decided flag for the stop sign.
    pub(crate) stopsign_decided: bool,
    pub(crate) has_snapshot: bool,
}

impl LogState {
    fn load<T: Entry, S: Storage<T>>(storage: &S) -> StorageResult<Self> {
        let compacted_idx = storage.get_compacted_idx()?;
        Ok(LogState {
            promise: storage.get_promise()?.unwrap_or_default(),
            accepted_round: storage.get_accepted_round()?.unwrap_or_default(),
            decided_idx: storage.get_decided_idx()?,
            compacted_idx,
            log_end: compacted_idx + storage.get_log_len()?,
            stopsign: storage.get_stopsign()?,
            stopsign_decided: false,
            has_snapshot: storage.get_snapshot()?.is_some(),
        })
    }

    /// The log end counting the stop sign as one slot.
    pub(crate) fn logical_end(&self) -> usize {
        self.log_end + usize::from(self.stopsign.is_some())
    }

    /// The decided index counting a decided stop sign as one slot.
    pub(crate) fn logical_decided(&self) -> usize {
        self.decided_idx + usize::from(self.stopsign_decided && self.stopsign.is_some())
    }
}

/// Storage, its cache, and the staged changes of the current step.
pub(crate) struct Store<T: Entry, S: Storage<T>> {
    storage: S,
    durable: LogState,
    /// The state after the staged ops.
    pub(crate) state: LogState,
    ops: Vec<StorageOp<T>>,
    /// Staged entries: the log from this index on is these entries.
    tail: Option<(usize, Vec<T>)>,
    /// A staged snapshot.
    staged_snapshot: Option<T::Snapshot>,
}

impl<T: Entry, S: Storage<T>> Store<T, S> {
    /// Reads the state `storage` holds.
    pub(crate) fn open(storage: S) -> Result<Self, (S, StorageError)> {
        match LogState::load(&storage) {
            Ok(state) => Ok(Store {
                storage,
                durable: state.clone(),
                state,
                ops: Vec::new(),
                tail: None,
                staged_snapshot: None,
            }),
            Err(err) => Err((storage, err)),
        }
    }

    pub(crate) fn storage(&self) -> &S {
        &self.storage
    }

    pub(crate) fn into_storage(self) -> S {
        self.storage
    }

    pub(crate) fn has_staged(&self) -> bool {
        !self.ops.is_empty()
    }

    /// Writes every staged op in one `write_atomically`. On `Err`, nothing was written and
    /// the cache is re-read from storage.
    pub(crate) fn commit(&mut self) -> StorageResult<()> {
        if self.ops.is_empty() {
            self.durable.stopsign_decided = self.state.stopsign_decided;
            return Ok(());
        }
        let ops = std::mem::take(&mut self.ops);
        self.tail = None;
        self.staged_snapshot = None;
        match self.storage.write_atomically(ops) {
            Ok(()) => {
                self.durable = self.state.clone();
                Ok(())
            }
            Err(err) => {
                self.rollback();
                Err(err)
            }
        }
    }

    /// Drops the staged changes and re-reads the cache from storage (falling back to the
    /// last state known durable if storage cannot be read).
    pub(crate) fn rollback(&mut self) {
        self.ops.clear();
        self.tail = None;
        self.staged_snapshot = None;
        self.state = LogState::load(&self.storage).unwrap_or_else(|_| self.durable.clone());
        self.durable = self.state.clone();
    }

    // ---- staging ----

    pub(crate) fn set_promise(&mut self, n: Ballot) {
        if self.state.promise != n {
            self.ops.push(StorageOp::SetPromise(n));
            self.state.promise = n;
        }
    }

    pub(crate) fn set_accepted_round(&mut self, n: Ballot) {
        if self.state.accepted_round != n {
            self.ops.push(StorageOp::SetAcceptedRound(n));
            self.state.accepted_round = n;
        }
    }

    /// Raises the decided index to `idx` (entries), never past the log end.
    pub(crate) fn raise_decided(&mut self, idx: usize) {
        let idx = idx.min(self.state.log_end);
        if idx > self.state.decided_idx {
            self.ops.push(StorageOp::SetDecidedIndex(idx));
            self.state.decided_idx = idx;
        }
    }

    /// Raises the decided index to the logical index `idx` (the stop sign counts).
    pub(crate) fn raise_logical_decided(&mut self, idx: usize) {
        self.raise_decided(idx);
        if idx > self.state.log_end && self.state.stopsign.is_some() {
            self.state.stopsign_decided = true;
        }
    }

    pub(crate) fn set_stopsign(&mut self, stopsign: Option<StopSign>) {
        if self.state.stopsign != stopsign {
            self.ops.push(StorageOp::SetStopsign(stopsign.clone()));
            self.state.stopsign = stopsign;
            self.state.stopsign_decided = false;
        }
    }

    pub(crate) fn append(&mut self, entries: Vec<T>) {
        if entries.is_empty() {
            return;
        }
        let end = self.state.log_end;
        self.state.log_end += entries.len();
        match &mut self.tail {
            Some((_, staged)) => staged.extend(entries.iter().cloned()),
            None => self.tail = Some((end, entries.clone())),
        }
        self.ops.push(StorageOp::AppendEntries(entries));
    }

    /// Replaces the log from `idx` on with `entries`. The caller checked
    /// `max(compacted_idx, decided_idx) <= idx <= log_end`.
    pub(crate) fn append_on_prefix(&mut self, idx: usize, entries: Vec<T>) {
        if idx == self.state.log_end {
            return self.append(entries);
        }
        self.state.log_end = idx + entries.len();
        match &mut self.tail {
            Some((start, staged)) if idx >= *start => {
                staged.truncate(idx - *start);
                staged.extend(entries.iter().cloned());
            }
            _ => self.tail = Some((idx, entries.clone())),
        }
        self.ops.push(StorageOp::AppendOnPrefix(idx, entries));
    }

    /// Installs a complete snapshot of the entries below `idx` and starts the log at
    /// `idx` (keeping held entries from `idx` on). Entries below `idx` become decided.
    /// The caller checked `idx > max(compacted_idx, decided_idx)`.
    pub(crate) fn install_snapshot(&mut self, snapshot: T::Snapshot, idx: usize) {
        self.ops.push(StorageOp::SetSnapshot(Some(snapshot.clone())));
        self.ops.push(StorageOp::SetCompactedIdx(idx));
        self.staged_snapshot = Some(snapshot);
        self.state.has_snapshot = true;
        self.state.compacted_idx = idx;
        if idx > self.state.log_end {
            self.state.log_end = idx;
            self.tail = Some((idx, Vec::new()));
        }
        self.raise_decided(idx);
    }

    /// Drops the entries below `idx` without a snapshot. The caller checked
    /// `compacted_idx < idx <= decided_idx`.
    pub(crate) fn trim(&mut self, idx: usize) {
        self.ops.push(StorageOp::Trim(idx));
        self.state.compacted_idx = idx;
    }

    /// Folds the entries below `idx` into the snapshot and drops them. The caller checked
    /// `compacted_idx < idx <= decided_idx`.
    pub(crate) fn compact_into_snapshot(&mut self, idx: usize) -> StorageResult<()> {
        let delta = T::Snapshot::create(&self.entries(self.state.compacted_idx, idx)?);
        let snapshot = match self.snapshot()? {
            Some(mut snapshot) => {
                snapshot.merge(delta);
                snapshot
            }
            None => delta,
        };
        self.ops.push(StorageOp::SetSnapshot(Some(snapshot.clone())));
        self.ops.push(StorageOp::Trim(idx));
        self.staged_snapshot = Some(snapshot);
        self.state.has_snapshot = true;
        self.state.compacted_idx = idx;
        Ok(())
    }

    // ---- reads (through the staged changes) ----

    /// The entries at `[from, to)`, which must lie within `[compacted_idx, log_end]`.
    pub(crate) fn entries(&self, from: usize, to: usize) -> StorageResult<Vec<T>> {
        let (compacted_idx, log_end) = (self.state.compacted_idx, self.state.log_end);
        if !(compacted_idx <= from && from <= to && to <= log_end) {
            return Err(StorageError::InvalidRange {
                getter: "Replica::entries",
                from,
                to,
                compacted_idx,
                log_end,
            });
        }
        match &self.tail {
            None => self.storage.get_entries(from, to),
            Some((start, staged)) => {
                let mut out = if from < *start {
                    self.storage.get_entries(from, to.min(*start))?
                } else {
                    Vec::new()
                };
                if to > *start {
                    out.extend_from_slice(&staged[from.max(*start) - start..to - start]);
                }
                Ok(out)
            }
        }
    }

    /// The snapshot (covering every index below `compacted_idx`), if one is held.
    pub(crate) fn snapshot(&self) -> StorageResult<Option<T::Snapshot>> {
        match &self.staged_snapshot {
            Some(snapshot) => Ok(Some(snapshot.clone())),
            None if self.state.has_snapshot => self.storage.get_snapshot(),
            None => Ok(None),
        }
    }
}
