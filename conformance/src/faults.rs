//! Failed writes and kills at each I/O call of a batch, on the crash filesystem
//! ([`paxstore_crashfs`]): the harnesses behind
//! [`failed_write_changes_nothing`](crate::cases::failed_write_changes_nothing) and
//! [`kill_at_each_io_call_leaves_the_batch_whole_or_absent`](crate::cases::kill_at_each_io_call_leaves_the_batch_whole_or_absent).
//!
//! Both open the store on a mount, count the I/O calls (writes, fsyncs, renames,
//! creates: [`paxstore_crashfs::Stats::calls`]) of one batch, then, for each call
//! position, write the same history to a fresh store and make that call of the batch go
//! wrong:
//! - **failed writes**: the call fails with `EIO`, then with `ENOSPC` (a fresh store
//!   each); the write must return `Err` and change nothing, and the store be usable or a
//!   typed `Poisoned` until reopened;
//! - **kills**: the call and every later one are not done (a power-off fault), then the
//!   power comes back *without* a cut ([`paxstore_crashfs::CrashFs::power_on`]): the
//!   disk holds what a process killed at that call leaves. The reopened store must be
//!   the model before the batch or after it, whole. Unlike the SIGKILL harness, whose
//!   kill lands where the clock says, this lands on every call, so a torn temporary file
//!   or a batch made durable in pieces is found on every run.

use std::fmt;
use std::path::Path;

use paxstore::{Durability, Storage, StorageError, StorageOp};

use crate::check::compare;
#[cfg(target_os = "linux")]
use crate::power::Mount;
use crate::{Factory, Model, TestEntry};

/// What a failed-write run did.
#[derive(Clone, Debug, Default)]
pub struct FaultReport {
    /// I/O calls the batch made when nothing failed.
    pub calls: u64,
    /// Runs, one per call position and error.
    pub runs: u32,
    /// Runs where the write returned `Err`.
    pub failed: u32,
    /// Runs where the store refused further writes with `Poisoned` until reopened.
    pub poisoned: u32,
    /// Runs where the write was acknowledged although the armed fault fired during it
    /// (e.g. a short write completed by a retry; `Immediate`: each then checked to
    /// survive a power cut).
    pub acknowledged_despite_fault: u32,
    /// Runs where the failed batch was found whole after the reopen (its bytes reached
    /// the files before the failing call).
    pub found_after_reopen: u32,
}

impl fmt::Display for FaultReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "faults: batch_calls={} runs={} write_failed={} poisoned_until_reopen={} \
             acknowledged_despite_the_fault={} failed_batch_found_after_reopen={}",
            self.calls,
            self.runs,
            self.failed,
            self.poisoned,
            self.acknowledged_despite_fault,
            self.found_after_reopen
        )
    }
}

/// The models a failed-write or kill run is checked against.
#[cfg(target_os = "linux")]
pub(crate) struct FaultModels {
    pub(crate) history: Vec<StorageOp<TestEntry>>,
    pub(crate) batch: Vec<StorageOp<TestEntry>>,
    pub(crate) after: Vec<StorageOp<TestEntry>>,
    /// After the history.
    pub(crate) before: Model,
    /// After the history and the batch.
    pub(crate) with_batch: Model,
}

#[cfg(target_os = "linux")]
impl FaultModels {
    /// The history written before the batch that goes wrong (entries `[0, 10)`, decided
    /// up to 5, a promise), `batch`, a batch after it, and the models.
    pub(crate) fn new(batch: Vec<StorageOp<TestEntry>>) -> Result<FaultModels, String> {
        use crate::cases::ops::ballot;
        use paxstore::StorageOp::*;
        let history = vec![
            AppendEntries((0..10).map(|i| TestEntry::new(i, 300)).collect()),
            SetDecidedIndex(5),
            SetPromise(ballot(1)),
        ];
        let after = vec![SetPromise(ballot(40)), AppendEntries(vec![TestEntry::new(1 << 40, 100)])];
        let mut before = Model::default();
        before
            .apply_batch(&history)
            .map_err(|e| format!("the suite's history is invalid: {e:?}"))?;
        let mut with_batch = before.clone();
        with_batch
            .apply_batch(&batch)
            .map_err(|e| format!("the suite's batch is invalid: {e:?}"))?;
        Ok(FaultModels { history, batch, after, before, with_batch })
    }
}

