//! The outgoing messages of a replica, one pending [`Message`] per peer, merged while
//! they wait for [`Replica::take_outgoing_messages`](crate::Replica::take_outgoing_messages).
//!
//! Merging keeps the meaning of the sequence: a payload joins the last Sequence Paxos
//! payload for the same peer only where handling the merged payload does exactly what
//! handling both in order would do (new entries that continue a pending accept of the same
//! round, a decided index that only grows, an acknowledgement that supersedes the last).
//! Ballot leader election payloads are never merged; they are independent of the Paxos
//! payloads between them.

use paxstore::{Ballot, Entry, StopSign};

use crate::messages::{AcceptDecide, BleMessage, Decide, Message, PaxosMessage, Payload, Payloads};

/// One pending message per peer.
pub(crate) struct Outbox<T: Entry> {
    from: u64,
    /// `(peer, payloads)`, in the order of the configuration's nodes.
    boxes: Vec<(u64, Vec<Payload<T>>)>,
}

impl<T: Entry> Outbox<T> {
    pub(crate) fn new(from: u64, peers: &[u64]) -> Self {
        Outbox { from, boxes: peers.iter().map(|&p| (p, Vec::new())).collect() }
    }

    /// The payloads waiting for `to`; `None` if `to` is not a peer (nothing is sent there).
    fn slot(&mut self, to: u64) -> Option<&mut Vec<Payload<T>>> {
        self.boxes.iter_mut().find(|(p, _)| *p == to).map(|(_, payloads)| payloads)
    }

    pub(crate) fn ble(&mut self, to: u64, msg: BleMessage) {
        if let Some(slot) = self.slot(to) {
            slot.push(Payload::Ble(msg));
        }
    }

    pub(crate) fn paxos(&mut self, to: u64, msg: PaxosMessage<T>) {
        let Some(slot) = self.slot(to) else { return };
        let msg = match last_paxos(slot) {
            Some(last) => match absorb(last, msg) {
                Ok(()) => return,
                Err(msg) => msg,
            },
            None => msg,
        };
        slot.push(Payload::Paxos(msg));
    }

    /// The decided index `decided_idx` of round `n` for `to`: it raises the one the pending
    /// payload of that round carries, if there is one (as merging a `Decide` would), else
    /// it waits as a `Decide` of its own.
    pub(crate) fn decide(&mut self, to: u64, n: Ballot, decided_idx: usize) {
        let Some(slot) = self.slot(to) else { return };
        if let Some(last) = last_paxos(slot) {
            if raise_decided(last, n, decided_idx) {
                return;
            }
        }
        slot.push(Payload::Paxos(PaxosMessage::Decide(Decide { n, decided_idx })));
    }

    /// Entries `entries` at `start_idx` (then `stopsign`) for `to`: they join the pending
    /// accept of round `n` if they continue it, and are copied once either way.
    pub(crate) fn accept(
        &mut self,
        to: u64,
        n: Ballot,
        start_idx: usize,
        entries: &[T],
        stopsign: Option<&StopSign>,
        decided_idx: usize,
    ) {
        let Some(slot) = self.slot(to) else { return };
        if let Some(PaxosMessage::AcceptDecide(a)) = last_paxos(slot) {
            if a.n == n && a.stopsign.is_none() && a.start_idx + a.entries.len() == start_idx {
                a.entries.extend_from_slice(entries);
                a.stopsign = stopsign.cloned().map(Box::new);
                a.decided_idx = a.decided_idx.max(decided_idx);
                return;
            }
        }
        slot.push(Payload::Paxos(PaxosMessage::AcceptDecide(AcceptDecide {
            n,
            start_idx,
            entries: entries.to_vec(),
            stopsign: stopsign.cloned().map(Box::new),
            decided_idx,
        })));
    }

