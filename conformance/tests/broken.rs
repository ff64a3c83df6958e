//! Test the tester: deliberately broken backends, each caught by the suite, and the same
//! cases passing on a correct backend (so a catch is the defect's doing, not the case's).

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::Path;

use paxstore::StorageOp::{self, *};
use paxstore::{Ballot, InvalidOp, LogBounds, StopSign, Storage, StorageError, StorageResult};
use paxstore_backends::MemoryStorage;
use paxstore_conformance::crash::{self, CrashConfig};
use paxstore_conformance::faults;
use paxstore_conformance::power::{self, PowerConfig};
use paxstore_conformance::{cases, from_fn, Factory, TestEntry, TestSnapshot};

// The example custom backend, a correct persistent store, reused here as the base of
// the broken persistent backends.
#[path = "../../examples/custom-backend/src/lib.rs"]
#[allow(dead_code, unreachable_pub, missing_docs)]
mod file_store;
use file_store::FileStore;

/// One defect each.
#[derive(Clone, Copy, Debug)]
enum Defect {
    /// Applies a batch op by op, keeping the ops before an invalid one.
    PartialBatch,
    /// `AppendOnPrefix` appends without truncating.
    NoTruncate,
    /// `get_entries` takes indices relative to the compacted index.
    RelativeReads,
    /// `get_log_len` returns the absolute end of the log (OmniPaxos issue #129).
    LogLenIsEnd,
    /// Reads past the end are clamped instead of refused.
    ClampedReads,
    /// `SetDecidedIndex` past the end is clamped instead of refused.
    ClampedDecided,
    /// Keeps appending after the stop sign is decided (a backend written before the log
    /// could be closed): it moves the decided index back to the log end instead.
    AppendsAfterDecidedStopsign,
    /// `SetCompactedIdx` to the current compacted index clears the log.
    CompactedToItselfClears,
    /// `AppendOnPrefix` clears the snapshot.
    AppendOnPrefixClearsSnapshot,
    /// `SetPromise` keeps the higher of the stored and the given ballot.
    PromiseKeepsMax,
    /// Every `Trim` of a batch trims to the batch's highest trim.
    TrimsTakeMax,
    /// Acknowledges an append that would end the log past `usize::MAX` without storing
    /// it, as a backend whose log end wraps around does.
    WrapsPastMaxIndex,
    /// Refuses such an append, but with an untyped backend error.
    UntypedIndexOverflow,
    /// [`Defect::ClampedReads`] and [`Defect::NoTruncate`] at once: a systematic difference
    /// that every case meets, and one that only some do.
    ClampedReadsNoTruncate,
    /// `write_atomically_from` writes the first op of a batch and drops the rest.
    FromWritesFirstOpOnly,
    /// `write_atomically_from` writes the batch but leaves its ops in the caller's vector
    /// (a caller reusing the vector would write them again).
    FromLeavesOps,
}

struct Broken {
    inner: MemoryStorage<TestEntry>,
    defect: Defect,
}

