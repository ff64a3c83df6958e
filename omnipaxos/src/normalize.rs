//! How a batch OmniPaxos 0.2.4 writes becomes an equivalent paxstore batch.
//!
//! OmniPaxos applies no bounds to a batch and reads its decided index before the ops
//! that justify it; paxstore checks each op against the state the ops before it leave.
//! Four shapes of batch that the real OmniPaxos writes are refused by paxstore as
//! written, though they are valid in intent. Each [`Rule`] rewrites one shape into the
//! batch with the same final state (in OmniPaxos' own `MemoryStorage` and in paxstore);
//! everything else maps op for op. What no rule covers is checked by paxstore as usual,
//! so an invalid batch that OmniPaxos would apply silently (and corrupt the log) stays an
//! error.

use omnipaxos::storage::StorageOp as OpOp;
use paxstore::{LogBounds, StorageOp};

use crate::convert::{
    ballot_to_paxstore, stopsign_to_paxstore, OmniEntry, OmniPaxosEntry, OmniSnapshot,
};
use crate::OmniStorageError;

/// One rewrite of a batch OmniPaxos writes into the paxstore batch it means.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Rule {
    /// `Trim(i)` immediately followed by `SetCompactedIdx(i)` becomes `SetCompactedIdx(i)`.
    ///
    /// OmniPaxos keeps two indices, the entries removed (`Trim`) and the index it reports
    /// as compacted (`SetCompactedIdx`), and always moves both together (`try_trim`,
    /// `try_snapshot`, and `sync_log` when a follower installs the leader's snapshot).
    /// paxstore keeps one, and its `SetCompactedIdx` is the op that may pass the log end,
    /// as a follower installing a snapshot beyond its log does; `Trim` past the end is
    /// `TrimPastEnd`.
    TrimThenCompact,
    /// `AppendOnPrefix(i, [])` that changes nothing is dropped: at the log end, or one past
    /// it while a stop sign is set.
    ///
    /// OmniPaxos counts a stop sign as the entry at `log_end` (its accepted index is
    /// `log_end + 1`), so a leader syncs a follower that holds the stop sign with an empty
    /// suffix at `log_end + 1` (`AppendOnPrefixPastEnd` in paxstore), and after the stop
    /// sign is decided with an empty suffix at `log_end`, below the decided index
    /// (`AppendOnPrefixOverwritesDecided`). Neither cuts or writes anything.
    EmptySuffixAtEnd,
    /// The batch's (last) `SetDecidedIndex` is applied after its other ops.
    ///
    /// `sync_log` writes `[SetAcceptedRound, SetDecidedIndex(d), <snapshot>,
    /// AppendOnPrefix(s, suffix), SetStopsign]`: the decided index comes before the entries
    /// and stop sign it covers (`DecidedPastEnd` when `d` is past the current end,
    /// `AppendOnPrefixOverwritesDecided` when `s < d`). No op's effect depends on the
    /// decided index, so applying it last gives the same state; it is then checked
    /// against the log the batch leaves, and the other ops against the decided index
    /// before the batch, so entries decided before the batch stay immutable. An earlier
    /// `SetDecidedIndex` of the same batch is overwritten by the last and dropped; one
    /// that moves the index back (which OmniPaxos never writes) stays in place.
    DecidedLast,
    /// `SetDecidedIndex(log_end + 2)` while a stop sign is set stores `log_end + 1`: the stop
    /// sign is decided.
    ///
    /// After a leader change once a stop sign is accepted, OmniPaxos 0.2.4 counts the stop
    /// sign twice: the sync's `sync_idx` already counts the stop sign's slot, and `sync_log`
    /// adds one for the stop sign again, so its accepted and decided indices run one past
    /// the stop sign, and it decides `log_end + 2` (`DecidedPastEnd`).
    /// `tests/omnipaxos_findings.rs` shows this on OmniPaxos' own storage. A stop sign is
    /// the last entry of its configuration, so the index can only mean that the stop sign
    /// is decided; stored as `log_end + 1`, a node restarted over the store recognises its
    /// stop sign as decided and reads its whole decided log (tested there too).
    StopsignCountedTwice,
}

