//! All or nothing: a batch with an invalid op anywhere leaves no trace.

use paxstore::StorageOp::*;
use paxstore::{InvalidOp, Snapshot, StorageOp};

use super::ops::{ballot, stopsign};
use crate::{Factory, Fixture, TestEntry, TestSnapshot};

/// A batch that changes every field, with `bad` inserted at `at`.
fn batch_with_bad_op<F: Factory>(
    fx: &mut Fixture<'_, F>,
    at: usize,
    bad: StorageOp<TestEntry>,
) -> Vec<StorageOp<TestEntry>> {
    let es = fx.entries(4, 8);
    let tail = fx.entries(2, 8);
    let mut ops = vec![
        AppendEntries(es.clone()),
        SetPromise(ballot(7)),
        SetAcceptedRound(ballot(7)),
        AppendOnPrefix(12, tail),
        SetDecidedIndex(13),
        SetSnapshot(Some(TestSnapshot::create(&es))),
        Trim(11),
        SetStopsign(Some(stopsign(9))),
    ];
    ops.insert(at.min(ops.len()), bad);
    ops
}

/// A store holding entries `[0, 10)`, decided to 5, trimmed to 2, with every field set.
fn populated<F: Factory>(factory: &F) -> Fixture<'_, F> {
    let mut fx = Fixture::new(factory);
    let es = fx.entries(10, 8);
    fx.write(vec![
        AppendEntries(es.clone()),
        SetPromise(ballot(3)),
        SetAcceptedRound(ballot(2)),
        SetDecidedIndex(5),
        SetSnapshot(Some(TestSnapshot::create(&es[..2]))),
        Trim(2),
        SetStopsign(Some(stopsign(1))),
    ]);
    fx
}

/// The first op is invalid: nothing of the batch happens.
pub fn atomic_invalid_first_op<F: Factory>(factory: &F) {
    let mut fx = populated(factory);
    let ops = batch_with_bad_op(&mut fx, 0, Trim(11));
    fx.write_invalid(ops, 0, InvalidOp::TrimPastEnd { idx: 11, log_end: 10 });
}

/// An op in the middle is invalid: the ops before it are undone.
pub fn atomic_invalid_middle_op<F: Factory>(factory: &F) {
    let mut fx = populated(factory);
    let ops = batch_with_bad_op(&mut fx, 4, SetDecidedIndex(100));
    fx.write_invalid(ops, 4, InvalidOp::DecidedPastEnd { idx: 100, log_end: 14 });
}

/// The last op is invalid: every op before it is undone.
pub fn atomic_invalid_last_op<F: Factory>(factory: &F) {
    let mut fx = populated(factory);
    let ops = batch_with_bad_op(&mut fx, usize::MAX, SetCompactedIdx(1));
    fx.write_invalid(ops, 8, InvalidOp::CompactedBackwards { idx: 1, compacted_idx: 11 });
}

/// An op that is invalid only because of an earlier op in the same batch (a trim
/// past what an earlier `AppendOnPrefix` truncated to) fails the batch.
pub fn atomic_op_invalid_after_earlier_op<F: Factory>(factory: &F) {
    let mut fx = populated(factory);
    let e = fx.entry(8);
    fx.write_invalid(
        vec![AppendOnPrefix(6, vec![e]), Trim(8)],
        1,
        InvalidOp::TrimPastEnd { idx: 8, log_end: 7 },
    );
    // The same trim is valid in a batch where the log is long enough.
    fx.write(vec![Trim(8)]);
}

/// After a refused batch the store keeps working normally.
pub fn store_usable_after_refused_batch<F: Factory>(factory: &F) {
    let mut fx = populated(factory);
    for bad in [Trim(100), SetDecidedIndex(100), SetCompactedIdx(0)] {
        let e = fx.entry(8);
        let ops = vec![AppendEntry(e), bad];
        let before = fx.model.clone();
        match fx.apply(ops) {
            Ok(Err(_)) => assert_eq!(fx.model, before),
            Ok(Ok(())) => panic!("the model accepted a batch the case means to be refused"),
            // The backend's outcome differs from the model's refusal: `msg` says how.
            Err(msg) => panic!("the backend must refuse this batch, as the model does: {msg}"),
        }
        fx.check();
    }
    let es = fx.entries(3, 8);
    fx.write(vec![AppendEntries(es), SetDecidedIndex(13)]);
}