impl Storage<TestEntry> for Broken {
    fn write_atomically(&mut self, ops: Vec<StorageOp<TestEntry>>) -> StorageResult<()> {
        match self.defect {
            Defect::PartialBatch => {
                // Reports the right op and reason, but keeps the ops before it.
                for (position, op) in ops.into_iter().enumerate() {
                    self.inner.write_atomically(vec![op]).map_err(|err| match err {
                        StorageError::InvalidOp { reason, .. } => {
                            StorageError::InvalidOp { position, reason }
                        }
                        err => err,
                    })?;
                }
                Ok(())
            }
            Defect::NoTruncate | Defect::ClampedReadsNoTruncate => self.inner.write_atomically(
                ops.into_iter()
                    .map(|op| match op {
                        AppendOnPrefix(_, es) => AppendEntries(es),
                        op => op,
                    })
                    .collect(),
            ),
            Defect::ClampedDecided => {
                let end = self.inner.get_log_end()?;
                self.inner.write_atomically(
                    ops.into_iter()
                        .map(|op| match op {
                            SetDecidedIndex(i) => SetDecidedIndex(i.min(end)),
                            op => op,
                        })
                        .collect(),
                )
            }
            Defect::AppendsAfterDecidedStopsign => match self.inner.write_atomically(ops.clone()) {
                Err(StorageError::InvalidOp {
                    reason: InvalidOp::AppendAfterDecidedStopsign { log_end, .. },
                    ..
                }) => {
                    let mut reopened = vec![SetDecidedIndex(log_end)];
                    reopened.extend(ops);
                    self.inner.write_atomically(reopened)
                }
                outcome => outcome,
            },
            Defect::CompactedToItselfClears => {
                let (c, end) = (self.inner.get_compacted_idx()?, self.inner.get_log_end()?);
                self.inner.write_atomically(
                    ops.into_iter()
                        .map(|op| match op {
                            SetCompactedIdx(i) if i == c => SetCompactedIdx(end),
                            op => op,
                        })
                        .collect(),
                )
            }
            Defect::AppendOnPrefixClearsSnapshot => self.inner.write_atomically(
                ops.into_iter()
                    .flat_map(|op| match op {
                        AppendOnPrefix(..) => vec![op, SetSnapshot(None)],
                        op => vec![op],
                    })
                    .collect(),
            ),
            Defect::PromiseKeepsMax => {
                let current = self.inner.get_promise()?;
                self.inner.write_atomically(
                    ops.into_iter()
                        .map(|op| match (op, current) {
                            (SetPromise(b), Some(cur)) if cur > b => SetPromise(cur),
                            (op, _) => op,
                        })
                        .collect(),
                )
            }
            Defect::TrimsTakeMax => {
                let max = ops.iter().filter_map(|op| match op {
                    Trim(i) => Some(*i),
                    _ => None,
                });
                let max = max.max().unwrap_or(0);
                self.inner.write_atomically(
                    ops.into_iter()
                        .map(|op| match op {
                            Trim(_) => Trim(max),
                            op => op,
                        })
                        .collect(),
                )
            }
            Defect::WrapsPastMaxIndex | Defect::UntypedIndexOverflow => {
                match self.inner.write_atomically(ops) {
                    Err(StorageError::InvalidOp {
                        reason: reason @ InvalidOp::IndexOverflow { .. },
                        ..
                    }) => match self.defect {
                        Defect::WrapsPastMaxIndex => Ok(()),
                        _ => Err(StorageError::Backend {
                            backend: "broken",
                            detail: reason.to_string(),
                        }),
                    },
                    outcome => outcome,
                }
            }
            _ => self.inner.write_atomically(ops),
        }
    }
    fn write_atomically_from(&mut self, ops: &mut Vec<StorageOp<TestEntry>>) -> StorageResult<()> {
        match self.defect {
            Defect::FromWritesFirstOpOnly => {
                let first: Vec<_> = ops.drain(..).take(1).collect();
                self.inner.write_atomically(first)
            }
            Defect::FromLeavesOps => self.inner.write_atomically(ops.clone()),
            _ => self.write_atomically(std::mem::take(ops)),
        }
    }
    fn get_entries(&self, from: usize, to: usize) -> StorageResult<Vec<TestEntry>> {
        match self.defect {
            Defect::RelativeReads => {
                let c = self.inner.get_compacted_idx()?;
                self.inner.get_entries(from + c, to + c)
            }
            Defect::ClampedReads | Defect::ClampedReadsNoTruncate => {
                let end = self.inner.get_log_end()?;
                let to = to.min(end);
                self.inner.get_entries(from.min(to), to)
            }
            _ => self.inner.get_entries(from, to),
        }
    }
    fn get_log_len(&self) -> StorageResult<usize> {
        match self.defect {
            Defect::LogLenIsEnd => self.inner.get_log_end(),
            _ => self.inner.get_log_len(),
        }
    }
    fn get_decided_idx(&self) -> StorageResult<usize> {
        self.inner.get_decided_idx()
    }
    fn get_promise(&self) -> StorageResult<Option<Ballot>> {
        self.inner.get_promise()
    }
    fn get_accepted_round(&self) -> StorageResult<Option<Ballot>> {
        self.inner.get_accepted_round()
    }
    fn get_compacted_idx(&self) -> StorageResult<usize> {
        self.inner.get_compacted_idx()
    }
    fn get_stopsign(&self) -> StorageResult<Option<StopSign>> {
        self.inner.get_stopsign()
    }
    fn get_snapshot(&self) -> StorageResult<Option<TestSnapshot>> {
        self.inner.get_snapshot()
    }
}

fn broken(defect: Defect) -> impl Factory {
    from_fn(move |_: &Path| Ok(Broken { inner: MemoryStorage::new(), defect }))
}

fn correct() -> impl Factory {
    from_fn(|_: &Path| Ok(MemoryStorage::<TestEntry>::new()))
}

/// `case` passes on a correct backend and fails (panics) on `bad`.
fn assert_caught<F: Factory, G: Factory>(case: fn(&F), bad: &F, case_g: fn(&G), good: &G) {
    case_g(good);
    let outcome = catch_unwind(AssertUnwindSafe(|| case(bad)));
    assert!(outcome.is_err(), "the case passed on a broken backend");
}

#[test]
fn partial_batch_is_caught_by_the_atomicity_cases() {
    let (bad, good) = (broken(Defect::PartialBatch), correct());
    assert_caught(cases::atomic_invalid_middle_op, &bad, cases::atomic_invalid_middle_op, &good);
    assert_caught(cases::atomic_invalid_last_op, &bad, cases::atomic_invalid_last_op, &good);
    assert_caught(
        cases::atomic_op_invalid_after_earlier_op,
        &bad,
        cases::atomic_op_invalid_after_earlier_op,
        &good,
    );
}

#[test]
fn a_write_from_a_buffer_that_drops_ops_is_caught_by_random_ops() {
    let (bad, good) = (broken(Defect::FromWritesFirstOpOnly), correct());
    assert_caught(cases::random_ops_match_model, &bad, cases::random_ops_match_model, &good);
}

#[test]
fn a_write_from_a_buffer_that_leaves_the_ops_there_is_caught() {
    let (bad, good) = (broken(Defect::FromLeavesOps), correct());
    assert_caught(cases::random_ops_match_model, &bad, cases::random_ops_match_model, &good);
    assert_caught(cases::atomic_invalid_first_op, &bad, cases::atomic_invalid_first_op, &good);
}

