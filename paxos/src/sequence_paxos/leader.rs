//! The leader's side of Sequence Paxos: becoming leader, collecting promises and
//! adopting the most recent log, synchronising each follower, proposing (batched,
//! pipelined), counting acceptances and deciding, stepping down when refused, and
//! retransmitting to followers that made no progress.

use paxstore::{Ballot, Entry, Storage, StorageResult};

use super::forward::ForwardLedger;
use super::{FollowerPhase, Replica, Role};
use crate::bugs::InjectedBug;
use crate::messages::{
    AcceptDecide, AcceptSync, Accepted, LogSync, PaxosMessage, Prepare, Promise,
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
    promises: PeerMap<PromiseMeta>,
    /// The keys of `promises`, for the paths that run once per proposal.
    followers: Vec<u64>,
    /// The most recent log among the promises so far: (round, logical end, its suffix).
    best: (Ballot, usize, Option<LogSync<T>>),
    /// The highest logical decided index among the promises.
    max_promised_decided: usize,
    /// The round and logical end of the log adopted at the end of the prepare phase
    /// (before this round's entries): a follower whose log is a prefix of it needs only
    /// what it lacks.
    adopted: (Ballot, usize),
    /// Logical accepted index of each follower in this round.
    accepted: PeerMap<usize>,
    /// Logical decided index each follower reported.
    decided_of: PeerMap<usize>,
    /// `accepted` at the last retransmission timer, to spot followers that are stuck.
    progress_mark: PeerMap<usize>,
    /// What each follower forwarded in this round.
    pub(super) forwarded: ForwardLedger,
}

impl<T: Entry> LeaderState<T> {
    /// The logical decided index `pid` reported (0 if none).
    pub(super) fn decided_of(&self, pid: u64) -> usize {
        self.decided_of.get(pid).unwrap_or(0)
    }

    fn add_promise(&mut self, from: u64, meta: PromiseMeta) {
        if self.promises.insert(from, meta).is_none() {
            self.followers.push(from);
        }
        // A promise reports the follower's state afresh (it may have restarted, and a
        // decided stop sign is not written): it replaces what the follower reported before.
        self.decided_of.insert(from, meta.decided_idx);
    }
}

