//! The leader's side of Sequence Paxos: becoming leader, collecting promises and
//! adopting the most recent log, synchronising each follower, proposing (batched,
//! pipelined), counting acceptances and deciding, and retransmitting to followers that
//! made no progress.

use std::collections::BTreeMap;

use paxstore::{Ballot, Entry, Storage, StorageResult};

use super::{FollowerPhase, Replica, Role};
use crate::messages::{
    AcceptDecide, AcceptSync, Accepted, Decide, LogSync, PaxosMessage, Prepare, Promise,
};

/// What a follower reported in its promise.
#[derive(Clone, Copy, Debug)]
pub(super) struct PromiseMeta {
    accepted_round: Ballot,
    log_end: usize,
    /// Logical.
    decided_idx: usize,
    has_stopsign: bool,
}

impl PromiseMeta {
    fn logical_end(&self) -> usize {
        self.log_end.saturating_add(usize::from(self.has_stopsign))
    }
}

/// The leader's volatile state for its round `n`.
pub(super) struct LeaderState<T: Entry> {
    pub(super) n: Ballot,
    /// `false` in the prepare phase, `true` once the log is adopted.
    pub(super) accepting: bool,
    /// Followers that promised in this round.
    promises: BTreeMap<u64, PromiseMeta>,
    /// The most recent log among the promises so far: (round, logical end, its suffix).
    best: (Ballot, usize, Option<LogSync<T>>),
    /// The highest logical decided index among the promises.
    max_promised_decided: usize,
    /// The round and logical end of the log adopted at the end of the prepare phase.
    adopted: (Ballot, usize),
    /// Logical accepted index of each follower in this round.
    accepted: BTreeMap<u64, usize>,
    /// Logical decided index each follower reported.
    pub(super) decided_of: BTreeMap<u64, usize>,
    /// `accepted` at the last retransmission timer, to spot followers that are stuck.
    progress_mark: BTreeMap<u64, usize>,
}

impl<T: Entry, S: Storage<T>> Replica<T, S> {
    /// Leader election chose `leader`.
    pub(super) fn handle_leader(&mut self, leader: Ballot) -> StorageResult<()> {
        if leader.pid != self.pid {
            if matches!(self.role, Role::Leader(_)) {
                self.role = Role::Follower(FollowerPhase::Idle);
            }
            return Ok(());
        }
        if matches!(&self.role, Role::Leader(l) if l.n == leader) {
            return Ok(());
        }
        if leader <= self.state().promise {
            // Someone promised a higher round: stand again above it.
            self.ble.raise_above(self.state().promise.n);
            return Ok(());
        }
        self.become_leader(leader)
    }

    fn become_leader(&mut self, n: Ballot) -> StorageResult<()> {
        self.store.set_promise(n);
        let state = self.state();
        let own = (state.accepted_round, state.logical_end());
        self.role = Role::Leader(Box::new(LeaderState {
            n,
            accepting: false,
            promises: BTreeMap::new(),
            best: (own.0, own.1, None),
            max_promised_decided: state.logical_decided(),
            adopted: own,
            accepted: BTreeMap::new(),
            decided_of: BTreeMap::new(),
            progress_mark: BTreeMap::new(),
        }));
        for to in self.peers.clone() {
            self.send_prepare(to);
        }
        self.maybe_finish_prepare()
    }

    pub(super) fn send_prepare(&mut self, to: u64) {
        let Role::Leader(l) = &self.role else { return };
        let state = self.state();
        let prepare = Prepare {
            n: l.n,
            decided_idx: state.decided_idx,
            accepted_round: state.accepted_round,
            log_end: state.log_end,
        };
        self.send(to, PaxosMessage::Prepare(prepare));
    }

    pub(super) fn handle_promise(&mut self, from: u64, p: Promise<T>) -> StorageResult<()> {
        let Role::Leader(l) = &mut self.role else { return Ok(()) };
        if p.n != l.n {
            return Ok(());
        }
        let meta = PromiseMeta {
            accepted_round: p.accepted_round,
            log_end: p.log_end,
            decided_idx: p.decided_idx,
            has_stopsign: p.has_stopsign,
        };
        if l.accepting {
            l.promises.insert(from, meta);
            update_max(&mut l.decided_of, from, meta.decided_idx);
            return self.sync_follower(from);
        }
        let key = (meta.accepted_round, meta.logical_end());
        if key > (l.best.0, l.best.1) {
            if p.sync.is_none() {
                return Ok(()); // a more recent log without its suffix: cannot use this promise
            }
            l.best = (key.0, key.1, p.sync);
        }
        l.max_promised_decided = l.max_promised_decided.max(meta.decided_idx);
        l.promises.insert(from, meta);
        update_max(&mut l.decided_of, from, meta.decided_idx);
        self.maybe_finish_prepare()
    }

