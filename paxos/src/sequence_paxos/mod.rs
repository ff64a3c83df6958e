//! The replica: Sequence Paxos with ballot leader election, sans-IO.
//!
//! This file owns the [`Replica`] struct, the one step path (stage → one atomic write →
//! release messages), the one message dispatch point and the user API. Role-specific
//! handling lives in `leader.rs` and `follower.rs`; log synchronisation in `sync.rs`.

mod follower;
mod leader;
mod sync;

use std::ops::{Bound, RangeBounds};
use std::sync::Arc;

use paxstore::{Ballot, ClusterConfig, Entry, Snapshot, StopSign, Storage, StorageResult};

use crate::ble::Ble;
use crate::messages::{Compaction, Message, PaxosMessage, Payload};
use crate::state::{LogState, Store};
use crate::{LogEntry, PaxosError, ReplicaConfig, SnapshottedEntry};

/// One replica of a Sequence Paxos log over the storage `S`.
///
/// The replica does no I/O of its own beyond its storage: the application calls
/// [`tick`](Replica::tick) at a fixed interval, hands it every message addressed to it
/// with [`handle_incoming`](Replica::handle_incoming), and sends what
/// [`take_outgoing_messages`](Replica::take_outgoing_messages) returns.
///
/// Every call that changes state is one *step*: its storage changes are written in one
/// `write_atomically`, and its messages are released only after that write succeeded.
pub struct Replica<T: Entry, S: Storage<T>> {
    config: ReplicaConfig,
    pid: u64,
    peers: Vec<u64>,
    store: Store<T, S>,
    ble: Ble,
    role: Role<T>,
    /// Entries appended or forwarded here, not yet proposed or forwarded.
    pending: Vec<T>,
    /// A reconfiguration requested here, not yet proposed or forwarded.
    pending_stopsign: Option<StopSign>,
    /// Messages of the current step, released when its write succeeds.
    staged: Vec<Message<T>>,
    outgoing: Vec<Message<T>>,
    failed: Option<PaxosError>,
    ticks: u64,
    ticks_since_flush: u32,
    /// The round in which this step accepted entries, to acknowledge at its end.
    accepted_due: Option<Ballot>,
    /// The round in which this step decided more, to announce at its end.
    decide_due: Option<Ballot>,
}

/// What this replica does in the current round.
enum Role<T: Entry> {
    Leader(Box<leader::LeaderState<T>>),
    Follower(FollowerPhase),
}

/// A follower's progress in the round it promised.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum FollowerPhase {
    /// Not synchronised with any leader (fresh, restarted, or the leader stepped down).
    Idle,
    /// Promised; waiting for the leader's `AcceptSync`.
    Prepare,
    /// Synchronised: accepts the leader's entries.
    Accept,
}

impl<T: Entry, S: Storage<T>> Replica<T, S> {
    /// A replica over `storage`, resuming from whatever it holds (an empty storage starts
    /// a fresh replica). On error, the storage is handed back.
    pub fn new(config: ReplicaConfig, storage: S) -> Result<Self, (PaxosError, S)> {
        if let Err(err) = config.validate() {
            return Err((err, storage));
        }
        let store = match Store::open(storage) {
            Ok(store) => store,
            Err((storage, source)) => {
                let err = PaxosError::Storage { context: "recovering", source: Arc::new(source) };
                return Err((err, storage));
            }
        };
        let peers = config.peers();
        let promise = store.state.promise;
        let ballot = Ballot::new(
            config.cluster.configuration_id,
            // Not above the promise: a recovering replica does not unseat a live leader.
            promise.n.max(1),
            config.priority,
            config.pid,
        );
        let quorum = config.read_quorum().max(config.write_quorum());
        let ble = Ble::new(config.pid, peers.clone(), quorum, config.heartbeat_ticks, ballot);
        let mut replica = Replica {
            pid: config.pid,
            peers,
            store,
            ble,
            role: Role::Follower(FollowerPhase::Idle),
            pending: Vec::new(),
            pending_stopsign: None,
            staged: Vec::new(),
            outgoing: Vec::new(),
            failed: None,
            ticks: 0,
            ticks_since_flush: 0,
            accepted_due: None,
            decide_due: None,
            config,
        };
        if promise != Ballot::default() {
            // Recovered: ask whoever leads to synchronise us.
            for to in replica.peers.clone() {
                replica.outgoing.push(Message {
                    from: replica.pid,
                    to,
                    payload: Payload::Paxos(PaxosMessage::PrepareReq),
                });
            }
        }
        Ok(replica)
    }

