//! What one index of the log reads as.

use paxstore::{Entry, StopSign};

/// One index of the log as a replica sees it, as in the OmniPaxos model.
#[derive(Clone, Debug)]
pub enum LogEntry<T: Entry> {
    /// A decided entry: every replica that decides this index decides this entry.
    Decided(T),
    /// An accepted entry that this replica does not know to be decided.
    Undecided(T),
    /// The index was trimmed away; entries below `0` (the first stored index) are gone.
    Trimmed(usize),
    /// The index is covered by the snapshot.
    Snapshotted(SnapshottedEntry<T>),
    /// The stop sign that ends this configuration, and whether it is decided.
    StopSign(StopSign, bool),
}

/// A read of an index that the snapshot covers.
#[derive(Clone, Debug)]
pub struct SnapshottedEntry<T: Entry> {
    /// The snapshot covers every index below this one.
    pub trimmed_idx: usize,
    /// The snapshot.
    pub snapshot: T::Snapshot,
}

impl<T: Entry + PartialEq> PartialEq for LogEntry<T>
where
    T::Snapshot: PartialEq,
{
    fn eq(&self, other: &Self) -> bool {
        match (self, other) {
            (LogEntry::Decided(a), LogEntry::Decided(b)) => a == b,
            (LogEntry::Undecided(a), LogEntry::Undecided(b)) => a == b,
            (LogEntry::Trimmed(a), LogEntry::Trimmed(b)) => a == b,
            (LogEntry::Snapshotted(a), LogEntry::Snapshotted(b)) => {
                a.trimmed_idx == b.trimmed_idx && a.snapshot == b.snapshot
            }
            (LogEntry::StopSign(a, x), LogEntry::StopSign(b, y)) => a == b && x == y,
            _ => false,
        }
    }
}
