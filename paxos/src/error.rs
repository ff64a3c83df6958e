//! The one error type of the replica.

use std::sync::Arc;

use paxstore::StorageError;

/// Why a call on a [`Replica`](crate::Replica) failed.
///
/// A [`PaxosError::Storage`] is terminal: the replica rolled its in-memory state back to
/// what its storage holds and stopped; that call and every later one return the same
/// error. Build a new replica over the same storage to resume (fail-recovery). Every other
/// variant refuses one request and leaves the replica running.
#[derive(Clone, Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PaxosError {
    /// Storage failed while the replica was `context`; the replica stopped.
    #[error("storage failed while {context}; the replica stopped and must be rebuilt over its storage: {source}")]
    Storage {
        /// What the replica was doing, e.g. `"handling a message"`.
        context: &'static str,
        /// The storage error, shared by every later call's error.
        #[source]
        source: Arc<StorageError>,
    },
    /// The configuration holds a stop sign: it accepts no more entries or reconfigurations.
    #[error("the configuration is ending (stop sign {decided}); start a replica of the next configuration", decided = if *.decided { "decided" } else { "proposed" })]
    ConfigurationEnded {
        /// Whether the stop sign is already decided.
        decided: bool,
    },
    /// The request must be made on the leader, which is `leader` if one is known.
    #[error("only the leader can do this; the leader is {leader:?}")]
    NotLeader {
        /// The leader this replica knows of.
        leader: Option<u64>,
    },
    /// A compaction asked for entries that are not decided (everywhere, when it is not
    /// local-only) yet.
    #[error("cannot compact to {idx}: only entries below {decided} are decided {scope}")]
    NotDecided {
        /// The index asked for.
        idx: usize,
        /// The highest index below which the condition holds.
        decided: usize,
        /// `"here"` or `"on every replica"`.
        scope: &'static str,
    },
    /// A compaction asked for an index at or below the start of the log.
    #[error("cannot compact to {idx}: the log already starts at {compacted_idx}")]
    AlreadyCompacted {
        /// The index asked for.
        idx: usize,
        /// The first stored index.
        compacted_idx: usize,
    },
    /// The entry type's snapshot is [`paxstore::NoSnapshot`] (`use_snapshots()` is false).
    #[error("this entry type does not use snapshots")]
    SnapshotsNotSupported,
    /// A reconfiguration names a configuration that does not follow the current one.
    #[error("invalid reconfiguration: {0}")]
    InvalidReconfiguration(String),
    /// The replica's configuration is invalid.
    #[error("invalid replica configuration: {0}")]
    InvalidConfig(String),
}

impl PaxosError {
    /// The storage error, if the replica stopped because of one.
    pub fn storage_error(&self) -> Option<&StorageError> {
        match self {
            PaxosError::Storage { source, .. } => Some(source),
            _ => None,
        }
    }
}