    // ---- the sans-IO interface ----

    /// Advances the replica's timers by one tick: leader election, batch flushing and
    /// retransmission.
    pub fn tick(&mut self) -> Result<(), PaxosError> {
        self.step("ticking", |r| {
            r.ticks += 1;
            if let Some(leader) = r.ble.tick(&mut r.staged) {
                r.handle_leader(leader)?;
            }
            r.ticks_since_flush += 1;
            if r.ticks_since_flush >= r.config.flush_ticks {
                r.ticks_since_flush = 0;
                r.flush_pending()?;
            }
            if r.ticks % u64::from(r.config.resend_ticks) == 0 {
                r.resend()?;
            }
            Ok(())
        })
    }

    /// Handles a message from another replica. Messages not addressed to this replica,
    /// from outside its configuration, stale or duplicated are ignored.
    pub fn handle_incoming(&mut self, msg: Message<T>) -> Result<(), PaxosError> {
        self.step("handling a message", |r| r.dispatch(msg))
    }

    /// Handles several messages in **one** step: their storage changes go to storage in
    /// one `write_atomically` (one sync on a durable backend) before any reply is
    /// released. Use it to share a sync among messages that arrived together (group
    /// commit). Equivalent to handling them one by one, in order.
    pub fn handle_incoming_batch(
        &mut self,
        msgs: impl IntoIterator<Item = Message<T>>,
    ) -> Result<(), PaxosError> {
        self.step("handling messages", |r| msgs.into_iter().try_for_each(|m| r.dispatch(m)))
    }

    /// The messages released so far, to be sent to their `to`.
    pub fn take_outgoing_messages(&mut self) -> Vec<Message<T>> {
        std::mem::take(&mut self.outgoing)
    }

    /// Moves the released messages to the end of `buf` (reusing its allocation).
    pub fn drain_outgoing_into(&mut self, buf: &mut Vec<Message<T>>) {
        buf.append(&mut self.outgoing);
    }

    /// The one dispatch point of every incoming message.
    fn dispatch(&mut self, msg: Message<T>) -> StorageResult<()> {
        let from = msg.from;
        if msg.to != self.pid || !self.peers.contains(&from) {
            return Ok(());
        }
        match msg.payload {
            Payload::Ble(m) => {
                self.ble.handle(from, m, &mut self.staged);
                Ok(())
            }
            Payload::Paxos(m) => match m {
                PaxosMessage::Prepare(p) => self.handle_prepare(from, p),
                PaxosMessage::Promise(p) => self.handle_promise(from, p),
                PaxosMessage::AcceptSync(a) => self.handle_accept_sync(a),
                PaxosMessage::AcceptDecide(a) => self.handle_accept_decide(from, a),
                PaxosMessage::Accepted(a) => self.handle_accepted(from, a),
                PaxosMessage::Decide(d) => self.handle_decide(d),
                PaxosMessage::Nack { n, promise } => self.handle_nack(n, promise),
                PaxosMessage::PrepareReq => self.handle_prepare_req(from),
                PaxosMessage::Forward(entries) => self.handle_forward(from, entries),
                PaxosMessage::ForwardStopSign(ss) => self.handle_forward_stopsign(from, ss),
                PaxosMessage::Compaction(c) => self.handle_compaction(c),
            },
        }
    }