#[test]
fn append_on_prefix_without_truncation_is_caught() {
    let (bad, good) = (broken(Defect::NoTruncate), correct());
    assert_caught(
        cases::append_on_prefix_truncates,
        &bad,
        cases::append_on_prefix_truncates,
        &good,
    );
}

#[test]
fn append_on_prefix_without_truncation_is_caught_by_random_ops() {
    let (bad, good) = (broken(Defect::NoTruncate), correct());
    assert_caught(cases::random_ops_match_model, &bad, cases::random_ops_match_model, &good);
}

#[test]
fn reads_ignoring_the_compacted_index_are_caught() {
    let (bad, good) = (broken(Defect::RelativeReads), correct());
    assert_caught(
        cases::trim_keeps_absolute_indices,
        &bad,
        cases::trim_keeps_absolute_indices,
        &good,
    );
}

#[test]
fn log_len_reporting_the_log_end_is_caught() {
    let (bad, good) = (broken(Defect::LogLenIsEnd), correct());
    assert_caught(
        cases::log_len_after_trim_counts_stored_entries,
        &bad,
        cases::log_len_after_trim_counts_stored_entries,
        &good,
    );
}

#[test]
fn clamped_reads_are_caught() {
    let (bad, good) = (broken(Defect::ClampedReads), correct());
    assert_caught(
        cases::reads_out_of_range_return_invalid_range,
        &bad,
        cases::reads_out_of_range_return_invalid_range,
        &good,
    );
}

#[test]
fn clamped_decided_index_is_caught() {
    let (bad, good) = (broken(Defect::ClampedDecided), correct());
    assert_caught(cases::error_decided_past_end, &bad, cases::error_decided_past_end, &good);
}

#[test]
fn appends_after_a_decided_stop_sign_are_caught() {
    let (bad, good) = (broken(Defect::AppendsAfterDecidedStopsign), correct());
    assert_caught(
        cases::error_append_after_decided_stopsign,
        &bad,
        cases::error_append_after_decided_stopsign,
        &good,
    );
}

#[test]
fn an_append_past_the_largest_index_acknowledged_is_caught_by_the_limit_cases() {
    let (bad, good) = (broken(Defect::WrapsPastMaxIndex), correct());
    assert_caught(
        cases::compacted_idx_at_usize_max,
        &bad,
        cases::compacted_idx_at_usize_max,
        &good,
    );
    assert_caught(cases::appends_up_to_usize_max, &bad, cases::appends_up_to_usize_max, &good);
    assert_caught(
        cases::decided_stopsign_at_usize_max,
        &bad,
        cases::decided_stopsign_at_usize_max,
        &good,
    );
}

#[test]
fn an_untyped_refusal_past_the_largest_index_is_caught() {
    let (bad, good) = (broken(Defect::UntypedIndexOverflow), correct());
    assert_caught(cases::appends_up_to_usize_max, &bad, cases::appends_up_to_usize_max, &good);
}

// ---- persistent defects, on top of the example FileStore ----

/// Copies the whole state of `src` into a fresh memory store.
fn copy_to_memory(src: &impl Storage<TestEntry>) -> StorageResult<MemoryStorage<TestEntry>> {
    let c = src.get_compacted_idx()?;
    let mut ops = vec![
        SetCompactedIdx(c),
        AppendEntries(src.get_suffix(c)?),
        // The stop sign before the decided index, which may decide it.
        SetStopsign(src.get_stopsign()?),
        SetDecidedIndex(src.get_decided_idx()?),
        SetSnapshot(src.get_snapshot()?),
    ];
    ops.extend(src.get_promise()?.map(SetPromise));
    ops.extend(src.get_accepted_round()?.map(SetAcceptedRound));
    let mut memory = MemoryStorage::new();
    memory.write_atomically(ops)?;
    Ok(memory)
}

/// A persistent defect: what it does to a batch on its way to the durable store.
#[derive(Clone, Copy, Debug)]
enum DiskDefect {
    /// Never persists the stop sign (reads it from memory until a reopen).
    ForgetsStopsign,
    /// Acknowledges batches before they are durable: persists every third call.
    AcksBeforeDurable,
    /// Persists a batch as two separate durable writes: a crash between them tears it.
    TearsBatches,
    /// Persists a decided index past the log end (a decided stop sign) clamped to the log
    /// end: the stop sign is no longer decided after a reopen.
    ClampsDecidedStopsign,
    /// Applies a batch to what its getters show before writing it: a failed write leaves
    /// its change visible.
    MemoryBeforeDisk,
    /// Reports `Ok` when the disk write failed (keeping the change in memory only).
    SwallowsErrors,
    /// Persists ballots with their pid cut to 32 bits (a `u32` column on disk).
    NarrowPid,
    /// Holds batches in memory until `flush`, whose `flush` drops them instead of
    /// persisting them.
    FlushDropsBuffered,
    /// The same buffering store with a correct `flush`: the control for the defect above.
    FlushPersistsBuffered,
    /// Makes a batch of more than 64 entries durable op by op, its entries 64 at a time:
    /// a crash in between leaves part of the batch.
    CommitsBigBatchesOpByOp,
    /// `write_atomically` is correct; `write_atomically_from` acknowledges a batch that
    /// it makes durable only with the next write (or `flush`).
    FromAcksBeforeDurable,
}

