//! The log over a sorted key-value store, written once: [`KvStorage`] runs on any
//! [`KvEngine`], and each engine module (`rocksdb`, `sled`, `redb`, `fjall`,
//! `raft_engine`) is an adapter that says only what is particular to its engine.
//!
//! | file | job |
//! |---|---|
//! | `engine.rs` | [`KvEngine`] (the calls the core needs), [`KvBatch`], [`MetaKey`] |
//! | `storage.rs` | [`KvStorage`]: open sequence, batch staging, poisoning, getters |
//! | `flat.rs` | the single-keyspace key layout shared by RocksDB, sled and fjall |
//! | `dir.rs` | looking at a store directory before the engine touches it; syncing paths |
//!
//! # What is stored
//!
//! Every engine stores the same values; only the keys they sit under are the engine's
//! ([`flat`] for one sorted keyspace, two tables for redb):
//!
//! | value | encoding |
//! |---|---|
//! | the entry at absolute index `i` (key sorts by `i`: big-endian `u64`) | [`crate::codec`] (postcard) |
//! | [`MetaKey::Format`] | `b"paxstore-<engine>/2"` |
//! | [`MetaKey::Compacted`], [`MetaKey::LogEnd`], [`MetaKey::Decided`] | `u64` little-endian; absent = 0 |
//! | [`MetaKey::Promise`], [`MetaKey::Accepted`] | [`crate::codec::ballot_to_bytes`], 20 bytes; absent = `None` |
//! | [`MetaKey::Stopsign`], [`MetaKey::Snapshot`] | codec; absent = `None` |
//!
//! Invariant: entry keys exist exactly for `[compacted_idx, log_end)`. `decided` is
//! `log_end + 1` when the stop sign is decided.
//!
//! # Atomicity
//!
//! `write_atomically` validates the whole batch with [`paxstore::LogBounds::validate_batch`]
//! (a batch with an invalid op is refused before anything is written), stages the net
//! effect it returns, a [`paxstore::BatchPlan`], into one [`KvBatch`] (range deletes of
//! the stored entries it removes, a put per entry it writes, the metadata it changes) and
//! hands that to [`KvEngine::commit`] once. The cached bounds and ballots change only after `commit`
//! returned `Ok`; a failed commit poisons the store (every later call returns
//! [`paxstore::StorageError::Poisoned`]) because the engine may have written part of
//! the way: a reopen recovers what is durable.
//!
//! # Opening
//!
//! 1. [`KvEngine::inspect`] looks at the directory before the engine touches it: absent
//!    or empty is a new store; the engine's own files are an existing one; anything
//!    else is [`paxstore::StorageError::Unrecognized`], and nothing is created or removed.
//! 2. [`KvEngine::open`] opens (or creates) the engine's database.
//! 3. The format marker: `paxstore-<engine>/2` is ours; `paxstore-<engine>/1` (layout 1,
//!    which never holds a decided stop sign) is upgraded by rewriting the marker, synced,
//!    before anything else, so an older paxstore refuses the store by its marker; any
//!    other marker, or none in an existing database, is `Unrecognized`. A new store gets
//!    the marker in a synced commit, then its directory and the parent are synced.
//! 4. The metadata is loaded and the bounds checked
//!    ([`paxstore::LogBounds::is_consistent`]), and the first and last stored entry keys
//!    must be `compacted_idx` and `log_end - 1`: otherwise
//!    [`paxstore::StorageError::Corruption`].
//!
//! # Adding an engine
//!
//! Another sorted key-value engine (LMDB via `heed`, ...) is one file of this crate,
//! about the size of `rocksdb.rs` (`fjall.rs` took 18 minutes this way):
//!
//! 1. Cargo: an optional dependency and a feature `name = ["dep:engine", "kv"]`; add the
//!    feature to `all`, a variant to [`crate::BackendKind`] and its name to
//!    `ALL_BACKEND_NAMES`.
//! 2. `src/<name>.rs`: `pub struct <Name>Engine` holding the engine's handle, and
//!    `pub type <Name>Storage<T> = KvStorage<<Name>Engine, T>;`.
//! 3. `impl KvEngine for <Name>Engine`:
//!    - `NAME`: the backend's name (also its format marker `paxstore-<name>/2`).
//!    - `inspect`: `kv::store_dir_names` (`None`: `Fresh`); the engine's tell-tale file
//!      (RocksDB's `CURRENT`, redb's `paxstore.redb`) is `Existing`; anything else is
//!      `kv::foreign_dir`. If the engine rewrites files it cannot parse instead of
//!      refusing them (sled), use `kv::write_marker_file` and `kv::check_marker_file`.
//!    - `open`: open the database; map its errors to `StorageError::Io` (I/O) or
//!      `StorageError::engine` (the engine's error as the source, with what was being
//!      done); a store another handle holds is `StorageError::Locked`.
//!    - the layout: with one sorted keyspace, use [`flat`] (`entry_key`, `meta_key`,
//!      `ENTRIES_END`); with tables or partitions, one for entries (big-endian `u64`
//!      keys) and one for metadata ([`MetaKey::name`]).
//!    - `get_meta`, `entry_span` (first and last entry key), `scan_entries` (one
//!      forward range read).
//!    - `commit`: translate each [`KvOp`] into the engine's atomic batch or transaction
//!      (a `DeleteEntries` range may be one range delete, or one delete per index: every
//!      index in it is stored) and apply it once. `sync = true` must survive power loss;
//!      `sync = false` must survive a process crash. Say in the module docs which calls
//!      give each, and what the engine's own docs promise.
//! 4. Tests: `tests/<name>.rs` runs `paxstore_conformance::storage_suite!` in both
//!    durability modes (copy `tests/redb.rs`), and add the name to the lists in
//!    `tests/open_errors.rs`. The suite, the crash checks and the open-error checks then
//!    hold the new engine to the same contract as the others.

mod dir;
mod engine;
pub mod flat;
mod storage;

// Each engine uses some of these helpers: a build with only some engines leaves the
// others' unused, a build with all of them (clippy runs with --all-features) still
// reports any that no engine uses.
#[cfg_attr(
    not(all(
        feature = "fjall",
        feature = "raft-engine",
        feature = "redb",
        feature = "rocksdb",
        feature = "sled"
    )),
    allow(unused_imports)
)]
pub(crate) use dir::{
    check_marker_file, foreign_dir, store_dir_names, sync_new_files, sync_path, unrecognized,
    write_marker_file,
};
pub use engine::{DirState, EntryVisitor, KvBatch, KvEngine, KvOp, MetaKey};
pub use storage::KvStorage;