    /// Runs one step: `f` stages storage ops and messages; then the ops are written in one
    /// `write_atomically` and, only if that succeeded, the messages are released. On any
    /// storage error the in-memory state is re-read from storage and the replica stops.
    fn step<R>(
        &mut self,
        context: &'static str,
        f: impl FnOnce(&mut Self) -> StorageResult<R>,
    ) -> Result<R, PaxosError> {
        if let Some(err) = &self.failed {
            return Err(err.clone());
        }
        debug_assert!(!self.store.has_staged() && self.staged.is_empty());
        let result = f(self).inspect(|_| {
            self.send_due_accepted();
            self.send_due_decide();
        });
        match result.and_then(|r| self.store.commit().map(|()| r)) {
            Ok(r) => {
                self.outgoing.append(&mut self.staged);
                Ok(r)
            }
            Err(source) => {
                self.staged.clear();
                self.accepted_due = None;
                self.decide_due = None;
                self.store.rollback();
                self.role = Role::Follower(FollowerPhase::Idle);
                let err = PaxosError::Storage { context, source: Arc::new(source) };
                self.failed = Some(err.clone());
                Err(err)
            }
        }
    }

    /// Stages a message to `to`.
    fn send(&mut self, to: u64, msg: PaxosMessage<T>) {
        self.staged.push(Message { from: self.pid, to, payload: Payload::Paxos(msg) });
    }

    fn state(&self) -> &LogState {
        &self.store.state
    }

    /// Where appends and reconfigurations made here go: the leader of the round this
    /// replica accepts in, else the elected leader; `None` if that is this replica or
    /// no one.
    fn forward_target(&self) -> Option<u64> {
        let target = match self.role {
            Role::Leader(_) => return None,
            Role::Follower(FollowerPhase::Accept) => Some(self.state().promise.pid),
            Role::Follower(_) => self.ble.leader.map(|b| b.pid),
        };
        target.filter(|&p| p != self.pid)
    }

    /// Proposes (on the leader) or forwards (elsewhere) what is pending.
    fn flush_pending(&mut self) -> StorageResult<()> {
        if let Role::Leader(l) = &self.role {
            if l.accepting {
                self.propose_pending()?;
            }
            return Ok(());
        }
        if let Some(to) = self.forward_target() {
            if !self.pending.is_empty() {
                let entries = std::mem::take(&mut self.pending);
                self.send(to, PaxosMessage::Forward(entries));
            }
            if let Some(ss) = self.pending_stopsign.take() {
                self.send(to, PaxosMessage::ForwardStopSign(ss));
            }
        }
        Ok(())
    }

    fn handle_forward(&mut self, from: u64, entries: Vec<T>) -> StorageResult<()> {
        if self.state().stopsign.is_some() {
            return Ok(()); // the configuration is ending: no more entries
        }
        self.pending.extend(entries);
        match &self.role {
            Role::Leader(l) if l.accepting && self.pending.len() >= self.config.batch_size => {
                self.propose_pending()
            }
            Role::Leader(_) => Ok(()),
            Role::Follower(_) => match self.forward_target() {
                Some(to) if to != from => self.flush_pending(),
                _ => Ok(()),
            },
        }
    }

    fn handle_forward_stopsign(&mut self, from: u64, ss: StopSign) -> StorageResult<()> {
        if self.state().stopsign.is_some() || self.pending_stopsign.is_some() {
            return Ok(());
        }
        self.pending_stopsign = Some(ss);
        match &self.role {
            Role::Leader(l) if l.accepting => self.propose_pending(),
            Role::Leader(_) => Ok(()),
            Role::Follower(_) => match self.forward_target() {
                Some(to) if to != from => self.flush_pending(),
                _ => Ok(()),
            },
        }
    }

