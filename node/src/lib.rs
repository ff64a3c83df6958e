//! # paxstore-node: a paxstore replica as a networked process
//!
//! A replicated key-value service: each node runs one [`paxstore_paxos::Replica`] over
//! any paxstore backend, talks to the other nodes over TCP, and serves clients over
//! HTTP/JSON. The `paxstore-node` binary runs a node (`run`), starts a cluster of node
//! processes on loopback (`local-cluster`), and is a client (`kv put k v`).
//!
//! ```text
//!              clients (HTTP/JSON: api)                 other nodes (TCP: peer, wire)
//!                    |                                         ^            |
//!   tokio:      axum handlers                     diallers, one per peer   listener
//!                    |  Input (bounded queue)            ^ bounded queues   | Input
//!                    v                                   |                  v
//!   thread:   driver: group of inputs -> one step (one write) -> messages -> apply
//!                                   Replica<Command, store>       KvState
//! ```
//!
//! ## The runtime
//!
//! - **One thread per replica** ([`driver`](crate) module) owns the replica and its
//!   store; it is the only place a storage write happens, so an `fdatasync` never stalls
//!   the network or the client API, which run on tokio. It waits for an input or the
//!   next tick, takes every input already queued (a group: peer messages, client
//!   commands), ticks when due, then takes one step: one `write_atomically` for the
//!   group, then the messages are queued to their peers, then what became decided is
//!   applied and its clients answered.
//! - **Peers** ([`wire`]): each node dials every other and sends on that connection;
//!   frames are length-delimited postcard. The first frame is a [`wire::Hello`] that the
//!   listener checks (protocol, cluster id, node ids, configuration) and refuses with a
//!   reason on any mismatch. Per-peer outbound queues are bounded in frames and bytes;
//!   what does not fit is dropped (the replica retransmits). A lost connection is
//!   re-dialled with backoff. A malformed, oversized, unexpected or misaddressed frame
//!   closes its connection with a logged [`wire::WireError`] and changes nothing.
//! - **Clients** ([`api`]): HTTP/1.1 with JSON bodies, on axum. Chosen over gRPC
//!   (tonic) because it needs no code generator (`protoc`), builds with fewer crates,
//!   and any HTTP client (`curl`) can use it.
//!
//! ## The service
//!
//! [`kv`]: `put`, `get`, `delete` and `cas` on string keys and values. Every operation
//! — reads included — is a command appended to the log, and the node the client asked
//! answers when it applies the command. **Reads go through the log**: a read is
//! linearizable because it is ordered with every write by the log itself, with no
//! assumption about clocks or leases, and no primitive in the replica beyond appending.
//! It costs a read what a write costs (a round to a quorum and a synced write); a
//! read-index (ask the leader for its decided index, confirm leadership with a quorum,
//! wait to apply up to it) would save the sync and is the next step, but it needs a
//! leadership-confirmation round that the replica does not expose yet.
//!
//! A follower forwards appends to the leader (the replica does). The answers:
//! `200` with the result; `503` when the operation was not applied (overloaded, or the
//! replica stopped on a storage error); `504` when it was appended but not applied
//! within the request timeout — it may still take effect. Both name the leader this node
//! knows. A node's state is rebuilt at start from its store: the snapshot, then the
//! decided entries after it.
//!
//! **Snapshots**: every [`NodeConfig::snapshot_every`] applied commands, a node folds its
//! applied log into the replica's snapshot and trims it ([`kv::KvSnapshot`]; local to
//! each node, so a node that is down does not hold the others' logs back). A node that
//! lags behind the leader's trimmed log is sent the snapshot.
//!
//! ## Security
//!
//! None: no TLS and no authentication of peers or clients. A node checks that a peer
//! *says* it is a member of its cluster, which catches mistakes, not attackers. Run it
//! on a network you trust.
//!
//! ## Test tooling (feature `testing`)
//!
//! Not the node's API: [`check`] (a linearizability checker for key-value histories) and
//! the node flag `--unsafe-local-reads` (gets served from local state, without the log:
//! the broken variant the kill test must catch).

pub mod api;
#[cfg(feature = "testing")]
pub mod check;
pub mod client;
mod config;
mod driver;
pub mod kv;
pub mod local;
mod node;
mod peer;
mod storage;
pub mod wire;

pub use client::{ClientError, KvClient};
pub use config::{NodeAddr, NodeConfig, ParseNodeError};
pub use driver::StartError;
pub use node::{Node, NodeError};
pub use storage::StorageCounts;
