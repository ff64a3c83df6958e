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
    #[error("cannot encode or decode {what}: {source}")]
    Codec {
        /// The kind of value, e.g. `"entry"`.
        what: &'static str,
        /// The codec's error (e.g. `postcard::Error`), or a message made into one with
        /// `.into()` when the check is paxstore's own (a wrong length).
        #[source]
        source: BoxError,
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
    #[error("backend must be reopened after an earlier failure: {cause}")]
    Poisoned {
        /// A copy of the earlier failure ([`StorageError::poisoned_by`]).
        #[source]
        cause: Box<StorageError>,
    },
    /// Another handle, in this process or another, has the store open: a store takes
    /// one writer at a time. Nothing was changed.
    #[error("{path} is locked: another {backend} handle has the store open")]
    Locked {
        /// The path opened.
        path: PathBuf,
        /// The backend that tried to open it.
        backend: &'static str,
    },
    /// The options a store was opened with are invalid; nothing was opened or created.
    #[error("invalid {backend} options: {detail}")]
    InvalidConfig {
        /// The backend, e.g. `"wal"`.
        backend: &'static str,
        /// Which option, its value and the allowed range.
        detail: String,
    },
    /// A call into one backend's engine failed; its own error is the source.
    #[error("{backend}: {context}: {source}")]
    Engine {
        /// The backend, e.g. `"rocksdb"`.
        backend: &'static str,
        /// What the backend was doing, e.g. `"writing a batch"`.
        context: String,
        /// The engine's error (`rocksdb::Error`, `redb::CommitError`, ...).
        #[source]
        source: BoxError,
    },
    /// A failure particular to one backend that has no error value of its own (a panic
    /// caught in the engine, a broken internal invariant).
    #[error("{backend}: {detail}")]
    Backend {
        /// The backend, e.g. `"rocksdb"`.
        backend: &'static str,
        /// What went wrong.
        detail: String,
    },
}

/// The boxed error a [`StorageError`] keeps as its source.
pub type BoxError = Box<dyn std::error::Error + Send + Sync + 'static>;

impl StorageError {
    /// An [`StorageError::Io`] with the context it happened in.
    pub fn io(context: impl Into<String>, source: io::Error) -> Self {
        StorageError::Io { context: context.into(), source }
    }

    /// A [`StorageError::Engine`]: `context` says what the backend was doing.
    pub fn engine(
        backend: &'static str,
        context: impl Into<String>,
        source: impl Into<BoxError>,
    ) -> Self {
        StorageError::Engine { backend, context: context.into(), source: source.into() }
    }

    /// A [`StorageError::Codec`] for a value of kind `what`.
    pub fn codec(what: &'static str, source: impl Into<BoxError>) -> Self {
        StorageError::Codec { what, source: source.into() }
    }

    /// The [`StorageError::Poisoned`] a backend returns after `cause` poisoned it: its
    /// source is a copy of `cause` (same variant and fields; an I/O error keeps its
    /// [`io::ErrorKind`] and message, a boxed source its message), so every later call
    /// can say what happened. A `cause` that is itself `Poisoned` is copied, not nested, so
    /// a backend may keep the `Poisoned` error and hand out `poisoned_by(&kept)`.
    pub fn poisoned_by(cause: &StorageError) -> Self {
        match cause {
            StorageError::Poisoned { .. } => cause.copy(),
            _ => StorageError::Poisoned { cause: Box::new(cause.copy()) },
        }
    }

    /// A copy of this error; boxed sources, which cannot be cloned, keep their message.
    fn copy(&self) -> StorageError {
        let message = |source: &BoxError| -> BoxError { source.to_string().into() };
        match self {
            StorageError::Io { context, source } => StorageError::Io {
                context: context.clone(),
                source: io::Error::new(source.kind(), source.to_string()),
            },
            StorageError::Corruption { location, detail } => {
                StorageError::Corruption { location: location.clone(), detail: detail.clone() }
            }
            StorageError::Codec { what, source } => {
                StorageError::Codec { what, source: message(source) }
            }
            StorageError::InvalidOp { position, reason } => {
                StorageError::InvalidOp { position: *position, reason: *reason }
            }
            StorageError::InvalidRange { getter, from, to, compacted_idx, log_end } => {
                StorageError::InvalidRange {
                    getter,
                    from: *from,
                    to: *to,
                    compacted_idx: *compacted_idx,
                    log_end: *log_end,
                }
            }
            StorageError::TooLarge { what, bytes, limit } => {
                StorageError::TooLarge { what, bytes: *bytes, limit: *limit }
            }
            StorageError::Unrecognized { path, backend, detail } => {
                StorageError::Unrecognized { path: path.clone(), backend, detail: detail.clone() }
            }
            StorageError::Poisoned { cause } => {
                StorageError::Poisoned { cause: Box::new(cause.copy()) }
            }
            StorageError::Locked { path, backend } => {
                StorageError::Locked { path: path.clone(), backend }
            }
            StorageError::InvalidConfig { backend, detail } => {
                StorageError::InvalidConfig { backend, detail: detail.clone() }
            }
            StorageError::Engine { backend, context, source } => {
                StorageError::Engine { backend, context: context.clone(), source: message(source) }
            }
            StorageError::Backend { backend, detail } => {
                StorageError::Backend { backend, detail: detail.clone() }
            }
        }
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
    /// An append whose entries would end the log past `usize::MAX`, the largest index
    /// a log end can hold.
    #[error(
        "{op} of {entries} entries at {from} would end the log past the largest index, \
         usize::MAX = {}",
        usize::MAX
    )]
    IndexOverflow {
        /// The op: `"AppendEntry"`, `"AppendEntries"` or `"AppendOnPrefix"`.
        op: &'static str,
        /// The index its first entry would take.
        from: usize,
        /// The number of entries it appends.
        entries: usize,
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

#[cfg(test)]
mod tests {
    use std::error::Error as _;

    use super::*;

    #[test]
    fn poisoned_keeps_its_cause_with_the_io_kind() {
        let cause = StorageError::io("syncing 1.wal", io::Error::from(io::ErrorKind::StorageFull));
        let poisoned = StorageError::poisoned_by(&cause);
        assert_eq!(poisoned.source().map(|s| s.to_string()), Some(cause.to_string()));
        match &poisoned {
            StorageError::Poisoned { cause } => match &**cause {
                StorageError::Io { source, context } => {
                    assert_eq!(source.kind(), io::ErrorKind::StorageFull);
                    assert_eq!(context, "syncing 1.wal");
                }
                other => panic!("expected the I/O cause, got {other:?}"),
            },
            other => panic!("expected Poisoned, got {other:?}"),
        }
        // Kept and handed out again, it does not nest.
        let again = StorageError::poisoned_by(&poisoned);
        assert_eq!(again.to_string(), poisoned.to_string());
    }

    #[test]
    fn engine_and_codec_errors_keep_their_source() {
        let engine = StorageError::engine("wal", "opening", io::Error::other("boom"));
        let source = engine.source().and_then(|s| s.downcast_ref::<io::Error>());
        assert_eq!(source.map(|e| e.to_string()), Some("boom".to_owned()));
        let codec = StorageError::codec("entry", "3 trailing bytes");
        assert_eq!(codec.source().map(|s| s.to_string()), Some("3 trailing bytes".to_owned()));
    }
}
