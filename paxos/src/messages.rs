//! The messages replicas exchange. The application carries them between replicas
//! (over any transport, in any order, possibly lost or duplicated) and hands each to
//! [`Replica::handle_incoming`](crate::Replica::handle_incoming) at its `to`.
//!
//! A [`Message`] is everything one replica has for one other replica at one
//! [`take_outgoing_messages`](crate::Replica::take_outgoing_messages): a take returns at
//! most one message per peer, and successive payloads of the same kind are merged while
//! they wait (new entries join the pending accept, a newer decided index replaces an older
//! one, acknowledgements collapse into the latest). Handling a message is equivalent to
//! handling its payloads in order.
//!
//! Indices in messages are absolute. A "logical" index counts the stop sign as one more
//! slot after the last entry: a log of entries `[0, 7)` with a stop sign has logical end
//! 8, and a logical decided index of 8 means the stop sign is decided.

use paxstore::{Ballot, Entry, StopSign};

/// What one replica sends another in one take.
#[derive(Clone, Debug)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[cfg_attr(
    feature = "serde",
    serde(bound(
        serialize = "T: serde::Serialize, T::Snapshot: serde::Serialize",
        deserialize = "T: serde::Deserialize<'de>, T::Snapshot: serde::Deserialize<'de>"
    ))
)]
pub struct Message<T: Entry> {
    /// The sender.
    pub from: u64,
    /// The receiver.
    pub to: u64,
    /// What it says, in the order it was said.
    pub payloads: Payloads<T>,
}

/// The payloads of a [`Message`], in order. Most messages carry one payload, which is
/// held inline (no allocation); build one from a `Payload`, a `Vec<Payload>` or an
/// iterator, and read it with `iter()` or by value with `into_iter()`.
#[derive(Clone, Debug)]
pub struct Payloads<T: Entry>(Repr<T>);

#[derive(Clone, Debug)]
enum Repr<T: Entry> {
    One(Payload<T>),
    Many(Vec<Payload<T>>),
}

impl<T: Entry> Payloads<T> {
    /// How many payloads.
    pub fn len(&self) -> usize {
        match &self.0 {
            Repr::One(_) => 1,
            Repr::Many(v) => v.len(),
        }
    }

    /// Whether there is none.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Hands each payload, in order and by value, to `f`; stops at the first error. (A
    /// single payload goes straight to `f`, without an iterator around it.)
    #[inline]
    pub(crate) fn try_for_each<E>(
        self,
        mut f: impl FnMut(Payload<T>) -> Result<(), E>,
    ) -> Result<(), E> {
        match self.0 {
            Repr::One(p) => f(p),
            Repr::Many(v) => v.into_iter().try_for_each(f),
        }
    }

    /// The payloads, in order.
    pub fn iter(&self) -> std::slice::Iter<'_, Payload<T>> {
        match &self.0 {
            Repr::One(p) => std::slice::from_ref(p).iter(),
            Repr::Many(v) => v.iter(),
        }
    }
}

impl<T: Entry> From<Payload<T>> for Payloads<T> {
    fn from(p: Payload<T>) -> Self {
        Payloads(Repr::One(p))
    }
}

impl<T: Entry> From<Vec<Payload<T>>> for Payloads<T> {
    fn from(v: Vec<Payload<T>>) -> Self {
        Payloads(Repr::Many(v))
    }
}

impl<T: Entry> FromIterator<Payload<T>> for Payloads<T> {
    fn from_iter<I: IntoIterator<Item = Payload<T>>>(iter: I) -> Self {
        Payloads(Repr::Many(iter.into_iter().collect()))
    }
}

impl<T: Entry> IntoIterator for Payloads<T> {
    type Item = Payload<T>;
    type IntoIter = PayloadsIntoIter<T>;

    fn into_iter(self) -> Self::IntoIter {
        match self.0 {
            Repr::One(p) => PayloadsIntoIter(IterRepr::One(Some(p))),
            Repr::Many(v) => PayloadsIntoIter(IterRepr::Many(v.into_iter())),
        }
    }
}

impl<'a, T: Entry> IntoIterator for &'a Payloads<T> {
    type Item = &'a Payload<T>;
    type IntoIter = std::slice::Iter<'a, Payload<T>>;

    fn into_iter(self) -> Self::IntoIter {
        self.iter()
    }
}

/// The payloads of a [`Message`], by value.
#[derive(Debug)]
pub struct PayloadsIntoIter<T: Entry>(IterRepr<T>);

#[derive(Debug)]
enum IterRepr<T: Entry> {
    One(Option<Payload<T>>),
    Many(std::vec::IntoIter<Payload<T>>),
}

impl<T: Entry> Iterator for PayloadsIntoIter<T> {
    type Item = Payload<T>;

