//! The index limits: every op at the `usize::MAX` edges. A log end is a `usize`, so the
//! last entry a log can hold sits at `usize::MAX - 1`. Each op there is either applied
//! and read back exactly, or refused with [`InvalidOp::IndexOverflow`] (naming the op,
//! where its entries would start and how many there are) with nothing changed; no index
//! wraps around.

use paxstore::StorageOp::*;
use paxstore::{InvalidOp, StorageOp};

use super::ops::stopsign;
use crate::{Factory, Fixture, TestEntry};

const MAX: usize = usize::MAX;

fn overflow(op: &'static str, from: usize, entries: usize) -> InvalidOp {
    InvalidOp::IndexOverflow { op, from, entries }
}

/// Every append, refused at a log that ends at `usize::MAX`; every op that appends
/// nothing, applied.
fn appends_refused_at_max<F: Factory>(fx: &mut Fixture<'_, F>) {
    let e = fx.entry(8);
    fx.write_invalid(vec![AppendEntry(e)], 0, overflow("AppendEntry", MAX, 1));
    let es = fx.entries(2, 8);
    fx.write_invalid(vec![AppendEntries(es)], 0, overflow("AppendEntries", MAX, 2));
    let es = fx.entries(1, 8);
    fx.write_invalid(vec![AppendOnPrefix(MAX, es)], 0, overflow("AppendOnPrefix", MAX, 1));
    fx.write(vec![AppendEntries(Vec::new()), AppendOnPrefix(MAX, Vec::new())]);
}

/// `SetCompactedIdx(usize::MAX)` is valid: the empty log starts and ends at
/// `usize::MAX`, and takes no entry. A stop sign set there stays undecided (deciding it
/// would need `decided_idx = usize::MAX + 1`), so it can be cleared, and an append is
/// refused for the index, not for a closed log.
pub fn compacted_idx_at_usize_max<F: Factory>(factory: &F) {
    let mut fx = Fixture::new(factory);
    let es = fx.entries(3, 8);
    fx.write(vec![AppendEntries(es), SetDecidedIndex(2)]);
    fx.write(vec![SetCompactedIdx(MAX)]);
    appends_refused_at_max(&mut fx);
    fx.write(vec![Trim(MAX), SetCompactedIdx(MAX), SetDecidedIndex(MAX)]);
    fx.write(vec![SetDecidedIndex(0), SetStopsign(Some(stopsign(1)))]);
    appends_refused_at_max(&mut fx);
    fx.write(vec![SetStopsign(None)]);
    fx.write(vec![SetStopsign(Some(stopsign(2))), SetDecidedIndex(MAX)]);
    appends_refused_at_max(&mut fx);
}

/// Entries appended up to `usize::MAX - 1`, by every append op, read back exactly; the
/// append that would pass it is refused, alone or after valid ops in its batch.
pub fn appends_up_to_usize_max<F: Factory>(factory: &F) {
    let mut fx = Fixture::new(factory);
    fx.write(vec![SetCompactedIdx(MAX - 3)]);
    let es = fx.entries(4, 8);
    fx.write_invalid(vec![AppendEntries(es)], 0, overflow("AppendEntries", MAX - 3, 4));
    let e = fx.entry(8);
    fx.write(vec![AppendEntry(e)]);
    let es = fx.entries(2, 8);
    fx.write(vec![AppendEntries(es)]);
    appends_refused_at_max(&mut fx);
    // The batch refused at its last op leaves no trace of the valid ops before it.
    let (a, b) = (fx.entries(1, 8), fx.entry(8));
    let batch = vec![AppendOnPrefix(MAX - 1, a), SetDecidedIndex(MAX - 1), AppendEntry(b)];
    fx.write_invalid(batch, 2, overflow("AppendEntry", MAX, 1));
    let es = fx.entries(3, 8);
    fx.write_invalid(vec![AppendOnPrefix(MAX - 1, es)], 0, overflow("AppendOnPrefix", MAX - 1, 3));
    let es = fx.entries(2, 8);
    fx.write(vec![AppendOnPrefix(MAX - 2, es), SetDecidedIndex(MAX - 1)]);
    fx.write(vec![Trim(MAX - 1)]);
    fx.write(vec![SetDecidedIndex(MAX)]);
    fx.write(vec![Trim(MAX)]);
    appends_refused_at_max(&mut fx);
}

/// A stop sign decided at the last index that leaves room for it: the log ends at
/// `usize::MAX - 1`, `decided_idx = usize::MAX`. It closes the log as anywhere else.
pub fn decided_stopsign_at_usize_max<F: Factory>(factory: &F) {
    let mut fx = Fixture::new(factory);
    let es = fx.entries(2, 8);
    fx.write(vec![SetCompactedIdx(MAX - 3), AppendEntries(es)]);
    fx.write(vec![SetStopsign(Some(stopsign(1))), SetDecidedIndex(MAX)]);
    let e = fx.entry(8);
    let closed = InvalidOp::AppendAfterDecidedStopsign { op: "AppendEntry", log_end: MAX - 1 };
    fx.write_invalid(vec![AppendEntry(e)], 0, closed);
    let past = InvalidOp::CompactedPastDecidedStopsign { idx: MAX, log_end: MAX - 1 };
    fx.write_invalid(vec![SetCompactedIdx(MAX)], 0, past);
    fx.write(vec![Trim(MAX - 1)]);
    // Moving the decided index back opens the log; the next entry is the last one.
    let e = fx.entry(8);
    fx.write(vec![SetDecidedIndex(MAX - 1), AppendEntry(e)]);
    appends_refused_at_max(&mut fx);
}

/// The states at the `usize::MAX` edges survive a reopen: a log ending at
/// `usize::MAX`, an empty log compacted to it, a stop sign decided at `usize::MAX`.
/// Volatile backends report this case as ignored, by name.
pub fn reopen_at_usize_max<F: Factory>(factory: &F) {
    let mut fx = Fixture::new(factory);
    let es = fx.entries(2, 8);
    let batches: Vec<Vec<StorageOp<TestEntry>>> = vec![
        vec![SetCompactedIdx(MAX - 3), AppendEntries(es)],
        vec![SetStopsign(Some(stopsign(1))), SetDecidedIndex(MAX)],
        vec![SetDecidedIndex(MAX - 1)],
    ];
    for ops in batches {
        fx.write(ops);
        fx.reopen();
    }
    let e = fx.entry(8);
    fx.write(vec![AppendEntry(e)]);
    fx.reopen();
    appends_refused_at_max(&mut fx);
    fx.write(vec![SetCompactedIdx(MAX)]);
    fx.reopen();
    appends_refused_at_max(&mut fx);
}
