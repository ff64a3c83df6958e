//! Reopen: every kind of write survives dropping the store and opening it again.
//! Volatile backends report these cases as ignored, by name.

use paxstore::StorageOp::*;
use paxstore::{Snapshot, StorageOp};

use super::ops::{ballot, stopsign};
use crate::{Factory, Fixture, TestEntry, TestSnapshot};

/// Builds one batch from the fixture (which hands out fresh entries).
type BatchFn<F> = fn(&mut Fixture<'_, F>) -> Vec<StorageOp<TestEntry>>;

/// Writes each batch, reopening after each and once more at the end.
fn write_then_reopen<F: Factory>(factory: &F, batches: &[BatchFn<F>]) {
    let mut fx = Fixture::new(factory);
    for batch in batches {
        let ops = batch(&mut fx);
        fx.write(ops);
        fx.reopen();
    }
    fx.reopen();
}

/// An empty store reopens empty.
pub fn reopen_empty<F: Factory>(factory: &F) {
    let mut fx = Fixture::new(factory);
    fx.reopen();
    fx.reopen();
}

/// Appended entries survive a reopen, and appends continue after it.
pub fn reopen_after_append<F: Factory>(factory: &F) {
    write_then_reopen(
        factory,
        &[
            |fx| vec![AppendEntry(fx.entry(10))],
            |fx| vec![AppendEntries(fx.entries(20, 10))],
            |fx| vec![AppendEntries(fx.entries(5, 0))],
        ],
    );
}

/// A truncating `AppendOnPrefix` survives a reopen: the cut entries stay cut.
pub fn reopen_after_append_on_prefix<F: Factory>(factory: &F) {
    write_then_reopen(
        factory,
        &[
            |fx| vec![AppendEntries(fx.entries(20, 10))],
            |fx| vec![AppendOnPrefix(5, fx.entries(2, 10))],
            |_| vec![AppendOnPrefix(3, vec![])],
        ],
    );
}

/// Promise, accepted round and decided index survive a reopen.
pub fn reopen_after_metadata<F: Factory>(factory: &F) {
    write_then_reopen(
        factory,
        &[
            |_| vec![SetPromise(ballot(4))],
            |fx| {
                vec![
                    AppendEntries(fx.entries(6, 10)),
                    SetAcceptedRound(ballot(4)),
                    SetDecidedIndex(6),
                ]
            },
            |_| vec![SetDecidedIndex(2), SetPromise(ballot(5))],
        ],
    );
}

/// A trim survives a reopen: absolute indices and the log length are kept.
pub fn reopen_after_trim<F: Factory>(factory: &F) {
    write_then_reopen(
        factory,
        &[
            |fx| vec![AppendEntries(fx.entries(30, 10)), SetDecidedIndex(20), Trim(10)],
            |_| vec![Trim(30)],
            |fx| vec![AppendEntries(fx.entries(3, 10))],
        ],
    );
}

/// `SetCompactedIdx` past the end survives a reopen as an empty log starting there.
pub fn reopen_after_compacted_past_end<F: Factory>(factory: &F) {
    write_then_reopen(
        factory,
        &[
            |fx| vec![AppendEntries(fx.entries(5, 10))],
            |_| vec![SetCompactedIdx(1000)],
            |fx| vec![AppendEntries(fx.entries(2, 10)), SetDecidedIndex(1001)],
        ],
    );
}

/// Stop sign and snapshot, set and cleared, survive a reopen.
pub fn reopen_after_stopsign_and_snapshot<F: Factory>(factory: &F) {
    write_then_reopen(
        factory,
        &[
            |fx| {
                let es = fx.entries(4, 10);
                vec![SetSnapshot(Some(TestSnapshot::create(&es))), SetStopsign(Some(stopsign(3)))]
            },
            |_| vec![SetStopsign(None)],
            |_| vec![SetSnapshot(None), SetStopsign(Some(stopsign(4)))],
        ],
    );
}

/// A refused batch leaves no trace on disk either.
pub fn reopen_after_refused_batch<F: Factory>(factory: &F) {
    let mut fx = Fixture::new(factory);
    let es = fx.entries(5, 10);
    fx.write(vec![AppendEntries(es), SetDecidedIndex(3)]);
    let more = fx.entries(5, 10);
    fx.write_invalid(
        vec![AppendEntries(more), SetPromise(ballot(9)), Trim(11)],
        2,
        paxstore::InvalidOp::TrimPastEnd { idx: 11, log_end: 10 },
    );
    fx.reopen();
    let e = fx.entry(10);
    fx.write(vec![AppendEntry(e)]);
    fx.reopen();
}

/// Large (1 MiB) and empty entries survive a reopen.
pub fn reopen_large_and_empty_entries<F: Factory>(factory: &F) {
    write_then_reopen(
        factory,
        &[
            |fx| vec![AppendEntries(fx.entries(3, 1 << 20))],
            |fx| vec![AppendEntries(fx.entries(3, 0))],
            |fx| vec![AppendOnPrefix(2, fx.entries(2, 1 << 20))],
        ],
    );
}

/// Many small writes, each reopened, then everything at once: the state is always the
/// model's.
pub fn reopen_after_many_writes<F: Factory>(factory: &F) {
    let mut fx = Fixture::new(factory);
    for i in 0..50usize {
        let es = fx.entries(1 + i % 7, 16);
        let end = fx.model.log_end() + es.len();
        let decided = end.saturating_sub(3).max(fx.model.decided_idx);
        let mut ops =
            vec![AppendEntries(es), SetDecidedIndex(decided), SetPromise(ballot(i as u32))];
        if i % 10 == 9 {
            ops.push(Trim(decided.saturating_sub(5).max(fx.model.compacted_idx)));
        }
        fx.write(ops);
        if i % 5 == 0 {
            fx.reopen();
        }
    }
    fx.reopen();
}
