//! Appends made on a follower travel to the leader, numbered so that the leader proposes
//! each at most once.
//!
//! A follower forwards only while it is synchronised with a leader (in the accept phase
//! of round `n`), and only to that leader; elsewhere appends wait in `pending`. It numbers
//! the entries it forwards in round `n` consecutively (`Forward { n, seq, entries }`),
//! starting from the number the leader's `AcceptSync` gave it (the leader's count of what
//! it already received from that follower, so a restarted follower continues above
//! it). The leader of round `n` keeps, per follower, the next number it expects, and
//! proposes only entries at or above it; a `Forward` of another round is dropped; nobody
//! relays a `Forward`.
//!
//! So an entry appended once is proposed at most once: its `Forward` names one round, only
//! that round's leader proposes it, and that leader proposes each number once for as long
//! as it leads the round (its count lives as long as its round: a leader that restarts
//! never leads that round again). What is not guaranteed: that a forwarded entry is
//! decided at all. It is lost if its `Forward` is lost, arrives after the leader stepped
//! down, or arrives after a later `Forward` from the same follower (the leader has moved
//! past its number); the application watches the log and appends again if it must.

use paxstore::{Ballot, Entry, StopSign, Storage, StorageResult};

use super::{FollowerPhase, Replica, Role};
use crate::bugs::InjectedBug;
use crate::messages::{Forward, PaxosMessage};

/// The numbering of this replica's forwards in the round it accepts in.
#[derive(Clone, Copy, Debug, Default)]
pub(super) struct ForwardSeq {
    round: Ballot,
    next: u64,
}

impl<T: Entry, S: Storage<T>> Replica<T, S> {
    /// Sends what is pending to the leader of the round this replica accepts in; if it is
    /// not synchronised with a leader, the entries wait.
    pub(super) fn forward_pending(&mut self) {
        if !self.role_is(FollowerPhase::Accept) {
            return;
        }
        let n = self.state().promise;
        if n.pid == self.pid || n != self.forward.round {
            return;
        }
        if !self.pending.is_empty() {
            let entries = std::mem::take(&mut self.pending);
            let seq = self.forward.next;
            self.forward.next = seq.saturating_add(entries.len() as u64);
            self.send(n.pid, PaxosMessage::Forward(Forward { n, seq, entries }));
        }
        if let Some(ss) = self.pending_stopsign.take() {
            self.send(n.pid, PaxosMessage::ForwardStopSign(ss));
        }
    }

    /// Entering the accept phase of round `n`: number the next forwards from `leader_next`
    /// on (what the leader has from us), or from our own count if it is higher (forwards
    /// of this round still in flight).
    pub(super) fn resume_forwarding(&mut self, n: Ballot, leader_next: u64) {
        let next = if self.forward.round == n {
            self.forward.next.max(leader_next)
        } else {
            leader_next
        };
        self.forward = ForwardSeq { round: n, next };
    }

    /// The leader of `f.n` proposes the entries it has not had from `from` yet.
    pub(super) fn handle_forward(&mut self, from: u64, f: Forward<T>) -> StorageResult<()> {
        let Role::Leader(l) = &mut self.role else { return Ok(()) };
        if f.n != l.n || !l.accepting || self.store.state.stopsign.is_some() {
            return Ok(());
        }
        let Forward { seq, mut entries, .. } = f;
        let next = l.forwarded.entry(from).or_insert(0);
        let skip = if self.bugs.has(InjectedBug::DuplicateForwards) {
            0
        } else {
            usize::try_from(next.saturating_sub(seq)).unwrap_or(usize::MAX)
        };
        if skip >= entries.len() {
            return Ok(());
        }
        *next = (*next).max(seq.saturating_add(entries.len() as u64));
        if skip == 0 && self.pending.is_empty() {
            self.pending = entries;
        } else {
            self.pending.extend(entries.drain(skip..));
        }
        if self.pending.len() >= self.config.batch_size {
            self.propose_pending()?;
        }
        Ok(())
    }

    /// A reconfiguration requested at a follower: the leader proposes it (once it
    /// accepts, if it is still preparing); anyone else drops it.
    pub(super) fn handle_forward_stopsign(&mut self, ss: StopSign) -> StorageResult<()> {
        if !matches!(self.role, Role::Leader(_))
            || self.state().stopsign.is_some()
            || self.pending_stopsign.is_some()
        {
            return Ok(());
        }
        self.pending_stopsign = Some(ss);
        self.propose_pending()
    }
}
