//! Property-based: long random op sequences, valid and invalid, applied to the backend
//! and the model and compared through every getter after every batch. A failure shrinks
//! to a short sequence, which the panic message prints.

use paxstore::StorageOp::*;
use paxstore::{Snapshot, StorageOp};
use proptest::collection::vec;
use proptest::prelude::*;
use proptest::test_runner::{Config, TestCaseError, TestRunner};

use super::ops::{ballot, stopsign};
use crate::check::{apply_both, compare};
use crate::{Factory, Model, TestEntry, TestSnapshot};

/// An index, chosen relative to the state the op applies to, so sequences stay
/// meaningful as they shrink; about a third land out of bounds.
#[derive(Clone, Copy, Debug)]
pub enum Idx {
    /// The decided index.
    Decided,
    /// The compacted index.
    Compacted,
    /// `log_end - k`, not below 0.
    EndMinus(u8),
    /// `log_end + 1 + k`: past the end.
    EndPlus(u8),
    /// `compacted_idx - 1 - k`: below the log, where there is room.
    CompactedMinus(u8),
    /// An absolute index.
    Abs(u16),
}

impl Idx {
    fn resolve(self, m: &Model) -> usize {
        match self {
            Idx::Decided => m.decided_idx,
            Idx::Compacted => m.compacted_idx,
            Idx::EndMinus(k) => m.log_end().saturating_sub(usize::from(k)),
            Idx::EndPlus(k) => m.log_end() + 1 + usize::from(k),
            Idx::CompactedMinus(k) => m.compacted_idx.saturating_sub(1 + usize::from(k)),
            Idx::Abs(i) => usize::from(i),
        }
    }
}

/// One op of a random batch, before its indices are resolved.
#[derive(Clone, Debug)]
pub enum OpSpec {
    /// `AppendEntry` with a payload of this length.
    Append(u16),
    /// `AppendEntries` of `n` entries.
    AppendMany(u8, u16),
    /// `AppendOnPrefix` of `n` entries.
    AppendOnPrefix(Idx, u8),
    /// `SetPromise`.
    Promise(u8),
    /// `SetAcceptedRound`.
    Accepted(u8),
    /// `SetDecidedIndex`.
    Decided(Idx),
    /// `Trim`.
    Trim(Idx),
    /// `SetCompactedIdx`.
    Compacted(Idx),
    /// `SetStopsign`.
    Stopsign(Option<u8>),
    /// `SetSnapshot` of the last `n` stored entries, or `None`.
    Snapshot(Option<u8>),
}

/// A step of a random sequence.
#[derive(Clone, Debug)]
pub enum Step {
    /// One `write_atomically` call.
    Batch(Vec<OpSpec>),
    /// Drop the backend and open it again (persistent backends only).
    Reopen,
}

fn idx() -> impl Strategy<Value = Idx> {
    prop_oneof![
        3 => Just(Idx::Decided),
        2 => Just(Idx::Compacted),
        4 => (0u8..4).prop_map(Idx::EndMinus),
        2 => (0u8..3).prop_map(Idx::EndPlus),
        1 => (0u8..3).prop_map(Idx::CompactedMinus),
        1 => (0u16..80).prop_map(Idx::Abs),
    ]
}

fn payload_len() -> impl Strategy<Value = u16> {
    prop_oneof![9 => 0u16..48, 1 => 1000u16..6000]
}

fn op() -> impl Strategy<Value = OpSpec> {
    prop_oneof![
        3 => payload_len().prop_map(OpSpec::Append),
        3 => (1u8..8, payload_len()).prop_map(|(n, len)| OpSpec::AppendMany(n, len)),
        3 => (idx(), 0u8..4).prop_map(|(i, n)| OpSpec::AppendOnPrefix(i, n)),
        1 => any::<u8>().prop_map(OpSpec::Promise),
        1 => any::<u8>().prop_map(OpSpec::Accepted),
        3 => idx().prop_map(OpSpec::Decided),
        // `log_end + 1`: decides the stop sign when one is set, refused otherwise.
        1 => Just(OpSpec::Decided(Idx::EndPlus(0))),
        2 => idx().prop_map(OpSpec::Trim),
        1 => idx().prop_map(OpSpec::Compacted),
        1 => proptest::option::of(any::<u8>()).prop_map(OpSpec::Stopsign),
        1 => proptest::option::of(0u8..6).prop_map(OpSpec::Snapshot),
    ]
}

/// Random sequences of `len` steps; with `reopen`, one step in ten is a reopen.
pub fn steps(reopen: bool, len: std::ops::Range<usize>) -> BoxedStrategy<Vec<Step>> {
    let batch = vec(op(), 1..5).prop_map(Step::Batch);
    if reopen {
        vec(prop_oneof![9 => batch, 1 => Just(Step::Reopen)], len).boxed()
    } else {
        vec(batch, len).boxed()
    }
}