impl Rule {
    /// Every rule, in the order they are documented.
    pub const ALL: [Rule; 4] = [
        Rule::TrimThenCompact,
        Rule::EmptySuffixAtEnd,
        Rule::DecidedLast,
        Rule::StopsignCountedTwice,
    ];

    /// The rule's name as in the docs, e.g. `"TrimThenCompact"`.
    pub fn name(self) -> &'static str {
        match self {
            Rule::TrimThenCompact => "TrimThenCompact",
            Rule::EmptySuffixAtEnd => "EmptySuffixAtEnd",
            Rule::DecidedLast => "DecidedLast",
            Rule::StopsignCountedTwice => "StopsignCountedTwice",
        }
    }
}

/// An OmniPaxos batch as a paxstore batch.
#[derive(Debug)]
pub struct Normalized<T: OmniPaxosEntry> {
    /// The paxstore batch.
    pub ops: Vec<StorageOp<OmniEntry<T>>>,
    /// For each op of `ops`, the position of the OmniPaxos op it comes from.
    pub origin: Vec<usize>,
    /// Each rule that changed the batch, with the position of the OmniPaxos op it took.
    pub applied: Vec<(Rule, usize)>,
}

/// `ops` (an OmniPaxos batch, to be applied to a store with `bounds`) as a paxstore batch,
/// with every [`Rule`].
pub fn normalize<T>(bounds: LogBounds, ops: Vec<OpOp<T>>) -> Result<Normalized<T>, OmniStorageError>
where
    T: OmniPaxosEntry,
{
    normalize_with(bounds, ops, &Rule::ALL)
}

/// As [`normalize`], with only the rules in `rules` (tests show what each is needed for).
pub fn normalize_with<T>(
    bounds: LogBounds,
    ops: Vec<OpOp<T>>,
    rules: &[Rule],
) -> Result<Normalized<T>, OmniStorageError>
where
    T: OmniPaxosEntry,
{
    let on = |rule: Rule| rules.contains(&rule);
    let mut out =
        Normalized { ops: Vec::with_capacity(ops.len()), origin: Vec::new(), applied: Vec::new() };
    // The bounds as the ops emitted so far leave them (an invalid op leaves them as they
    // were; paxstore refuses the batch later with the exact reason).
    let mut running = bounds;
    let mut decided = Vec::new();
    let mut ops = ops.into_iter().enumerate().peekable();
    while let Some((position, op)) = ops.next() {
        let op = match op {
            OpOp::Trim(idx)
                if on(Rule::TrimThenCompact)
                    && matches!(ops.peek(), Some((_, OpOp::SetCompactedIdx(next))) if *next == idx) =>
            {
                ops.next();
                out.applied.push((Rule::TrimThenCompact, position));
                StorageOp::SetCompactedIdx(idx)
            }
            OpOp::AppendOnPrefix(from_idx, entries)
                if on(Rule::EmptySuffixAtEnd)
                    && entries.is_empty()
                    && (from_idx == running.log_end
                        || from_idx == running.log_end + 1 && running.has_stopsign) =>
            {
                out.applied.push((Rule::EmptySuffixAtEnd, position));
                continue;
            }
            OpOp::SetDecidedIndex(idx) if on(Rule::DecidedLast) && idx >= running.decided_idx => {
                decided.push((position, idx));
                continue;
            }
            OpOp::SetDecidedIndex(idx) => {
                // Moving the index back (OmniPaxos never does) applies in place, and
                // overwrites any deferred before it.
                decided.clear();
                decided_index(idx, running, rules, &mut out, position)
            }
            op => to_paxstore(op)?,
        };
        let _ = running.apply(&op);
        out.ops.push(op);
        out.origin.push(position);
    }
    // Only the last decided index of the batch counts: the ones before it are overwritten.
    if let Some(&(position, idx)) = decided.last() {
        if decided.len() > 1 || out.origin.iter().any(|&later| later > position) {
            out.applied.push((Rule::DecidedLast, position));
        }
        let op = decided_index(idx, running, rules, &mut out, position);
        out.ops.push(op);
        out.origin.push(position);
    }
    Ok(out)
}

