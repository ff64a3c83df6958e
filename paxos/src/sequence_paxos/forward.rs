//! Appends made on a follower travel to the leader, numbered so that the leader proposes
//! each at most once.
//!
//! A follower forwards only while it is synchronised with a leader (in the accept phase
//! of round `n`), and only to that leader; elsewhere appends wait in `pending`. Every
//! `AcceptSync` the leader sends opens a new *epoch* for that follower, and the follower
//! numbers the entries it forwards within it from 0 (`Forward { n, epoch, seq, entries }`).
//! The leader of round `n` keeps, per follower and epoch, the next number it expects, and
//! proposes only entries at or above it; a `Forward` of another round, or of an epoch it
//! did not open (or no longer remembers), is dropped; nobody relays a `Forward`.
//!
//! So an entry appended once is proposed at most once: its `Forward` names one round, only
//! that round's leader proposes it, that leader proposes each `(epoch, number)` once for
//! as long as it leads the round (its ledger lives as long as its round: a leader that
//! restarts never leads that round again), and a follower numbers within an epoch only
//! after the sync that opened it, so two runs of a follower (before and after a restart)
//! never share an epoch, except when a stale duplicate `AcceptSync` reaches the new run:
//! then the two share numbers, and the leader takes whichever arrives first, never both.
//!
//! What is not guaranteed: that a forwarded entry is decided at all. It is lost if its
//! `Forward` is lost, arrives after the leader stepped down, arrives after a later
//! `Forward` of the same epoch (the leader has moved past its number), or belongs to an
//! epoch more than [`EPOCHS_KEPT`] syncs old; the application watches the log and appends
//! again if it must.

use std::collections::BTreeMap;

use paxstore::{Ballot, Entry, StopSign, Storage, StorageResult};

use super::{FollowerPhase, Replica, Role};
use crate::bugs::InjectedBug;
use crate::messages::{Forward, PaxosMessage};

/// Epochs per follower a leader remembers: forwards of older ones are dropped.
const EPOCHS_KEPT: u64 = 16;

/// The numbering of this replica's forwards: the round it accepts in, the epoch of its
/// last sync in that round, and the next number.
#[derive(Clone, Copy, Debug, Default)]
pub(super) struct ForwardSeq {
    round: Ballot,
    epoch: u64,
    next: u64,
}

/// The leader's record, for its round, of what each follower forwarded.
#[derive(Debug, Default)]
pub(super) struct ForwardLedger {
    /// Per follower, the next epoch to open.
    epochs: BTreeMap<u64, u64>,
    /// Per follower and epoch, the next number expected.
    next: BTreeMap<(u64, u64), u64>,
}

impl ForwardLedger {
    /// Opens a new epoch for `pid` (it is being synchronised), forgetting the oldest.
    pub(super) fn open_epoch(&mut self, pid: u64) -> u64 {
        let slot = self.epochs.entry(pid).or_insert(0);
        let epoch = *slot;
        *slot = epoch.saturating_add(1);
        self.next.insert((pid, epoch), 0);
        if let Some(old) = epoch.checked_sub(EPOCHS_KEPT) {
            self.next.remove(&(pid, old));
        }
        epoch
    }

    /// How many of the `len` entries numbered from `seq` in `pid`'s `epoch` were had
    /// already (the new ones follow them); `None` if the epoch is unknown or all were.
    fn admit(&mut self, pid: u64, epoch: u64, seq: u64, len: usize, dedup: bool) -> Option<usize> {
        let next = self.next.get_mut(&(pid, epoch))?;
        let skip =
            if dedup { usize::try_from(next.saturating_sub(seq)).unwrap_or(usize::MAX) } else { 0 };
        if skip >= len {
            return None;
        }
        *next = (*next).max(seq.saturating_add(len as u64));
        Some(skip)
    }
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
            let (epoch, seq) = (self.forward.epoch, self.forward.next);
            self.forward.next = seq.saturating_add(entries.len() as u64);
            self.send(n.pid, PaxosMessage::Forward(Forward { n, epoch, seq, entries }));
        }
        if let Some(ss) = self.pending_stopsign.take() {
            self.send(n.pid, PaxosMessage::ForwardStopSign(Box::new(ss)));
        }
    }

    /// Synchronised in round `n`: the next forwards are numbered from 0 in `epoch`.
    pub(super) fn resume_forwarding(&mut self, n: Ballot, epoch: u64) {
        let f = &self.forward;
        if f.round != n || f.epoch != epoch {
            self.forward = ForwardSeq { round: n, epoch, next: 0 };
        }
    }

    /// The leader of `f.n` proposes the entries it has not had from `from` yet.
    pub(super) fn handle_forward(&mut self, from: u64, f: Forward<T>) -> StorageResult<()> {
        let dedup = !self.bugs.has(InjectedBug::DuplicateForwards);
        let Role::Leader(l) = &mut self.role else { return Ok(()) };
        if f.n != l.n || !l.accepting || self.store.state.stopsign.is_some() {
            return Ok(());
        }
        let Forward { epoch, seq, mut entries, .. } = f;
        let Some(skip) = l.forwarded.admit(from, epoch, seq, entries.len(), dedup) else {
            return Ok(());
        };
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_ledger_takes_each_number_of_an_epoch_once() {
        let mut l = ForwardLedger::default();
        let e = l.open_epoch(2);
        assert_eq!(l.admit(2, e, 0, 3, true), Some(0));
        assert_eq!(l.admit(2, e, 0, 3, true), None, "a duplicate");
        assert_eq!(l.admit(2, e, 1, 4, true), Some(2), "overlapping: the last two are new");
        assert_eq!(l.admit(2, e, 9, 1, true), Some(0), "a gap is taken");
        assert_eq!(l.admit(2, e, 6, 1, true), None, "what the gap skipped is lost");
        assert_eq!(l.admit(2, e + 1, 0, 1, true), None, "an epoch never opened");
        assert_eq!(l.admit(3, e, 0, 1, true), None, "another follower's epoch");
        assert_eq!(l.admit(2, e, 0, 3, false), Some(0), "without de-duplication: again");
    }

    #[test]
    fn a_new_epoch_numbers_from_zero_and_old_epochs_are_forgotten() {
        let mut l = ForwardLedger::default();
        let first = l.open_epoch(2);
        assert_eq!(l.admit(2, first, 0, 2, true), Some(0));
        let second = l.open_epoch(2);
        assert_ne!(first, second);
        assert_eq!(l.admit(2, second, 0, 2, true), Some(0), "new numbers of a new epoch");
        assert_eq!(l.admit(2, first, 2, 1, true), Some(0), "the old epoch is still known");
        for _ in 0..EPOCHS_KEPT {
            l.open_epoch(2);
        }
        assert_eq!(l.admit(2, first, 3, 1, true), None, "forgotten");
    }
}