/// The batch a failed-write run fails: 20 small entries and one of 64 KiB, and every kind
/// of metadata.
#[cfg(target_os = "linux")]
fn fault_batch() -> Vec<StorageOp<TestEntry>> {
    use crate::cases::ops::ballot;
    use paxstore::StorageOp::*;
    let mut entries: Vec<_> = (10..30).map(|i| TestEntry::new(i, 200)).collect();
    entries.push(TestEntry::new(30, 64 << 10));
    vec![
        AppendEntries(entries),
        SetDecidedIndex(20),
        SetAcceptedRound(ballot(2)),
        SetPromise(ballot(3)),
        Trim(3),
    ]
}

/// Writes the history to a fresh store in `<mount>/count` and returns the I/O calls the
/// batch then makes.
#[cfg(target_os = "linux")]
pub(crate) fn count_calls<F: Factory>(
    factory: &F,
    mount: &Mount,
    models: &FaultModels,
) -> Result<u64, String> {
    let dir = mount.store.join("count");
    let mut storage = factory.open(&dir).map_err(|e| format!("open {}: {e}", dir.display()))?;
    storage.write_atomically(models.history.clone()).map_err(|e| format!("the history: {e}"))?;
    let c0 = stats(mount)?.calls;
    storage.write_atomically(models.batch.clone()).map_err(|e| format!("the batch: {e}"))?;
    Ok(stats(mount)?.calls - c0)
}

/// Runs the failed-write harness: see the module docs.
#[cfg(target_os = "linux")]
pub fn run_faults<F: Factory>(factory: &F, durability: Durability) -> Result<FaultReport, String> {
    use paxstore_crashfs::Effect;
    let models = FaultModels::new(fault_batch())?;
    let mut mount = Mount::new()?;
    let mut report =
        FaultReport { calls: count_calls(factory, &mount, &models)?, ..FaultReport::default() };
    if report.calls == 0 {
        return match durability {
            Durability::Immediate => Err("an Immediate write made no I/O call (no write, no \
                                          fsync): it cannot survive power loss"
                .into()),
            Durability::Buffered => Ok(report),
        };
    }
    for position in 1..=report.calls {
        for effect in [Effect::Eio, Effect::Enospc] {
            let ctx = format!(
                "{} on I/O call {position} of the {} calls of the batch",
                effect.name(),
                report.calls
            );
            let dir = mount.store.join(format!("{position}-{}", effect.name()));
            fault_run(
                factory,
                durability,
                &mut mount,
                &dir,
                position,
                effect,
                &models,
                &mut report,
            )
            .map_err(|e| format!("{ctx}: {e}"))?;
        }
    }
    Ok(report)
}

#[cfg(target_os = "linux")]
pub(crate) fn stats(mount: &Mount) -> Result<paxstore_crashfs::Stats, String> {
    mount.fs.stats().map_err(|e| format!("the crash filesystem's counters: {e}"))
}

