//! # paxstore-paxos: a sans-IO Sequence Paxos replica over any paxstore storage
//!
//! A complete replica of a replicated log in the OmniPaxos model: ballot leader election
//! (heartbeat rounds, priorities, a leader must reach a quorum) and Sequence Paxos (prepare/promise with log synchronisation, pipelined
//! accept/accepted, decide), generic over the entry type `T: Entry` and any
//! [`paxstore::Storage`]. It does no I/O of its own beyond its storage and has no
//! threads, clocks or randomness: the application drives it.
//!
//! ```text
//! loop {
//!     every tick:                 replica.tick()?
//!     for each message received:  replica.handle_incoming(msg)?
//!     to write:                   replica.append(entry)?
//!     send each of                replica.take_outgoing_messages()
//!     read what is decided:       replica.read_decided_suffix(from)?
//! }
//! ```
//!
//! ## Guarantees
//!
//! - **Persist before send.** Every call is one step: every storage change it makes goes
//!   to storage in **one** `write_atomically`, and the messages it produces are released
//!   to [`Replica::take_outgoing_messages`] only after that write returned `Ok`. The
//!   decided index is persisted too. With a `Durability::Immediate` backend, the one
//!   sync per step is shared by everything the step did (group commit at the protocol
//!   level).
//! - **Storage errors stop the replica, cleanly.** If storage fails, the replica re-reads
//!   its in-memory state from storage, stops, and returns [`PaxosError::Storage`] from
//!   that call and every later one. It never panics. Build a new replica over the same
//!   storage to resume.
//! - **Fail-recovery.** [`Replica::new`] over storage that already holds state resumes
//!   with its promise, accepted round, log, decided index, snapshot and stop sign, and
//!   asks the leader to synchronise it.
//! - **Robust to the network.** Messages may be lost, duplicated, delayed and reordered;
//!   stale and duplicate messages are ignored, and the leader retransmits to followers
//!   that make no progress.
//!
//! ## Batching and pipelining
//!
//! The leader gathers [`ReplicaConfig::batch_size`] entries before proposing them (one
//! storage write and one message per follower per batch) and proposes a partial batch
//! after [`ReplicaConfig::flush_ticks`] ticks. Appends on any replica are forwarded to the
//! leader. Proposals pipeline: the leader does not wait for one batch to be decided
//! before proposing the next.
//!
//! ## The stop sign
//!
//! [`Replica::reconfigure`] ends the configuration with a [`paxstore::StopSign`], which
//! takes the slot after the last entry and is decided like an entry. In messages,
//! "logical" indices count it as that one extra slot. The storage contract has no decided
//! flag for the stop sign and refuses a decided index past the log end, so whether the
//! stop sign is decided is kept in memory only: after a restart a replica holds the stop
//! sign as accepted, and learns again that it is decided when a leader of the
//! configuration re-proposes it (which every leader does, as it is part of the log).
//!
//! ## Compaction
//!
//! [`Replica::trim`] drops a prefix every replica has decided; [`Replica::snapshot`]
//! folds a decided prefix into `T::Snapshot` (locally, or everywhere). When a snapshot is
//! held it always covers exactly the indices below the compacted index, so a follower that
//! lags behind the leader's compacted index is sent the snapshot and the entries after it.
//!
//! ## Refinements of the design
//!
//! - Reads return `Result<Option<_>, PaxosError>` (`read`, `read_entries`,
//!   `read_decided_suffix`), since reading storage can fail; `None` is past the end.
//! - `trim` and a non-local `snapshot` must be called on the leader (anywhere else they
//!   return [`PaxosError::NotLeader`] naming the leader) rather than being forwarded, so
//!   the caller learns whether they happened. They succeed only up to what the leader
//!   knows every replica decided (followers report it in `Accepted` and `Promise`).
//! - [`Replica::handle_incoming_batch`] handles several messages in one step (one write).
//! - An append is not guaranteed to be decided (as in OmniPaxos): it can be lost if the
//!   leader it was forwarded to loses leadership first. Appends refused outright (the
//!   configuration is ending, the replica stopped) return an error.
//!
//! ## Module map
//!
//! | module | owns |
//! |---|---|
//! | `sequence_paxos/mod.rs` | [`Replica`]: the step path (stage, one write, release), the one message dispatch point, the user API |
//! | `sequence_paxos/leader.rs` | prepare, adopting the most recent log, syncing followers, proposing, deciding, retransmission |
//! | `sequence_paxos/follower.rs` | promise, accept-sync, pipelined accepts, decide |
//! | `sequence_paxos/sync.rs` | building and applying a [`messages::LogSync`] (suffix, snapshot, stop sign) |
//! | `ble.rs` | ballot leader election |
//! | `state.rs` | the cache of the durable state and the staged changes of a step |
//! | [`messages`] | every message |
//! | [`cluster`] | [`cluster::LocalCluster`], a fault-free in-process cluster for benchmarks and tests |
//! | [`sim`] | the deterministic simulator and its invariant checker |
//! | [`scenario`] | the scenario language (`tests/scenarios/*.txt`) |
//!
//! ## Tests
//!
//! `cargo test -p paxstore-paxos` runs the simulator over the memory backend (500 seeds
//! of 1,000 faulty steps plus a liveness phase on 3 replicas, and 100 seeds each of a
//! harsher 5-replica setup and a flexible-quorum, slow-network setup; each prints
//! `sim: seeds=N steps=M violations=V`), the scenario files, a storage failure at every
//! write of a leader and a follower, fail-recovery, and 3-replica clusters deciding
//! 100,000 appends at batch sizes 1 and 100. `--features sled,redb,wal` (or
//! `backends-all`) adds every persistent backend to the simulator and cluster tests.
//! `PAXSTORE_SIM_SEED=<seed>` replays one seed; `PAXSTORE_SIM_SEEDS=<n>` runs more.

mod ble;
pub mod cluster;
mod config;
mod error;
mod log_entry;
pub mod messages;
pub mod scenario;
mod sequence_paxos;
pub mod sim;
mod state;

pub use config::ReplicaConfig;
pub use error::PaxosError;
pub use log_entry::{LogEntry, SnapshottedEntry};
pub use messages::{Message, Payload};
pub use sequence_paxos::Replica;
