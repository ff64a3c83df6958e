//! Property-based: long random op sequences, valid and invalid, applied to the backend
//! and the model and compared through every getter after every batch. A failure shrinks
//! to a 1-minimal sequence ([`minimize`]), which the panic message prints as the concrete
//! calls it made, with the seed that replays the run (`PAXSTORE_PROPTEST_SEED`).

use paxstore::StorageOp::*;
use paxstore::{Snapshot, StorageOp};
use proptest::collection::vec;
use proptest::prelude::*;
use proptest::test_runner::{Config, RngAlgorithm, TestCaseError, TestError, TestRng, TestRunner};
use std::panic::{catch_unwind, AssertUnwindSafe};

use super::ops::{ballot, stopsign};
use crate::check::{apply_both, described_once, mismatches, Mismatch};
use crate::describe::{self, panic_message};
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

/// Where a random sequence first disagreed with the model.
#[derive(Clone, Debug)]
pub struct StepFailure {
    /// The step, from 0.
    pub step: usize,
    /// What disagreed: an outcome, an open, or the getters (then also in `mismatches`).
    pub message: String,
    /// The getters that disagreed after the step, if that was the failure.
    pub mismatches: Vec<Mismatch>,
}

/// Runs one random sequence on a fresh backend: the ops it ran, or the first step that
/// disagreed. With `trace`, each step is pushed to it as the concrete call it made.
/// A panic that escapes the checks (a wrapper's drop, say) fails at the last step run.
pub fn run_steps<F: Factory>(
    factory: &F,
    steps: &[Step],
    mut trace: Option<&mut Vec<String>>,
) -> Result<usize, StepFailure> {
    let mut local = Vec::new();
    let outcome = {
        let trace = trace.as_deref_mut().unwrap_or(&mut local);
        catch_unwind(AssertUnwindSafe(|| run_steps_traced(factory, steps, trace)))
    };
    outcome.unwrap_or_else(|p| {
        let step = local.len().max(trace.map_or(0, |t| t.len())).saturating_sub(1);
        let message = format!("the backend panicked: {}", panic_message(&*p));
        Err(StepFailure { step, message, mismatches: vec![] })
    })
}

