//! The JSON bodies of the client API.

use serde::{Deserialize, Serialize};

/// `PUT /v1/kv/{key}`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PutBody {
    /// The value to store.
    pub value: String,
}

/// `POST /v1/kv/{key}/cas`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CasBody {
    /// The value the key must hold; `null`: the key must be absent.
    pub expected: Option<String>,
    /// The value written if it does.
    pub new: String,
}

/// The answer to a get.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct GetAnswer {
    /// The value; `null` if the key is absent.
    pub value: Option<String>,
}

/// The answer to a put or delete.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct WriteAnswer {
    /// The value before; `null` if the key was absent.
    pub previous: Option<String>,
}

/// The answer to a compare-and-set.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CasAnswer {
    /// Whether the key held the expected value, and now holds the new one.
    pub ok: bool,
    /// The key's value after the operation.
    pub current: Option<String>,
}

/// What kind of failure an [`ErrorBody`] reports.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorKind {
    /// The request is malformed (`400`) or too large (`413`); nothing was done.
    BadRequest,
    /// The operation was not applied and will not be (`503`).
    Unavailable,
    /// The operation was sent to the log and may or may not take effect (`504`).
    Unknown,
    /// No such route (`404`).
    NotFound,
}

/// The leader a node knows of.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct LeaderHint {
    /// Its node id.
    pub id: u64,
    /// Its client API address, if this node knows it.
    pub api: Option<String>,
}

/// The body of every error answer.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorBody {
    /// What went wrong, in words.
    pub error: String,
    /// The kind, which says whether the operation may still take effect.
    pub kind: ErrorKind,
    /// The leader this node knows of, if any.
    pub leader: Option<LeaderHint>,
}

/// Why one operation failed inside the node.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum OpError {
    /// Not applied, and never will be.
    #[error("{0}")]
    Unavailable(String),
    /// Appended to the log; may or may not take effect.
    #[error("{0}")]
    Unknown(String),
}

/// `GET /v1/status`: what a node knows about itself and the cluster.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct NodeStatus {
    /// The node's id.
    pub id: u64,
    /// The leader as far as this node knows.
    pub leader: Option<u64>,
    /// Whether this node leads a round that completed its prepare phase.
    pub is_leader: bool,
    /// Entries below this index are decided.
    pub decided_idx: usize,
    /// Commands below this index are applied to the key-value state.
    pub applied_idx: usize,
    /// The log below this index is folded into the snapshot.
    pub compacted_idx: usize,
    /// One past the last entry held.
    pub log_end: usize,
    /// The round number this node promised.
    pub round: u32,
    /// Storage writes since the node started (one per replica step that changed something).
    pub storage_writes: u64,
    /// Syncs to the disk since the node started.
    pub storage_syncs: u64,
    /// Snapshots this node took since it started.
    pub snapshots: u64,
    /// Client operations waiting to be applied.
    pub waiting: usize,
    /// Frames to peers dropped because a peer's queue was full.
    pub peer_frames_dropped: u64,
    /// The storage backend.
    pub backend: String,
    /// Its durability.
    pub durability: String,
    /// Why the node stopped serving, if it did (a storage failure).
    pub stopped: Option<String>,
}

/// `GET /v1/debug/state`: a digest of the applied key-value state.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct StateDigest {
    /// The state is that of the log below this index.
    pub applied_idx: usize,
    /// FNV-1a over every key and value in key order.
    pub digest: u64,
    /// How many keys are present.
    pub keys: usize,
}

/// `GET /v1/debug/log-digest?from=A&to=B`: a digest of decided entries `[from, to)`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct LogDigest {
    /// The first index.
    pub from: usize,
    /// One past the last.
    pub to: usize,
    /// FNV-1a over the entries' postcard bytes, in order.
    pub digest: u64,
}