    /// Compacts as the leader asked, never past what this replica has decided.
    fn handle_compaction(&mut self, c: Compaction) -> StorageResult<()> {
        let (compacted, decided) = (self.state().compacted_idx, self.state().decided_idx);
        match c {
            Compaction::Trim(idx) if !T::Snapshot::use_snapshots() => {
                let idx = idx.min(decided);
                if idx > compacted {
                    self.store.trim(idx);
                }
            }
            Compaction::Snapshot(idx) if T::Snapshot::use_snapshots() => {
                let idx = idx.min(decided);
                if idx > compacted {
                    self.store.compact_into_snapshot(idx)?;
                }
            }
            _ => {}
        }
        Ok(())
    }

    // ---- the user API ----

    /// Appends `entry` to the log: proposed by the leader once a batch is full (or on the
    /// next flush tick), forwarded to the leader from other replicas. Appends pipeline:
    /// this returns without waiting for the entry to be decided. An entry can be lost if
    /// leadership changes before it is accepted; watch [`read`](Replica::read).
    pub fn append(&mut self, entry: T) -> Result<(), PaxosError> {
        self.check_running()?;
        self.check_not_ending()?;
        self.step("appending", |r| {
            r.pending.push(entry);
            match &r.role {
                Role::Leader(l) if l.accepting && r.pending.len() >= r.config.batch_size => {
                    r.propose_pending()
                }
                Role::Leader(_) => Ok(()),
                Role::Follower(_) => r.flush_pending(),
            }
        })
    }

    /// Ends this configuration: proposes a [`StopSign`] naming `new_config`, decided like
    /// an entry after every entry before it. Once it is decided
    /// ([`is_reconfigured`](Replica::is_reconfigured)), the application starts replicas
    /// of `new_config`.
    pub fn reconfigure(
        &mut self,
        new_config: ClusterConfig,
        metadata: Option<Vec<u8>>,
    ) -> Result<(), PaxosError> {
        self.check_running()?;
        self.check_not_ending()?;
        if self.pending_stopsign.is_some() {
            return Err(PaxosError::ConfigurationEnded { decided: false });
        }
        let current = self.config.cluster.configuration_id;
        if new_config.configuration_id <= current {
            return Err(PaxosError::InvalidReconfiguration(format!(
                "the new configuration id {} must be above the current {current}",
                new_config.configuration_id
            )));
        }
        if new_config.nodes.is_empty() {
            return Err(PaxosError::InvalidReconfiguration(
                "the new configuration has no nodes".into(),
            ));
        }
        let ss = StopSign { next_config: new_config, metadata };
        self.step("reconfiguring", |r| {
            r.pending_stopsign = Some(ss);
            r.flush_pending()
        })
    }

    /// Drops the log below `idx`. Only the leader trims, and only what it knows every
    /// replica of the configuration has decided; it tells the others to trim too. With a
    /// snapshotting entry type, trimming folds the entries into the snapshot (it is
    /// [`snapshot(Some(idx), false)`](Replica::snapshot)), so the prefix stays readable.
    pub fn trim(&mut self, idx: usize) -> Result<(), PaxosError> {
        if T::Snapshot::use_snapshots() {
            return self.snapshot(Some(idx), false);
        }
        self.check_running()?;
        self.check_compaction(idx, false)?;
        self.step("trimming", |r| {
            r.store.trim(idx);
            for to in r.peers.clone() {
                r.send(to, PaxosMessage::Compaction(Compaction::Trim(idx)));
            }
            Ok(())
        })
    }

