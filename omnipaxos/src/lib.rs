//! # paxstore-omnipaxos: OmniPaxos on paxstore, and paxstore's suite on OmniPaxos storage
//!
//! paxstore's storage contract has OmniPaxos 0.2.4's op set, but the two contracts differ
//! in the details a real OmniPaxos node runs into: OmniPaxos writes batches that paxstore
//! refuses as written, and an OmniPaxos storage answers reads in ways the paxstore suite
//! calls wrong. This crate bridges both directions:
//!
//! - [`OmniStorage<S>`] implements `omnipaxos::storage::Storage<T>` over any paxstore
//!   backend `S` (memory, WAL, RocksDB, sled, redb or your own). It accepts every batch
//!   the real OmniPaxos writes, by normalising it ([`normalize`], rule by rule), writes
//!   each OmniPaxos write as one paxstore `write_atomically`, and answers reads as
//!   OmniPaxos expects.
//! - `suite` (feature `conformance`) runs the whole paxstore conformance suite on any
//!   `omnipaxos::storage::Storage` in **OmniPaxos-contract mode**, with one line:
//!   `omnipaxos_storage_suite!`. It accepts the documented differences and reports real
//!   defects (torn batches, unvalidated ops that corrupt the log, panics).
//!
//! ## Using paxstore with OmniPaxos
//!
//! ```toml
//! [dependencies]
//! omnipaxos = { version = "=0.2.4", features = ["serde"] }
//! paxstore = { path = "paxstore/storage-trait" }
//! paxstore-backends = { path = "paxstore/backends", features = ["wal"] }
//! paxstore-omnipaxos = { path = "paxstore/omnipaxos" }
//! ```
//!
//! An OmniPaxos node on the WAL (the same lines are `tests/using_with_omnipaxos.rs`,
//! which runs them):
//!
//! ```ignore
//! let dir = Path::new("node-1");
//! let wal = WalStorage::<OmniEntry<KvCommand>>::open(dir, Durability::Immediate)?;
//! let storage = OmniStorage::new(wal)?;
//! let config = OmniPaxosConfig {
//!     cluster_config: ClusterConfig {
//!         configuration_id: 1,
//!         nodes: vec![1, 2, 3],
//!         ..Default::default()
//!     },
//!     server_config: ServerConfig { pid: 1, ..Default::default() },
//! };
//! let mut node = config.build(storage)?;
//! // Drive `node` as any OmniPaxos node: tick(), append(), handle_incoming(), ...
//! ```
//!
//! `KvCommand` is your OmniPaxos entry type; to be stored by a persistent backend it (and
//! its snapshot type) implement serde's `Serialize` and `Deserialize` (OmniPaxos' `serde`
//! feature gives its own `NoSnapshot` those), and [`OmniEntry`] stores it exactly as serde
//! encodes it. Restart a node by opening the same directory again: OmniPaxos recovers its
//! promise, log, decided index and decided stop sign from it.
//!
//! ## Differences between the contracts, and how each is bridged
//!
//! | # | OmniPaxos 0.2.4 | paxstore | [`OmniStorage`] (OmniPaxos on paxstore) | `suite` (paxstore's suite on OmniPaxos) |
//! |---|---|---|---|---|
//! | 1 | A batch is checked nowhere; `sync_log` writes `SetDecidedIndex(d)` before the `AppendOnPrefix` and `SetStopsign` that bring what `d` covers | each op is checked against the state the ops before it leave | rule [`DecidedLast`](Rule::DecidedLast) | — |
//! | 2 | Two indices: `Trim` removes entries, `SetCompactedIdx` moves the index reported; OmniPaxos always writes both, in that order | one index; `SetCompactedIdx` may pass the log end (snapshot install), `Trim` may not | rule [`TrimThenCompact`](Rule::TrimThenCompact); a lone `Trim` or `SetCompactedIdx` moves the one index | each of the suite's `Trim(i)` and `SetCompactedIdx(i)` is sent as `[Trim(i), SetCompactedIdx(i)]`; paxstore's `Trim` past the end, which the pair cannot express, is refused by the adapter |
//! | 3 | A stop sign counts as the entry at `log_end`: decided, `decided_idx = log_end + 1`; a sync of a stopped log sends an empty suffix at `log_end + 1` (or at `log_end`, below the decided index), and after a leader change the stop sign is counted twice, `log_end + 2` decided | the same decided stop sign (`decided_idx = log_end + 1` while a stop sign is set); `AppendOnPrefix` past the end or below the decided index, and a decided index past `log_end + 1`, are refused | rules [`EmptySuffixAtEnd`](Rule::EmptySuffixAtEnd) (the empty suffix changes nothing) and [`StopsignCountedTwice`](Rule::StopsignCountedTwice) (`log_end + 2` is stored as the decided stop sign) | — |
//! | 4 | A read of a range not wholly stored returns an empty `Vec` | `InvalidRange` naming the bounds | `InvalidRange` is answered with `[]` | `[]` out of range is reported as the `InvalidRange` the model expects; a panic or a non-empty answer there fails the case at its end, so it does not hide what the case finds next |
//! | 5 | Errors are `Box<dyn Error>`, and OmniPaxos panics on any storage error | typed [`paxstore::StorageError`], the batch refused whole | [`OmniStorageError`], boxed; `InvalidOp` names the position in OmniPaxos' batch | a refusal of a batch the model refuses counts as the model's typed reason; the suite then checks nothing changed |
//! | 6 | `FlexibleQuorum` sizes are `usize` | `u32` | converted; a size above `u32::MAX` is [`OmniStorageError::QuorumTooLarge`] | converted back |
//! | 7 | Entry and snapshot are `omnipaxos::storage::{Entry, Snapshot}` | `paxstore::{Entry, Snapshot}` | [`OmniEntry<T>`] / [`OmniSnapshot<T>`] carry them unchanged (serde-transparent) | `suite::SuiteEntry` / `suite::SuiteSnapshot` carry the suite's `TestEntry` / `TestSnapshot` |
//! | 8 | No durability in the API | [`paxstore::Durability`] per backend | the backend's: one paxstore write per OmniPaxos write, nothing buffered | — |
//!
//! What no rule covers stays an error, with nothing written: a batch that would overwrite
//! decided entries, leave a gap after the log, trim past its end or below its start,
//! decide past the end (other than the stop sign), append to a log whose stop sign is
//! decided, or clear a decided stop sign. OmniPaxos' own `MemoryStorage` applies most of
//! these silently, and underflows a `usize` on some (see `tests/omnipaxos_memory_storage.rs`
//! for what the suite finds there). Two faults of OmniPaxos 0.2.4 itself, found while
//! building this and shown on its own storage, are in `tests/omnipaxos_findings.rs`.
#![cfg_attr(docsrs, feature(doc_cfg))]

mod convert;
mod error;
pub mod normalize;
mod storage;
#[cfg(feature = "conformance")]
#[cfg_attr(docsrs, doc(cfg(feature = "conformance")))]
pub mod suite;

pub use convert::{
    ballot_to_omnipaxos, ballot_to_paxstore, stopsign_to_omnipaxos, stopsign_to_paxstore,
    OmniEntry, OmniPaxosEntry, OmniSnapshot,
};
pub use error::OmniStorageError;
pub use normalize::Rule;
pub use storage::OmniStorage;