impl<T: Entry, S: Storage<T>> Replica<T, S> {
    /// Leader election says `leader` leads (called every heartbeat round in which this
    /// replica is quorum-connected): step down for another, or lead a round of our own.
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
        self.make_promise(n);
        let state = self.state();
        let own = (state.accepted_round, state.logical_end());
        self.role = Role::Leader(Box::new(LeaderState {
            n,
            accepting: false,
            promises: PeerMap::default(),
            followers: Vec::new(),
            best: (own.0, own.1, None),
            max_promised_decided: state.logical_decided(),
            adopted: own,
            accepted: PeerMap::default(),
            decided_of: PeerMap::default(),
            progress_mark: PeerMap::default(),
            forwarded: ForwardLedger::default(),
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
            l.add_promise(from, meta);
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
        l.add_promise(from, meta);
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
        let best_round = l.best.0;
        if let Some(sync) = l.best.2.take() {
            if !self.apply_sync(sync, false) {
                // Cannot happen with correct peers; never lead on a log we could not adopt.
                self.role = Role::Follower(FollowerPhase::Idle);
                self.ble.raise_above(n.n);
                return Ok(());
            }
        }
        self.store.raise_logical_decided(max_decided.min(self.state().logical_end()));
        // The adopted log is the most recent promised one: its round, and its end.
        let mut adopted = (best_round, self.state().logical_end());
        self.store.set_accepted_round(n);
        if self.has_bug(InjectedBug::ResendAfterDecided) {
            adopted.0 = n;
        }
        let Role::Leader(l) = &mut self.role else { return Ok(()) };
        l.accepting = true;
        l.adopted = adopted;
        for pid in l.followers.clone() {
            self.sync_follower(pid)?;
        }
        if self.state().stopsign.is_some() {
            // The adopted log ends the configuration: nothing more can be proposed.
            self.pending.clear();
            self.pending_stopsign = None;
        }
        self.propose_pending()
    }

    /// Sends `pid` what it lacks of the leader's log, from what it promised.
    fn sync_follower(&mut self, pid: u64) -> StorageResult<()> {
        let Role::Leader(l) = &self.role else { return Ok(()) };
        let Some(meta) = l.promises.get(pid) else { return Ok(()) };
        // A log of this round, or a prefix of the adopted log (same round, not longer),
        // is a prefix of ours; any other may have diverged after what it decided.
        let prefix = meta.accepted_round == l.n
            || (meta.accepted_round == l.adopted.0 && meta.logical_end() <= l.adopted.1);
        let from = if prefix { meta.log_end } else { meta.decided_idx.min(meta.log_end) };
        let n = l.n;
        if let Some(sync) = self.log_sync_from(from)? {
            let decided_idx = self.state().logical_decided();
            let Role::Leader(l) = &mut self.role else { return Ok(()) };
            let forward_epoch = l.forwarded.open_epoch(pid);
            let msg = AcceptSync { n, sync, decided_idx, forward_epoch };
            self.send(pid, PaxosMessage::AcceptSync(Box::new(msg)));
        }
        Ok(())
    }

    /// Proposes the pending entries (all of them) and then a pending stop sign: they join
    /// the log staged for the next write and the accept pending for each follower.
    pub(super) fn propose_pending(&mut self) -> StorageResult<()> {
        let Role::Leader(l) = &self.role else { return Ok(()) };
        if !l.accepting {
            return Ok(());
        }
        if self.store.state.stopsign.is_some() {
            self.pending.clear();
            self.pending_stopsign = None;
            return Ok(());
        }
        if self.pending.is_empty() && self.pending_stopsign.is_none() {
            return Ok(());
        }
        let stopsign = self.pending_stopsign.take();
        let (n, start_idx) = (l.n, self.store.state.log_end);
        let decided_idx = self.store.state.logical_decided();
        for &to in &l.followers {
            self.outbox.accept(to, n, start_idx, &self.pending, stopsign.as_ref(), decided_idx);
        }
        self.store.append(&mut self.pending);
        if stopsign.is_some() {
            self.store.set_stopsign(stopsign);
        }
        self.ticks_since_flush = 0;
        Ok(())
    }

    pub(super) fn handle_accepted(&mut self, from: u64, a: Accepted) {
        let Role::Leader(l) = &mut self.role else { return };
        if a.n != l.n || !l.accepting {
            return;
        }
        l.accepted.raise(from, a.accepted_idx);
        l.decided_of.raise(from, a.decided_idx);
        self.update_decided();
    }

    /// Decides what a write quorum accepted in this round. The leader counts only what it
    /// has written itself: entries staged for the next write are not accepted yet.
    pub(super) fn update_decided(&mut self) {
        let Role::Leader(l) = &self.role else { return };
        if !l.accepting {
            return;
        }
        let (end, decided) = (self.state().logical_end(), self.state().logical_decided());
        if decided >= end {
            return; // everything held is decided already
        }
        let durable = self.store.durable();
        let own = if durable.accepted_round == l.n { durable.logical_end().min(end) } else { 0 };
        // What a write quorum accepted past the decided index: the quorum-th largest of the
        // acceptances above it (none if fewer than a quorum are).
        let past = l.accepted.values().map(|a| a.min(end)).chain([own]).filter(|&a| a > decided);
        let Some(candidate) = kth_largest(past, self.config.write_quorum()) else {
            return;
        };
        self.decide_due = Some(l.n);
        self.store.raise_logical_decided(candidate);
    }

    /// At a take that follows new decisions: one `Decide` per follower (merged into a
    /// pending accept where there is one), however many acceptances were handled.
    pub(super) fn send_due_decide(&mut self) {
        let Some(n) = self.decide_due.take() else { return };
        let Role::Leader(l) = &self.role else { return };
        if l.n != n || !l.accepting {
            return;
        }
        let decided_idx = self.store.state.logical_decided();
        for &to in &l.followers {
            self.outbox.decide(to, n, decided_idx);
        }
    }

    /// A replica refused round `n` because it promised `promise`: a leader of `n` can no
    /// longer decide there, so it steps down and follows the higher round while that is
    /// alive (leader election takes over if it is not).
    pub(super) fn handle_nack(&mut self, n: Ballot, promise: Ballot) {
        if promise <= n || !matches!(&self.role, Role::Leader(l) if l.n == n) {
            return;
        }
        if self.has_bug(InjectedBug::ZombieLeader) {
            self.ble.raise_above(promise.n);
            return;
        }
        self.role = Role::Follower(FollowerPhase::Idle);
        self.ble.adopt(promise);
    }

    pub(super) fn handle_prepare_req(&mut self, from: u64) {
        if matches!(self.role, Role::Leader(_)) {
            self.send_prepare(from);
        }
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
            let promised = l.promises.get(pid).is_some();
            match l.accepted.get(pid) {
                _ if !promised => prepare.push(pid),
                None if accepting => prepare.push(pid),
                Some(acc) if accepting => {
                    let stuck = l.progress_mark.insert(pid, acc) == Some(acc);
                    let decided = l.decided_of.get(pid).unwrap_or(0);
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
                stopsign: state.stopsign.clone().map(Box::new),
                decided_idx: state.logical_decided(),
            };
            self.send(pid, PaxosMessage::AcceptDecide(msg));
        }
        Ok(())
    }
}

/// A map from peer to value: a few entries, looked up on every acknowledgement.
#[derive(Debug)]
struct PeerMap<V>(Vec<(u64, V)>);

impl<V> Default for PeerMap<V> {
    fn default() -> Self {
        PeerMap(Vec::new())
    }
}

impl<V: Copy> PeerMap<V> {
    fn get(&self, pid: u64) -> Option<V> {
        self.0.iter().find(|(p, _)| *p == pid).map(|(_, v)| *v)
    }

    /// Sets `pid`'s value; returns the one it replaced.
    fn insert(&mut self, pid: u64, value: V) -> Option<V> {
        match self.0.iter_mut().find(|(p, _)| *p == pid) {
            Some((_, v)) => Some(std::mem::replace(v, value)),
            None => {
                self.0.push((pid, value));
                None
            }
        }
    }

    fn len(&self) -> usize {
        self.0.len()
    }

    fn values(&self) -> impl Iterator<Item = V> + Clone + '_ {
        self.0.iter().map(|(_, v)| *v)
    }
}

impl PeerMap<usize> {
    /// Raises `pid`'s value to at least `value`.
    fn raise(&mut self, pid: u64, value: usize) {
        match self.0.iter_mut().find(|(p, _)| *p == pid) {
            Some((_, v)) => *v = (*v).max(value),
            None => self.0.push((pid, value)),
        }
    }
}

/// The `k`-th largest of `values` (from 1), or `None` if there are fewer than `k`. Keeps
/// the `k` largest seen so far, in order (`k` is a quorum: small).
fn kth_largest(values: impl Iterator<Item = usize>, k: usize) -> Option<usize> {
    const STACK: usize = 8;
    if k == 0 {
        return None;
    }
    let mut stack = [0usize; STACK];
    let mut heap = Vec::new();
    let top: &mut [usize] = if k <= STACK {
        &mut stack[..k]
    } else {
        heap.resize(k, 0);
        &mut heap
    };
    let mut seen = 0;
    for v in values {
        // Insert `v` into the descending `top[..min(seen, k)]`, dropping the smallest.
        let filled = seen.min(k);
        let mut i = filled;
        while i > 0 && top[i - 1] < v {
            if i < k {
                top[i] = top[i - 1];
            }
            i -= 1;
        }
        if i < k {
            top[i] = v;
        }
        seen += 1;
    }
    (seen >= k).then(|| top[k - 1])
}

#[cfg(test)]
mod tests {
    use super::kth_largest;

    #[test]
    fn kth_largest_counts_from_the_top() {
        assert_eq!(kth_largest([3, 9, 5].into_iter(), 2), Some(5));
        assert_eq!(kth_largest([3, 9, 5].into_iter(), 1), Some(9));
        assert_eq!(kth_largest([3, 9, 5].into_iter(), 3), Some(3));
        assert_eq!(kth_largest([5, 5, 1].into_iter(), 2), Some(5));
        assert_eq!(kth_largest([3].into_iter(), 2), None);
        assert_eq!(kth_largest([3].into_iter(), 0), None);
        assert_eq!(kth_largest(0..40, 3), Some(37));
        assert_eq!(kth_largest((0..40).rev(), 12), Some(28), "more than fit on the stack");
    }
}