    fn next(&mut self) -> Option<Payload<T>> {
        match &mut self.0 {
            IterRepr::One(p) => p.take(),
            IterRepr::Many(it) => it.next(),
        }
    }
}

/// The two protocols a replica speaks.
#[derive(Clone, Debug)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[cfg_attr(
    feature = "serde",
    serde(bound(
        serialize = "T: serde::Serialize, T::Snapshot: serde::Serialize",
        deserialize = "T: serde::Deserialize<'de>, T::Snapshot: serde::Deserialize<'de>"
    ))
)]
pub enum Payload<T: Entry> {
    /// Ballot leader election.
    Ble(BleMessage),
    /// Sequence Paxos.
    Paxos(PaxosMessage<T>),
}

/// Ballot leader election: heartbeat rounds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub enum BleMessage {
    /// "Are you there?" for heartbeat round `round`.
    HeartbeatRequest {
        /// The sender's heartbeat round.
        round: u64,
    },
    /// The reply: the replier's ballot, whether it reaches a quorum, and the leader it
    /// heard from directly.
    HeartbeatReply {
        /// The round replied to.
        round: u64,
        /// The replier's own ballot (its candidacy).
        ballot: Ballot,
        /// Whether the replier heard from a quorum in its last round.
        quorum_connected: bool,
        /// The leader the replier follows, if the replier heard it directly, quorum
        /// connected, in its last round. A replica that cannot reach that leader itself
        /// learns through this that it is alive (and that its ballot is the one to follow).
        leader: Option<Ballot>,
    },
}

/// Sequence Paxos. The rare, large payloads are boxed, so a message stays small to move.
#[derive(Clone, Debug)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[cfg_attr(
    feature = "serde",
    serde(bound(
        serialize = "T: serde::Serialize, T::Snapshot: serde::Serialize",
        deserialize = "T: serde::Deserialize<'de>, T::Snapshot: serde::Deserialize<'de>"
    ))
)]
pub enum PaxosMessage<T: Entry> {
    /// Leader → all: phase 1.
    Prepare(Prepare),
    /// Follower → leader: the promise, with the entries the leader may lack.
    Promise(Box<Promise<T>>),
    /// Leader → follower: what the follower is missing, after which its log equals the
    /// leader's.
    AcceptSync(Box<AcceptSync<T>>),
    /// Leader → follower: new entries (and the stop sign), pipelined, with the decided index.
    AcceptDecide(AcceptDecide<T>),
    /// Follower → leader: how far the follower's log is accepted in the round.
    Accepted(Accepted),
    /// Leader → follower: the decided index.
    Decide(Decide),
    /// Replica → sender: a message of round `n` arrived, but the replica promised the
    /// higher round `promise`. A leader of `n` that gets it steps down.
    Nack {
        /// The refused round.
        n: Ballot,
        /// The replica's promise.
        promise: Ballot,
    },
    /// Follower → leader: "synchronise me again" (it restarted or missed messages).
    PrepareReq,
    /// Follower → leader: entries appended at the follower.
    Forward(Forward<T>),
    /// Follower → leader: a reconfiguration requested at the follower.
    ForwardStopSign(Box<StopSign>),
    /// Leader → all: compact the log (only what every replica has decided).
    Compaction(Compaction),
}

/// A compaction request from the leader.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub enum Compaction {
    /// Trim the log below the index.
    Trim(usize),
    /// Fold the log below the index into the snapshot.
    Snapshot(usize),
}

/// Phase 1a: the leader's round and what its own log holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct Prepare {
    /// The leader's round.
    pub n: Ballot,
    /// The leader's decided index (entries).
    pub decided_idx: usize,
    /// The round of the leader's log.
    pub accepted_round: Ballot,
    /// The end of the leader's entries.
    pub log_end: usize,
}

/// Phase 1b.
#[derive(Clone, Debug)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[cfg_attr(
    feature = "serde",
    serde(bound(
        serialize = "T: serde::Serialize, T::Snapshot: serde::Serialize",
        deserialize = "T: serde::Deserialize<'de>, T::Snapshot: serde::Deserialize<'de>"
    ))
)]
pub struct Promise<T: Entry> {
    /// The round promised.
    pub n: Ballot,
    /// The round of the follower's log.
    pub accepted_round: Ballot,
    /// The follower's logical decided index, written with the promise (a leader trims up
    /// to what every follower reported).
    pub decided_idx: usize,
    /// The end of the follower's entries.
    pub log_end: usize,
    /// Whether the follower holds a stop sign (at `log_end`).
    pub has_stopsign: bool,
    /// The follower's log from where the leader's may differ, if it may be more recent.
    pub sync: Option<LogSync<T>>,
}

