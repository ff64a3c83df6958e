//! The `Storage` trait: one atomic mutator and the getters.

use std::fmt;
use std::str::FromStr;

use crate::{Ballot, Entry, StopSign, StorageError, StorageOp, StorageResult};

/// When a successful `write_atomically` is durable.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum Durability {
    /// When `write_atomically` returns `Ok`, the batch survives power loss
    /// (the backend has synced it: fdatasync, `msync(MS_SYNC)`, a synced log write).
    #[default]
    Immediate,
    /// When `write_atomically` returns `Ok`, the batch is handed to the operating system:
    /// it survives a crash of the process, not a power loss.
    Buffered,
}

impl Durability {
    /// The lower-case name used on command lines and in reports.
    pub fn as_str(self) -> &'static str {
        match self {
            Durability::Immediate => "immediate",
            Durability::Buffered => "buffered",
        }
    }
}

impl fmt::Display for Durability {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The error of parsing a [`Durability`] from a string.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("unknown durability {0:?}: expected \"immediate\" or \"buffered\"")]
pub struct ParseDurabilityError(pub String);

impl FromStr for Durability {
    type Err = ParseDurabilityError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.to_ascii_lowercase().as_str() {
            "immediate" => Ok(Durability::Immediate),
            "buffered" => Ok(Durability::Buffered),
            _ => Err(ParseDurabilityError(s.to_owned())),
        }
    }
}

/// Stable storage for one replica of a Sequence-Paxos log.
///
/// See the [crate docs](crate) for the state every call is defined on and the table of
/// each op's and getter's effect and errors. Indices are absolute.
///
/// A backend implements [`write_atomically`](Storage::write_atomically) and the getters;
/// the single-op setters are provided over `write_atomically`, so every mutation goes
/// through the one atomic path.
pub trait Storage<T: Entry> {
    /// Applies `ops` in order, all or nothing.
    ///
    /// Each op is checked against the state left by the ops before it. If any op is
    /// invalid, `Err` is returned and no op of the batch has taken effect, in memory or on
    /// disk. If the backend fails (an I/O error), `Err` is returned and no op has taken
    /// effect in what this instance shows; on disk the batch is then as after a crash
    /// during the call (a failed `fsync` may come after the bytes reached the file): a
    /// reopen finds it wholly present or wholly absent, never torn. With
    /// [`Durability::Immediate`], `Ok` means the batch survives power loss; after a crash
    /// during the call, the batch is either wholly present or wholly absent.
    fn write_atomically(&mut self, ops: Vec<StorageOp<T>>) -> StorageResult<()>;

    /// [`write_atomically`](Storage::write_atomically) of the ops in `ops`, which is left
    /// empty whatever the result: the same write, from a buffer the caller keeps, so a
    /// caller that writes batch after batch (a replica writes at every step) need not
    /// allocate one for each. A backend that can apply the ops without owning the vector
    /// keeps its capacity for the caller; the provided method takes the vector (leaving it
    /// with no capacity) and calls `write_atomically`, so a backend that does not override
    /// it has one mutator only.
    fn write_atomically_from(&mut self, ops: &mut Vec<StorageOp<T>>) -> StorageResult<()> {
        self.write_atomically(std::mem::take(ops))
    }

    /// Makes every batch that `write_atomically` acknowledged survive power loss, as
    /// [`Durability::Immediate`] promises for each batch: a [`Durability::Buffered`] store
    /// syncs what it holds (RocksDB's `FlushWAL(sync)`, an `fdatasync` of the log files).
    /// Changes nothing any getter shows. On `Err` nothing is known to be durable beyond
    /// what the mode promised; a backend that cannot tell what reached the disk poisons
    /// itself ([`StorageError::Poisoned`]).
    ///
    /// The provided default does nothing and returns `Ok`: right for a backend whose every
    /// acknowledged batch already survives power loss (every mode is `Immediate`, or the
    /// store is volatile and promises nothing). A backend with a buffered mode overrides it.
    fn flush(&mut self) -> StorageResult<()> {
        Ok(())
    }

    /// The entries at absolute indices `[from, to)`.
    /// `Err(InvalidRange)` unless `compacted_idx <= from <= to <= compacted_idx + log_len`.
    fn get_entries(&self, from: usize, to: usize) -> StorageResult<Vec<T>>;

    /// The number of entries stored, `log_len`: the log holds absolute indices
    /// `[compacted_idx, compacted_idx + log_len)`.
    fn get_log_len(&self) -> StorageResult<usize>;

    /// The decided index: entries below it are decided; `log_end + 1` when the stored
    /// stop sign is decided.
    fn get_decided_idx(&self) -> StorageResult<usize>;

    /// The highest ballot promised, `None` until one is set.
    fn get_promise(&self) -> StorageResult<Option<Ballot>>;

    /// The round of the entries held, `None` until one is set.
    fn get_accepted_round(&self) -> StorageResult<Option<Ballot>>;

    /// The first stored index; entries below it were trimmed or compacted.
    fn get_compacted_idx(&self) -> StorageResult<usize>;

    /// The stop sign, if one is set.
    fn get_stopsign(&self) -> StorageResult<Option<StopSign>>;

    /// The snapshot, if one is set.
    fn get_snapshot(&self) -> StorageResult<Option<T::Snapshot>>;

