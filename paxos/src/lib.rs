//! # paxstore-paxos: a sans-IO Sequence Paxos replica over any paxstore storage
//!
//! A complete replica of a replicated log in the OmniPaxos model: ballot leader election
//! (heartbeat rounds, priorities, a leader must reach a quorum) and Sequence Paxos
//! (prepare/promise with log synchronisation, pipelined accept/accepted, decide), generic
//! over the entry type `T: Entry` and any [`paxstore::Storage`]. It does no I/O of its own
//! beyond its storage and has no threads, clocks or randomness: the application drives it.
//!
//! ```text
//! loop {
//!     every tick:                 replica.tick()?
//!     for each message received:  replica.handle_incoming(msg)?
//!     to write:                   replica.append(entry)?
//!     then, the step:             for msg in replica.take_outgoing_messages()? { send(msg) }
//!     read what is decided:       replica.read_decided_suffix(from)?
//! }
//! ```
//!
//! ## The step: many calls, one write, one message per peer
//!
//! `tick`, `handle_incoming`, `append`, `reconfigure`, `trim` and `snapshot` only
//! *stage* what they change. [`Replica::take_outgoing_messages`] is the step: it writes
//! everything staged since the last take in **one** `write_atomically`, and only if that
//! write succeeded returns the messages staged, at most one [`Message`] per peer. While
//! they wait, payloads for the same peer merge: entries proposed one after another join
//! one pending accept, a newer decided index replaces an older one, a follower's
//! acknowledgements collapse into the latest. So a leader that takes appends until its
//! next take writes them once and sends each follower one accept; a follower that handles
//! every message that arrived before its next take writes once and acknowledges once.
//! That is the natural way to drive it: handle what arrived, then take.
//!
//! ## Guarantees
//!
//! - **Persist before send.** No message leaves before the storage changes it reports
//!   (a promise, accepted entries, the round of the log, and the decided index a
//!   `Promise` or `Accepted` reports, since a leader trims up to what every follower
//!   reported) are written. The leader counts its own acceptance of an entry only once
//!   the entry is written.
//! - **What a crash may take back.** A crash (or, over a `Durability::Immediate` backend,
//!   a power loss) loses the changes staged since the last take, and no message reported
//!   them. It may also take back the **decided index**: it is not written on its own, but
//!   with the next write that happens anyway, or after
//!   [`ReplicaConfig::decided_write_ticks`] ticks without one (etcd's raft makes the same
//!   choice: a commit index can be learned again). After a restart, [`Replica::decided_idx`]
//!   is at least what it was at the replica's last write (and at least what its last
//!   `Promise` or `Accepted` reported), and may be lower than it was before the crash; the
//!   entries that become decided again are the same entries, as every decided entry is.
//!   Nothing else goes back.
//! - **Each entry decided at most once.** An entry appended once (on any replica) is
//!   decided at most once, whatever the network loses, duplicates or replays, and across
//!   leader changes and crashes: forwarded entries are numbered and the leader of the
//!   round proposes each number once (see `sequence_paxos/forward.rs` for the exact
//!   argument). An append is not guaranteed to be decided (as in OmniPaxos): it is lost if
//!   leadership changes first, or if the replica it was made on is not synchronised with
//!   a leader and crashes before it is.
//! - **Leader election under partial connectivity.** A replica that reaches a quorum
//!   (*quorum-connected*) becomes leader when the leader is gone or is not
//!   quorum-connected itself (the quorum-loss and constrained-election scenarios of the
//!   Omni-Paxos paper); a replica cut off from a leader that a quorum still follows does
//!   not disturb it (the chained scenario). A deposed leader steps down as soon as it
//!   hears from a replica that promised the higher round (which refuses its messages with
//!   a `Nack`) or that hears the new leader itself (heartbeat replies name the leader the
//!   replier follows). A quorum-connected leader always reaches such a replica (its quorum
//!   and the new leader's intersect), so no quorum-connected zombie survives; a leader
//!   that reaches no such replica cannot be told by any protocol, and decides nothing. A
//!   restarted replica follows a live leader instead of unseating it.
//! - **Storage errors stop the replica, cleanly.** If storage fails, the replica drops
//!   what it staged, re-reads its in-memory state from storage, stops, and returns
//!   [`PaxosError::Storage`] from that call and every later one. It never panics. Build a
//!   new replica over the same storage to resume (fail-recovery): [`Replica::new`] over
//!   storage that already holds state resumes with its promise, accepted round, log,
//!   decided index, snapshot and stop sign, and asks the leader to synchronise it.
//! - **Robust to the network.** Messages may be lost, duplicated, delayed and reordered;
//!   stale and duplicate payloads are ignored (or refused), and the leader retransmits to
//!   followers that make no progress.
//!
//! ## Batching and pipelining
//!
//! The leader gathers [`ReplicaConfig::batch_size`] entries before proposing them (at the
//! next take, together with every entry appended by then), and proposes a partial batch
//! after [`ReplicaConfig::flush_ticks`] ticks; proposals made before a take share its
//! write and its messages. Appends on a follower are forwarded to
//! the leader. Proposals pipeline: the leader does not wait for one batch to be decided
//! before proposing the next.
//!
//! ## The stop sign
//!
//! [`Replica::reconfigure`] ends the configuration with a [`paxstore::StopSign`], which
//! takes the slot after the last entry and is decided like an entry. In messages,
//! "logical" indices count it as that one extra slot. Storage holds a decided stop sign
//! as the contract says, `decided_idx = log_end + 1`, written in the same batch as the
//! rest of the step (last, after the ops that set the stop sign and the log end). A
//! restarted replica reads it back and reports its configuration ended, decided, without
//! waiting for a leader (`tests/recovery.rs`, which also runs the injected bug
//! `InjectedBug::ForgetDecidedStopsign` that writes it as merely accepted, and catches it).
//! Like any decided index it is written lazily (see "What a crash may take back"): a
//! crash right after the decision may take it back, and the stop sign is then decided
//! again by a leader of the configuration, which re-proposes it as part of the log.
//!
//! ## Compaction
//!
//! [`Replica::trim`] drops a prefix every replica has decided; [`Replica::snapshot`]
//! folds a decided prefix into `T::Snapshot` (locally, or everywhere). When a snapshot is
//! held it always covers exactly the indices below the compacted index, so a follower that
//! lags behind the leader's compacted index is sent the snapshot and the entries after it.
//! A compaction is written with the decided index, so storage never holds a compacted
//! index above its decided index.
//!
//! ## Refinements of the design
//!
//! - Reads return `Result<Option<_>, PaxosError>` (`read`, `read_entries`,
//!   `read_decided_suffix`), since reading storage can fail; `None` is past the end. Reads
//!   see changes staged for the next take.
//! - `take_outgoing_messages` returns a `Result`: it is where storage is written.
//! - `trim` and a non-local `snapshot` must be called on the leader (anywhere else they
//!   return [`PaxosError::NotLeader`] naming the leader) rather than being forwarded, so
//!   the caller learns whether they happened. They succeed only up to what the leader
//!   knows every replica decided (followers report it in `Accepted` and `Promise`).
//! - Appends refused outright (the configuration is ending, the replica stopped) return
//!   an error.
//!
//! ## Module map
//!
//! | module | owns |
//! |---|---|
//! | `sequence_paxos/mod.rs` | [`Replica`]: staging, the step (one write, then the messages), the one message dispatch point, queries |
//! | `sequence_paxos/api.rs` | appends, reconfiguration, compaction, reads |
//! | `sequence_paxos/leader.rs` | prepare, adopting the most recent log, syncing followers, proposing, deciding, stepping down, retransmission |
//! | `sequence_paxos/follower.rs` | promise, accept-sync, pipelined accepts, decide, refusing stale rounds |
//! | `sequence_paxos/forward.rs` | forwarding appends to the leader, each proposed at most once |
//! | `sequence_paxos/sync.rs` | building and applying a [`messages::LogSync`] (suffix, snapshot, stop sign) |
//! | `ble.rs` | ballot leader election |
//! | `outbox.rs` | the pending message per peer, and how payloads merge |
//! | `state.rs` | the cache of the durable state and the changes staged for the next write |
//! | [`messages`] | every message |
//! | `cluster`, `sim`, `scenario` | test tooling, behind the `testing` feature (below) |
//!
//! ## Test tooling (feature `testing`)
//!
//! Not part of the replica's API; the crate's own tests and the benchmarks switch it on:
//! `cluster::LocalCluster` (a fault-free in-process cluster), `sim` (the deterministic
//! simulator and its invariant checker), `scenario` (the scenario language of
//! `tests/scenarios/*.txt`), and `Replica::inject_bug`, which puts back a defect the
//! replica once had so a test can show the simulator or a scenario catching it.
//!
//! ## Tests
//!
//! `cargo test --release -p paxstore-paxos` runs the simulator over the memory backend
//! (three setups: 2,000 seeds of 3 replicas, 500 of a harsher 5-replica setup, 500 of a
//! flexible-quorum, slow network; drops, duplicates, delays, partitions, partial
//! connectivity, crashes at any time, right before a step's write and right after a
//! `Promise` or `Accepted`; then a progress check under partial connectivity and a
//! liveness check; each prints `sim: seeds=N steps=M violations=V` and the invariants it
//! checked, with `--nocapture`), the scenario files (among them the Omni-Paxos
//! paper's quorum-loss, constrained-election and chained scenarios, each with a progress
//! check while the partition is up), a test per re-introduced defect that the simulator
//! or a scenario must catch, a storage failure at every write of a leader and a follower,
//! fail-recovery, and 3-replica clusters deciding 100,000 appends at batch sizes 1 and 100.
//!
//! Knobs: `PAXSTORE_SIM_SEED=<seed>` replays one seed; `PAXSTORE_SIM_SEEDS=<n>` runs `n`
//! seeds per setup, starting at `PAXSTORE_SIM_FIRST_SEED` (default 0);
//! `PAXSTORE_SOAK=<k>` multiplies the default seed counts by `k`. The persistent
//! backends join the simulator and cluster tests when `paxstore-backends` is built with
//! them: `--features paxstore-backends/wal,paxstore-backends/sled` (or
//! `paxstore-backends/all`).

mod ble;
mod bugs;
#[cfg(feature = "testing")]
pub mod cluster;
mod config;
mod error;
mod log_entry;
pub mod messages;
mod outbox;
#[cfg(feature = "testing")]
pub mod scenario;
mod sequence_paxos;
#[cfg(feature = "testing")]
pub mod sim;
mod state;

#[cfg(feature = "testing")]
pub use bugs::InjectedBug;
pub use config::ReplicaConfig;
pub use error::PaxosError;
pub use log_entry::{LogEntry, SnapshottedEntry};
pub use messages::{Message, Payload, Payloads};
pub use sequence_paxos::Replica;
