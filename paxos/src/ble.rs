//! Ballot leader election (BLE), in the Omni-Paxos model: heartbeat rounds every
//! `heartbeat_ticks` ticks. Each replica answers a heartbeat with its own ballot, whether
//! it reached a quorum in its last round, and the leader it heard from directly in its
//! last round (if that leader was quorum-connected).
//!
//! At the end of a round, a replica that heard from a quorum (it is *quorum-connected*)
//!
//! - follows the highest ballot among its own, the quorum-connected repliers' ballots and
//!   the leaders the repliers vouch for;
//! - counts its leader as alive if the leader replied quorum-connected, or if a replier
//!   vouches for it (so a replica cut off from a live leader that a quorum still follows
//!   does not disturb it: the chained scenario);
//! - takes over with a ballot above every ballot it knows if its leader was not alive for
//!   [`MISSED_ROUNDS_BEFORE_TAKEOVER`] rounds. A replica that is not quorum-connected
//!   never takes over, and a leader that is not quorum-connected is alive for no one, so
//!   a quorum-connected replica replaces it (the quorum-loss scenario).
//!
//! A replica vouches only for a leader it heard itself, never for one it was told about,
//! so a dead leader cannot be kept alive by replicas vouching for each other.
//!
//! BLE only proposes leaders; safety never depends on it (Sequence Paxos ballots do).

use paxstore::{Ballot, Entry};

use crate::messages::BleMessage;
use crate::outbox::Outbox;

/// Rounds a leader may be silent before a quorum-connected replica takes over.
pub(crate) const MISSED_ROUNDS_BEFORE_TAKEOVER: u32 = 2;

/// A heartbeat reply of the current round.
#[derive(Clone, Copy, Debug)]
struct Reply {
    from: u64,
    ballot: Ballot,
    quorum_connected: bool,
    leader: Option<Ballot>,
}

/// The election state of one replica.
#[derive(Clone, Debug)]
pub(crate) struct Ble {
    pid: u64,
    peers: Vec<u64>,
    quorum: usize,
    heartbeat_ticks: u32,
    /// Whether replies vouch for the leader heard (off only under an injected bug).
    vouching: bool,
    /// This replica's own ballot (its candidacy).
    pub(crate) ballot: Ballot,
    /// The leader followed, if any.
    pub(crate) leader: Option<Ballot>,
    round: u64,
    replies: Vec<Reply>,
    quorum_connected: bool,
    /// The leader heard directly, quorum-connected, in the last round.
    vouch: Option<Ballot>,
    ticks: u32,
    missed_rounds: u32,
}

impl Ble {
    pub(crate) fn new(
        pid: u64,
        peers: Vec<u64>,
        quorum: usize,
        heartbeat_ticks: u32,
        ballot: Ballot,
    ) -> Self {
        Ble {
            pid,
            peers,
            quorum,
            heartbeat_ticks,
            vouching: true,
            ballot,
            leader: None,
            round: 0,
            replies: Vec::new(),
            quorum_connected: false,
            vouch: None,
            ticks: 0,
            missed_rounds: 0,
        }
    }

    /// Turns vouching off (only to re-introduce a bug in tests).
    #[cfg(feature = "testing")]
    pub(crate) fn set_vouching(&mut self, on: bool) {
        self.vouching = on;
    }

    /// Advances the timer. At the end of a heartbeat round, returns the leader to follow
    /// (if this replica is quorum-connected) and starts the next round.
    pub(crate) fn tick<T: Entry>(&mut self, out: &mut Outbox<T>) -> Option<Ballot> {
        self.ticks += 1;
        if self.ticks < self.heartbeat_ticks {
            return None;
        }
        self.ticks = 0;
        let leader = self.end_round();
        self.round += 1;
        self.replies.clear();
        for &to in &self.peers {
            out.ble(to, BleMessage::HeartbeatRequest { round: self.round });
        }
        leader
    }

    /// Handles a heartbeat message from `from`.
    pub(crate) fn handle<T: Entry>(&mut self, from: u64, msg: BleMessage, out: &mut Outbox<T>) {
        match msg {
            BleMessage::HeartbeatRequest { round } => out.ble(
                from,
                BleMessage::HeartbeatReply {
                    round,
                    ballot: self.ballot,
                    quorum_connected: self.quorum_connected,
                    leader: self.vouch.filter(|_| self.vouching),
                },
            ),
            BleMessage::HeartbeatReply { round, ballot, quorum_connected, leader } => {
                let known = self.replies.iter().any(|r| r.from == from);
                if round == self.round && !known && self.peers.contains(&from) {
                    let leader = leader.filter(|_| self.vouching);
                    self.replies.push(Reply { from, ballot, quorum_connected, leader });
                }
            }
        }
    }

    /// Raises this replica's ballot above round `n`.
    pub(crate) fn raise_above(&mut self, n: u32) {
        self.ballot.n = self.ballot.n.max(n.saturating_add(1));
    }

