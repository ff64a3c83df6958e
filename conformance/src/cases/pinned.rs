//! Behaviours that only random sequences used to pin, each in a case of its own.

use paxstore::StorageOp::*;
use paxstore::{Ballot, InvalidOp};

use crate::{Factory, Fixture, TestSnapshot};

/// `SetCompactedIdx` to the current compacted index changes nothing, alone and in a
/// batch, on a fresh log, a trimmed log and an empty log moved past its end.
pub fn set_compacted_idx_to_itself_is_a_no_op<F: Factory>(factory: &F) {
    let mut fx = Fixture::new(factory);
    fx.write(vec![SetCompactedIdx(0)]);
    let es = fx.entries(6, 8);
    fx.write(vec![AppendEntries(es), SetDecidedIndex(4), Trim(3)]);
    fx.write(vec![SetCompactedIdx(3)]);
    let more = fx.entries(2, 8);
    fx.write(vec![SetCompactedIdx(3), AppendEntries(more), SetCompactedIdx(3)]);
    fx.write(vec![SetCompactedIdx(20), SetCompactedIdx(20)]);
}

/// A snapshot stays set across an `AppendOnPrefix` that truncates the log.
pub fn snapshot_survives_append_on_prefix<F: Factory>(factory: &F) {
    let mut fx = Fixture::new(factory);
    let es = fx.entries(8, 8);
    let snap = TestSnapshot { entries: 2, last_id: Some(1), digest: 42 };
    fx.write(vec![AppendEntries(es), SetSnapshot(Some(snap))]);
    let more = fx.entries(2, 8);
    fx.write(vec![AppendOnPrefix(4, more)]);
    fx.write(vec![AppendOnPrefix(1, vec![])]);
}

/// `SetPromise` stores the ballot it is given, even one lower than the stored one (the
/// contract keeps what it is told; ordering ballots is the replica's job).
pub fn lower_promise_replaces_a_higher_one<F: Factory>(factory: &F) {
    let mut fx = Fixture::new(factory);
    fx.write(vec![SetPromise(Ballot::new(1, 9, 9, 9))]);
    fx.write(vec![SetPromise(Ballot::new(1, 2, 0, 1))]);
    fx.write(vec![SetAcceptedRound(Ballot::new(1, 9, 0, 1))]);
    fx.write(vec![SetAcceptedRound(Ballot::new(1, 1, 0, 1)), SetPromise(Ballot::new(0, 1, 0, 0))]);
}

/// Trims in one batch apply in batch order: rising trims all apply; a trim below one
/// earlier in the same batch is refused, at its own position, and the batch leaves no
/// trace.
pub fn trims_apply_in_batch_order<F: Factory>(factory: &F) {
    let mut fx = Fixture::new(factory);
    let es = fx.entries(10, 8);
    fx.write(vec![AppendEntries(es), SetDecidedIndex(10)]);
    fx.write(vec![Trim(2), Trim(5), Trim(5)]);
    fx.write_invalid(
        vec![Trim(8), Trim(6)],
        1,
        InvalidOp::TrimBelowCompacted { idx: 6, compacted_idx: 8 },
    );
    fx.write(vec![Trim(6), Trim(7)]);
}
