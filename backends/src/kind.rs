//! [`BackendKind`]: every compiled-in backend by name, so tools take `--backend NAME`.

use std::fmt;
use std::path::Path;
use std::str::FromStr;

use paxstore::{Durability, Storage, StorageResult};

#[cfg(feature = "codec")]
use crate::codec::PersistentEntry as KindEntry;
#[cfg(not(feature = "codec"))]
use paxstore::Entry as KindEntry;

/// A backend this build of `paxstore-backends` can open.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[non_exhaustive]
pub enum BackendKind {
    /// [`crate::memory`]: volatile.
    Memory,
    /// `crate::rocksdb` (feature `rocksdb`).
    #[cfg(feature = "rocksdb")]
    RocksDb,
    /// `crate::sled` (feature `sled`).
    #[cfg(feature = "sled")]
    Sled,
    /// `crate::redb` (feature `redb`).
    #[cfg(feature = "redb")]
    Redb,
    /// `crate::wal` (feature `wal`).
    #[cfg(feature = "wal")]
    Wal,
    /// `crate::fjall` (feature `fjall`).
    #[cfg(feature = "fjall")]
    Fjall,
    /// `crate::raft_engine` (feature `raft-engine`).
    #[cfg(feature = "raft-engine")]
    RaftEngine,
}

/// Every backend name paxstore knows, compiled in or not.
pub const ALL_BACKEND_NAMES: [&str; 7] =
    ["memory", "rocksdb", "sled", "redb", "wal", "fjall", "raft-engine"];

impl BackendKind {
    /// Every backend compiled into this build, in a fixed order.
    pub fn compiled_in() -> Vec<BackendKind> {
        vec![
            BackendKind::Memory,
            #[cfg(feature = "rocksdb")]
            BackendKind::RocksDb,
            #[cfg(feature = "sled")]
            BackendKind::Sled,
            #[cfg(feature = "redb")]
            BackendKind::Redb,
            #[cfg(feature = "wal")]
            BackendKind::Wal,
            #[cfg(feature = "fjall")]
            BackendKind::Fjall,
            #[cfg(feature = "raft-engine")]
            BackendKind::RaftEngine,
        ]
    }

    /// The name used on command lines and in reports.
    pub fn name(self) -> &'static str {
        match self {
            BackendKind::Memory => "memory",
            #[cfg(feature = "rocksdb")]
            BackendKind::RocksDb => "rocksdb",
            #[cfg(feature = "sled")]
            BackendKind::Sled => "sled",
            #[cfg(feature = "redb")]
            BackendKind::Redb => "redb",
            #[cfg(feature = "wal")]
            BackendKind::Wal => "wal",
            #[cfg(feature = "fjall")]
            BackendKind::Fjall => "fjall",
            #[cfg(feature = "raft-engine")]
            BackendKind::RaftEngine => "raft-engine",
        }
    }

    /// `false` only for the memory backend, which keeps nothing across a reopen.
    pub fn is_persistent(self) -> bool {
        self != BackendKind::Memory
    }

    /// Opens (creating if needed) this backend's store at `path`; the memory backend
    /// ignores `path` and `durability`.
    pub fn open<T: KindEntry>(
        self,
        path: &Path,
        durability: Durability,
    ) -> StorageResult<Box<dyn Storage<T>>> {
        let _ = (path, durability);
        Ok(match self {
            BackendKind::Memory => Box::new(crate::memory::MemoryStorage::<T>::new()),
            #[cfg(feature = "rocksdb")]
            BackendKind::RocksDb => {
                Box::new(crate::rocksdb::RocksDbStorage::<T>::open(path, durability)?)
            }
            #[cfg(feature = "sled")]
            BackendKind::Sled => Box::new(crate::sled::SledStorage::<T>::open(path, durability)?),
            #[cfg(feature = "redb")]
            BackendKind::Redb => Box::new(crate::redb::RedbStorage::<T>::open(path, durability)?),
            #[cfg(feature = "wal")]
            BackendKind::Wal => Box::new(crate::wal::WalStorage::<T>::open(path, durability)?),
            #[cfg(feature = "fjall")]
            BackendKind::Fjall => {
                Box::new(crate::fjall::FjallStorage::<T>::open(path, durability)?)
            }
            #[cfg(feature = "raft-engine")]
            BackendKind::RaftEngine => {
                Box::new(crate::raft_engine::RaftEngineStorage::<T>::open(path, durability)?)
            }
        })
    }
}

impl fmt::Display for BackendKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// The error of parsing a [`BackendKind`]: an unknown name, or one not compiled in.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ParseBackendError {
    /// No backend has this name.
    #[error("unknown backend {name:?}; this build has: {available}")]
    Unknown {
        /// The name given.
        name: String,
        /// The names compiled in, comma-separated.
        available: String,
    },
    /// The backend exists but its feature is off in this build.
    #[error("backend {name:?} is not compiled in (enable the `{name}` feature of paxstore-backends); this build has: {available}")]
    NotCompiledIn {
        /// The name given.
        name: String,
        /// The names compiled in, comma-separated.
        available: String,
    },
}

impl FromStr for BackendKind {
    type Err = ParseBackendError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let name = s.trim().to_ascii_lowercase();
        let compiled = BackendKind::compiled_in();
        if let Some(kind) = compiled.iter().find(|k| k.name() == name) {
            return Ok(*kind);
        }
        let available = compiled.iter().map(|k| k.name()).collect::<Vec<_>>().join(", ");
        if ALL_BACKEND_NAMES.contains(&name.as_str()) {
            Err(ParseBackendError::NotCompiledIn { name, available })
        } else {
            Err(ParseBackendError::Unknown { name: s.to_owned(), available })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_compiled_in_backend_parses_from_its_name() {
        for kind in BackendKind::compiled_in() {
            assert_eq!(kind.name().parse::<BackendKind>(), Ok(kind));
        }
    }

    #[test]
    fn unknown_names_list_what_is_available() {
        let err = "leveldb".parse::<BackendKind>().unwrap_err();
        assert!(matches!(err, ParseBackendError::Unknown { .. }));
        assert!(err.to_string().contains("memory"), "{err}");
    }
}
