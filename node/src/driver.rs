//! The replica's own thread: it owns the [`Replica`] and its storage, and is the only
//! place either is touched.
//!
//! Storage writes block (an `fdatasync` can take milliseconds), so the replica does not
//! run on the async executor: the network and the client API run on tokio and hand this
//! thread [`Input`]s through one bounded queue. The loop: wait for an input or the next
//! tick; take every input already queued (a *group*: peer messages handled, client
//! commands appended); tick if due; then one step — `take_outgoing_messages` writes
//! everything the group changed in one `write_atomically` and only then are the messages
//! queued to their peers; then apply what became decided and answer the clients waiting
//! for it.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{Receiver, RecvTimeoutError};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use paxstore_paxos::{LogEntry, Message, PaxosError, Replica};
use tokio::sync::oneshot;

use crate::api::{LogDigest, NodeStatus, OpError, StateDigest};
use crate::kv::{Command, CommandId, Fnv, KvOp, KvOutcome, KvState};
use crate::peer::Peers;
use crate::storage::CountedStorage;
use crate::wire::PeerFrame;
use crate::NodeConfig;

/// Inputs handled in one group, at most, before the step.
const MAX_GROUP: usize = 4096;
/// Decided entries read from storage per read while applying.
const APPLY_CHUNK: usize = 1024;

/// The answer to one client operation.
pub(crate) type Reply = Result<KvOutcome, OpError>;

/// What the async side hands the replica thread.
pub(crate) enum Input {
    /// A message from a peer.
    Peer(Message<Command>),
    /// A client operation, to go through the log.
    Client { op: KvOp, reply: oneshot::Sender<Reply> },
    /// A read of local state, without the log (the broken variant; `testing` only).
    #[cfg(feature = "testing")]
    LocalRead { key: String, reply: oneshot::Sender<Reply> },
    /// A digest of the decided log at `[from, to)`.
    LogDigest { from: usize, to: usize, reply: oneshot::Sender<Result<LogDigest, String>> },
    /// A digest of the applied state.
    StateDigest { reply: oneshot::Sender<StateDigest> },
}

/// A client waiting for its command to be applied.
struct Waiter {
    reply: oneshot::Sender<Reply>,
}

/// The replica thread's state.
pub(crate) struct Driver {
    config: NodeConfig,
    replica: Replica<Command, CountedStorage>,
    state: KvState,
    /// Commands below this index are applied to `state`.
    applied: usize,
    waiters: HashMap<CommandId, Waiter>,
    incarnation: u64,
    next_seq: u64,
    peers: Peers,
    status: Arc<Mutex<NodeStatus>>,
    /// Why the node stopped serving (a storage failure), if it did.
    stopped: Option<String>,
    outbox: Vec<Message<Command>>,
    shutdown: Arc<AtomicBool>,
    snapshots: u64,
}

/// Why the replica thread could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// The store did not open.
    #[error("opening the {backend} store at {path}: {source}")]
    Storage {
        /// The backend.
        backend: String,
        /// Where.
        path: String,
        /// The storage error.
        source: paxstore::StorageError,
    },
    /// The replica did not start over the store.
    #[error("starting the replica: {0}")]
    Replica(PaxosError),
}