    /// The entries from absolute index `from` to the end of the log.
    /// `Err(InvalidRange)` unless `compacted_idx <= from <= compacted_idx + log_len`.
    fn get_suffix(&self, from: usize) -> StorageResult<Vec<T>> {
        let compacted_idx = self.get_compacted_idx()?;
        let log_end = self.get_log_end()?;
        if from < compacted_idx || from > log_end {
            return Err(StorageError::InvalidRange {
                getter: "get_suffix",
                from,
                to: log_end,
                compacted_idx,
                log_end,
            });
        }
        self.get_entries(from, log_end)
    }

    /// One past the last stored index: `compacted_idx + log_len`.
    /// `Err(Corruption)` if the backend reports a sum past `usize::MAX`, which no valid
    /// batch can leave.
    fn get_log_end(&self) -> StorageResult<usize> {
        let (compacted_idx, log_len) = (self.get_compacted_idx()?, self.get_log_len()?);
        compacted_idx.checked_add(log_len).ok_or_else(|| StorageError::Corruption {
            location: "get_compacted_idx() + get_log_len()".to_owned(),
            detail: format!(
                "the log starts at {compacted_idx} and holds {log_len} entries: it would end \
                 past usize::MAX"
            ),
        })
    }

    /// `write_atomically(vec![AppendEntry(entry)])`.
    fn append_entry(&mut self, entry: T) -> StorageResult<()> {
        self.write_atomically(vec![StorageOp::AppendEntry(entry)])
    }

    /// `write_atomically(vec![AppendEntries(entries)])`.
    fn append_entries(&mut self, entries: Vec<T>) -> StorageResult<()> {
        self.write_atomically(vec![StorageOp::AppendEntries(entries)])
    }

    /// `write_atomically(vec![AppendOnPrefix(from_idx, entries)])`.
    fn append_on_prefix(&mut self, from_idx: usize, entries: Vec<T>) -> StorageResult<()> {
        self.write_atomically(vec![StorageOp::AppendOnPrefix(from_idx, entries)])
    }

    /// `write_atomically(vec![SetPromise(ballot)])`.
    fn set_promise(&mut self, ballot: Ballot) -> StorageResult<()> {
        self.write_atomically(vec![StorageOp::SetPromise(ballot)])
    }

    /// `write_atomically(vec![SetDecidedIndex(idx)])`.
    fn set_decided_idx(&mut self, idx: usize) -> StorageResult<()> {
        self.write_atomically(vec![StorageOp::SetDecidedIndex(idx)])
    }

    /// `write_atomically(vec![SetAcceptedRound(ballot)])`.
    fn set_accepted_round(&mut self, ballot: Ballot) -> StorageResult<()> {
        self.write_atomically(vec![StorageOp::SetAcceptedRound(ballot)])
    }

    /// `write_atomically(vec![SetCompactedIdx(idx)])`.
    fn set_compacted_idx(&mut self, idx: usize) -> StorageResult<()> {
        self.write_atomically(vec![StorageOp::SetCompactedIdx(idx)])
    }

    /// `write_atomically(vec![Trim(idx)])`.
    fn trim(&mut self, idx: usize) -> StorageResult<()> {
        self.write_atomically(vec![StorageOp::Trim(idx)])
    }

    /// `write_atomically(vec![SetStopsign(stopsign)])`.
    fn set_stopsign(&mut self, stopsign: Option<StopSign>) -> StorageResult<()> {
        self.write_atomically(vec![StorageOp::SetStopsign(stopsign)])
    }

    /// `write_atomically(vec![SetSnapshot(snapshot)])`.
    fn set_snapshot(&mut self, snapshot: Option<T::Snapshot>) -> StorageResult<()> {
        self.write_atomically(vec![StorageOp::SetSnapshot(snapshot)])
    }
}

/// A boxed storage is a storage, so code can choose a backend at run time.
impl<T: Entry, S: Storage<T> + ?Sized> Storage<T> for Box<S> {
    fn write_atomically(&mut self, ops: Vec<StorageOp<T>>) -> StorageResult<()> {
        (**self).write_atomically(ops)
    }
    fn write_atomically_from(&mut self, ops: &mut Vec<StorageOp<T>>) -> StorageResult<()> {
        (**self).write_atomically_from(ops)
    }
    fn flush(&mut self) -> StorageResult<()> {
        (**self).flush()
    }
    fn get_entries(&self, from: usize, to: usize) -> StorageResult<Vec<T>> {
        (**self).get_entries(from, to)
    }
    fn get_suffix(&self, from: usize) -> StorageResult<Vec<T>> {
        (**self).get_suffix(from)
    }
    fn get_log_len(&self) -> StorageResult<usize> {
        (**self).get_log_len()
    }
    fn get_decided_idx(&self) -> StorageResult<usize> {
        (**self).get_decided_idx()
    }
    fn get_promise(&self) -> StorageResult<Option<Ballot>> {
        (**self).get_promise()
    }
    fn get_accepted_round(&self) -> StorageResult<Option<Ballot>> {
        (**self).get_accepted_round()
    }
    fn get_compacted_idx(&self) -> StorageResult<usize> {
        (**self).get_compacted_idx()
    }
    fn get_stopsign(&self) -> StorageResult<Option<StopSign>> {
        (**self).get_stopsign()
    }
    fn get_snapshot(&self) -> StorageResult<Option<T::Snapshot>> {
        (**self).get_snapshot()
    }
}
