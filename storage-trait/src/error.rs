//! The one error type of the storage contract.

use std::io;
use std::path::PathBuf;

/// The result of every storage call.
pub type StorageResult<T> = Result<T, StorageError>;

/// Why a storage call failed. A failed `write_atomically` changed nothing.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StorageError {
    /// The operating system refused an I/O call (a full disk shows up here as
    /// [`io::ErrorKind::StorageFull`]).
    #[error("I/O error while {context}: {source}")]
    Io {
        /// What the backend was doing, e.g. `"syncing segment 00000003.wal"`.
        context: String,
        /// The OS error.
        #[source]
        source: io::Error,
    },
    /// Stored bytes fail their checks.
    #[error("corrupt data at {location}: {detail}")]
    Corruption {
        /// Where: a file and byte offset, or a key.
        location: String,
        /// What check failed.
        detail: String,
    },
    /// An entry, snapshot or metadata value could not be encoded or decoded.
    #[error("cannot encode or decode {what}: {detail}")]
    Codec {
        /// The kind of value, e.g. `"entry"`.
        what: &'static str,
        /// The codec's message.
        detail: String,
    },
    /// An op of a `write_atomically` batch is invalid for the state it would apply to;
    /// the whole batch was refused.
    #[error("op #{position} of the batch is invalid: {reason}")]
    InvalidOp {
        /// The op's position in the batch, from 0.
        position: usize,
        /// What was wrong, with the bounds it broke.
        reason: InvalidOp,
    },
    /// A getter was asked for indices outside the stored log `[compacted_idx, log_end)`.
    #[error(
        "{getter}({from}, {to}) is outside the stored log [{compacted_idx}, {log_end}) or is reversed"
    )]
    InvalidRange {
        /// The getter called, e.g. `"get_entries"`.
        getter: &'static str,
        /// The absolute start asked for.
        from: usize,
        /// The absolute end (exclusive) asked for.
        to: usize,
        /// The first index still stored.
        compacted_idx: usize,
        /// One past the last index stored.
        log_end: usize,
    },
    /// A value is larger than the backend can store.
    #[error("{what} of {bytes} bytes exceeds the limit of {limit} bytes")]
    TooLarge {
        /// The kind of value, e.g. `"entry"` or `"batch"`.
        what: &'static str,
        /// Its encoded size.
        bytes: u64,
        /// The most the backend accepts.
        limit: u64,
    },
    /// The path holds something this backend did not write (another backend's files,
    /// foreign bytes, a file where a directory belongs). Nothing was changed.
    #[error("{path} does not hold a {backend} store: {detail}")]
    Unrecognized {
        /// The path opened.
        path: PathBuf,
        /// The backend that tried to open it.
        backend: &'static str,
        /// What was found instead.
        detail: String,
    },
    /// An earlier failure left the backend unable to tell what is durable; drop it and
    /// open the path again to recover from what is on disk.
    #[error("backend must be reopened after an earlier failure: {reason}")]
    Poisoned {
        /// The earlier failure.
        reason: String,
    },
    /// A failure particular to one backend's engine.
    #[error("{backend}: {detail}")]
    Backend {
        /// The backend, e.g. `"rocksdb"`.
        backend: &'static str,
        /// The engine's message.
        detail: String,
    },
}

impl StorageError {
    /// An [`StorageError::Io`] with the context it happened in.
    pub fn io(context: impl Into<String>, source: io::Error) -> Self {
        StorageError::Io { context: context.into(), source }
    }

    /// The reason, if this is an [`StorageError::InvalidOp`].
    pub fn invalid_op(&self) -> Option<&InvalidOp> {
        match self {
            StorageError::InvalidOp { reason, .. } => Some(reason),
            _ => None,
        }
    }
}

/// Why one op of a batch is invalid. Each names the op and the bounds it broke.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum InvalidOp {
    /// `AppendOnPrefix` would leave a gap after the log.
    #[error("AppendOnPrefix at {from_idx} but the log ends at {log_end}")]
    AppendOnPrefixPastEnd {
        /// The index given.
        from_idx: usize,
        /// One past the last stored index.
        log_end: usize,
    },
    /// `AppendOnPrefix` would rewrite compacted entries.
    #[error("AppendOnPrefix at {from_idx} but the log starts at {compacted_idx}")]
    AppendOnPrefixBelowCompacted {
        /// The index given.
        from_idx: usize,
        /// The first stored index.
        compacted_idx: usize,
    },
    /// `AppendOnPrefix` would rewrite decided entries, which are immutable.
    #[error("AppendOnPrefix at {from_idx} would overwrite decided entries below {decided_idx}")]
    AppendOnPrefixOverwritesDecided {
        /// The index given.
        from_idx: usize,
        /// The decided index.
        decided_idx: usize,
    },
    /// `Trim` past the end of the log.
    #[error("Trim to {idx} but the log ends at {log_end}")]
    TrimPastEnd {
        /// The index given.
        idx: usize,
        /// One past the last stored index.
        log_end: usize,
    },
    /// `Trim` below what is already compacted.
    #[error("Trim to {idx} but the log already starts at {compacted_idx}")]
    TrimBelowCompacted {
        /// The index given.
        idx: usize,
        /// The first stored index.
        compacted_idx: usize,
    },
    /// `SetDecidedIndex` past the end of the log (and not the one index past it that
    /// decides a stored stop sign).
    #[error(
        "SetDecidedIndex to {idx} but the log ends at {log_end} (only {log_end} + 1 is allowed \
         past the end, and only while a stop sign is set: it decides the stop sign)"
    )]
    DecidedPastEnd {
        /// The index given.
        idx: usize,
        /// One past the last stored index.
        log_end: usize,
    },
    /// `SetCompactedIdx` below what is already compacted.
    #[error("SetCompactedIdx to {idx} but the log already starts at {compacted_idx}")]
    CompactedBackwards {
        /// The index given.
        idx: usize,
        /// The first stored index.
        compacted_idx: usize,
    },
    /// An append while the stop sign is decided: the log is closed.
    #[error(
        "{op} at {log_end}, but the stop sign decided at index {log_end} closed the log \
         (decided_idx = {log_end} + 1)"
    )]
    AppendAfterDecidedStopsign {
        /// The op: `"AppendEntry"` or `"AppendEntries"`.
        op: &'static str,
        /// One past the last stored index, where the decided stop sign sits.
        log_end: usize,
    },
    /// `SetCompactedIdx` past the end of the log while the stop sign is decided.
    #[error(
        "SetCompactedIdx to {idx} past the log end {log_end}, but the stop sign decided at \
         index {log_end} closed the log (decided_idx = {log_end} + 1)"
    )]
    CompactedPastDecidedStopsign {
        /// The index given.
        idx: usize,
        /// One past the last stored index, where the decided stop sign sits.
        log_end: usize,
    },
    /// `SetStopsign(None)` while the stop sign is decided.
    #[error(
        "SetStopsign(None) but the stop sign is decided (decided_idx {decided_idx} = log end \
         {log_end} + 1); move the decided index back first"
    )]
    ClearDecidedStopsign {
        /// The decided index, `log_end + 1`.
        decided_idx: usize,
        /// One past the last stored index.
        log_end: usize,
    },
}