impl Driver {
    /// Opens the store and the replica over it, and applies what is already decided.
    pub(crate) fn open(
        config: NodeConfig,
        peers: Peers,
        status: Arc<Mutex<NodeStatus>>,
        shutdown: Arc<AtomicBool>,
    ) -> Result<Self, StartError> {
        let path = config.dir.join("store");
        let storage =
            CountedStorage::open(config.backend, &path, config.durability).map_err(|source| {
                StartError::Storage {
                    backend: config.backend.to_string(),
                    path: path.display().to_string(),
                    source,
                }
            })?;
        let replica = Replica::new(config.replica_config(), storage)
            .map_err(|(err, _storage)| StartError::Replica(err))?;
        let incarnation = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_nanos() as u64)
            .unwrap_or_default();
        let mut driver = Driver {
            config,
            replica,
            state: KvState::new(),
            applied: 0,
            waiters: HashMap::new(),
            incarnation,
            next_seq: 0,
            peers,
            status,
            stopped: None,
            outbox: Vec::new(),
            shutdown,
            snapshots: 0,
        };
        driver.apply_decided();
        driver.publish();
        Ok(driver)
    }

    /// Runs until the input queue closes or shutdown is asked for.
    pub(crate) fn run(mut self, rx: Receiver<Input>) {
        let tick = self.config.tick;
        let mut next_tick = Instant::now() + tick;
        loop {
            if self.shutdown.load(Ordering::Relaxed) {
                break;
            }
            let wait = next_tick.saturating_duration_since(Instant::now());
            match rx.recv_timeout(wait.min(Duration::from_millis(100))) {
                Ok(input) => {
                    self.handle(input);
                    for _ in 1..MAX_GROUP {
                        match rx.try_recv() {
                            Ok(input) => self.handle(input),
                            Err(_) => break,
                        }
                    }
                }
                Err(RecvTimeoutError::Timeout) => {}
                Err(RecvTimeoutError::Disconnected) => break,
            }
            let now = Instant::now();
            if now >= next_tick {
                self.tick();
                next_tick += tick;
                if next_tick < now {
                    next_tick = now + tick;
                }
            }
            self.step();
        }
        // Clients still waiting: their commands may or may not be decided later.
        for (_, w) in self.waiters.drain() {
            let _ = w.reply.send(Err(OpError::Unknown(
                "the node shut down before the operation was applied; it may still take effect"
                    .into(),
            )));
        }
        tracing::info!(node = self.config.id, "replica thread stopped");
    }

    fn handle(&mut self, input: Input) {
        match input {
            Input::Peer(msg) => {
                if let Err(err) = self.replica.handle_incoming(msg) {
                    self.fail(err);
                }
            }
            Input::Client { op, reply } => self.append(op, reply),
            #[cfg(feature = "testing")]
            Input::LocalRead { key, reply } => {
                let value = self.state.get(&key).cloned();
                let _ = reply.send(Ok(KvOutcome::Get { value }));
            }
            Input::LogDigest { from, to, reply } => {
                let _ = reply.send(self.log_digest(from, to));
            }
            Input::StateDigest { reply } => {
                let _ = reply.send(StateDigest {
                    applied_idx: self.applied,
                    digest: self.state.digest(),
                    keys: self.state.len(),
                });
            }
        }
    }

    fn append(&mut self, op: KvOp, reply: oneshot::Sender<Reply>) {
        if let Some(why) = &self.stopped {
            let _ = reply.send(Err(OpError::Unavailable(why.clone())));
            return;
        }
        let id =
            CommandId { node: self.config.id, incarnation: self.incarnation, seq: self.next_seq };
        self.next_seq += 1;
        match self.replica.append(Command { id, op }) {
            Ok(()) => {
                self.waiters.insert(id, Waiter { reply });
            }
            Err(err @ PaxosError::Storage { .. }) => {
                // Staged appends are dropped when the replica stops: this one is not in the log.
                let _ = reply.send(Err(OpError::Unavailable(err.to_string())));
                self.fail(err);
            }
            Err(err) => {
                let _ = reply.send(Err(OpError::Unavailable(err.to_string())));
            }
        }
    }

    fn tick(&mut self) {
        if let Err(err) = self.replica.tick() {
            self.fail(err);
        }
        // Clients that gave up no longer need an answer.
        self.waiters.retain(|_, w| !w.reply.is_closed());
    }

    /// One write for the group, then its messages, then what became decided.
    fn step(&mut self) {
        if self.stopped.is_none() {
            self.outbox.clear();
            match self.replica.drain_outgoing_into(&mut self.outbox) {
                Ok(()) => {
                    for msg in self.outbox.drain(..) {
                        let to = msg.to;
                        match PeerFrame::Message(msg).encode() {
                            Ok(frame) => self.peers.send(to, frame),
                            Err(err) => {
                                tracing::error!(node = self.config.id, to, %err, "cannot encode a message")
                            }
                        }
                    }
                }
                Err(err) => self.fail(err),
            }
            self.apply_decided();
            self.maybe_snapshot();
        }
        self.publish();
    }

    /// Applies every decided command not applied yet, answering the clients waiting.
    fn apply_decided(&mut self) {
        while self.stopped.is_none() && self.applied < self.replica.decided_idx() {
            let to = self.replica.decided_idx().min(self.applied + APPLY_CHUNK);
            let entries = match self.replica.read_entries(self.applied..to) {
                Ok(Some(entries)) => entries,
                Ok(None) => return,
                Err(err) => return self.fail(err),
            };
            for entry in entries {
                match entry {
                    LogEntry::Snapshotted(s) => {
                        self.state = KvState::from_snapshot(&s.snapshot);
                        self.applied = s.trimmed_idx;
                    }
                    LogEntry::Decided(cmd) | LogEntry::Undecided(cmd) => {
                        let outcome = self.state.apply(&cmd.op);
                        self.applied += 1;
                        if let Some(w) = self.waiters.remove(&cmd.id) {
                            let _ = w.reply.send(Ok(outcome));
                        }
                    }
                    LogEntry::Trimmed(idx) => {
                        let why = format!(
                            "the log is trimmed below {idx} without a snapshot; the state before it is lost"
                        );
                        tracing::error!(node = self.config.id, "{why}");
                        self.stopped = Some(why);
                        return;
                    }
                    LogEntry::StopSign(..) => {}
                }
            }
        }
    }

    /// Folds the applied log into a snapshot every `snapshot_every` commands.
    fn maybe_snapshot(&mut self) {
        let every = self.config.snapshot_every;
        if every == 0 || self.applied < self.replica.compacted_idx() + every {
            return;
        }
        match self.replica.snapshot(Some(self.applied), true) {
            Ok(()) => self.snapshots += 1,
            Err(err @ PaxosError::Storage { .. }) => self.fail(err),
            Err(err) => tracing::debug!(node = self.config.id, %err, "no snapshot"),
        }
    }

    fn log_digest(&self, from: usize, to: usize) -> Result<LogDigest, String> {
        let decided = self.replica.decided_idx();
        if from < self.replica.compacted_idx() || to > decided || from > to {
            return Err(format!(
                "[{from}, {to}) is not within the decided entries held here, [{}, {decided})",
                self.replica.compacted_idx()
            ));
        }
        let entries = self
            .replica
            .read_entries(from..to)
            .map_err(|e| e.to_string())?
            .ok_or_else(|| format!("[{from}, {to}) is past the end of the log"))?;
        let mut h = Fnv::new();
        for e in entries {
            match e {
                LogEntry::Decided(cmd) => {
                    let bytes = postcard::to_stdvec(&cmd).map_err(|e| e.to_string())?;
                    h.write(&bytes);
                }
                other => return Err(format!("unexpected log entry {other:?} in [{from}, {to})")),
            }
        }
        Ok(LogDigest { from, to, digest: h.finish() })
    }

    /// The replica stopped on a storage error: every waiting client learns it.
    fn fail(&mut self, err: PaxosError) {
        let why = format!("the replica stopped: {err}");
        tracing::error!(node = self.config.id, "{why}");
        for (_, w) in self.waiters.drain() {
            let _ = w.reply.send(Err(OpError::Unknown(format!(
                "{why}; the operation was sent and may still take effect"
            ))));
        }
        self.stopped = Some(why);
    }

    fn publish(&self) {
        let counts = self.replica.storage().counts();
        let status = NodeStatus {
            id: self.config.id,
            leader: self.replica.leader(),
            is_leader: self.replica.is_leader(),
            decided_idx: self.replica.decided_idx(),
            applied_idx: self.applied,
            compacted_idx: self.replica.compacted_idx(),
            log_end: self.replica.log_end(),
            round: self.replica.promise().n,
            storage_writes: counts.writes,
            storage_syncs: counts.syncs,
            snapshots: self.snapshots,
            waiting: self.waiters.len(),
            peer_frames_dropped: self.peers.dropped(),
            backend: self.config.backend.to_string(),
            durability: self.config.durability.to_string(),
            stopped: self.stopped.clone(),
        };
        if let Ok(mut s) = self.status.lock() {
            *s = status;
        }
    }
}
