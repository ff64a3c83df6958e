//! [`KvEngine`]: the few calls the log core needs from a sorted key-value store, and the
//! engine-neutral [`KvBatch`] it hands to [`KvEngine::commit`].

use std::path::Path;

use paxstore::StorageResult;

/// Whether a store directory is ready for a new store or holds one.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DirState {
    /// Absent, empty, or left by a creation that crashed before the engine wrote
    /// anything: a new store is created.
    Fresh,
    /// Holds this engine's files: the store is opened and its format marker checked.
    Existing,
}

/// A metadata value of the log. Each engine stores it under a name of its layout
/// (`b"m:" ++ name` in the single keyspace of [`super::flat`], the key `name` in redb's
/// `meta` table).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum MetaKey {
    /// `b"paxstore-<engine>/2"`: marks the store as paxstore's, of this layout.
    Format,
    /// `compacted_idx`, `u64` little-endian.
    Compacted,
    /// `log_end = compacted_idx + log_len`, `u64` little-endian.
    LogEnd,
    /// `decided_idx`, `u64` little-endian; `log_end + 1` when the stop sign is decided.
    Decided,
    /// The promised ballot, 20 bytes ([`crate::codec::ballot_to_bytes`]).
    Promise,
    /// The accepted round, 20 bytes.
    Accepted,
    /// The stop sign, [`crate::codec`] (postcard).
    Stopsign,
    /// The snapshot, [`crate::codec`] (postcard).
    Snapshot,
}

impl MetaKey {
    /// Every metadata key.
    pub const ALL: [MetaKey; 8] = [
        MetaKey::Format,
        MetaKey::Compacted,
        MetaKey::LogEnd,
        MetaKey::Decided,
        MetaKey::Promise,
        MetaKey::Accepted,
        MetaKey::Stopsign,
        MetaKey::Snapshot,
    ];

    /// The name the engines store this value under.
    pub fn name(self) -> &'static str {
        match self {
            MetaKey::Format => "format",
            MetaKey::Compacted => "compacted",
            MetaKey::LogEnd => "log_end",
            MetaKey::Decided => "decided",
            MetaKey::Promise => "promise",
            MetaKey::Accepted => "accepted",
            MetaKey::Stopsign => "stopsign",
            MetaKey::Snapshot => "snapshot",
        }
    }
}

/// One write of a [`KvBatch`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum KvOp {
    /// Stores `value` as the entry at absolute index `idx`.
    PutEntry {
        /// The absolute index.
        idx: u64,
        /// The encoded entry.
        value: Vec<u8>,
    },
    /// Removes the entries at `[from, to)`. Every index of the range is stored (before the
    /// batch or by an earlier op of it), so an engine without a range delete may remove
    /// each key; `from < to` always.
    DeleteEntries {
        /// The first index removed.
        from: u64,
        /// One past the last index removed.
        to: u64,
    },
    /// Stores `value` under `key`.
    PutMeta {
        /// The metadata key.
        key: MetaKey,
        /// The encoded value.
        value: Vec<u8>,
    },
    /// Removes `key`.
    DeleteMeta(MetaKey),
}

/// The writes of one `write_atomically` batch, in order; an engine applies all of them
/// or none.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct KvBatch {
    ops: Vec<KvOp>,
}

impl KvBatch {
    /// The writes, in the order to apply them.
    pub fn ops(&self) -> &[KvOp] {
        &self.ops
    }

    pub(crate) fn push(&mut self, op: KvOp) {
        self.ops.push(op);
    }
}

/// What [`KvEngine::scan_entries`] calls with each entry: its index and its bytes.
pub type EntryVisitor<'a> = &'a mut dyn FnMut(u64, &[u8]) -> StorageResult<()>;

/// A sorted key-value store the log core ([`super::KvStorage`]) runs on. An
/// implementation says only what is particular to its engine: which files mark its
/// directory, how it opens, how it maps entries and metadata to its keys, and which calls
/// make a batch atomic and durable. See the [module docs](super) for how to add one.
pub trait KvEngine: Sized {
    /// The backend's name, in errors and in the format marker `paxstore-<NAME>/2`.
    const NAME: &'static str;

    /// Looks at directory `path` before the engine touches it, creating it if absent.
    /// Anything that is not this engine's store is [`paxstore::StorageError::Unrecognized`],
    /// and nothing in it is changed.
    fn inspect(path: &Path) -> StorageResult<DirState>;

    /// Opens the engine's database in `path` (`Fresh`: creates it, and syncs the files it
    /// created). The core then checks or writes the format marker.
    fn open(path: &Path, state: DirState) -> StorageResult<Self>;

    /// The value stored under `key`, if any.
    fn get_meta(&self, key: MetaKey) -> StorageResult<Option<Vec<u8>>>;

    /// The first and last stored entry index, `None` when no entry is stored.
    fn entry_span(&self) -> StorageResult<Option<(u64, u64)>>;

    /// Calls `visit` with each stored entry of `[from, to)`, in index order (`from < to`).
    fn scan_entries(&self, from: u64, to: u64, visit: EntryVisitor<'_>) -> StorageResult<()>;

    /// Applies `batch` atomically. On `Ok` the batch survives a process crash, and with
    /// `sync` also power loss. On `Err` the core poisons the store: what is durable is
    /// then known only after a reopen.
    fn commit(&mut self, batch: &KvBatch, sync: bool) -> StorageResult<()>;

    /// Makes every batch committed so far survive power loss (what `commit` with `sync`
    /// promises), for [`paxstore::Storage::flush`]. On `Err` the core poisons the store.
    fn flush(&mut self) -> StorageResult<()>;
}
