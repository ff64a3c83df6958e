//! Ballot leader election (BLE), as in OmniPaxos: heartbeat rounds every
//! `heartbeat_ticks` ticks. Each replica answers a heartbeat with its own ballot and
//! whether it reached a quorum in its last round. At the end of a round, a replica that
//! heard from a quorum elects the highest ballot among the quorum-connected ones; if its
//! leader stayed silent for two rounds, it raises its own ballot above the leader's so
//! that a live replica takes over. A leader therefore is always quorum-connected.
//!
//! BLE only proposes leaders; safety never depends on it (Sequence Paxos ballots do).

use paxstore::Ballot;

use crate::messages::{BleMessage, Message, Payload};

/// Rounds a leader may be silent before a replica stops following it.
const MISSED_ROUNDS_BEFORE_TAKEOVER: u32 = 2;

/// The election state of one replica.
#[derive(Clone, Debug)]
pub(crate) struct Ble {
    pid: u64,
    peers: Vec<u64>,
    quorum: usize,
    heartbeat_ticks: u32,
    /// This replica's own ballot (its candidacy).
    pub(crate) ballot: Ballot,
    /// The elected leader, if any.
    pub(crate) leader: Option<Ballot>,
    round: u64,
    /// Replies of the current round: (from, ballot, quorum_connected).
    replies: Vec<(u64, Ballot, bool)>,
    quorum_connected: bool,
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
            ballot,
            leader: None,
            round: 0,
            replies: Vec::new(),
            quorum_connected: false,
            ticks: 0,
            missed_rounds: 0,
        }
    }

    /// Advances the timer; at the end of a heartbeat round, returns a newly elected
    /// leader and starts the next round.
    pub(crate) fn tick<T: paxstore::Entry>(&mut self, out: &mut Vec<Message<T>>) -> Option<Ballot> {
        self.ticks += 1;
        if self.ticks < self.heartbeat_ticks {
            return None;
        }
        self.ticks = 0;
        let elected = self.end_round();
        self.round += 1;
        self.replies.clear();
        for &to in &self.peers {
            out.push(Message {
                from: self.pid,
                to,
                payload: Payload::Ble(BleMessage::HeartbeatRequest { round: self.round }),
            });
        }
        elected
    }

    /// Handles a heartbeat message from `from`.
    pub(crate) fn handle<T: paxstore::Entry>(
        &mut self,
        from: u64,
        msg: BleMessage,
        out: &mut Vec<Message<T>>,
    ) {
        match msg {
            BleMessage::HeartbeatRequest { round } => out.push(Message {
                from: self.pid,
                to: from,
                payload: Payload::Ble(BleMessage::HeartbeatReply {
                    round,
                    ballot: self.ballot,
                    quorum_connected: self.quorum_connected,
                }),
            }),
            BleMessage::HeartbeatReply { round, ballot, quorum_connected } => {
                let known = self.replies.iter().any(|(p, ..)| *p == from);
                if round == self.round && !known && self.peers.contains(&from) {
                    self.replies.push((from, ballot, quorum_connected));
                }
            }
        }
    }

    /// Raises this replica's ballot above round `n` (its candidacy was refused).
    pub(crate) fn raise_above(&mut self, n: u32) {
        self.ballot.n = self.ballot.n.max(n.saturating_add(1));
    }

    /// Ends a heartbeat round: elects the highest quorum-connected ballot.
    fn end_round(&mut self) -> Option<Ballot> {
        self.quorum_connected = self.replies.len() + 1 >= self.quorum;
        if !self.quorum_connected {
            return None;
        }
        let top = |own: Ballot, replies: &[(u64, Ballot, bool)]| {
            replies.iter().filter(|r| r.2).map(|r| r.1).fold(own, Ballot::max)
        };
        let mut candidate = top(self.ballot, &self.replies);
        if let Some(leader) = self.leader {
            let heard = leader.pid == self.pid || self.replies.iter().any(|r| r.1 == leader && r.2);
            self.missed_rounds = if heard { 0 } else { self.missed_rounds + 1 };
            if candidate < leader {
                if self.missed_rounds < MISSED_ROUNDS_BEFORE_TAKEOVER {
                    return None;
                }
                // The leader is gone: take over with a ballot above it.
                self.raise_above(leader.n);
                candidate = top(self.ballot, &self.replies);
            }
            if candidate == leader {
                return None;
            }
        }
        self.missed_rounds = 0;
        self.leader = Some(candidate);
        Some(candidate)
    }
}