/// One run: a fresh store in `dir`, the history, the batch with its I/O call `position`
/// failing with `effect`, the batch after it, a reopen.
#[cfg(target_os = "linux")]
#[allow(clippy::too_many_arguments)]
fn fault_run<F: Factory>(
    factory: &F,
    durability: Durability,
    mount: &mut Mount,
    dir: &Path,
    position: u64,
    effect: paxstore_crashfs::Effect,
    models: &FaultModels,
    report: &mut FaultReport,
) -> Result<(), String> {
    use paxstore_crashfs::{Fault, Op};
    report.runs += 1;
    let mut storage = factory.open(dir).map_err(|e| format!("open {}: {e}", dir.display()))?;
    storage.write_atomically(models.history.clone()).map_err(|e| format!("the history: {e}"))?;
    let fired = stats(mount)?.faults_fired;
    mount.fs.arm(Fault::new(Op::Any, effect).nth(position)).map_err(|e| format!("arming: {e}"))?;
    let outcome = storage.write_atomically(models.batch.clone());
    mount.fs.clear_faults().map_err(|e| format!("clearing the fault: {e}"))?;
    let hit = stats(mount)?.faults_fired > fired;
    // The state the store must show now.
    let mut want = match outcome {
        Err(StorageError::InvalidOp { .. }) => {
            return Err(format!("the write was refused as invalid: {outcome:?}"))
        }
        Err(_) => {
            report.failed += 1;
            // A backend that refuses reads with `Poisoned` until reopen shows nothing
            // wrong; one that answers must answer with the state before the batch.
            if !matches!(storage.get_log_len(), Err(StorageError::Poisoned { .. })) {
                compare(&storage, &models.before).map_err(|e| {
                    format!(
                        "the write returned Err, but the store is not the model before the \
                         batch: {e}"
                    )
                })?;
            }
            models.before.clone()
        }
        Ok(()) => {
            compare(&storage, &models.with_batch).map_err(|e| {
                format!("the write was acknowledged, but the store is not the model after it: {e}")
            })?;
            if hit {
                report.acknowledged_despite_fault += 1;
            }
            if hit && durability == Durability::Immediate {
                // The failed call was retried (a large `write(2)` reaches the filesystem
                // as several requests: one failing makes it a short write, which
                // `write_all` completes), or was one the backend may do without, or it
                // swallowed an error: the acknowledged batch must survive a power cut.
                drop(storage);
                let cut = mount
                    .fs
                    .power_cut(paxstore_crashfs::PowerCut::seeded(position))
                    .map_err(|e| format!("the power cut: {e}"))?;
                let storage = factory
                    .open(dir)
                    .map_err(|e| format!("the reopen after the power cut failed: {e}"))?;
                return compare(&storage, &models.with_batch).map_err(|e| {
                    format!(
                        "the write was acknowledged although one of its I/O calls failed, and \
                         the batch did not survive a power cut ({cut}): {e}"
                    )
                });
            }
            models.with_batch.clone()
        }
    };
    let next_acked = match storage.write_atomically(models.after.clone()) {
        Ok(()) => {
            let _ = want.apply_batch(&models.after);
            compare(&storage, &want)
                .map_err(|e| format!("the next write was acknowledged, but then {e}"))?;
            true
        }
        Err(StorageError::Poisoned { .. }) => {
            report.poisoned += 1;
            false
        }
        Err(e) => {
            return Err(format!(
                "once the fault was cleared, the next write failed with `{e}` (the store is \
                 neither usable nor a typed Poisoned until reopen)"
            ))
        }
    };
    drop(storage);
    let storage = factory.open(dir).map_err(|e| format!("the reopen failed: {e}"))?;
    match compare(&storage, &want) {
        Ok(()) => Ok(()),
        // Neither acknowledged nor refused by `Poisoned`, the failed batch may still be
        // on disk whole: its bytes can reach the files before the call that failed, as in
        // a crash during the call. Once a later write is acknowledged, it must be gone.
        Err(_) if !next_acked && compare(&storage, &models.with_batch).is_ok() => {
            report.found_after_reopen += 1;
            Ok(())
        }
        Err(e) => Err(format!("after the reopen the store is not the model: {e}")),
    }
}

/// Off Linux the crash filesystem does not exist; see [`run`].
#[cfg(not(target_os = "linux"))]
pub fn run_faults<F: Factory>(
    _factory: &F,
    _durability: Durability,
) -> Result<FaultReport, String> {
    Err("the crash filesystem runs on Linux only".into())
}
