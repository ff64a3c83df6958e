//! The replica's view of its storage: a cache of the durable state, and the changes staged
//! since the last write.
//!
//! Invariants:
//! - `durable` equals what storage holds. Storage holds a decided stop sign as
//!   `decided_idx = log_end + 1` (the contract's rule); the cache keeps the decided index
//!   of the entries (at most `log_end`) and `stopsign_decided` apart;
//! - `state` is `durable` with the staged changes applied, and with the decided index the
//!   replica knows, which may be ahead of storage's (it is written with the next write,
//!   see [`Store::commit`]); reads go through the staged tail, so the replica sees its own
//!   changes before they are written;
//! - [`Store::commit`] writes every staged change in one `write_atomically`; only after
//!   `Ok` does `durable` become `state`. On `Err`, `state` is re-read from storage;
//! - the staged log entries are held once, in the tail: the log from `tail.start` on is
//!   `tail.entries`, written as one append (or append-on-prefix) op at its place among
//!   the staged ops, so entries are moved, never copied, on their way to storage;
//! - when a snapshot is held, it covers exactly the indices below `compacted_idx`.

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
    /// Whether the stop sign is decided (stored as `decided_idx = log_end + 1`).
    pub(crate) stopsign_decided: bool,
    pub(crate) has_snapshot: bool,
}