    /// With a quorum of promises: adopt the most recent log, synchronise the followers
    /// and propose what is pending.
    fn maybe_finish_prepare(&mut self) -> StorageResult<()> {
        let quorum = self.config.read_quorum();
        let Role::Leader(l) = &mut self.role else { return Ok(()) };
        if l.accepting || l.promises.len() + 1 < quorum {
            return Ok(());
        }
        let n = l.n;
        let max_decided = l.max_promised_decided;
        if let Some(sync) = l.best.2.take() {
            if !self.apply_sync(sync, false) {
                // Cannot happen with correct peers; never lead on a log we could not adopt.
                self.role = Role::Follower(FollowerPhase::Idle);
                self.ble.raise_above(n.n);
                return Ok(());
            }
        }
        self.store.raise_logical_decided(max_decided.min(self.state().logical_end()));
        self.store.set_accepted_round(n);
        let adopted = (self.state().accepted_round, self.state().logical_end());
        let Role::Leader(l) = &mut self.role else { return Ok(()) };
        l.accepting = true;
        l.adopted = adopted;
        let followers: Vec<u64> = l.promises.keys().copied().collect();
        for pid in followers {
            self.sync_follower(pid)?;
        }
        if self.state().stopsign.is_some() {
            // The adopted log ends the configuration: nothing more can be proposed.
            self.pending.clear();
            self.pending_stopsign = None;
        }
        self.propose_pending()?;
        self.update_decided();
        Ok(())
    }

    /// Sends `pid` what it lacks of the leader's log, from what it promised.
    fn sync_follower(&mut self, pid: u64) -> StorageResult<()> {
        let Role::Leader(l) = &self.role else { return Ok(()) };
        let Some(meta) = l.promises.get(&pid).copied() else { return Ok(()) };
        let same_round = meta.accepted_round == l.n
            || (meta.accepted_round == l.adopted.0 && meta.logical_end() <= l.adopted.1);
        // A log of this round (or a prefix of the adopted one) is a prefix of ours; any
        // other may have diverged after what it decided.
        let from = if same_round { meta.log_end } else { meta.decided_idx.min(meta.log_end) };
        let n = l.n;
        if let Some(sync) = self.log_sync_from(from)? {
            let decided_idx = self.state().logical_decided();
            self.send(pid, PaxosMessage::AcceptSync(AcceptSync { n, sync, decided_idx }));
        }
        Ok(())
    }

    /// Proposes the pending entries (all of them) and then a pending stop sign.
    pub(super) fn propose_pending(&mut self) -> StorageResult<()> {
        let Role::Leader(l) = &self.role else { return Ok(()) };
        if !l.accepting {
            return Ok(());
        }
        let n = l.n;
        let followers: Vec<u64> = l.promises.keys().copied().collect();
        if self.state().stopsign.is_some() {
            self.pending.clear();
            self.pending_stopsign = None;
            return Ok(());
        }
        let entries = std::mem::take(&mut self.pending);
        let stopsign = self.pending_stopsign.take();
        if entries.is_empty() && stopsign.is_none() {
            return Ok(());
        }
        let start_idx = self.state().log_end;
        self.store.append(entries.clone());
        if let Some(ss) = &stopsign {
            self.store.set_stopsign(Some(ss.clone()));
        }
        let decided_idx = self.state().logical_decided();
        for to in followers {
            let msg = AcceptDecide {
                n,
                start_idx,
                entries: entries.clone(),
                stopsign: stopsign.clone(),
                decided_idx,
            };
            self.send(to, PaxosMessage::AcceptDecide(msg));
        }
        self.ticks_since_flush = 0;
        self.update_decided();
        Ok(())
    }

