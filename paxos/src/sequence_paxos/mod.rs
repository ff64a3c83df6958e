//! The replica: Sequence Paxos with ballot leader election, sans-IO.
//!
//! This file owns the [`Replica`] struct, the step path (calls stage changes and
//! messages; a take writes everything staged in one `write_atomically`, then releases the
//! messages), the one message dispatch point and the queries. Role-specific handling lives
//! in `leader.rs` and `follower.rs`; forwarding in `forward.rs`; log synchronisation in
//! `sync.rs`; appends, reconfiguration, compaction and reads in `api.rs`.

mod api;
mod follower;
mod forward;
mod leader;
mod sync;

use std::sync::Arc;

use paxstore::{Ballot, Entry, StopSign, Storage, StorageError, StorageResult};

use crate::ble::Ble;
use crate::bugs::{Bugs, InjectedBug};
use crate::messages::{Message, PaxosMessage, Payload};
use crate::outbox::Outbox;
use crate::state::{LogState, Store};
use crate::{PaxosError, ReplicaConfig};

/// One replica of a Sequence Paxos log over the storage `S`.
///
/// The replica does no I/O of its own beyond its storage: the application calls
/// [`tick`](Replica::tick) at a fixed interval, hands it every message addressed to it
/// with [`handle_incoming`](Replica::handle_incoming), and sends what
/// [`take_outgoing_messages`](Replica::take_outgoing_messages) returns.
///
/// Calls stage their changes; the take is the *step*: every storage change staged since
/// the last take goes to storage in one `write_atomically`, and the messages staged are
/// released only after that write succeeded, at most one per peer.
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
    /// The numbering of the entries this replica forwards.
    forward: forward::ForwardSeq,
    /// Messages staged since the last take.
    outbox: Outbox<T>,
    failed: Option<PaxosError>,
    ticks: u64,
    ticks_since_flush: u32,
    ticks_since_write: u32,
    /// The round in which entries were accepted since the last take, to acknowledge.
    accepted_due: Option<Ballot>,
    /// The round in which more was decided since the last take, to announce.
    decide_due: Option<Ballot>,
    /// Under [`InjectedBug::PromiseAfterSend`]: a promise sent but not yet staged, and
    /// whether the take that sent it happened.
    deferred_promise: Option<(Ballot, bool)>,
    bugs: Bugs,
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
    ///
    /// A replica that recovers state stands for election with the lowest round, like a
    /// fresh one: while a leader is alive it follows it, and only if none is does it
    /// take over (above its promise), so a restart never unseats a live leader.
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
        let ballot = Ballot::new(config.cluster.configuration_id, 1, config.priority, config.pid);
        let quorum = config.read_quorum().max(config.write_quorum());
        let ble = Ble::new(config.pid, peers.clone(), quorum, config.heartbeat_ticks, ballot);
        let mut replica = Replica {
            pid: config.pid,
            outbox: Outbox::new(config.pid, &peers),
            peers,
            store,
            ble,
            role: Role::Follower(FollowerPhase::Idle),
            pending: Vec::new(),
            pending_stopsign: None,
            forward: forward::ForwardSeq::default(),
            failed: None,
            ticks: 0,
            ticks_since_flush: 0,
            ticks_since_write: 0,
            accepted_due: None,
            decide_due: None,
            deferred_promise: None,
            bugs: Bugs::default(),
            config,
        };
        if promise != Ballot::default() {
            // Recovered: ask whoever leads to synchronise us.
            for to in replica.peers.clone() {
                replica.send(to, PaxosMessage::PrepareReq);
            }
        }
        Ok(replica)
    }

    /// Re-introduces `bug` in this replica, so a test can show that the simulator or a
    /// scenario catches it. Call it right after [`Replica::new`].
    #[cfg(feature = "testing")]
    pub fn inject_bug(&mut self, bug: InjectedBug) {
        self.bugs.insert(bug);
        match bug {
            InjectedBug::LoudRestart => {
                self.ble.ballot.n = self.ble.ballot.n.max(self.state().promise.n);
            }
            InjectedBug::ZombieLeader => self.ble.set_vouching(false),
            _ => {}
        }
    }

    // ---- the sans-IO interface ----

    /// Advances the replica's timers by one tick: leader election, batch flushing,
    /// retransmission, and writing a decided index that has waited
    /// [`ReplicaConfig::decided_write_ticks`] ticks for a write.
    pub fn tick(&mut self) -> Result<(), PaxosError> {
        self.step("ticking", |r| {
            r.ticks += 1;
            if let Some(leader) = r.ble.tick(&mut r.outbox) {
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
            r.ticks_since_write = r.ticks_since_write.saturating_add(1);
            if r.ticks_since_write >= r.config.decided_write_ticks {
                r.store.write_decided_index();
            }
            Ok(())
        })
    }

    /// Handles a message from another replica: its payloads in order. Messages not
    /// addressed to this replica or from outside its configuration, and stale or
    /// duplicated payloads, are ignored. What the message changes is written, and the
    /// replies are released, at the next take.
    pub fn handle_incoming(&mut self, msg: Message<T>) -> Result<(), PaxosError> {
        self.step("handling a message", |r| r.dispatch_message(msg))
    }

    /// The step: writes every change staged since the last take in **one**
    /// `write_atomically` (one sync on a durable backend, shared by every message handled,
    /// every append and every tick since), then returns the messages staged, at most one
    /// per peer. If nothing but the decided index changed, nothing is written.
    ///
    /// If the write fails, no message is released, the replica re-reads its state from
    /// storage and stops; this call and every later one return [`PaxosError::Storage`].
    pub fn take_outgoing_messages(&mut self) -> Result<Vec<Message<T>>, PaxosError> {
        let mut out = Vec::with_capacity(self.peers.len());
        self.drain_outgoing_into(&mut out)?;
        Ok(out)
    }

    /// [`take_outgoing_messages`](Replica::take_outgoing_messages), moving the messages
    /// to the end of `buf` (reusing its allocation).
    pub fn drain_outgoing_into(&mut self, buf: &mut Vec<Message<T>>) -> Result<(), PaxosError> {
        self.check_running()?;
        if self.nothing_to_take() {
            return Ok(());
        }
        if let Err(source) = self.propose_full_batch() {
            return Err(self.stop("proposing", source));
        }
        self.send_due_accepted();
        self.send_due_decide();
        self.stage_deferred_promise();
        match self.store.commit(self.bugs.has(InjectedBug::ForgetDecidedStopsign)) {
            Ok(wrote) => {
                self.outbox.drain_into(buf);
                if wrote {
                    self.ticks_since_write = 0;
                    // What this write made durable may complete a quorum with the leader.
                    self.update_decided();
                }
                Ok(())
            }
            Err(source) => Err(self.stop("writing a step", source)),
        }
    }

    /// Hands each payload of `msg`, in order, to [`dispatch`](Replica::dispatch).
    fn dispatch_message(&mut self, msg: Message<T>) -> StorageResult<()> {
        let from = msg.from;
        if msg.to != self.pid || !self.peers.contains(&from) {
            return Ok(());
        }
        msg.payloads.try_for_each(|payload| self.dispatch(from, payload))
    }

    /// The one dispatch point of every incoming payload.
    fn dispatch(&mut self, from: u64, payload: Payload<T>) -> StorageResult<()> {
        match payload {
            Payload::Ble(m) => self.ble.handle(from, m, &mut self.outbox),
            Payload::Paxos(m) => match m {
                PaxosMessage::Prepare(p) => self.handle_prepare(from, p)?,
                PaxosMessage::Promise(p) => self.handle_promise(from, *p)?,
                PaxosMessage::AcceptSync(a) => self.handle_accept_sync(from, *a)?,
                PaxosMessage::AcceptDecide(a) => self.handle_accept_decide(from, a)?,
                PaxosMessage::Accepted(a) => self.handle_accepted(from, a),
                PaxosMessage::Decide(d) => self.handle_decide(from, d),
                PaxosMessage::Nack { n, promise } => self.handle_nack(n, promise),
                PaxosMessage::PrepareReq => self.handle_prepare_req(from),
                PaxosMessage::Forward(f) => self.handle_forward(from, f)?,
                PaxosMessage::ForwardStopSign(ss) => self.handle_forward_stopsign(*ss)?,
                PaxosMessage::Compaction(c) => self.handle_compaction(c)?,
            },
        }
        Ok(())
    }

    /// Runs `f`, which stages storage changes and messages. If it fails (a storage read),
    /// the replica stops.
    fn step<R>(
        &mut self,
        context: &'static str,
        f: impl FnOnce(&mut Self) -> StorageResult<R>,
    ) -> Result<R, PaxosError> {
        self.check_running()?;
        f(self).map_err(|source| self.stop(context, source))
    }

    /// Stops the replica on a storage error: drops everything staged, re-reads the state
    /// from storage, and keeps the error for every later call.
    fn stop(&mut self, context: &'static str, source: StorageError) -> PaxosError {
        self.outbox.clear();
        self.accepted_due = None;
        self.decide_due = None;
        self.store.rollback();
        self.role = Role::Follower(FollowerPhase::Idle);
        let err = PaxosError::Storage { context, source: Arc::new(source) };
        self.failed = Some(err.clone());
        err
    }

    /// Stages a Sequence Paxos message to `to`.
    fn send(&mut self, to: u64, msg: PaxosMessage<T>) {
        self.outbox.paxos(to, msg);
    }

    fn state(&self) -> &LogState {
        &self.store.state
    }

    fn has_bug(&self, bug: InjectedBug) -> bool {
        self.bugs.has(bug)
    }

    /// Promises round `n`: the promise is written with the take that sends the `Promise`.
    fn make_promise(&mut self, n: Ballot) {
        if self.has_bug(InjectedBug::PromiseAfterSend) {
            self.store.state.promise = n;
            self.deferred_promise = Some((n, false));
        } else if self.has_bug(InjectedBug::UnwrittenPromise) {
            self.store.state.promise = n;
        } else {
            self.store.set_promise(n);
        }
    }

    /// Under [`InjectedBug::PromiseAfterSend`], stages a promise one take late.
    fn stage_deferred_promise(&mut self) {
        match self.deferred_promise {
            Some((n, true)) => {
                self.store.write_promise_again(n);
                self.deferred_promise = None;
            }
            Some((n, false)) => self.deferred_promise = Some((n, true)),
            None => {}
        }
    }

    /// Whether a take would propose, stage, write and send nothing (most takes between
    /// batches), so that it can return at once. Exactly the conditions under which every
    /// part of the take does nothing.
    fn nothing_to_take(&self) -> bool {
        let full_batch = matches!(&self.role, Role::Leader(l) if l.accepting)
            && self.pending.len() >= self.config.batch_size;
        !full_batch
            && self.accepted_due.is_none()
            && self.decide_due.is_none()
            && self.deferred_promise.is_none()
            && !self.store.has_staged()
            && self.outbox.is_empty()
            && !self.has_bug(InjectedBug::ForgetDecidedStopsign)
    }

    /// On a leader that accepts, proposes what was appended here since the last take if it
    /// fills a batch: one accept per follower and one append to the staged log per take,
    /// however many entries were appended one by one. (First in the take, so the decided
    /// index announced at this take joins the accept.)
    fn propose_full_batch(&mut self) -> StorageResult<()> {
        match &self.role {
            Role::Leader(l) if l.accepting && self.pending.len() >= self.config.batch_size => {
                self.propose_pending()
            }
            _ => Ok(()),
        }
    }

    /// Proposes (on the leader) or forwards (on a synchronised follower) what is pending.
    fn flush_pending(&mut self) -> StorageResult<()> {
        match &self.role {
            Role::Leader(_) => self.propose_pending(),
            Role::Follower(_) => {
                self.forward_pending();
                Ok(())
            }
        }
    }

    fn check_running(&self) -> Result<(), PaxosError> {
        match &self.failed {
            Some(err) => Err(err.clone()),
            None => Ok(()),
        }
    }

    fn role_is(&self, phase: FollowerPhase) -> bool {
        matches!(self.role, Role::Follower(p) if p == phase)
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

    /// Entries below this index are decided (the stop sign does not count). After a crash
    /// it may be lower than before (see the crate docs); the entries decided again are
    /// the same.
    pub fn decided_idx(&self) -> usize {
        self.state().decided_idx
    }

    /// One past the last entry held (including entries staged for the next take).
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

    /// The storage, for building a new replica over it (fail-recovery). Changes staged
    /// since the last take are dropped, as in a crash (their messages were never sent).
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