/// The entries a batch appends.
fn entries_in(ops: &[StorageOp<TestEntry>]) -> usize {
    ops.iter()
        .map(|op| match op {
            AppendEntries(es) | AppendOnPrefix(_, es) => es.len(),
            AppendEntry(_) => 1,
            _ => 0,
        })
        .sum()
}

/// `ops` with every `SetDecidedIndex` past the log end (as the ops before it leave it)
/// clamped to the log end.
fn clamp_decided_stopsign(
    mut bounds: LogBounds,
    ops: Vec<StorageOp<TestEntry>>,
) -> Vec<StorageOp<TestEntry>> {
    ops.into_iter()
        .map(|op| {
            let op = match op {
                SetDecidedIndex(i) => SetDecidedIndex(i.min(bounds.log_end)),
                op => op,
            };
            let _ = bounds.apply(&op);
            op
        })
        .collect()
}

struct BrokenDisk {
    durable: FileStore<TestEntry>,
    visible: MemoryStorage<TestEntry>,
    pending: Vec<Vec<StorageOp<TestEntry>>>,
    defect: DiskDefect,
}

impl BrokenDisk {
    fn open(dir: &Path, defect: DiskDefect) -> StorageResult<Self> {
        let durable = FileStore::open(dir)?;
        let visible = copy_to_memory(&durable)?;
        Ok(BrokenDisk { durable, visible, pending: Vec::new(), defect })
    }
}

impl Storage<TestEntry> for BrokenDisk {
    fn write_atomically(&mut self, ops: Vec<StorageOp<TestEntry>>) -> StorageResult<()> {
        self.visible.write_atomically(ops.clone())?;
        match self.defect {
            DiskDefect::ForgetsStopsign => self.durable.write_atomically(
                ops.into_iter().filter(|op| !matches!(op, SetStopsign(_))).collect(),
            ),
            DiskDefect::AcksBeforeDurable => {
                self.pending.push(ops);
                if self.pending.len() >= 3 {
                    for batch in std::mem::take(&mut self.pending) {
                        self.durable.write_atomically(batch)?;
                    }
                }
                Ok(())
            }
            DiskDefect::TearsBatches => {
                let mut first = ops;
                let second = first.split_off(first.len() / 2);
                self.durable.write_atomically(first)?;
                self.durable.write_atomically(second)
            }
            DiskDefect::ClampsDecidedStopsign => {
                let c = self.durable.get_compacted_idx()?;
                let bounds = LogBounds {
                    compacted_idx: c,
                    log_end: c + self.durable.get_log_len()?,
                    decided_idx: self.durable.get_decided_idx()?,
                    has_stopsign: self.durable.get_stopsign()?.is_some(),
                };
                self.durable.write_atomically(clamp_decided_stopsign(bounds, ops))
            }
            DiskDefect::MemoryBeforeDisk => self.durable.write_atomically(ops),
            DiskDefect::CommitsBigBatchesOpByOp if entries_in(&ops) > 64 => {
                for op in ops {
                    match op {
                        AppendEntries(es) => {
                            for chunk in es.chunks(64) {
                                self.durable
                                    .write_atomically(vec![AppendEntries(chunk.to_vec())])?;
                            }
                        }
                        op => self.durable.write_atomically(vec![op])?,
                    }
                }
                Ok(())
            }
            DiskDefect::CommitsBigBatchesOpByOp => self.durable.write_atomically(ops),
            DiskDefect::NarrowPid => {
                let narrow = |b: Ballot| Ballot { pid: b.pid & u64::from(u32::MAX), ..b };
                self.durable.write_atomically(
                    ops.into_iter()
                        .map(|op| match op {
                            SetPromise(b) => SetPromise(narrow(b)),
                            SetAcceptedRound(b) => SetAcceptedRound(narrow(b)),
                            op => op,
                        })
                        .collect(),
                )
            }
            DiskDefect::SwallowsErrors => {
                let _ = self.durable.write_atomically(ops);
                Ok(())
            }
            DiskDefect::FlushDropsBuffered | DiskDefect::FlushPersistsBuffered => {
                self.pending.push(ops);
                Ok(())
            }
            DiskDefect::FromAcksBeforeDurable => {
                for batch in std::mem::take(&mut self.pending) {
                    self.durable.write_atomically(batch)?;
                }
                self.durable.write_atomically(ops)
            }
        }
    }
    fn write_atomically_from(&mut self, ops: &mut Vec<StorageOp<TestEntry>>) -> StorageResult<()> {
        let ops = std::mem::take(ops);
        match self.defect {
            DiskDefect::FromAcksBeforeDurable => {
                self.visible.write_atomically(ops.clone())?;
                self.pending.push(ops);
                Ok(())
            }
            _ => self.write_atomically(ops),
        }
    }
    fn flush(&mut self) -> StorageResult<()> {
        let pending = std::mem::take(&mut self.pending);
        if let DiskDefect::FlushPersistsBuffered | DiskDefect::FromAcksBeforeDurable = self.defect {
            for batch in pending {
                self.durable.write_atomically(batch)?;
            }
        }
        Ok(())
    }
    fn get_entries(&self, from: usize, to: usize) -> StorageResult<Vec<TestEntry>> {
        self.visible.get_entries(from, to)
    }
    fn get_log_len(&self) -> StorageResult<usize> {
        self.visible.get_log_len()
    }
    fn get_decided_idx(&self) -> StorageResult<usize> {
        self.visible.get_decided_idx()
    }
    fn get_promise(&self) -> StorageResult<Option<Ballot>> {
        self.visible.get_promise()
    }
    fn get_accepted_round(&self) -> StorageResult<Option<Ballot>> {
        self.visible.get_accepted_round()
    }
    fn get_compacted_idx(&self) -> StorageResult<usize> {
        self.visible.get_compacted_idx()
    }
    fn get_stopsign(&self) -> StorageResult<Option<StopSign>> {
        self.visible.get_stopsign()
    }
    fn get_snapshot(&self) -> StorageResult<Option<TestSnapshot>> {
        self.visible.get_snapshot()
    }
}