    pub(super) fn handle_accepted(&mut self, from: u64, a: Accepted) -> StorageResult<()> {
        let Role::Leader(l) = &mut self.role else { return Ok(()) };
        if a.n != l.n || !l.accepting {
            return Ok(());
        }
        update_max(&mut l.accepted, from, a.accepted_idx);
        update_max(&mut l.decided_of, from, a.decided_idx);
        self.update_decided();
        Ok(())
    }

    /// Decides what a write quorum accepted in this round, and tells the followers.
    fn update_decided(&mut self) {
        let quorum = self.config.write_quorum();
        let Role::Leader(l) = &self.role else { return };
        let end = self.state().logical_end();
        let mut accepted: Vec<usize> = l.accepted.values().map(|&a| a.min(end)).collect();
        accepted.push(end);
        if accepted.len() < quorum {
            return;
        }
        accepted.sort_unstable_by(|a, b| b.cmp(a));
        let candidate = accepted[quorum - 1];
        if candidate <= self.state().logical_decided() {
            return;
        }
        self.decide_due = Some(l.n);
        self.store.raise_logical_decided(candidate);
    }

    /// At the end of a step that decided more: one `Decide` per follower, however many
    /// acceptances the step handled.
    pub(super) fn send_due_decide(&mut self) {
        let Some(n) = self.decide_due.take() else { return };
        let Role::Leader(l) = &self.role else { return };
        if l.n != n || !l.accepting {
            return;
        }
        let followers: Vec<u64> = l.promises.keys().copied().collect();
        let decided_idx = self.state().logical_decided();
        for to in followers {
            self.send(to, PaxosMessage::Decide(Decide { n, decided_idx }));
        }
    }

    pub(super) fn handle_nack(&mut self, n: Ballot, promise: Ballot) -> StorageResult<()> {
        if matches!(&self.role, Role::Leader(l) if l.n == n) && promise > n {
            self.ble.raise_above(promise.n);
        }
        Ok(())
    }

    pub(super) fn handle_prepare_req(&mut self, from: u64) -> StorageResult<()> {
        if matches!(self.role, Role::Leader(_)) {
            self.send_prepare(from);
        }
        Ok(())
    }

    /// Retransmission timer: re-prepare followers that did not promise or never
    /// acknowledged their sync; resend what stuck followers lack; ask the leader to
    /// synchronise this replica if it is not synchronised.
    pub(super) fn resend(&mut self) -> StorageResult<()> {
        let Role::Leader(l) = &mut self.role else {
            if self.role_is(FollowerPhase::Accept) {
                return Ok(());
            }
            if let Some(to) = self.ble.leader.map(|b| b.pid).filter(|&p| p != self.pid) {
                self.send(to, PaxosMessage::PrepareReq);
            }
            return Ok(());
        };
        let (n, accepting) = (l.n, l.accepting);
        let state = self.store.state.clone();
        let mut prepare = Vec::new();
        let mut catch_up = Vec::new();
        for &pid in &self.peers {
            let promised = l.promises.contains_key(&pid);
            match l.accepted.get(&pid).copied() {
                _ if !promised => prepare.push(pid),
                None if accepting => prepare.push(pid),
                Some(acc) if accepting => {
                    let stuck = l.progress_mark.insert(pid, acc) == Some(acc);
                    let decided = l.decided_of.get(&pid).copied().unwrap_or(0);
                    let behind = acc < state.logical_end() || decided < state.logical_decided();
                    if stuck && behind {
                        if acc < state.compacted_idx {
                            prepare.push(pid);
                        } else {
                            catch_up.push((pid, acc.min(state.log_end)));
                        }
                    }
                }
                _ => {}
            }
        }
        for pid in prepare {
            self.send_prepare(pid);
        }
        for (pid, from) in catch_up {
            let entries = self.store.entries(from, state.log_end)?;
            let msg = AcceptDecide {
                n,
                start_idx: from,
                entries,
                stopsign: state.stopsign.clone(),
                decided_idx: state.logical_decided(),
            };
            self.send(pid, PaxosMessage::AcceptDecide(msg));
        }
        Ok(())
    }

    fn role_is(&self, phase: FollowerPhase) -> bool {
        matches!(self.role, Role::Follower(p) if p == phase)
    }
}

fn update_max(map: &mut BTreeMap<u64, usize>, key: u64, value: usize) {
    let slot = map.entry(key).or_insert(value);
    *slot = (*slot).max(value);
}