/// `SetDecidedIndex(idx)` on a log with `bounds`, with rule
/// [`StopsignCountedTwice`](Rule::StopsignCountedTwice) if it applies.
fn decided_index<T: OmniPaxosEntry>(
    idx: usize,
    bounds: LogBounds,
    rules: &[Rule],
    out: &mut Normalized<T>,
    position: usize,
) -> StorageOp<OmniEntry<T>> {
    if rules.contains(&Rule::StopsignCountedTwice)
        && bounds.has_stopsign
        && idx == bounds.log_end + 2
    {
        out.applied.push((Rule::StopsignCountedTwice, position));
        return StorageOp::SetDecidedIndex(bounds.log_end + 1);
    }
    StorageOp::SetDecidedIndex(idx)
}

/// One OmniPaxos op as the paxstore op of the same name, values converted.
pub fn to_paxstore<T>(op: OpOp<T>) -> Result<StorageOp<OmniEntry<T>>, OmniStorageError>
where
    T: OmniPaxosEntry,
{
    Ok(match op {
        OpOp::AppendEntry(entry) => StorageOp::AppendEntry(OmniEntry(entry)),
        OpOp::AppendEntries(entries) => {
            StorageOp::AppendEntries(entries.into_iter().map(OmniEntry).collect())
        }
        OpOp::AppendOnPrefix(from_idx, entries) => {
            StorageOp::AppendOnPrefix(from_idx, entries.into_iter().map(OmniEntry).collect())
        }
        OpOp::SetPromise(ballot) => StorageOp::SetPromise(ballot_to_paxstore(ballot)),
        OpOp::SetDecidedIndex(idx) => StorageOp::SetDecidedIndex(idx),
        OpOp::SetAcceptedRound(ballot) => StorageOp::SetAcceptedRound(ballot_to_paxstore(ballot)),
        OpOp::SetCompactedIdx(idx) => StorageOp::SetCompactedIdx(idx),
        OpOp::Trim(idx) => StorageOp::Trim(idx),
        OpOp::SetStopsign(stopsign) => {
            StorageOp::SetStopsign(stopsign.map(stopsign_to_paxstore).transpose()?)
        }
        OpOp::SetSnapshot(snapshot) => StorageOp::SetSnapshot(snapshot.map(OmniSnapshot)),
    })
}

#[cfg(test)]
mod tests {
    use omnipaxos::ballot_leader_election::Ballot as OpBallot;
    use omnipaxos::storage::{NoSnapshot, StopSign as OpStopSign};
    use omnipaxos::ClusterConfig as OpConfig;
    use paxstore::InvalidOp;

    use omnipaxos::storage::Entry as OpEntry;

    use super::*;

    #[derive(Clone, Debug, PartialEq)]
    struct E(u64);

    impl OpEntry for E {
        type Snapshot = NoSnapshot;
    }

    fn bounds(compacted_idx: usize, log_end: usize, decided_idx: usize) -> LogBounds {
        LogBounds { compacted_idx, log_end, decided_idx, has_stopsign: false }
    }

    fn es(range: std::ops::Range<u64>) -> Vec<E> {
        range.map(E).collect()
    }

    fn stopsign() -> OpStopSign {
        OpStopSign {
            next_config: OpConfig {
                configuration_id: 2,
                nodes: vec![1, 2, 3],
                flexible_quorum: None,
            },
            metadata: None,
        }
    }

    /// Why paxstore refuses `ops` normalised with `rules`, if it does.
    fn refusal(b: LogBounds, ops: Vec<OpOp<E>>, rules: &[Rule]) -> Option<InvalidOp> {
        let batch = normalize_with(b, ops, rules).unwrap();
        b.validate_batch(&batch.ops).err().and_then(|e| e.invalid_op().copied())
    }