    /// Folds the log below `idx` (default: the decided index) into the snapshot and drops
    /// those entries. `local_only`: only here, up to what this replica decided; otherwise
    /// only on the leader, up to what every replica decided, and every replica does the same.
    pub fn snapshot(&mut self, idx: Option<usize>, local_only: bool) -> Result<(), PaxosError> {
        self.check_running()?;
        if !T::Snapshot::use_snapshots() {
            return Err(PaxosError::SnapshotsNotSupported);
        }
        let idx = idx.unwrap_or(self.state().decided_idx);
        self.check_compaction(idx, local_only)?;
        self.step("snapshotting", |r| {
            r.store.compact_into_snapshot(idx)?;
            if !local_only {
                for to in r.peers.clone() {
                    r.send(to, PaxosMessage::Compaction(Compaction::Snapshot(idx)));
                }
            }
            Ok(())
        })
    }

    fn check_compaction(&self, idx: usize, local_only: bool) -> Result<(), PaxosError> {
        let state = self.state();
        if idx <= state.compacted_idx {
            return Err(PaxosError::AlreadyCompacted { idx, compacted_idx: state.compacted_idx });
        }
        if local_only {
            if idx > state.decided_idx {
                return Err(PaxosError::NotDecided {
                    idx,
                    decided: state.decided_idx,
                    scope: "here",
                });
            }
            return Ok(());
        }
        let Role::Leader(l) = &self.role else {
            return Err(PaxosError::NotLeader { leader: self.leader() });
        };
        let everywhere = self
            .peers
            .iter()
            .map(|p| l.decided_of.get(p).copied().unwrap_or(0))
            .fold(state.decided_idx, usize::min);
        if idx > everywhere {
            return Err(PaxosError::NotDecided {
                idx,
                decided: everywhere,
                scope: "on every replica",
            });
        }
        Ok(())
    }

    fn check_running(&self) -> Result<(), PaxosError> {
        match &self.failed {
            Some(err) => Err(err.clone()),
            None => Ok(()),
        }
    }

    fn check_not_ending(&self) -> Result<(), PaxosError> {
        let state = self.state();
        if state.stopsign.is_some() {
            return Err(PaxosError::ConfigurationEnded { decided: state.stopsign_decided });
        }
        Ok(())
    }

    /// What index `idx` of the log reads as, or `None` past the end.
    pub fn read(&self, idx: usize) -> Result<Option<LogEntry<T>>, PaxosError> {
        Ok(self.read_range(idx, idx + 1)?.and_then(|mut v| v.pop()))
    }

    /// The log at `range`, or `None` if the range reaches past the end of the log (the
    /// stop sign counts as the last index). A range that starts below the compacted
    /// prefix reads it as one [`LogEntry::Trimmed`] or [`LogEntry::Snapshotted`], followed
    /// by the entries after it.
    pub fn read_entries(
        &self,
        range: impl RangeBounds<usize>,
    ) -> Result<Option<Vec<LogEntry<T>>>, PaxosError> {
        let from = match range.start_bound() {
            Bound::Included(&i) => i,
            Bound::Excluded(&i) => i + 1,
            Bound::Unbounded => 0,
        };
        let to = match range.end_bound() {
            Bound::Included(&i) => i + 1,
            Bound::Excluded(&i) => i,
            Bound::Unbounded => self.state().logical_end(),
        };
        self.read_range(from, to)
    }

    /// The decided log from `from` on, or `None` if nothing from `from` on is decided.
    pub fn read_decided_suffix(&self, from: usize) -> Result<Option<Vec<LogEntry<T>>>, PaxosError> {
        let decided = self.state().logical_decided();
        if from >= decided {
            return Ok(None);
        }
        self.read_range(from, decided)
    }