fn file_store() -> impl Factory {
    from_fn(|dir: &Path| FileStore::<TestEntry>::open(dir))
}

#[test]
fn a_forgotten_field_is_caught_by_the_reopen_cases() {
    let bad = from_fn(|dir: &Path| BrokenDisk::open(dir, DiskDefect::ForgetsStopsign));
    let good = file_store();
    assert_caught(
        cases::reopen_after_stopsign_and_snapshot,
        &bad,
        cases::reopen_after_stopsign_and_snapshot,
        &good,
    );
}

#[test]
fn a_decided_stop_sign_lost_on_disk_is_caught_by_the_reopen_case() {
    let bad = from_fn(|dir: &Path| BrokenDisk::open(dir, DiskDefect::ClampsDecidedStopsign));
    let good = file_store();
    // The same backend passes the cases that do not reopen: only the reopen shows it.
    cases::decide_stopsign(&bad);
    assert_caught(
        cases::reopen_after_decided_stopsign,
        &bad,
        cases::reopen_after_decided_stopsign,
        &good,
    );
}

fn buffering(defect: DiskDefect) -> impl Factory {
    from_fn(move |dir: &Path| BrokenDisk::open(dir, defect))
}

#[test]
fn a_flush_that_drops_buffered_batches_is_caught() {
    let (bad, good) =
        (buffering(DiskDefect::FlushDropsBuffered), buffering(DiskDefect::FlushPersistsBuffered));
    // Nothing a getter shows tells them apart: only the reopen does.
    cases::flush_changes_nothing(&bad);
    assert_caught(cases::reopen_after_flush, &bad, cases::reopen_after_flush, &good);
}

#[test]
fn crash_harness_with_flush_passes_a_buffering_store_that_flushes() {
    let report = crash::run_flushing(
        &buffering(DiskDefect::FlushPersistsBuffered),
        concat!(module_path!(), "::crash_harness_with_flush_passes_a_buffering_store_that_flushes"),
        &crash_config(3),
    );
    let report = report.unwrap_or_else(|e| panic!("a correct flush failed the harness: {e}"));
    assert_eq!(report.kills, 6, "{report}");
}

#[test]
fn crash_harness_with_flush_catches_a_flush_that_drops_batches() {
    let outcome = crash::run_flushing(
        &buffering(DiskDefect::FlushDropsBuffered),
        concat!(module_path!(), "::crash_harness_with_flush_catches_a_flush_that_drops_batches"),
        &crash_config(3),
    );
    let err = outcome.err().unwrap_or_else(|| panic!("6 kills never found a lost batch"));
    assert!(err.contains("neither the model"), "unexpected failure: {err}");
}

fn crash_config(iterations: u32) -> CrashConfig {
    CrashConfig { iterations, rounds: 2, seed: 7, max_acks_before_kill: 40 }
}

#[test]
fn crash_harness_passes_a_correct_backend() {
    let report = crash::run(
        &file_store(),
        concat!(module_path!(), "::crash_harness_passes_a_correct_backend"),
        &crash_config(4),
    );
    let report = report.unwrap_or_else(|e| panic!("a correct backend failed the harness: {e}"));
    assert_eq!(report.kills, 8, "{report}");
    assert!(report.acknowledged >= 8, "each kill waits for at least one ack: {report}");
}

#[test]
fn crash_harness_catches_acks_before_durable() {
    let bad = from_fn(|dir: &Path| BrokenDisk::open(dir, DiskDefect::AcksBeforeDurable));
    let outcome = crash::run(
        &bad,
        concat!(module_path!(), "::crash_harness_catches_acks_before_durable"),
        &crash_config(15),
    );
    let err =
        outcome.err().unwrap_or_else(|| panic!("30 kills never found a lost acknowledged batch"));
    assert!(err.contains("neither the model"), "unexpected failure: {err}");
}

#[test]
fn crash_harness_catches_torn_batches() {
    let bad = from_fn(|dir: &Path| BrokenDisk::open(dir, DiskDefect::TearsBatches));
    let outcome = crash::run(
        &bad,
        concat!(module_path!(), "::crash_harness_catches_torn_batches"),
        &crash_config(25),
    );
    assert!(outcome.is_err(), "50 kills never found a torn batch");
}