/// A suffix of a log: after applying it, the receiver's log is its own entries below
/// `suffix_start`, then `entries`, then `stopsign`. With `snapshot`, the receiver first
/// installs the snapshot, which covers every index below its index (`suffix_start`).
#[derive(Clone, Debug)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[cfg_attr(
    feature = "serde",
    serde(bound(
        serialize = "T: serde::Serialize, T::Snapshot: serde::Serialize",
        deserialize = "T: serde::Deserialize<'de>, T::Snapshot: serde::Deserialize<'de>"
    ))
)]
pub struct LogSync<T: Entry> {
    /// A complete snapshot of the entries below the index, for a receiver that lacks them.
    pub snapshot: Option<(T::Snapshot, usize)>,
    /// Where `entries` start.
    pub suffix_start: usize,
    /// The entries from `suffix_start` to the end of the sender's log.
    pub entries: Vec<T>,
    /// The sender's stop sign.
    pub stopsign: Option<StopSign>,
}

/// Phase 2a for a follower that just promised.
#[derive(Clone, Debug)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[cfg_attr(
    feature = "serde",
    serde(bound(
        serialize = "T: serde::Serialize, T::Snapshot: serde::Serialize",
        deserialize = "T: serde::Deserialize<'de>, T::Snapshot: serde::Deserialize<'de>"
    ))
)]
pub struct AcceptSync<T: Entry> {
    /// The leader's round.
    pub n: Ballot,
    /// What the follower lacks.
    pub sync: LogSync<T>,
    /// The leader's logical decided index.
    pub decided_idx: usize,
    /// The epoch the follower's [`Forward`]s carry from now on (a new one per sync, so
    /// numbers are never reused across syncs and restarts of the follower).
    pub forward_epoch: u64,
}

/// Phase 2a, pipelined: entries at `[start_idx, start_idx + entries.len())`, then
/// the stop sign if any.
#[derive(Clone, Debug)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[cfg_attr(
    feature = "serde",
    serde(bound(
        serialize = "T: serde::Serialize, T::Snapshot: serde::Serialize",
        deserialize = "T: serde::Deserialize<'de>, T::Snapshot: serde::Deserialize<'de>"
    ))
)]
pub struct AcceptDecide<T: Entry> {
    /// The leader's round.
    pub n: Ballot,
    /// The absolute index of the first entry.
    pub start_idx: usize,
    /// The entries.
    pub entries: Vec<T>,
    /// The stop sign, after the entries.
    pub stopsign: Option<Box<StopSign>>,
    /// The leader's logical decided index.
    pub decided_idx: usize,
}

/// Phase 2b.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct Accepted {
    /// The round.
    pub n: Ballot,
    /// The follower's logical log end, all accepted in round `n`.
    pub accepted_idx: usize,
    /// The follower's logical decided index, written with this acknowledgement.
    pub decided_idx: usize,
}

/// The leader's decided index.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct Decide {
    /// The round.
    pub n: Ballot,
    /// The logical decided index.
    pub decided_idx: usize,
}

/// Entries appended at a follower, sent to the leader of the round it accepts in.
///
/// A follower numbers the entries it forwards within the epoch its last sync gave it
/// (`seq` is the number of the first); the leader proposes each `(epoch, number)` at most
/// once, so a duplicated or replayed `Forward` adds nothing.
#[derive(Clone, Debug)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[cfg_attr(
    feature = "serde",
    serde(bound(
        serialize = "T: serde::Serialize, T::Snapshot: serde::Serialize",
        deserialize = "T: serde::Deserialize<'de>, T::Snapshot: serde::Deserialize<'de>"
    ))
)]
pub struct Forward<T: Entry> {
    /// The round the follower accepts in: only that round's leader takes the entries.
    pub n: Ballot,
    /// The epoch of the follower's last sync in that round.
    pub epoch: u64,
    /// The sequence number of the first entry, within the epoch.
    pub seq: u64,
    /// The entries.
    pub entries: Vec<T>,
}

/// Payloads go on the wire as a plain sequence of [`Payload`]s; one payload decodes back
/// into the inline form.
#[cfg(feature = "serde")]
mod wire {
    use serde::{Deserialize, Deserializer, Serialize, Serializer};

    use super::{Payload, Payloads, Repr};
    use paxstore::Entry;

    impl<T: Entry> Serialize for Payloads<T>
    where
        Payload<T>: Serialize,
    {
        fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
            serializer.collect_seq(self.iter())
        }
    }

    impl<'de, T: Entry> Deserialize<'de> for Payloads<T>
    where
        Payload<T>: Deserialize<'de>,
    {
        fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
            let mut payloads = Vec::<Payload<T>>::deserialize(deserializer)?;
            Ok(match payloads.len() {
                1 => match payloads.pop() {
                    Some(one) => Payloads(Repr::One(one)),
                    None => Payloads(Repr::Many(payloads)),
                },
                _ => Payloads(Repr::Many(payloads)),
            })
        }
    }
}