impl LogState {
    fn load<T: Entry, S: Storage<T>>(storage: &S) -> StorageResult<Self> {
        let compacted_idx = storage.get_compacted_idx()?;
        let log_end = storage.get_log_end()?;
        let stored_decided = storage.get_decided_idx()?;
        let stopsign = storage.get_stopsign()?;
        // The contract stores a decided stop sign as `decided_idx = log_end + 1`.
        let stopsign_decided = stopsign.is_some() && stored_decided > log_end;
        Ok(LogState {
            promise: storage.get_promise()?.unwrap_or_default(),
            accepted_round: storage.get_accepted_round()?.unwrap_or_default(),
            decided_idx: stored_decided.min(log_end),
            compacted_idx,
            log_end,
            stopsign,
            stopsign_decided,
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

/// The staged log entries: the log from `start` on is `entries`.
struct Tail<T> {
    /// Where among the staged ops the write of the tail goes.
    at: usize,
    /// The log end when the tail was started: the write appends if `start` equals it.
    base_end: usize,
    start: usize,
    entries: Vec<T>,
}

impl<T: Entry> Tail<T> {
    fn end(&self) -> usize {
        self.start + self.entries.len()
    }

    /// The op that writes the tail. A single appended entry is written as `AppendEntry`,
    /// and its emptied vector is left in `spare` for the next tail.
    fn into_op(mut self, spare: &mut Vec<T>) -> StorageOp<T> {
        if self.start != self.base_end {
            return StorageOp::AppendOnPrefix(self.start, self.entries);
        }
        if self.entries.len() == 1 {
            if let Some(entry) = self.entries.pop() {
                *spare = self.entries;
                return StorageOp::AppendEntry(entry);
            }
        }
        StorageOp::AppendEntries(self.entries)
    }
}

/// Storage, its cache, and the changes staged since the last write.
pub(crate) struct Store<T: Entry, S: Storage<T>> {
    storage: S,
    durable: LogState,
    /// The state after the staged changes.
    pub(crate) state: LogState,
    /// Staged ops other than the tail's write; the batch is built here and written from
    /// here, so its allocation serves every step.
    ops: Vec<StorageOp<T>>,
    tail: Option<Tail<T>>,
    /// An empty vector with capacity, handed to the caller of the next append that starts
    /// a tail in exchange for its entries (the tail of one entry leaves its vector here
    /// when it is written), so a leader appending one entry per step allocates none.
    spare: Vec<T>,
    /// A staged snapshot.
    staged_snapshot: Option<T::Snapshot>,
    /// Write the decided index with the next commit even if nothing else is staged.
    write_decided: bool,
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
                spare: Vec::new(),
                staged_snapshot: None,
                write_decided: false,
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

    /// What storage holds.
    pub(crate) fn durable(&self) -> &LogState {
        &self.durable
    }

    /// Whether the decided index (the stop sign counted) differs from what storage holds.
    pub(crate) fn decided_unwritten(&self) -> bool {
        self.state.logical_decided() != self.durable.logical_decided()
    }

    /// Whether a change is staged for the next [`commit`](Store::commit) (a decided index
    /// alone is not: it waits for a write).
    pub(crate) fn has_staged(&self) -> bool {
        !self.ops.is_empty() || self.tail.is_some() || self.write_decided
    }

    /// Writes every staged change in one `write_atomically`, with the decided index if
    /// anything is written (a decided index alone is not written: it can be learned
    /// again). Returns whether a write happened. On `Err`, nothing was written and the
    /// cache is re-read from storage.
    /// With `forget_decided_stopsign` (an injected bug only), a decided stop sign is
    /// written as accepted: the decided index of the entries alone.
    pub(crate) fn commit(&mut self, forget_decided_stopsign: bool) -> StorageResult<bool> {
        if forget_decided_stopsign {
            // The bug: storage is never told, and the cache pretends it was.
            self.durable.stopsign_decided = self.state.stopsign_decided;
        }
        if !self.has_staged() {
            return Ok(false);
        }
        if let Some(tail) = self.tail.take() {
            let at = tail.at;
            let op = tail.into_op(&mut self.spare);
            self.ops.insert(at, op);
        }
        if self.decided_unwritten() {
            // Last in the batch: a decided stop sign (`log_end + 1`) needs the stop sign
            // and the log end the ops before it leave.
            let decided = if forget_decided_stopsign {
                self.state.decided_idx
            } else {
                self.state.logical_decided()
            };
            self.ops.push(StorageOp::SetDecidedIndex(decided));
        }
        self.staged_snapshot = None;
        self.write_decided = false;
        let written = self.storage.write_atomically_from(&mut self.ops);
        // Left empty by the contract; a backend that broke it must not have its ops
        // written again with the next step's.
        self.ops.clear();
        match written {
            Ok(()) => {
                self.durable.clone_from(&self.state);
                Ok(true)
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
        self.write_decided = false;
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

    /// Stages a write of the promise `n` the state already holds (only under an injected
    /// bug that writes a promise late).
    pub(crate) fn write_promise_again(&mut self, n: Ballot) {
        self.ops.push(StorageOp::SetPromise(n));
    }

    pub(crate) fn set_accepted_round(&mut self, n: Ballot) {
        if self.state.accepted_round != n {
            self.ops.push(StorageOp::SetAcceptedRound(n));
            self.state.accepted_round = n;
        }
    }

    /// Raises the decided index to `idx` (entries), never past the log end. Written with
    /// the next write.
    pub(crate) fn raise_decided(&mut self, idx: usize) {
        let idx = idx.min(self.state.log_end);
        if idx > self.state.decided_idx {
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

    /// Makes the next commit write the decided index even if nothing else is staged.
    pub(crate) fn write_decided_index(&mut self) {
        self.write_decided |= self.decided_unwritten();
    }

    pub(crate) fn set_stopsign(&mut self, stopsign: Option<StopSign>) {
        if self.state.stopsign != stopsign {
            self.ops.push(StorageOp::SetStopsign(stopsign.clone()));
            self.state.stopsign = stopsign;
            self.state.stopsign_decided = false;
        }
    }

    /// Appends `entries` (moving them out of the vector).
    pub(crate) fn append(&mut self, entries: &mut Vec<T>) {
        let end = self.state.log_end;
        self.append_on_prefix(end, entries);
    }

    /// Replaces the log from `idx` on with `entries` (moving them out of the vector). The
    /// caller checked `max(compacted_idx, decided_idx) <= idx <= log_end`.
    pub(crate) fn append_on_prefix(&mut self, idx: usize, entries: &mut Vec<T>) {
        if idx == self.state.log_end && entries.is_empty() {
            return;
        }
        match &mut self.tail {
            Some(tail) if tail.start <= idx && idx <= tail.end() => {
                tail.entries.truncate(idx - tail.start);
                tail.entries.append(entries);
            }
            Some(tail) => {
                // Starts below the tail (the log end at the tail's place is at least
                // `tail.start`, so the write there stays valid).
                tail.start = idx;
                tail.entries.clear();
                tail.entries.append(entries);
            }
            None => {
                let mut staged = std::mem::take(&mut self.spare);
                std::mem::swap(&mut staged, entries);
                self.tail = Some(Tail {
                    at: self.ops.len(),
                    base_end: self.state.log_end,
                    start: idx,
                    entries: staged,
                });
            }
        }
        self.state.log_end = self.tail.as_ref().map_or(idx, Tail::end);
    }

    /// Installs a complete snapshot of the entries below `idx` and starts the log at
    /// `idx` (keeping held entries from `idx` on). Entries below `idx` become decided.
    /// The caller checked `idx > max(compacted_idx, decided_idx)`.
    pub(crate) fn install_snapshot(&mut self, snapshot: T::Snapshot, idx: usize) {
        if idx > self.state.log_end {
            // Every entry held, staged or not, is below `idx`: none survives.
            self.tail = None;
            self.state.log_end = idx;
        }
        self.ops.push(StorageOp::SetSnapshot(Some(snapshot.clone())));
        self.ops.push(StorageOp::SetCompactedIdx(idx));
        self.staged_snapshot = Some(snapshot);
        self.state.has_snapshot = true;
        self.state.compacted_idx = idx;
        // Written with the ops above, so storage never holds a compacted index above its
        // decided index.
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
        let mut out = Vec::new();
        self.entries_into(from, to, &mut out)?;
        Ok(out)
    }

    /// Appends the entries at `[from, to)` to `out`.
    pub(crate) fn entries_into(
        &self,
        from: usize,
        to: usize,
        out: &mut Vec<T>,
    ) -> StorageResult<()> {
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
        let staged_from = self.tail.as_ref().map_or(log_end, |t| t.start);
        if from < staged_from {
            out.extend(self.storage.get_entries(from, to.min(staged_from))?);
        }
        if let Some(tail) = &self.tail {
            if to > tail.start {
                out.extend_from_slice(
                    &tail.entries[from.max(tail.start) - tail.start..to - tail.start],
                );
            }
        }
        Ok(())
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

#[cfg(test)]
mod tests {
    use std::cell::RefCell;
    use std::rc::Rc;

    use paxstore::NoSnapshot;

    use super::*;

    #[derive(Clone, Debug, PartialEq)]
    struct E(u64);
    impl Entry for E {
        type Snapshot = NoSnapshot;
    }

    /// A storage that records the batches written to it.
    #[derive(Default)]
    struct Recorder {
        log: Vec<E>,
        decided: usize,
        batches: Batches,
    }

    impl Storage<E> for Recorder {
        fn write_atomically(&mut self, ops: Vec<StorageOp<E>>) -> StorageResult<()> {
            self.batches.borrow_mut().push(ops.iter().map(StorageOp::name).collect());
            for op in ops {
                match op {
                    StorageOp::AppendEntry(e) => self.log.push(e),
                    StorageOp::AppendEntries(mut es) => self.log.append(&mut es),
                    StorageOp::AppendOnPrefix(i, mut es) => {
                        self.log.truncate(i);
                        self.log.append(&mut es);
                    }
                    StorageOp::SetDecidedIndex(i) => self.decided = i,
                    _ => {}
                }
            }
            Ok(())
        }
        fn get_entries(&self, from: usize, to: usize) -> StorageResult<Vec<E>> {
            Ok(self.log[from..to].to_vec())
        }
        fn get_log_len(&self) -> StorageResult<usize> {
            Ok(self.log.len())
        }
        fn get_decided_idx(&self) -> StorageResult<usize> {
            Ok(self.decided)
        }
        fn get_promise(&self) -> StorageResult<Option<Ballot>> {
            Ok(None)
        }
        fn get_accepted_round(&self) -> StorageResult<Option<Ballot>> {
            Ok(None)
        }
        fn get_compacted_idx(&self) -> StorageResult<usize> {
            Ok(0)
        }
        fn get_stopsign(&self) -> StorageResult<Option<StopSign>> {
            Ok(None)
        }
        fn get_snapshot(&self) -> StorageResult<Option<NoSnapshot>> {
            Ok(None)
        }
    }

    /// The op names of every batch written.
    type Batches = Rc<RefCell<Vec<Vec<&'static str>>>>;

    fn store() -> (Store<E, Recorder>, Batches) {
        let recorder = Recorder::default();
        let batches = Rc::clone(&recorder.batches);
        (Store::open(recorder).map_err(|(_, e)| e).unwrap(), batches)
    }

    #[test]
    fn appends_of_one_step_are_one_op_and_readable_before_the_write() {
        let (mut s, batches) = store();
        s.set_promise(Ballot::new(1, 1, 0, 1));
        for i in 0..3 {
            s.append(&mut vec![E(i)]);
        }
        s.set_accepted_round(Ballot::new(1, 1, 0, 1));
        s.append_on_prefix(2, &mut vec![E(7), E(8)]);
        assert_eq!(s.entries(0, 4).unwrap(), vec![E(0), E(1), E(7), E(8)]);
        assert!(s.commit(false).unwrap());
        assert_eq!(
            *batches.borrow(),
            vec![vec!["SetPromise", "AppendEntries", "SetAcceptedRound"]]
        );
        assert_eq!(s.storage().log, vec![E(0), E(1), E(7), E(8)]);
    }

    #[test]
    fn a_decided_index_alone_is_not_written_but_goes_with_the_next_write() {
        let (mut s, batches) = store();
        s.append(&mut vec![E(0), E(1)]);
        assert!(s.commit(false).unwrap());
        s.raise_decided(2);
        assert!(!s.commit(false).unwrap(), "nothing but the decided index: no write");
        assert_eq!((s.state.decided_idx, s.durable().decided_idx), (2, 0));
        s.append(&mut vec![E(2)]);
        assert!(s.commit(false).unwrap());
        assert_eq!(batches.borrow()[1], vec!["AppendEntry", "SetDecidedIndex"]);
        assert_eq!(s.storage().decided, 2);
        s.raise_decided(3);
        s.write_decided_index();
        assert!(s.commit(false).unwrap(), "asked for: written alone");
        assert_eq!(s.storage().decided, 3);
    }

    /// A leader appending one entry per step: each is written as `AppendEntry`, and the
    /// vector it came in goes back to the next caller, so no step allocates one.
    #[test]
    fn one_entry_is_written_alone_and_its_vector_serves_the_next_append() {
        let (mut s, batches) = store();
        let mut pending = vec![E(0)];
        s.append(&mut pending);
        s.commit(false).unwrap();
        for i in 1..4 {
            pending.push(E(i));
            s.append(&mut pending);
            assert!(pending.is_empty() && pending.capacity() >= 1, "step {i}: {pending:?}");
            s.commit(false).unwrap();
        }
        s.append(&mut vec![E(4), E(5)]);
        s.commit(false).unwrap();
        let kinds: Vec<&str> = batches.borrow().iter().map(|b| b[0]).collect();
        assert_eq!(
            kinds,
            ["AppendEntry"; 4].into_iter().chain(["AppendEntries"]).collect::<Vec<_>>()
        );
        assert_eq!(s.storage().log, (0..6).map(E).collect::<Vec<_>>());
    }

    #[test]
    fn truncating_below_a_staged_tail_writes_one_append_on_prefix() {
        let (mut s, batches) = store();
        s.append(&mut vec![E(0), E(1), E(2)]);
        s.commit(false).unwrap();
        s.append(&mut vec![E(3)]);
        s.append_on_prefix(1, &mut vec![E(9)]);
        assert_eq!(s.entries(0, 2).unwrap(), vec![E(0), E(9)]);
        s.commit(false).unwrap();
        assert_eq!(batches.borrow()[1], vec!["AppendOnPrefix"]);
        assert_eq!(s.storage().log, vec![E(0), E(9)]);
    }

    fn stopsign() -> StopSign {
        StopSign { next_config: paxstore::ClusterConfig::default(), metadata: None }
    }

    /// Writes two entries, a stop sign and its decision, then reopens the storage.
    fn decide_stopsign_and_reopen(forget: bool) -> LogState {
        let storage = paxstore_backends::MemoryStorage::<E>::new();
        let mut s = Store::open(storage).map_err(|(_, e)| e).unwrap();
        s.append(&mut vec![E(0), E(1)]);
        s.set_stopsign(Some(stopsign()));
        s.raise_logical_decided(3);
        s.write_decided_index();
        assert!(s.commit(forget).unwrap());
        let storage = s.into_storage();
        let stored = storage.get_decided_idx().unwrap();
        assert_eq!(stored, if forget { 2 } else { 3 }, "storage's decided index");
        Store::open(storage).map_err(|(_, e)| e).unwrap().state
    }

    #[test]
    fn a_decided_stop_sign_is_stored_one_past_the_log_and_read_back_decided() {
        let state = decide_stopsign_and_reopen(false);
        assert!(state.stopsign_decided, "the decided stop sign survives a reopen");
        assert_eq!((state.decided_idx, state.logical_decided()), (2, 3));
        // The injected bug writes it as accepted only, and the reopened replica forgets.
        let state = decide_stopsign_and_reopen(true);
        assert!(!state.stopsign_decided);
        assert_eq!(state.logical_decided(), 2);
    }
}