/// Turns specs into ops, resolving each index against the state the ops before it in
/// the batch leave (invalid ops are skipped in that running state, as the backend will
/// refuse the whole batch anyway).
pub fn resolve(specs: &[OpSpec], model: &Model, next_id: &mut u64) -> Vec<StorageOp<TestEntry>> {
    let mut scratch = model.clone();
    let mut entry = |len: u16| {
        *next_id += 1;
        TestEntry::new(*next_id, usize::from(len))
    };
    specs
        .iter()
        .map(|spec| {
            let op = match spec {
                OpSpec::Append(len) => AppendEntry(entry(*len)),
                OpSpec::AppendMany(n, len) => AppendEntries((0..*n).map(|_| entry(*len)).collect()),
                OpSpec::AppendOnPrefix(i, n) => {
                    AppendOnPrefix(i.resolve(&scratch), (0..*n).map(|_| entry(16)).collect())
                }
                OpSpec::Promise(n) => SetPromise(ballot(u32::from(*n))),
                OpSpec::Accepted(n) => SetAcceptedRound(ballot(u32::from(*n))),
                OpSpec::Decided(i) => SetDecidedIndex(i.resolve(&scratch)),
                OpSpec::Trim(i) => Trim(i.resolve(&scratch)),
                OpSpec::Compacted(i) => SetCompactedIdx(i.resolve(&scratch)),
                OpSpec::Stopsign(s) => SetStopsign(s.map(|id| stopsign(u32::from(id)))),
                OpSpec::Snapshot(n) => SetSnapshot(n.map(|n| {
                    let from = scratch.log.len().saturating_sub(usize::from(n));
                    TestSnapshot::create(&scratch.log[from..])
                })),
            };
            let _ = scratch.apply_batch(std::slice::from_ref(&op));
            op
        })
        .collect()
}

/// Runs one random sequence on a fresh backend; the first disagreement, with its step.
pub fn run_steps<F: Factory>(factory: &F, steps: &[Step]) -> Result<usize, String> {
    let dir = tempfile::Builder::new()
        .prefix("paxstore-conformance-")
        .tempdir()
        .map_err(|e| format!("cannot create a temporary directory: {e}"))?;
    let mut storage = Some(factory.open(dir.path()).map_err(|e| format!("open failed: {e}"))?);
    let mut model = Model::default();
    let mut next_id = 0;
    let mut ops_run = 0;
    for (i, step) in steps.iter().enumerate() {
        match step {
            Step::Batch(specs) => {
                let ops = resolve(specs, &model, &mut next_id);
                ops_run += ops.len();
                let s = storage.as_mut().ok_or("no backend")?;
                // The outcome itself (accepted or refused) was compared with the model.
                let _outcome =
                    apply_both(s, &mut model, ops).map_err(|e| format!("step {i}: {e}"))?;
            }
            Step::Reopen => {
                drop(storage.take());
                let reopened = factory
                    .open(dir.path())
                    .map_err(|e| format!("step {i}: reopen failed: {e}"))?;
                storage = Some(reopened);
            }
        }
        let s = storage.as_ref().ok_or("no backend")?;
        compare(s, &model).map_err(|e| format!("after step {i} ({step:?}): {e}"))?;
    }
    Ok(ops_run)
}

/// Random cases per property test: `PAXSTORE_PROPTEST_CASES`, default 256 times
/// [`soak_factor`](crate::soak_factor).
pub fn proptest_cases() -> u32 {
    std::env::var("PAXSTORE_PROPTEST_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(256 * crate::soak_factor())
}

fn run_property<F: Factory>(factory: &F, reopen: bool, cases: u32, len: std::ops::Range<usize>) {
    let config = Config { cases, failure_persistence: None, ..Config::default() };
    let mut runner = TestRunner::new(config);
    let total_ops = std::cell::Cell::new(0usize);
    let result = runner.run(&steps(reopen, len), |steps| {
        let ops = run_steps(factory, &steps).map_err(TestCaseError::fail)?;
        total_ops.set(total_ops.get() + ops);
        Ok(())
    });
    match result {
        Ok(()) => eprintln!(
            "random ops: {cases} sequences, {} ops (incl. shrinking), all matched the model",
            total_ops.get()
        ),
        Err(err) => panic!("backend disagrees with the model on a random sequence: {err}"),
    }
}

/// Random sequences of up to 48 batches (valid and invalid ops), compared after each.
pub fn random_ops_match_model<F: Factory>(factory: &F) {
    run_property(factory, false, proptest_cases(), 1..48);
}

/// Fewer, longer random sequences (up to 400 batches), where state accumulates.
pub fn random_long_op_sequences<F: Factory>(factory: &F) {
    run_property(factory, false, proptest_cases().div_ceil(16), 200..400);
}

/// Random sequences with reopens interleaved (persistent backends).
pub fn random_ops_with_reopen_match_model<F: Factory>(factory: &F) {
    run_property(factory, true, proptest_cases().div_ceil(2), 1..48);
}