/// The child writes every other batch through `write_atomically_from`: an override that
/// acknowledges before the batch is durable is caught as `write_atomically`'s would be.
#[test]
fn crash_harness_catches_a_write_from_a_kept_vector_acked_before_durable() {
    let bad = from_fn(|dir: &Path| BrokenDisk::open(dir, DiskDefect::FromAcksBeforeDurable));
    let outcome = crash::run(
        &bad,
        concat!(
            module_path!(),
            "::crash_harness_catches_a_write_from_a_kept_vector_acked_before_durable"
        ),
        &crash_config(15),
    );
    let err =
        outcome.err().unwrap_or_else(|| panic!("30 kills never found a lost acknowledged batch"));
    assert!(err.contains("neither the model"), "unexpected failure: {err}");
}

/// The harness decides stop signs (`crash::harness_batch`): a backend that loses the
/// decided stop sign on disk fails it, though it never tears or loses a batch otherwise.
/// The run stops at the first catch (most often within the first 60 kills); where a kill
/// lands depends on how far the child got, so on a loaded machine it can take longer (one
/// run in 24, eight at once, needed more than 60): it may go on to 200.
#[test]
fn crash_harness_catches_a_decided_stop_sign_lost_on_disk() {
    let bad = from_fn(|dir: &Path| BrokenDisk::open(dir, DiskDefect::ClampsDecidedStopsign));
    let outcome = crash::run(
        &bad,
        concat!(module_path!(), "::crash_harness_catches_a_decided_stop_sign_lost_on_disk"),
        &CrashConfig { iterations: 100, rounds: 2, seed: 7, max_acks_before_kill: 80 },
    );
    let err = outcome
        .err()
        .unwrap_or_else(|| panic!("200 kills never found a decided stop sign lost on disk"));
    assert!(err.contains("neither the model"), "unexpected failure: {err}");
}

// ---- power loss and failed writes, on the crash filesystem ----

/// The whole state, as [`NoFsync`] writes it.
type NoFsyncState = (
    usize,
    Vec<TestEntry>,
    usize,
    Option<Ballot>,
    Option<Ballot>,
    Option<StopSign>,
    Option<TestSnapshot>,
);

/// A store that writes its whole state after every batch (temporary file, rename) and
/// never fsyncs: it survives SIGKILL (the page cache does) but not power loss.
struct NoFsync {
    dir: std::path::PathBuf,
    visible: MemoryStorage<TestEntry>,
}

fn io(what: &str) -> impl FnOnce(std::io::Error) -> StorageError + '_ {
    move |e| StorageError::io(what, e)
}

