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
//! | `wal` | `wal` | paxstore's own memory-mapped write-ahead log | see its module docs |
//! | `all` | | every one of the above | |
//! | `fault-injection` | `wal` | test tooling, not for production: `wal::FaultIo`, `wal::Fault`, `wal::WriteEvent`, `wal::format` | |
//!
//! RocksDB, sled and redb are thin adapters (`kv::KvEngine`) under one log over a
//! sorted key-value store, `kv::KvStorage`: the key layout, the open sequence, batch
//! staging and poisoning are written once in `kv`, whose docs also say how to add an
//! engine. The module map:
//!
//! | module | job |
//! |---|---|
//! | [`memory`] | the volatile backend |
//! | `kv` | the log over a sorted key-value store: engine trait, core, key layout, directory checks |
//! | `rocksdb`, `sled`, `redb` | one engine adapter each: open quirks, reads, the atomic and durable commit |
//! | `wal` | paxstore's own write-ahead log |
//! | `codec` | how values are encoded on disk (postcard; fixed-width ballots and indices) |
//! | [`kind`] | [`BackendKind`]: every compiled-in backend by name |

#![cfg_attr(docsrs, feature(doc_cfg))]

#[cfg(feature = "codec")]
pub mod codec;
pub mod kind;
#[cfg(feature = "kv")]
#[cfg_attr(docsrs, doc(cfg(feature = "kv")))]
pub mod kv;
#[cfg(any(feature = "wal", feature = "sled"))]
mod lock;
pub mod memory;
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