    /// Moves every pending message to `out`, at most one per peer. A single payload
    /// leaves inline, and its box keeps its capacity for the next take.
    pub(crate) fn drain_into(&mut self, out: &mut Vec<Message<T>>) {
        for (to, payloads) in &mut self.boxes {
            let payloads = match payloads.len() {
                0 => continue,
                1 => match payloads.pop() {
                    Some(p) => Payloads::from(p),
                    None => continue,
                },
                _ => Payloads::from(std::mem::take(payloads)),
            };
            out.push(Message { from: self.from, to: *to, payloads });
        }
    }

    /// Whether no message is pending.
    pub(crate) fn is_empty(&self) -> bool {
        self.boxes.iter().all(|(_, payloads)| payloads.is_empty())
    }

    /// Drops every pending message (the step that staged them failed).
    pub(crate) fn clear(&mut self) {
        self.boxes.iter_mut().for_each(|(_, payloads)| payloads.clear());
    }

    /// Whether a message is pending for `to`.
    #[cfg(test)]
    fn pending_for(&self, to: u64) -> usize {
        self.boxes.iter().find(|(p, _)| *p == to).map_or(0, |(_, payloads)| payloads.len())
    }
}

fn last_paxos<T: Entry>(payloads: &mut [Payload<T>]) -> Option<&mut PaxosMessage<T>> {
    payloads.iter_mut().rev().find_map(|p| match p {
        Payload::Paxos(m) => Some(m),
        Payload::Ble(_) => None,
    })
}

/// Raises the decided index `last` carries to `decided_idx` if `last` is of round `n` and
/// carries one (a `Decide` of round `n` after it would do exactly that); returns whether it
/// did.
fn raise_decided<T: Entry>(last: &mut PaxosMessage<T>, n: Ballot, decided_idx: usize) -> bool {
    let carried = match last {
        PaxosMessage::AcceptDecide(a) if a.n == n => &mut a.decided_idx,
        PaxosMessage::AcceptSync(a) if a.n == n => &mut a.decided_idx,
        PaxosMessage::Decide(d) if d.n == n => &mut d.decided_idx,
        _ => return false,
    };
    *carried = (*carried).max(decided_idx);
    true
}

/// Merges `next` into `last` if handling the result equals handling `last` then `next`;
/// otherwise hands `next` back.
fn absorb<T: Entry>(
    last: &mut PaxosMessage<T>,
    next: PaxosMessage<T>,
) -> Result<(), PaxosMessage<T>> {
    use PaxosMessage as P;
    if let P::Decide(d) = &next {
        if raise_decided(last, d.n, d.decided_idx) {
            return Ok(());
        }
    }
    match (last, next) {
        (P::AcceptDecide(a), P::AcceptDecide(mut b))
            if a.n == b.n
                && a.stopsign.is_none()
                && a.start_idx.checked_add(a.entries.len()) == Some(b.start_idx) =>
        {
            a.entries.append(&mut b.entries);
            a.stopsign = b.stopsign;
            a.decided_idx = a.decided_idx.max(b.decided_idx);
            Ok(())
        }
        (P::Accepted(a), P::Accepted(b)) if a.n == b.n => {
            a.accepted_idx = a.accepted_idx.max(b.accepted_idx);
            a.decided_idx = a.decided_idx.max(b.decided_idx);
            Ok(())
        }
        (P::Forward(a), P::Forward(mut b))
            if a.n == b.n
                && a.epoch == b.epoch
                && a.seq.checked_add(a.entries.len() as u64) == Some(b.seq) =>
        {
            a.entries.append(&mut b.entries);
            Ok(())
        }
        (P::Nack { n, promise }, P::Nack { n: n2, promise: p2 }) if *n == n2 => {
            *promise = (*promise).max(p2);
            Ok(())
        }
        (_, next) => Err(next),
    }
}

#[cfg(test)]
mod tests {
    use paxstore::NoSnapshot;

    use super::*;
    use crate::messages::{Accepted, Prepare};

    #[derive(Clone, Debug, PartialEq)]
    struct E(u64);
    impl Entry for E {
        type Snapshot = NoSnapshot;
    }

    fn b(n: u32) -> Ballot {
        Ballot::new(1, n, 0, 1)
    }

    fn taken(o: &mut Outbox<E>) -> Vec<Message<E>> {
        let mut out = Vec::new();
        o.drain_into(&mut out);
        out
    }