    /// Sequence Paxos met the ballot `b` (a promise it made, or one that refused this
    /// replica's round): follow it while it is alive, rather than competing with it.
    pub(crate) fn adopt(&mut self, b: Ballot) {
        if b.pid == self.pid {
            self.raise_above(b.n);
        } else if self.leader.is_none_or(|l| b > l) {
            self.leader = Some(b);
            self.missed_rounds = 0;
        }
    }

    /// Ends a heartbeat round; returns the leader to follow if quorum-connected.
    fn end_round(&mut self) -> Option<Ballot> {
        let replies = &self.replies;
        let direct = |b: Ballot| {
            replies.iter().any(|r| r.from == b.pid && r.ballot == b && r.quorum_connected)
        };
        self.vouch = self.leader.filter(|l| l.pid != self.pid && direct(*l));
        self.quorum_connected = replies.len() + 1 >= self.quorum;
        if !self.quorum_connected {
            return None;
        }
        let top = replies
            .iter()
            .flat_map(|r| [r.quorum_connected.then_some(r.ballot), r.leader])
            .flatten()
            .fold(self.ballot, Ballot::max);
        let Some(leader) = self.leader else {
            self.leader = Some(top);
            return self.leader;
        };
        let alive = leader == self.ballot
            || direct(leader)
            || replies.iter().any(|r| r.leader == Some(leader));
        self.missed_rounds = if alive { 0 } else { self.missed_rounds + 1 };
        if top > leader {
            self.missed_rounds = 0;
            self.leader = Some(top);
        } else if self.missed_rounds >= MISSED_ROUNDS_BEFORE_TAKEOVER {
            // The leader is gone: take over with a ballot above every ballot known.
            self.raise_above(leader.n.max(top.n));
            self.missed_rounds = 0;
            self.leader = Some(self.ballot);
        }
        self.leader
    }
}

#[cfg(test)]
mod tests {
    use paxstore::NoSnapshot;

    use super::*;

    #[derive(Clone, Debug)]
    struct E;
    impl Entry for E {
        type Snapshot = NoSnapshot;
    }

    fn ballot(n: u32, pid: u64) -> Ballot {
        Ballot::new(1, n, 0, pid)
    }

    /// Replica 1 of {1, 2, 3} (quorum 2), following `leader`.
    fn ble(leader: Option<Ballot>) -> Ble {
        let mut b = Ble::new(1, vec![2, 3], 2, 1, ballot(1, 1));
        b.leader = leader;
        b
    }

    /// One round in which `replies` arrive: `(from, ballot, quorum_connected, vouched)`.
    fn round(b: &mut Ble, replies: &[(u64, Ballot, bool, Option<Ballot>)]) -> Option<Ballot> {
        let mut out = Outbox::<E>::new(1, &[2, 3]);
        b.tick(&mut out); // starts the round
        for &(from, ballot, quorum_connected, leader) in replies {
            let round = b.round;
            b.handle(
                from,
                BleMessage::HeartbeatReply { round, ballot, quorum_connected, leader },
                &mut out,
            );
        }
        b.tick(&mut out)
    }

    #[test]
    fn a_leader_vouched_for_by_a_peer_is_alive_though_unreachable() {
        let leader = ballot(5, 3);
        let mut b = ble(Some(leader));
        for _ in 0..5 {
            // Only 2 answers; it heard 3.
            assert_eq!(round(&mut b, &[(2, ballot(1, 2), true, Some(leader))]), Some(leader));
        }
        assert_eq!(b.ballot, ballot(1, 1), "no takeover");
    }

    #[test]
    fn a_leader_that_is_not_quorum_connected_is_replaced() {
        let leader = ballot(5, 3);
        let mut b = ble(Some(leader));
        let replies = [(2, ballot(1, 2), true, None), (3, leader, false, None)];
        assert_eq!(round(&mut b, &replies), Some(leader));
        let took_over = round(&mut b, &replies);
        assert_eq!(took_over, Some(ballot(6, 1)), "takes over above the leader");
    }

    #[test]
    fn a_higher_ballot_learned_through_a_peer_is_followed() {
        let mut b = ble(Some(ballot(1, 1))); // leads itself
        let higher = ballot(4, 3);
        assert_eq!(round(&mut b, &[(2, ballot(1, 2), true, Some(higher))]), Some(higher));
    }

    #[test]
    fn vouches_only_for_a_leader_heard_directly() {
        let leader = ballot(5, 3);
        let mut b = ble(Some(leader));
        round(&mut b, &[(2, ballot(1, 2), true, Some(leader))]);
        assert_eq!(b.vouch, None, "told about, not heard");
        round(&mut b, &[(3, leader, true, None)]);
        assert_eq!(b.vouch, Some(leader));
    }

    #[test]
    fn without_a_quorum_nothing_is_elected() {
        let mut b = ble(None);
        assert_eq!(round(&mut b, &[]), None);
        assert!(!b.quorum_connected);
    }
}
