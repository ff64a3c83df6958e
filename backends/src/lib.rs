//! # paxstore-backends: storage engines for the paxstore contract
//!
//! Every backend implements [`paxstore::Storage`] and passes the `paxstore-conformance`
//! suite. Choose one by feature flag:
//!
//! | feature | module | engine |
//! |---|---|---|
//! | (always) | [`memory`] | process memory; volatile |
//! | `rocksdb` | `rocksdb` | RocksDB |
//! | `sled` | `sled` | sled 0.34 |
//! | `redb` | `redb` | redb |
//! | `wal` | `wal` | paxstore's own memory-mapped write-ahead log |
//! | `all` | | every one of the above |

#[cfg(feature = "codec")]
pub mod codec;
pub mod kind;
pub mod memory;
#[cfg(feature = "redb")]
pub mod redb;
#[cfg(feature = "rocksdb")]
pub mod rocksdb;
#[cfg(feature = "sled")]
pub mod sled;
#[cfg(feature = "wal")]
pub mod wal;

pub use kind::{BackendKind, ParseBackendError};
pub use memory::MemoryStorage;
