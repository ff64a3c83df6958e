//! # paxstore-backends: storage engines for the paxstore contract
//!
//! Every backend implements [`paxstore::Storage`] and passes the `paxstore-conformance`
//! suite. Choose one by feature flag:
//!
//! | feature | module | engine | `Immediate` / `Buffered` (see each module's docs) |
//! |---|---|---|---|
//! | (always) | [`memory`] | process memory; volatile | — |
//! | `rocksdb` | `rocksdb` | RocksDB, one `WriteBatch` per batch | synced WAL write / WAL written, not synced |
//! | `sled` | `sled` | sled 0.34, one `Batch` per batch | `flush` + this backend's fdatasync of sled's files / `flush` only |
//! | `redb` | `redb` | redb 4, one write transaction per batch | `Immediate` commit / the same (redb has no process-crash-safe cheaper mode) |
//! | `fjall` | `fjall` | fjall 3, one `WriteBatch` per batch | `PersistMode::SyncData` / `PersistMode::Buffer` |
//! | `raft-engine` | `raft_engine` | TiKV's raft-engine 0.4, one Raft group, one `LogBatch` per batch | `write(batch, true)` (fdatasync) / `write(batch, false)` |
//! | `wal` | `wal` | paxstore's own memory-mapped write-ahead log | see its module docs |
//! | `all` | | every one of the above | |
//! | `fault-injection` | `wal` | test tooling, not for production: `wal::FaultIo`, `wal::Fault`, `wal::WriteEvent`, `wal::format` | |
//!
//! RocksDB, sled, redb, fjall and raft-engine are thin adapters (`kv::KvEngine`) under one log over a
//! sorted key-value store, `kv::KvStorage`: the key layout, the open sequence, batch
//! staging and poisoning are written once in `kv`, whose docs also say how to add an
//! engine. The module map:
//!
//! | module | job |
//! |---|---|
//! | [`memory`] | the volatile backend |
//! | `kv` | the log over a sorted key-value store: engine trait, core, key layout, directory checks |
//! | `rocksdb`, `sled`, `redb`, `fjall` | one engine adapter each: open quirks, reads, the atomic and durable commit |
//! | `raft_engine` | the adapter for raft-engine, a Raft log engine rather than a sorted store: how the log maps onto one Raft group |
//! | `wal` | paxstore's own write-ahead log |
//! | `codec` | how values are encoded on disk (postcard; fixed-width ballots and indices) |
//! | [`kind`] | [`BackendKind`]: every compiled-in backend by name |
//!
//! # Under power loss and failed writes
//!
//! What each engine did under the suite's crash-filesystem cases
//! (`power_loss_keeps_acknowledged_batches`, `failed_write_changes_nothing`; the WAL's
//! figures are in its module docs).
//!
//! **RocksDB**
//!
//! - **Power loss, `Immediate`**: no acknowledged batch lost in 20 power cuts of every
//!   kind (468 acknowledged batches; `PAXSTORE_POWER_CUTS=20`).
//! - **Power loss, `Buffered`**: opens after every cut with a prefix of whole batches;
//!   609 of 643 acknowledged batches were lost in 20 cuts, as `Buffered` allows.
//! - **Failed writes**: `EIO` or `ENOSPC` at a batch's WAL write or fsync makes
//!   `write_atomically` return `Err` with the getters unchanged; the instance is then
//!   **poisoned** ([`StorageError::Poisoned`](paxstore::StorageError::Poisoned) until
//!   reopened), as RocksDB itself stops writing after a background error. When the
//!   failing call is the WAL's `fdatasync`, the record is already in the live WAL file
//!   and a reopen (without a power cut) replays the batch whole (2 of 6 runs), as after
//!   a crash during the call. A failed call that
//!   the kernel turns into a short write is completed by RocksDB's retry and the batch is
//!   acknowledged; the suite then cuts the power and finds it (2 of 6 runs).
//!
//! **sled**
//!
//! - **Power loss, `Immediate`**: no acknowledged batch lost in 20 power cuts of every
//!   kind (497 acknowledged batches; `PAXSTORE_POWER_CUTS=20`): sled's flush plus this
//!   backend's fdatasync of the `db` file holds.
//! - **Power loss, `Buffered`**: opens after every cut with a prefix of whole batches;
//!   424 of 520 acknowledged batches were lost in 20 cuts, as `Buffered` allows.
//! - **Power loss, later runs: sled may not reopen.** In CI and in runs of 12 cuts since,
//!   a cut now and then (seen 3 times in about 10 runs, both modes) left files sled
//!   0.34.7 **panics on while opening** ("tried to serialize Uninitialized", in its
//!   snapshot writer, called from `Config::open`); the backend returns that as
//!   `StorageError::Backend`, but the store cannot be opened: nothing is lost on disk, yet
//!   nothing is readable through sled. So `power_loss_keeps_acknowledged_batches` is
//!   reported ignored for sled with that reason. Two defects of ours the same runs found
//!   are fixed: a new store's directory was not synced after sled created its `conf` and
//!   `db` (a cut lost one), and a reopen right after a cut could lose the race for sled's
//!   lock (it is now awaited again). **Do not use sled where power can fail.**
//! - **Failed writes: not survivable.** After `EIO` injected into one of a batch's I/O
//!   calls, sled deadlocks: the next call waits forever on sled's concurrency-control
//!   lock (seen with `write_atomically` blocked in `concurrency_control::write` and sled's
//!   log flusher blocked in `concurrency_control::read`). Earlier, sled was also seen
//!   panicking in its `Drop` after an I/O error. paxstore cannot repair this from
//!   outside the engine, so `failed_write_changes_nothing` is reported ignored for this
//!   backend with that reason (`backends/tests/sled.rs`): **do not run the sled backend
//!   where the disk can fail or fill up.**
//!
//! **redb**
//!
//! - **Power loss**: no acknowledged batch lost in 20 power cuts of every kind, in both
//!   modes (494 and 396 acknowledged batches; `PAXSTORE_POWER_CUTS=20`).
//! - **Failed writes**: every one of the 12 I/O calls of the suite's batch, failed with
//!   `EIO` or `ENOSPC`, makes `write_atomically` return `Err` with nothing changed in
//!   what the getters show. After such an error redb refuses every write until the
//!   database is reopened, so this backend **poisons** the instance on any engine error
//!   in a write: every later call returns
//!   [`StorageError::Poisoned`](paxstore::StorageError::Poisoned) until the store is
//!   dropped and opened again. When the failing call is the commit's last `fsync`, the
//!   batch's bytes are already in the file: a reopen (without a power cut) then finds the
//!   batch whole (2 of 24 runs), as after a crash during the call. Nothing acknowledged
//!   after it is affected (the instance is poisoned).
//!
//! **fjall**
//!
//! - **Power loss**: no acknowledged batch lost in 20 power cuts of every kind, in both
//!   modes (545 and 563 acknowledged batches; `PAXSTORE_POWER_CUTS=20`). With fjall's
//!   own `PersistMode::Buffer`, `Buffered` lost acknowledged batches as allowed, but one
//!   cut in 20 left a torn last journal batch that fjall then refused to open
//!   (`JournalRecovery(ChecksumMismatch)`), so `Buffered` syncs like `Immediate` (see
//!   the fjall module docs).
//! - **Failed writes**: `EIO` or `ENOSPC` at any of a batch's 6 I/O calls makes
//!   `write_atomically` return `Err` with the getters unchanged, and the instance is
//!   poisoned until reopened (8 of 12 runs); a reopen then finds the failed batch whole
//!   in 4 of them (its bytes reached the journal before the failing sync), as after a
//!   crash during the call. In the other 4 runs fjall completed the call (a short write
//!   retried) and acknowledged the batch, which then survived a power cut.
//!
//! **raft-engine**
//!
//! - **Power loss, `Immediate`**: no acknowledged batch lost in 20 power cuts of every
//!   kind (432 acknowledged batches; `PAXSTORE_POWER_CUTS=20`). With raft-engine's
//!   unsynced writes, `Buffered` once reopened in a state that was no prefix of its
//!   batches, so `Buffered` syncs like `Immediate` (see the raft-engine module docs).
//! - **Failed writes**: a failed `fdatasync` makes raft-engine panic; the backend
//!   returns it as [`StorageError::Backend`](paxstore::StorageError::Backend) and the
//!   instance is poisoned until reopened (3 of 6 runs; a reopen found the failed batch
//!   whole in 2 of them, as after a crash during the call). In the other 3 runs
//!   raft-engine completed the call and acknowledged the batch, which then survived a
//!   power cut. Dropping a store whose engine hit a failed sync panics again inside
//!   raft-engine as it closes its file; the engine is dropped on the store's reader
//!   thread, so the panic ends that thread only.