    #[test]
    fn contiguous_accepts_of_a_round_and_later_decides_become_one_payload() {
        let mut o = Outbox::new(1, &[2, 3]);
        for i in 0..5 {
            o.accept(2, b(1), i, &[E(i as u64)], None, i);
        }
        o.paxos(2, PaxosMessage::Decide(Decide { n: b(1), decided_idx: 4 }));
        o.ble(2, BleMessage::HeartbeatRequest { round: 1 });
        o.paxos(2, PaxosMessage::Decide(Decide { n: b(1), decided_idx: 5 }));
        assert_eq!(o.pending_for(2), 2, "one accept and one heartbeat");
        let msgs = taken(&mut o);
        assert_eq!(msgs.len(), 1, "nothing for 3");
        let Some(Payload::Paxos(PaxosMessage::AcceptDecide(a))) = msgs[0].payloads.iter().next()
        else {
            panic!("{msgs:?}")
        };
        assert_eq!((a.start_idx, a.entries.len(), a.decided_idx), (0, 5, 5));
        assert!(taken(&mut o).is_empty(), "a take empties the outbox");
    }

    #[test]
    fn payloads_that_do_not_continue_each_other_stay_apart() {
        let mut o = Outbox::new(1, &[2]);
        o.accept(2, b(1), 0, &[E(0)], None, 0);
        o.accept(2, b(1), 5, &[E(5)], None, 0); // a gap
        o.accept(2, b(2), 6, &[E(6)], None, 0); // another round
        o.paxos(2, PaxosMessage::Decide(Decide { n: b(1), decided_idx: 1 })); // older round
        o.paxos(
            2,
            PaxosMessage::Prepare(Prepare {
                n: b(3),
                decided_idx: 0,
                accepted_round: b(0),
                log_end: 0,
            }),
        );
        o.paxos(2, PaxosMessage::Accepted(Accepted { n: b(3), accepted_idx: 1, decided_idx: 0 }));
        o.paxos(2, PaxosMessage::Accepted(Accepted { n: b(3), accepted_idx: 4, decided_idx: 2 }));
        let msgs = taken(&mut o);
        assert_eq!(msgs[0].payloads.len(), 6, "{msgs:?}");
        let Some(Payload::Paxos(PaxosMessage::Accepted(a))) = msgs[0].payloads.iter().nth(5) else {
            panic!()
        };
        assert_eq!((a.accepted_idx, a.decided_idx), (4, 2));
    }

    #[test]
    fn a_decided_index_joins_the_pending_payload_of_its_round_or_waits_alone() {
        let mut o = Outbox::new(1, &[2, 3]);
        o.accept(2, b(1), 0, &[E(0)], None, 0);
        o.decide(2, b(1), 1);
        o.decide(2, b(1), 0); // never lowers it
        o.decide(3, b(1), 1); // nothing pending for 3
        o.decide(3, b(1), 2);
        o.decide(3, b(2), 2); // another round
        let msgs = taken(&mut o);
        let Some(Payload::Paxos(PaxosMessage::AcceptDecide(a))) = msgs[0].payloads.iter().next()
        else {
            panic!("{msgs:?}")
        };
        assert_eq!((msgs[0].payloads.len(), a.entries.len(), a.decided_idx), (1, 1, 1));
        let decides: Vec<(Ballot, usize)> = msgs[1]
            .payloads
            .iter()
            .map(|p| match p {
                Payload::Paxos(PaxosMessage::Decide(d)) => (d.n, d.decided_idx),
                other => panic!("{other:?}"),
            })
            .collect();
        assert_eq!(decides, vec![(b(1), 2), (b(2), 2)]);
    }

    #[test]
    fn messages_to_strangers_are_not_kept() {
        let mut o = Outbox::new(1, &[2]);
        o.paxos(9, PaxosMessage::PrepareReq);
        o.ble(9, BleMessage::HeartbeatRequest { round: 1 });
        assert!(taken(&mut o).is_empty());
    }
}