fn run_steps_traced<F: Factory>(
    factory: &F,
    steps: &[Step],
    trace: &mut Vec<String>,
) -> Result<usize, StepFailure> {
    let fail = |step: usize, message: String| StepFailure { step, message, mismatches: vec![] };
    let dir = tempfile::Builder::new()
        .prefix("paxstore-conformance-")
        .tempdir()
        .map_err(|e| fail(0, format!("cannot create a temporary directory: {e}")))?;
    let open = || catch_unwind(AssertUnwindSafe(|| factory.open(dir.path())));
    let mut storage = match open() {
        Ok(Ok(s)) => Some(s),
        Ok(Err(e)) => return Err(fail(0, format!("open failed: {e}"))),
        Err(p) => return Err(fail(0, format!("open panicked: {}", panic_message(&*p)))),
    };
    let mut model = Model::default();
    let mut next_id = 0;
    let mut ops_run = 0;
    for (i, step) in steps.iter().enumerate() {
        match step {
            Step::Batch(specs) => {
                let ops = resolve(specs, &model, &mut next_id);
                ops_run += ops.len();
                trace.push(format!("write_atomically({})", describe::batch(&ops)));
                let s = storage.as_mut().ok_or_else(|| fail(i, "no backend".into()))?;
                // The outcome itself (accepted or refused) was compared with the model.
                let _outcome = apply_both(s, &mut model, ops).map_err(|e| fail(i, e))?;
            }
            Step::Reopen => {
                trace.push("drop the store and open it again".into());
                drop(storage.take());
                storage = match open() {
                    Ok(Ok(s)) => Some(s),
                    Ok(Err(e)) => return Err(fail(i, format!("reopen failed: {e}"))),
                    Err(p) => {
                        return Err(fail(i, format!("reopen panicked: {}", panic_message(&*p))))
                    }
                };
            }
        }
        let s = storage.as_ref().ok_or_else(|| fail(i, "no backend".into()))?;
        let found = mismatches(s, &model);
        if !found.is_empty() {
            let lines: Vec<String> =
                found.iter().map(|m| format!("{}: {}", m.check, m.detail)).collect();
            return Err(StepFailure { step: i, message: lines.join("\n    "), mismatches: found });
        }
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

/// The seed of the random sequences: `PAXSTORE_PROPTEST_SEED`, or one from the clock. It
/// is printed, and a failure names it, so the run replays.
pub fn proptest_seed() -> u64 {
    std::env::var("PAXSTORE_PROPTEST_SEED").ok().and_then(|v| v.parse().ok()).unwrap_or_else(|| {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(1, |d| d.as_nanos() as u64)
    })
}

/// Whether `steps` still fail; if so, cut them after the failing step.
fn still_fails<F: Factory>(factory: &F, steps: &mut Vec<Step>) -> bool {
    match run_steps(factory, steps, None) {
        Ok(_) => false,
        Err(failure) => {
            steps.truncate(failure.step + 1);
            true
        }
    }
}

/// Shrinks a failing sequence to a 1-minimal one: cut after the failing step, then drop
/// runs of steps (halves, quarters, ... single steps) and single ops of each batch while
/// it still fails. Indices are resolved against the state, so what remains still means
/// something. At most `budget` runs.
pub fn minimize<F: Factory>(factory: &F, mut steps: Vec<Step>, budget: usize) -> Vec<Step> {
    let mut runs = 0;
    if !still_fails(factory, &mut steps) {
        return steps;
    }
    let mut chunk = steps.len().div_ceil(2).max(1);
    loop {
        let mut at = 0;
        while at < steps.len() && runs < budget {
            let mut candidate = steps.clone();
            candidate.drain(at..(at + chunk).min(candidate.len()));
            runs += 1;
            if !candidate.is_empty() && still_fails(factory, &mut candidate) {
                steps = candidate;
            } else {
                at += chunk;
            }
        }
        if chunk == 1 || runs >= budget {
            break;
        }
        chunk = chunk.div_ceil(2);
    }
    for i in (0..steps.len()).rev() {
        let Step::Batch(specs) = &steps[i] else { continue };
        for k in (0..specs.len()).rev() {
            let mut candidate = steps.clone();
            if let Step::Batch(specs) = &mut candidate[i] {
                if specs.len() < 2 {
                    continue;
                }
                specs.remove(k);
            }
            runs += 1;
            if runs < budget && still_fails(factory, &mut candidate) && candidate.len() > i {
                steps = candidate;
            }
        }
    }
    steps
}

/// The failure report of a minimal sequence: each step as the concrete call it made,
/// then what disagreed.
/// Where a failure was found: the `n`th of `cases` sequences, `len` steps before shrinking.
struct Found {
    seed: u64,
    n: u32,
    cases: u32,
    len: usize,
}

fn report<F: Factory>(factory: &F, steps: &[Step], found: &Found) -> String {
    let mut trace = Vec::new();
    let failure = run_steps(factory, steps, Some(&mut trace));
    let Found { seed, n, cases, len } = found;
    let mut out = format!(
        "backend disagrees with the model on a random sequence (number {n} of {cases}, {len} \
         steps); \
         PAXSTORE_PROPTEST_SEED={seed} replays it; \
         shrunk to {} step(s), each the call made on a fresh store:",
        steps.len()
    );
    for (i, line) in trace.iter().enumerate() {
        out.push_str(&format!("\n  step {i}: {line}"));
    }
    match failure {
        Err(f) if f.mismatches.is_empty() => {
            out.push_str(&format!("\nat step {}: {}", f.step, f.message))
        }
        Err(f) => {
            out.push_str(&format!("\nafter step {}, the getters disagree:", f.step));
            for m in f.mismatches {
                out.push_str(&format!("\n    {}", described_once(m.check, &m.detail)));
            }
        }
        Ok(_) => out.push_str("\n(the shrunk sequence passed when replayed: a flaky backend?)"),
    }
    out
}

fn run_property<F: Factory>(factory: &F, reopen: bool, cases: u32, len: std::ops::Range<usize>) {
    let seed = proptest_seed();
    // The suite shrinks with [`minimize`], which knows a failure's step; proptest's own
    // shrinking would re-run whole sequences hundreds of times first.
    let config =
        Config { cases, failure_persistence: None, max_shrink_iters: 0, ..Config::default() };
    let mut bytes = [0u8; 32];
    bytes[..8].copy_from_slice(&seed.to_le_bytes());
    let rng = TestRng::from_seed(RngAlgorithm::ChaCha, &bytes);
    let mut runner = TestRunner::new_with_rng(config, rng);
    let (total_ops, sequences) = (std::cell::Cell::new(0usize), std::cell::Cell::new(0u32));
    let result = runner.run(&steps(reopen, len), |steps| {
        sequences.set(sequences.get() + 1);
        let ops = run_steps(factory, &steps, None)
            .map_err(|f| TestCaseError::fail(format!("step {}: {}", f.step, f.message)))?;
        total_ops.set(total_ops.get() + ops);
        Ok(())
    });
    match result {
        Ok(()) => eprintln!(
            "random ops: {cases} sequences from PAXSTORE_PROPTEST_SEED={seed}, {} ops, all \
             matched the model",
            total_ops.get()
        ),
        Err(TestError::Fail(_, steps)) => {
            let found = Found { seed, n: sequences.get(), cases, len: steps.len() };
            panic!("{}", report(factory, &minimize(factory, steps, 2000), &found))
        }
        Err(err) => panic!("random ops (PAXSTORE_PROPTEST_SEED={seed}): {err}"),
    }
}

/// Random sequences of up to 48 batches (valid and invalid ops), compared after each.
pub fn random_ops_match_model<F: Factory>(factory: &F) {
    run_property(factory, false, proptest_cases(), 1..48);
}

/// Fewer, longer random sequences (1 to 400 batches, 200 on average), where state
/// accumulates.
pub fn random_long_op_sequences<F: Factory>(factory: &F) {
    run_property(factory, false, proptest_cases().div_ceil(16), 1..400);
}

/// Random sequences with reopens interleaved (persistent backends).
pub fn random_ops_with_reopen_match_model<F: Factory>(factory: &F) {
    run_property(factory, true, proptest_cases().div_ceil(2), 1..48);
}