    fn read_range(&self, from: usize, to: usize) -> Result<Option<Vec<LogEntry<T>>>, PaxosError> {
        self.check_running()?;
        let state = self.state();
        if from >= to || to > state.logical_end() {
            return Ok(None);
        }
        let read_err =
            |source| PaxosError::Storage { context: "reading the log", source: Arc::new(source) };
        let mut out = Vec::new();
        if from < state.compacted_idx {
            out.push(match self.store.snapshot().map_err(read_err)? {
                Some(snapshot) => LogEntry::Snapshotted(SnapshottedEntry {
                    trimmed_idx: state.compacted_idx,
                    snapshot,
                }),
                None => LogEntry::Trimmed(state.compacted_idx),
            });
        }
        let (start, end) = (from.max(state.compacted_idx), to.min(state.log_end));
        if start < end {
            let entries = self.store.entries(start, end).map_err(read_err)?;
            out.extend(entries.into_iter().zip(start..).map(|(e, i)| {
                if i < state.decided_idx {
                    LogEntry::Decided(e)
                } else {
                    LogEntry::Undecided(e)
                }
            }));
        }
        if to > state.log_end {
            if let Some(ss) = &state.stopsign {
                out.push(LogEntry::StopSign(ss.clone(), state.stopsign_decided));
            }
        }
        Ok(Some(out))
    }

    // ---- queries ----

    /// This replica's id.
    pub fn pid(&self) -> u64 {
        self.pid
    }

    /// The replica's configuration.
    pub fn config(&self) -> &ReplicaConfig {
        &self.config
    }

    /// The leader as far as this replica knows: itself if it leads, the leader of the
    /// round it accepts in, else the elected candidate.
    pub fn leader(&self) -> Option<u64> {
        match &self.role {
            Role::Leader(l) if l.accepting => Some(self.pid),
            Role::Follower(FollowerPhase::Accept) => Some(self.state().promise.pid),
            _ => self.ble.leader.map(|b| b.pid),
        }
    }

    /// Whether this replica leads a round that completed its prepare phase.
    pub fn is_leader(&self) -> bool {
        matches!(&self.role, Role::Leader(l) if l.accepting)
    }

    /// Entries below this index are decided (the stop sign does not count).
    pub fn decided_idx(&self) -> usize {
        self.state().decided_idx
    }

    /// One past the last entry held.
    pub fn log_end(&self) -> usize {
        self.state().log_end
    }

    /// The first index still held; below it the log is trimmed or in the snapshot.
    pub fn compacted_idx(&self) -> usize {
        self.state().compacted_idx
    }

    /// The highest round promised.
    pub fn promise(&self) -> Ballot {
        self.state().promise
    }

    /// The round of the log held.
    pub fn accepted_round(&self) -> Ballot {
        self.state().accepted_round
    }

    /// The stop sign held, and whether it is known decided.
    pub fn stopsign(&self) -> Option<(StopSign, bool)> {
        let state = self.state();
        state.stopsign.clone().map(|ss| (ss, state.stopsign_decided))
    }

    /// The stop sign, once it is decided: the configuration has ended.
    pub fn is_reconfigured(&self) -> Option<StopSign> {
        self.stopsign().filter(|(_, decided)| *decided).map(|(ss, _)| ss)
    }

    /// The error that stopped this replica, if any.
    pub fn error(&self) -> Option<&PaxosError> {
        self.failed.as_ref()
    }

    /// The storage.
    pub fn storage(&self) -> &S {
        self.store.storage()
    }

    /// The storage, for building a new replica over it (fail-recovery).
    pub fn into_storage(self) -> S {
        self.store.into_storage()
    }

    /// Entries appended or forwarded here that are not yet proposed or forwarded.
    pub fn pending_len(&self) -> usize {
        self.pending.len()
    }
}

impl<T: Entry, S: Storage<T>> std::fmt::Debug for Replica<T, S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Replica")
            .field("pid", &self.pid)
            .field("state", self.state())
            .field("leader", &self.leader())
            .field("ble_leader", &self.ble.leader)
            .field("ble_ballot", &self.ble.ballot)
            .field(
                "role",
                &match &self.role {
                    Role::Leader(l) => format!("leader {:?} accepting {}", l.n, l.accepting),
                    Role::Follower(p) => format!("{p:?}"),
                },
            )
            .field("pending", &self.pending.len())
            .field("failed", &self.failed)
            .finish_non_exhaustive()
    }
}