#![cfg_attr(docsrs, feature(doc_cfg))]

#[cfg(feature = "codec")]
pub mod codec;
#[cfg(feature = "fjall")]
#[cfg_attr(docsrs, doc(cfg(feature = "fjall")))]
pub mod fjall;
pub mod kind;
#[cfg(feature = "kv")]
#[cfg_attr(docsrs, doc(cfg(feature = "kv")))]
pub mod kv;
#[cfg(any(feature = "wal", feature = "sled", feature = "raft-engine"))]
mod lock;
pub mod memory;
#[cfg(feature = "raft-engine")]
#[cfg_attr(docsrs, doc(cfg(feature = "raft-engine")))]
pub mod raft_engine;
#[cfg(feature = "redb")]
#[cfg_attr(docsrs, doc(cfg(feature = "redb")))]
pub mod redb;
#[cfg(feature = "rocksdb")]
#[cfg_attr(docsrs, doc(cfg(feature = "rocksdb")))]
pub mod rocksdb;
#[cfg(feature = "sled")]
#[cfg_attr(docsrs, doc(cfg(feature = "sled")))]
pub mod sled;
#[cfg(feature = "wal")]
#[cfg_attr(docsrs, doc(cfg(feature = "wal")))]
pub mod wal;

pub use kind::{BackendKind, ParseBackendError};
pub use memory::MemoryStorage;
