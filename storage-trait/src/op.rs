//! The operations a batch passed to [`Storage::write_atomically`](crate::Storage) is made of.

use crate::{Ballot, Entry, StopSign};

/// One change to the stored state. The set mirrors OmniPaxos 0.2.4, with absolute
/// indices and exact bounds (see the crate docs for each op's effect and errors).
#[derive(Clone, Debug)]
pub enum StorageOp<T: Entry> {
    /// Appends one entry at the end of the log.
    AppendEntry(T),
    /// Appends entries, in order, at the end of the log.
    AppendEntries(Vec<T>),
    /// Truncates the log at the absolute index and appends the entries from there.
    AppendOnPrefix(usize, Vec<T>),
    /// Stores the highest ballot promised.
    SetPromise(Ballot),
    /// Stores the absolute index up to which (exclusive) the log is decided.
    SetDecidedIndex(usize),
    /// Stores the ballot of the round whose entries the log holds.
    SetAcceptedRound(Ballot),
    /// Moves the start of the log to the absolute index, dropping the entries below it;
    /// unlike `Trim`, it may move past the end of the log (installing a snapshot).
    SetCompactedIdx(usize),
    /// Drops the entries below the absolute index, which must lie within the log.
    Trim(usize),
    /// Stores or clears the stop sign.
    SetStopsign(Option<StopSign>),
    /// Stores or clears the snapshot.
    SetSnapshot(Option<T::Snapshot>),
}

impl<T: Entry> StorageOp<T> {
    /// The op's name as written in the docs and in error messages, e.g. `"Trim"`.
    pub fn name(&self) -> &'static str {
        match self {
            StorageOp::AppendEntry(_) => "AppendEntry",
            StorageOp::AppendEntries(_) => "AppendEntries",
            StorageOp::AppendOnPrefix(..) => "AppendOnPrefix",
            StorageOp::SetPromise(_) => "SetPromise",
            StorageOp::SetDecidedIndex(_) => "SetDecidedIndex",
            StorageOp::SetAcceptedRound(_) => "SetAcceptedRound",
            StorageOp::SetCompactedIdx(_) => "SetCompactedIdx",
            StorageOp::Trim(_) => "Trim",
            StorageOp::SetStopsign(_) => "SetStopsign",
            StorageOp::SetSnapshot(_) => "SetSnapshot",
        }
    }
}
