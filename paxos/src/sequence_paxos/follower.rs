//! The follower's side of Sequence Paxos: promising (with the part of its log the
//! leader may lack), taking the leader's synchronisation, accepting pipelined entries,
//! learning the decided index, and refusing messages of a round below its promise.

use paxstore::{Ballot, Entry, Storage, StorageResult};

use super::{FollowerPhase, Replica, Role};
use crate::bugs::InjectedBug;
use crate::messages::{AcceptDecide, AcceptSync, Accepted, Decide, PaxosMessage, Prepare, Promise};

impl<T: Entry, S: Storage<T>> Replica<T, S> {
    pub(super) fn handle_prepare(&mut self, from: u64, p: Prepare) -> StorageResult<()> {
        let promise = self.state().promise;
        if p.n.pid != from {
            return Ok(());
        }
        if p.n < promise {
            self.send(from, PaxosMessage::Nack { n: p.n, promise });
            return Ok(());
        }
        if let Role::Leader(l) = &self.role {
            if l.n >= p.n {
                return Ok(());
            }
        }
        self.make_promise(p.n);
        self.ble.adopt(p.n);
        self.role = Role::Follower(FollowerPhase::Prepare);
        let state = self.state();
        // The leader may lack our log if it is from a later round, or longer in its round.
        let sync_from = if state.accepted_round > p.accepted_round {
            Some(p.decided_idx)
        } else if state.accepted_round == p.accepted_round && state.logical_end() > p.log_end {
            Some(p.log_end)
        } else {
            None
        };
        let sync = match sync_from {
            Some(idx) => self.log_sync_from(idx)?,
            None => None,
        };
        // The decided index reported is written with the promise: a leader trims up to what
        // every replica reported, so a report must survive a crash.
        self.store.write_decided_index();
        let state = self.state();
        let promise = Promise {
            n: p.n,
            accepted_round: state.accepted_round,
            decided_idx: state.logical_decided(),
            log_end: state.log_end,
            has_stopsign: state.stopsign.is_some(),
            sync,
        };
        self.send(from, PaxosMessage::Promise(Box::new(promise)));
        Ok(())
    }

    pub(super) fn handle_accept_sync(&mut self, from: u64, a: AcceptSync<T>) -> StorageResult<()> {
        let state = self.state();
        if a.n < state.promise {
            self.refuse(from, a.n);
            return Ok(());
        }
        if a.n != state.promise || self.role_phase() != Some(FollowerPhase::Prepare) {
            return Ok(());
        }
        // Entries accepted in this round may already count towards a decision: a
        // (duplicated or late) sync of the same round may extend them, never cut them.
        let same_round = state.accepted_round == a.n;
        if !self.apply_sync(a.sync, same_round) {
            return Ok(());
        }
        self.store.set_accepted_round(a.n);
        self.role = Role::Follower(FollowerPhase::Accept);
        self.store.raise_logical_decided(a.decided_idx.min(self.state().logical_end()));
        self.accepted_due = Some(a.n);
        self.resume_forwarding(a.n, a.forward_epoch);
        self.forward_pending();
        Ok(())
    }

    pub(super) fn handle_accept_decide(
        &mut self,
        from: u64,
        a: AcceptDecide<T>,
    ) -> StorageResult<()> {
        let state = self.state();
        if a.n < state.promise {
            self.refuse(from, a.n);
            return Ok(());
        }
        if a.n != state.promise
            || state.accepted_round != a.n
            || self.role_phase() != Some(FollowerPhase::Accept)
        {
            if a.n > state.promise
                || (a.n == state.promise && self.role_phase() == Some(FollowerPhase::Idle))
            {
                self.send(from, PaxosMessage::PrepareReq);
            }
            return Ok(());
        }
        let (log_end, end) = (state.log_end, a.start_idx.saturating_add(a.entries.len()));
        if a.start_idx > log_end {
            return Ok(()); // a gap: the leader resends from what we acknowledged
        }
        if end > log_end && state.stopsign.is_none() {
            let mut entries = a.entries;
            if log_end > a.start_idx {
                entries.drain(..log_end - a.start_idx); // what this replica holds already
            }
            self.store.append(&mut entries);
        }
        if let Some(ss) = a.stopsign {
            if self.state().log_end == end && self.state().stopsign.is_none() {
                self.store.set_stopsign(Some(*ss));
            }
        }
        self.store.raise_logical_decided(a.decided_idx.min(self.state().logical_end()));
        self.accepted_due = Some(a.n);
        Ok(())
    }

    pub(super) fn handle_decide(&mut self, from: u64, d: Decide) {
        let state = self.state();
        if d.n < state.promise {
            self.refuse(from, d.n);
        } else if d.n == state.promise
            && state.accepted_round == d.n
            && self.role_phase() == Some(FollowerPhase::Accept)
        {
            self.store.raise_logical_decided(d.decided_idx.min(state.logical_end()));
        }
    }

    /// Tells the sender of a message of round `n` (below our promise) that it is refused,
    /// so a deposed leader learns of the higher round.
    fn refuse(&mut self, to: u64, n: Ballot) {
        if !self.has_bug(InjectedBug::ZombieLeader) {
            let promise = self.state().promise;
            self.send(to, PaxosMessage::Nack { n, promise });
        }
    }

    /// At a take that follows new acceptances: one `Accepted` (with the log end and the
    /// decided index about to be written), however many accepts were handled, and only if
    /// this replica still accepts in that round.
    pub(super) fn send_due_accepted(&mut self) {
        let Some(n) = self.accepted_due.take() else { return };
        let state = self.state();
        if self.role_phase() != Some(FollowerPhase::Accept)
            || state.promise != n
            || state.accepted_round != n
        {
            return;
        }
        let accepted = Accepted {
            n: state.promise,
            accepted_idx: state.logical_end(),
            decided_idx: state.logical_decided(),
        };
        self.send(state.promise.pid, PaxosMessage::Accepted(accepted));
        // As for a promise: the leader may trim up to the decided index reported here.
        self.store.write_decided_index();
    }

    fn role_phase(&self) -> Option<FollowerPhase> {
        match self.role {
            Role::Follower(phase) => Some(phase),
            Role::Leader(_) => None,
        }
    }
}
