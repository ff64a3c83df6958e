//! The decided stop sign: `decided_idx = log_end + 1` while a stop sign is set. Deciding
//! it, what it closes, what stays valid, and that it survives a reopen.

use paxstore::StorageOp::*;
use paxstore::{InvalidOp, Snapshot};

use super::ops::{ballot, stopsign};
use crate::{Factory, Fixture, TestSnapshot};

/// A fixture holding entries `[3, 8)` (three trimmed) with stop sign 2 decided
/// (`decided_idx = 9`).
fn decided<F: Factory>(factory: &F) -> Fixture<'_, F> {
    let mut fx = Fixture::new(factory);
    let es = fx.entries(8, 8);
    fx.write(vec![AppendEntries(es), SetStopsign(Some(stopsign(2))), SetDecidedIndex(9), Trim(3)]);
    fx
}

/// `SetDecidedIndex(log_end + 1)` decides a stop sign set by an earlier batch or earlier
/// in the same batch, on a full log and on an empty one.
pub fn decide_stopsign<F: Factory>(factory: &F) {
    let mut fx = Fixture::new(factory);
    let es = fx.entries(6, 8);
    fx.write(vec![AppendEntries(es), SetDecidedIndex(4), SetStopsign(Some(stopsign(2)))]);
    fx.write(vec![SetDecidedIndex(7)]);
    let mut empty = Fixture::new(factory);
    empty.write(vec![SetStopsign(Some(stopsign(1))), SetDecidedIndex(1)]);
}

/// While the stop sign is decided, trims and compaction up to the log end, a new stop
/// sign, an empty append and a decided index that stays are all valid.
pub fn decided_stopsign_allows_trim_and_replacement<F: Factory>(factory: &F) {
    let mut fx = decided(factory);
    fx.write(vec![Trim(5), SetCompactedIdx(6), AppendEntries(vec![])]);
    fx.write(vec![SetStopsign(Some(stopsign(4))), SetDecidedIndex(9)]);
    fx.write(vec![SetCompactedIdx(8), Trim(8)]);
}

/// Moving the decided index back to the log end or below opens the log again: the stop
/// sign may be cleared and entries appended.
pub fn undecided_stopsign_opens_the_log<F: Factory>(factory: &F) {
    let mut fx = decided(factory);
    let e = fx.entry(8);
    fx.write(vec![SetDecidedIndex(8), AppendEntry(e)]);
    fx.write(vec![SetStopsign(None)]);
    let es = fx.entries(2, 8);
    fx.write(vec![AppendEntries(es), SetDecidedIndex(11)]);
}

/// A follower installs a snapshot past its log end and a decided stop sign in one batch,
/// as a replica catching up on a stopped configuration does.
pub fn decide_stopsign_with_snapshot_install<F: Factory>(factory: &F) {
    let mut fx = Fixture::new(factory);
    let es = fx.entries(3, 8);
    fx.write(vec![AppendEntries(es)]);
    let covered = fx.entries(40, 8);
    fx.write(vec![
        SetSnapshot(Some(TestSnapshot::create(&covered))),
        SetCompactedIdx(40),
        SetStopsign(Some(stopsign(3))),
        SetDecidedIndex(41),
    ]);
}

/// `SetDecidedIndex` past `log_end + 1`, or to `log_end + 1` without a stop sign (set
/// later in the batch, or cleared earlier in it), is `DecidedPastEnd`.
pub fn error_decided_past_end_with_stopsign<F: Factory>(factory: &F) {
    let mut fx = Fixture::new(factory);
    let es = fx.entries(5, 8);
    fx.write(vec![AppendEntries(es), SetStopsign(Some(stopsign(1)))]);
    fx.write_invalid(vec![SetDecidedIndex(7)], 0, InvalidOp::DecidedPastEnd { idx: 7, log_end: 5 });
    fx.write_invalid(
        vec![SetStopsign(None), SetDecidedIndex(6)],
        1,
        InvalidOp::DecidedPastEnd { idx: 6, log_end: 5 },
    );
    let mut bare = Fixture::new(factory);
    let es = bare.entries(5, 8);
    bare.write(vec![AppendEntries(es)]);
    bare.write_invalid(
        vec![SetDecidedIndex(6), SetStopsign(Some(stopsign(1)))],
        0,
        InvalidOp::DecidedPastEnd { idx: 6, log_end: 5 },
    );
}

/// Appends while the stop sign is decided are `AppendAfterDecidedStopsign`; an
/// `AppendOnPrefix` anywhere would overwrite decided entries.
pub fn error_append_after_decided_stopsign<F: Factory>(factory: &F) {
    let mut fx = decided(factory);
    let e = fx.entry(8);
    fx.write_invalid(
        vec![AppendEntry(e)],
        0,
        InvalidOp::AppendAfterDecidedStopsign { op: "AppendEntry", log_end: 8 },
    );
    let es = fx.entries(2, 8);
    fx.write_invalid(
        vec![SetPromise(ballot(3)), AppendEntries(es)],
        1,
        InvalidOp::AppendAfterDecidedStopsign { op: "AppendEntries", log_end: 8 },
    );
    let es = fx.entries(2, 8);
    fx.write_invalid(
        vec![AppendOnPrefix(8, es)],
        0,
        InvalidOp::AppendOnPrefixOverwritesDecided { from_idx: 8, decided_idx: 9 },
    );
    // Deciding the stop sign closes the log for the rest of the same batch.
    let mut fresh = Fixture::new(factory);
    let e = fresh.entry(8);
    fresh.write_invalid(
        vec![SetStopsign(Some(stopsign(1))), SetDecidedIndex(1), AppendEntry(e)],
        2,
        InvalidOp::AppendAfterDecidedStopsign { op: "AppendEntry", log_end: 0 },
    );
}

/// `SetCompactedIdx` past the end while the stop sign is decided is
/// `CompactedPastDecidedStopsign`.
pub fn error_compacted_past_decided_stopsign<F: Factory>(factory: &F) {
    let mut fx = decided(factory);
    fx.write_invalid(
        vec![SetCompactedIdx(9)],
        0,
        InvalidOp::CompactedPastDecidedStopsign { idx: 9, log_end: 8 },
    );
}

/// `SetStopsign(None)` while the stop sign is decided is `ClearDecidedStopsign`.
pub fn error_clear_decided_stopsign<F: Factory>(factory: &F) {
    let mut fx = decided(factory);
    fx.write_invalid(
        vec![Trim(4), SetStopsign(None)],
        1,
        InvalidOp::ClearDecidedStopsign { decided_idx: 9, log_end: 8 },
    );
}

/// A decided stop sign survives a reopen, on a full log, a trimmed one and an empty one
/// started past a snapshot, and so does the log opened again by moving the index back.
pub fn reopen_after_decided_stopsign<F: Factory>(factory: &F) {
    let mut fx = decided(factory);
    fx.reopen();
    fx.write(vec![Trim(8)]);
    fx.reopen();
    fx.write(vec![SetDecidedIndex(8)]);
    fx.reopen();
    let e = fx.entry(8);
    fx.write(vec![AppendEntry(e), SetStopsign(Some(stopsign(5))), SetDecidedIndex(10)]);
    fx.reopen();
    let mut empty = Fixture::new(factory);
    empty.write(vec![SetCompactedIdx(100), SetStopsign(Some(stopsign(6))), SetDecidedIndex(101)]);
    empty.reopen();
}