    fn names(batch: &Normalized<E>) -> Vec<&'static str> {
        batch.ops.iter().map(StorageOp::name).collect()
    }

    /// `sync_log` on a follower holding `[0, 5)` decided to 2, from a leader whose log is
    /// `[0, 9)` decided to 8: the decided index comes before the entries it covers.
    fn follower_sync() -> Vec<OpOp<E>> {
        vec![
            OpOp::SetAcceptedRound(OpBallot::default()),
            OpOp::SetDecidedIndex(8),
            OpOp::AppendOnPrefix(3, es(3..9)),
        ]
    }

    #[test]
    fn decided_last_applies_the_decided_index_after_the_entries() {
        let b = bounds(0, 5, 2);
        let batch = normalize(b, follower_sync()).unwrap();
        assert_eq!(names(&batch), ["SetAcceptedRound", "AppendOnPrefix", "SetDecidedIndex"]);
        assert_eq!(batch.origin, [0, 2, 1]);
        assert_eq!(batch.applied, [(Rule::DecidedLast, 1)]);
        assert_eq!(b.validate_batch(&batch.ops).map(|plan| plan.after.decided_idx).ok(), Some(8));
        let without = refusal(b, follower_sync(), &[Rule::TrimThenCompact, Rule::EmptySuffixAtEnd]);
        assert_eq!(without, Some(InvalidOp::DecidedPastEnd { idx: 8, log_end: 5 }));
    }

    #[test]
    fn decided_last_keeps_decided_entries_immutable() {
        // The follower had decided up to 4: a suffix from 3 would rewrite a decided entry.
        let b = bounds(0, 5, 4);
        assert_eq!(
            refusal(b, follower_sync(), &Rule::ALL),
            Some(InvalidOp::AppendOnPrefixOverwritesDecided { from_idx: 3, decided_idx: 4 })
        );
    }

    #[test]
    fn trim_then_compact_installs_a_snapshot_past_the_log_end() {
        let ops = || vec![OpOp::<E>::Trim(20), OpOp::SetCompactedIdx(20), OpOp::SetSnapshot(None)];
        let b = bounds(0, 5, 5);
        let batch = normalize(b, ops()).unwrap();
        assert_eq!(names(&batch), ["SetCompactedIdx", "SetSnapshot"]);
        assert_eq!(batch.origin, [0, 2]);
        assert_eq!(batch.applied, [(Rule::TrimThenCompact, 0)]);
        assert_eq!(refusal(b, ops(), &Rule::ALL), None);
        let without = refusal(b, ops(), &[Rule::DecidedLast, Rule::EmptySuffixAtEnd]);
        assert_eq!(without, Some(InvalidOp::TrimPastEnd { idx: 20, log_end: 5 }));
    }

    #[test]
    fn a_lone_trim_or_a_pair_of_different_indices_stays_as_it_is() {
        let b = bounds(0, 5, 5);
        let lone = normalize(b, vec![OpOp::<E>::Trim(20)]).unwrap();
        assert_eq!(names(&lone), ["Trim"]);
        assert_eq!(
            refusal(b, vec![OpOp::Trim(20)], &Rule::ALL),
            Some(InvalidOp::TrimPastEnd { idx: 20, log_end: 5 })
        );
        let mismatched = normalize(b, vec![OpOp::<E>::Trim(3), OpOp::SetCompactedIdx(4)]).unwrap();
        assert_eq!(names(&mismatched), ["Trim", "SetCompactedIdx"]);
        assert!(mismatched.applied.is_empty());
    }

    #[test]
    fn a_trim_below_the_log_start_stays_an_error() {
        // OmniPaxos' MemoryStorage underflows a usize here.
        let b = bounds(10, 15, 12);
        let ops = vec![OpOp::<E>::Trim(4), OpOp::SetCompactedIdx(4)];
        assert_eq!(
            refusal(b, ops, &Rule::ALL),
            Some(InvalidOp::CompactedBackwards { idx: 4, compacted_idx: 10 })
        );
    }

    #[test]
    fn empty_suffix_at_end_drops_an_empty_sync_after_a_stop_sign() {
        // The follower holds `[0, 7)` and the stop sign (its accepted index is 8); the
        // leader syncs from 8 with nothing.
        let b = LogBounds { has_stopsign: true, ..bounds(0, 7, 7) };
        let ops = || {
            vec![
                OpOp::<E>::SetDecidedIndex(8),
                OpOp::AppendOnPrefix(8, vec![]),
                OpOp::SetStopsign(Some(stopsign())),
            ]
        };
        let batch = normalize(b, ops()).unwrap();
        assert_eq!(names(&batch), ["SetStopsign", "SetDecidedIndex"]);
        assert_eq!(refusal(b, ops(), &Rule::ALL), None);
        let without = refusal(b, ops(), &[Rule::TrimThenCompact, Rule::DecidedLast]);
        assert_eq!(without, Some(InvalidOp::AppendOnPrefixPastEnd { from_idx: 8, log_end: 7 }));
        // Once decided, the suffix at the stop sign's slot is below the decided index.
        let decided = LogBounds { decided_idx: 8, ..b };
        let at_end = || vec![OpOp::<E>::AppendOnPrefix(7, vec![])];
        assert_eq!(refusal(decided, at_end(), &Rule::ALL), None);
        assert_eq!(
            refusal(decided, at_end(), &[]),
            Some(InvalidOp::AppendOnPrefixOverwritesDecided { from_idx: 7, decided_idx: 8 })
        );
    }

    #[test]
    fn a_suffix_that_changes_something_is_never_dropped() {
        let b = LogBounds { has_stopsign: true, ..bounds(0, 7, 7) };
        // Entries after the stop sign's slot would leave a gap.
        assert_eq!(
            refusal(b, vec![OpOp::AppendOnPrefix(8, es(8..9))], &Rule::ALL),
            Some(InvalidOp::AppendOnPrefixPastEnd { from_idx: 8, log_end: 7 })
        );
        // An empty suffix two past the end is not the stop sign's slot.
        assert_eq!(
            refusal(b, vec![OpOp::AppendOnPrefix(9, vec![])], &Rule::ALL),
            Some(InvalidOp::AppendOnPrefixPastEnd { from_idx: 9, log_end: 7 })
        );
        // Without a stop sign, one past the end is a gap.
        let no_ss = bounds(0, 7, 7);
        assert_eq!(
            refusal(no_ss, vec![OpOp::AppendOnPrefix(8, vec![])], &Rule::ALL),
            Some(InvalidOp::AppendOnPrefixPastEnd { from_idx: 8, log_end: 7 })
        );
    }

    #[test]
    fn decided_last_keeps_the_last_index_and_leaves_a_move_back_in_place() {
        let b = bounds(0, 5, 5);
        let ops = vec![
            OpOp::<E>::SetDecidedIndex(5),
            OpOp::AppendEntries(es(5..7)),
            OpOp::SetDecidedIndex(7),
        ];
        let batch = normalize(b, ops).unwrap();
        assert_eq!(names(&batch), ["AppendEntries", "SetDecidedIndex"]);
        assert_eq!(batch.origin, [1, 2]);
        // Opening a closed log by moving the decided index back, then appending.
        let closed = LogBounds { has_stopsign: true, decided_idx: 6, ..bounds(0, 5, 0) };
        let ops = vec![OpOp::<E>::SetDecidedIndex(5), OpOp::AppendEntry(E(5))];
        assert_eq!(refusal(closed, ops, &Rule::ALL), None);
    }

    #[test]
    fn stopsign_counted_twice_stores_the_decided_stop_sign() {
        let b = LogBounds { has_stopsign: true, ..bounds(0, 10, 11) };
        let batch = normalize(b, vec![OpOp::<E>::SetDecidedIndex(12)]).unwrap();
        assert!(matches!(batch.ops[..], [StorageOp::SetDecidedIndex(11)]));
        assert_eq!(batch.applied, [(Rule::StopsignCountedTwice, 0)]);
        let past = |idx| Some(InvalidOp::DecidedPastEnd { idx, log_end: 10 });
        assert_eq!(refusal(b, vec![OpOp::SetDecidedIndex(12)], &[Rule::DecidedLast]), past(12));
        // Further past, or without a stop sign, stays an error.
        assert_eq!(refusal(b, vec![OpOp::SetDecidedIndex(13)], &Rule::ALL), past(13));
        let no_stopsign = bounds(0, 10, 10);
        assert_eq!(refusal(no_stopsign, vec![OpOp::SetDecidedIndex(12)], &Rule::ALL), past(12));
    }
}