impl NoFsync {
    fn open(dir: &Path) -> StorageResult<Self> {
        std::fs::create_dir_all(dir).map_err(io("creating the store"))?;
        let mut visible = MemoryStorage::new();
        match std::fs::read(dir.join("state")) {
            Ok(bytes) => {
                let (c, log, decided, promise, accepted, stopsign, snapshot): NoFsyncState =
                    postcard::from_bytes(&bytes).map_err(|e| StorageError::codec("state", e))?;
                let mut ops = vec![
                    SetCompactedIdx(c),
                    AppendEntries(log),
                    SetStopsign(stopsign),
                    SetDecidedIndex(decided),
                    SetSnapshot(snapshot),
                ];
                ops.extend(promise.map(SetPromise));
                ops.extend(accepted.map(SetAcceptedRound));
                visible.write_atomically(ops)?;
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(StorageError::io("reading the state", e)),
        }
        Ok(NoFsync { dir: dir.to_owned(), visible })
    }
}

impl Storage<TestEntry> for NoFsync {
    fn write_atomically(&mut self, ops: Vec<StorageOp<TestEntry>>) -> StorageResult<()> {
        let mut next = copy_to_memory(&self.visible)?;
        next.write_atomically(ops)?;
        let c = next.get_compacted_idx()?;
        let state: NoFsyncState = (
            c,
            next.get_suffix(c)?,
            next.get_decided_idx()?,
            next.get_promise()?,
            next.get_accepted_round()?,
            next.get_stopsign()?,
            next.get_snapshot()?,
        );
        let bytes = postcard::to_stdvec(&state).map_err(|e| StorageError::codec("state", e))?;
        let temp = self.dir.join("state.tmp");
        // The defect: no fsync of the file, none of the directory.
        std::fs::write(&temp, bytes).map_err(io("writing the state"))?;
        std::fs::rename(&temp, self.dir.join("state")).map_err(io("renaming the state"))?;
        self.visible = next;
        Ok(())
    }
    fn get_entries(&self, from: usize, to: usize) -> StorageResult<Vec<TestEntry>> {
        self.visible.get_entries(from, to)
    }
    fn get_log_len(&self) -> StorageResult<usize> {
        self.visible.get_log_len()
    }
    fn get_decided_idx(&self) -> StorageResult<usize> {
        self.visible.get_decided_idx()
    }
    fn get_promise(&self) -> StorageResult<Option<Ballot>> {
        self.visible.get_promise()
    }
    fn get_accepted_round(&self) -> StorageResult<Option<Ballot>> {
        self.visible.get_accepted_round()
    }
    fn get_compacted_idx(&self) -> StorageResult<usize> {
        self.visible.get_compacted_idx()
    }
    fn get_stopsign(&self) -> StorageResult<Option<StopSign>> {
        self.visible.get_stopsign()
    }
    fn get_snapshot(&self) -> StorageResult<Option<TestSnapshot>> {
        self.visible.get_snapshot()
    }
}

fn power_config() -> PowerConfig {
    PowerConfig {
        cuts: 4,
        rounds: 2,
        seed: 7,
        max_acks_before_cut: 40,
        durability: paxstore::Durability::Immediate,
    }
}

#[test]
fn a_backend_that_never_fsyncs_passes_the_sigkill_harness() {
    // The reason the power-loss case exists: SIGKILL leaves the page cache, so the crash
    // harness cannot tell.
    let no_fsync = from_fn(NoFsync::open);
    let report = crash::run(
        &no_fsync,
        concat!(module_path!(), "::a_backend_that_never_fsyncs_passes_the_sigkill_harness"),
        &crash_config(4),
    );
    report.unwrap_or_else(|e| panic!("the SIGKILL harness was expected to pass: {e}"));
    cases::reopen_after_many_writes(&no_fsync);
    cases::reopen_after_stopsign_and_snapshot(&no_fsync);
    cases::random_ops_with_reopen_match_model(&no_fsync);
}

#[test]
fn power_loss_passes_a_correct_backend() {
    if !power::fuse_or_skip("power_loss_passes_a_correct_backend") {
        return;
    }
    let report = power::run(
        &file_store(),
        concat!(module_path!(), "::power_loss_passes_a_correct_backend"),
        &power_config(),
    );
    let report = report.unwrap_or_else(|e| panic!("a correct backend failed: {e}"));
    assert_eq!((report.cuts, report.lost), (4, 0), "{report}");
    assert!(report.acknowledged >= 4, "each cut waits for at least one ack: {report}");
}

#[test]
fn power_loss_catches_a_backend_that_never_fsyncs() {
    if !power::fuse_or_skip("power_loss_catches_a_backend_that_never_fsyncs") {
        return;
    }
    let outcome = power::run(
        &from_fn(NoFsync::open),
        concat!(module_path!(), "::power_loss_catches_a_backend_that_never_fsyncs"),
        &power_config(),
    );
    let err = outcome.err().unwrap_or_else(|| panic!("4 power cuts lost nothing"));
    assert!(err.contains("an acknowledged batch lost"), "unexpected failure: {err}");
}

#[test]
fn failed_writes_pass_a_correct_backend() {
    if !power::fuse_or_skip("failed_writes_pass_a_correct_backend") {
        return;
    }
    let report = faults::run_faults(&file_store(), paxstore::Durability::Immediate)
        .unwrap_or_else(|e| panic!("a correct backend failed: {e}"));
    assert!(report.calls >= 4 && report.failed == report.runs, "{report}");
}

#[test]
fn failed_write_catches_memory_updated_before_the_disk() {
    if !power::fuse_or_skip("failed_write_catches_memory_updated_before_the_disk") {
        return;
    }
    let bad = from_fn(|dir: &Path| BrokenDisk::open(dir, DiskDefect::MemoryBeforeDisk));
    let err = faults::run_faults(&bad, paxstore::Durability::Immediate)
        .err()
        .unwrap_or_else(|| panic!("no failed write showed the change in memory"));
    assert!(err.contains("not the model before the batch"), "unexpected failure: {err}");
}

#[test]
fn failed_write_catches_an_immediate_write_without_io() {
    if !power::fuse_or_skip("failed_write_catches_an_immediate_write_without_io") {
        return;
    }
    // Memory only: no I/O call to fail, which an Immediate backend cannot be.
    let err = faults::run_faults(&correct(), paxstore::Durability::Immediate)
        .err()
        .unwrap_or_else(|| panic!("a write without I/O passed as Immediate"));
    assert!(err.contains("made no I/O call"), "unexpected failure: {err}");
}

#[test]
fn failed_write_catches_a_swallowed_fsync_error() {
    if !power::fuse_or_skip("failed_write_catches_a_swallowed_fsync_error") {
        return;
    }
    let bad = from_fn(|dir: &Path| BrokenDisk::open(dir, DiskDefect::SwallowsErrors));
    let err = faults::run_faults(&bad, paxstore::Durability::Immediate)
        .err()
        .unwrap_or_else(|| panic!("a swallowed I/O error passed"));
    assert!(err.contains("did not survive a power cut"), "unexpected failure: {err}");
}

#[test]
fn a_pid_cut_to_32_bits_on_disk_is_caught_by_the_full_width_reopen() {
    let bad = from_fn(|dir: &Path| BrokenDisk::open(dir, DiskDefect::NarrowPid));
    let good = file_store();
    // The ballots of the other reopen cases fit 32 bits: only the full-width case shows it.
    cases::reopen_after_metadata(&bad);
    assert_caught(cases::reopen_full_width_values, &bad, cases::reopen_full_width_values, &good);
}

#[test]
fn behaviours_pinned_only_by_random_sequences_are_caught_by_named_cases() {
    let good = correct();
    let bad = broken(Defect::CompactedToItselfClears);
    assert_caught(
        cases::set_compacted_idx_to_itself_is_a_no_op,
        &bad,
        cases::set_compacted_idx_to_itself_is_a_no_op,
        &good,
    );
    let bad = broken(Defect::AppendOnPrefixClearsSnapshot);
    assert_caught(
        cases::snapshot_survives_append_on_prefix,
        &bad,
        cases::snapshot_survives_append_on_prefix,
        &good,
    );
    let bad = broken(Defect::PromiseKeepsMax);
    assert_caught(
        cases::lower_promise_replaces_a_higher_one,
        &bad,
        cases::lower_promise_replaces_a_higher_one,
        &good,
    );
    let bad = broken(Defect::TrimsTakeMax);
    assert_caught(
        cases::trims_apply_in_batch_order,
        &bad,
        cases::trims_apply_in_batch_order,
        &good,
    );
}

// ---- big batches and leftover temporary files: crashes at a chosen I/O call ----

fn kill_case<F: Factory>(factory: &F) {
    cases::kill_at_each_io_call_leaves_the_batch_whole_or_absent(
        factory,
        paxstore::Durability::Immediate,
    );
}

#[test]
fn a_big_batch_made_durable_op_by_op_is_caught_by_the_kill_case() {
    if !power::fuse_or_skip("a_big_batch_made_durable_op_by_op_is_caught_by_the_kill_case") {
        return;
    }
    let bad = from_fn(|dir: &Path| BrokenDisk::open(dir, DiskDefect::CommitsBigBatchesOpByOp));
    // Small batches it makes durable whole: the SIGKILL-sized batches of the other cases
    // never show it.
    cases::reopen_after_many_writes(&bad);
    assert_caught(kill_case, &bad, kill_case, &file_store());
}

#[test]
fn a_big_batch_made_durable_op_by_op_is_caught_by_the_sigkill_harness() {
    let bad = from_fn(|dir: &Path| BrokenDisk::open(dir, DiskDefect::CommitsBigBatchesOpByOp));
    let outcome = crash::run(
        &bad,
        concat!(
            module_path!(),
            "::a_big_batch_made_durable_op_by_op_is_caught_by_the_sigkill_harness"
        ),
        &CrashConfig { iterations: 15, rounds: 2, seed: 7, max_acks_before_kill: 80 },
    );
    let err = outcome.err().unwrap_or_else(|| panic!("30 kills never found a torn big batch"));
    assert!(err.contains("neither the model"), "unexpected failure: {err}");
}

/// The example store, opened by a factory that first adopts a leftover temporary file
/// (renames `state.bin.tmp` over `state.bin`), as if the write that made it had finished.
fn open_adopting_temp(dir: &Path) -> StorageResult<FileStore<TestEntry>> {
    let temp = dir.join("state.bin.tmp");
    if temp.exists() {
        std::fs::rename(&temp, dir.join("state.bin")).map_err(io("adopting the temp file"))?;
    }
    FileStore::open(dir)
}

#[test]
fn a_leftover_temp_file_adopted_on_open_is_caught_by_the_kill_case() {
    if !power::fuse_or_skip("a_leftover_temp_file_adopted_on_open_is_caught_by_the_kill_case") {
        return;
    }
    let bad = from_fn(open_adopting_temp);
    // Reopens after clean writes never leave the file behind.
    cases::reopen_after_many_writes(&bad);
    assert_caught(kill_case, &bad, kill_case, &file_store());
}

// ---- how a failure reads ----

/// Runs every case that needs no directory on `factory`, each on a thread named after it
/// (as libtest names a test's thread), and returns the failures: `(case, message)`.
fn failures<F: Factory + Sync>(factory: &F) -> Vec<(&'static str, String)> {
    let (cases, _) = paxstore_conformance::all_cases::<F>();
    let mut out = Vec::new();
    for case in cases {
        let run = case.run;
        let outcome = std::thread::scope(|scope| {
            std::thread::Builder::new()
                .name(format!("demo::{}", case.name))
                .spawn_scoped(scope, || run(factory))
                .map(|handle| handle.join())
        });
        match outcome {
            Ok(Ok(())) => {}
            Ok(Err(payload)) => {
                let msg = paxstore_conformance::describe::panic_message(&*payload);
                out.push((case.name, msg));
            }
            Err(e) => panic!("cannot start a thread: {e}"),
        }
    }
    out
}

#[test]
fn a_systematic_difference_is_described_once_and_hides_no_other_finding() {
    let check = "get_entries past the log end";
    let found = failures(&broken(Defect::ClampedReadsNoTruncate));
    for (case, msg) in &found {
        eprintln!("--- {case}: {msg}");
    }
    // Every case meets the clamped reads: each says so once, by the check's name.
    assert!(found.len() > 40, "only {} cases failed", found.len());
    for (case, msg) in &found {
        assert_eq!(msg.matches(check).count(), 1, "{case}: {msg}");
    }
    // Described in full at most once in the process (another test may have been first).
    let described = format!("{check}: get_entries(");
    let full = found.iter().filter(|(_, m)| m.contains(&described)).count();
    assert!(full <= 1, "the clamped reads were described in full {full} times");
    // The other defect is not hidden behind it.
    let (_, truncates) = found
        .iter()
        .find(|(case, _)| *case == "append_on_prefix_truncates")
        .unwrap_or_else(|| panic!("append_on_prefix_truncates passed"));
    assert!(truncates.contains("get_log_len()"), "the missing truncation is hidden: {truncates}");
}
