//! [`Tracked`]: the simulator's wrapper around a replica's storage, counting its writes so
//! the checker knows which decided index the last write carried.

use paxstore::{Ballot, Entry, StopSign, Storage, StorageOp, StorageResult};

/// A storage that counts its successful writes.
#[derive(Debug)]
pub struct Tracked<S> {
    inner: S,
    writes: u64,
}

impl<S> Tracked<S> {
    /// Wraps `inner`.
    pub fn new(inner: S) -> Self {
        Tracked { inner, writes: 0 }
    }

    /// Successful `write_atomically` calls so far.
    pub fn writes(&self) -> u64 {
        self.writes
    }

    /// The storage inside.
    pub fn into_inner(self) -> S {
        self.inner
    }
}

impl<T: Entry, S: Storage<T>> Storage<T> for Tracked<S> {
    fn write_atomically(&mut self, mut ops: Vec<StorageOp<T>>) -> StorageResult<()> {
        self.write_atomically_from(&mut ops)
    }
    fn write_atomically_from(&mut self, ops: &mut Vec<StorageOp<T>>) -> StorageResult<()> {
        self.inner.write_atomically_from(ops)?;
        self.writes += 1;
        Ok(())
    }
    fn get_entries(&self, from: usize, to: usize) -> StorageResult<Vec<T>> {
        self.inner.get_entries(from, to)
    }
    fn get_suffix(&self, from: usize) -> StorageResult<Vec<T>> {
        self.inner.get_suffix(from)
    }
    fn get_log_len(&self) -> StorageResult<usize> {
        self.inner.get_log_len()
    }
    fn get_decided_idx(&self) -> StorageResult<usize> {
        self.inner.get_decided_idx()
    }
    fn get_promise(&self) -> StorageResult<Option<Ballot>> {
        self.inner.get_promise()
    }
    fn get_accepted_round(&self) -> StorageResult<Option<Ballot>> {
        self.inner.get_accepted_round()
    }
    fn get_compacted_idx(&self) -> StorageResult<usize> {
        self.inner.get_compacted_idx()
    }
    fn get_stopsign(&self) -> StorageResult<Option<StopSign>> {
        self.inner.get_stopsign()
    }
    fn get_snapshot(&self) -> StorageResult<Option<T::Snapshot>> {
        self.inner.get_snapshot()
    }
}
