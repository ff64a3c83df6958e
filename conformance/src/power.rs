//! Power loss and failed writes, for real, on the crash filesystem
//! ([`paxstore_crashfs`]): the harnesses behind the cases
//! [`power_loss_keeps_acknowledged_batches`](crate::cases::power_loss_keeps_acknowledged_batches)
//! and [`failed_write_changes_nothing`](crate::cases::failed_write_changes_nothing).
//!
//! **Power loss.** As the SIGKILL harness ([`crate::crash`]), the parent re-runs its own
//! test binary as a child that writes numbered batches and acknowledges each in a file
//! outside the mount; here the store lives on a crash filesystem mounted by the parent.
//! The parent kills the child at a random moment, cuts the power (losing, tearing or
//! reordering what was not made durable: [`PowerCut`]), reopens the store and compares it
//! with the model:
//! - [`Durability::Immediate`]: the model after every acknowledged batch, or after one
//!   more (the batch in flight), whole;
//! - [`Durability::Buffered`]: the model after some prefix of the batches, whole batches
//!   only, and the store opens. The acknowledged batches it lost are counted.
//!
//! The store is opened by the child (writes) and by the parent (the check after each
//! cut). The crash filesystem's daemon is a thread of the parent, so a backend that
//! writes through a *shared writable memory map* deadlocks in the parent (see
//! [`paxstore_crashfs::CrashFs`]); paxstore's backends map read-only or not at all.
//!
//! **Failed writes.** The parent opens the store on a mount, counts the I/O calls (writes,
//! fsyncs, renames, creates: [`paxstore_crashfs::Stats::calls`]) of one batch, then,
//! for each call position and for `EIO` and `ENOSPC`, writes the same history to a
//! fresh store and fails that call of the batch.
//!
//! **Where FUSE cannot be mounted** (not Linux, not root, no `/dev/fuse`), the cases
//! print `SKIPPED <case>: <reason>` and **fail**, unless `PAXSTORE_ALLOW_NO_FUSE=1` is
//! set, in which case they print the same line and return: never a silent pass.
//!
//! Environment: `PAXSTORE_POWER_CUTS` (power cuts per run, default 4 times
//! [`soak_factor`](crate::soak_factor)), `PAXSTORE_POWER_SEED` (default: from the clock;
//! printed, and a failure names it so the run replays).

use std::fmt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use paxstore::{Durability, Storage, StorageError, StorageOp};
use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};

use crate::check::compare;
use crate::crash::{self, check_acks, harness_batch, libtest_name, run_child, CHILD_DIR_ENV};
use crate::{Factory, Model, TestEntry};

/// Set to `1` to let the power and fault cases return (after printing `SKIPPED`) where
/// FUSE cannot be mounted, instead of failing.
pub const ALLOW_NO_FUSE_ENV: &str = "PAXSTORE_ALLOW_NO_FUSE";

/// Whether `case` can run here. Where the crash filesystem cannot be mounted: prints
/// `SKIPPED <case>: <reason>` and returns `false` if [`ALLOW_NO_FUSE_ENV`] is `1`, and
/// panics with the reason otherwise.
pub fn fuse_or_skip(case: &str) -> bool {
    match paxstore_crashfs::available() {
        Ok(()) => true,
        Err(reason) => {
            let allowed = std::env::var(ALLOW_NO_FUSE_ENV).is_ok_and(|v| v == "1");
            eprintln!("SKIPPED {case}: {reason}");
            assert!(
                allowed,
                "{case} needs the crash filesystem (FUSE), which cannot be mounted here: \
                 {reason}; set {ALLOW_NO_FUSE_ENV}=1 to report it skipped instead"
            );
            false
        }
    }
}

/// How many power cuts, from which seed.
#[derive(Clone, Copy, Debug)]
pub struct PowerConfig {
    /// Power cuts in all: mounts of [`PowerConfig::rounds`] cuts each.
    pub cuts: u32,
    /// Cuts per mount, on the same store (each round writes on a store recovered from
    /// the cut before).
    pub rounds: u32,
    /// Seeds every random choice of the run.
    pub seed: u64,
    /// The most acks the parent waits for before a cut.
    pub max_acks_before_cut: u32,
    /// What the backend under test promises.
    pub durability: Durability,
}

impl PowerConfig {
    /// From `PAXSTORE_POWER_CUTS` (default 4 times [`soak_factor`](crate::soak_factor))
    /// and `PAXSTORE_POWER_SEED`.
    pub fn from_env(durability: Durability) -> Self {
        let var = |name: &str| std::env::var(name).ok().and_then(|v| v.parse::<u64>().ok());
        let seed = var("PAXSTORE_POWER_SEED").unwrap_or_else(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(1, |d| d.as_nanos() as u64)
        });
        let cuts = var("PAXSTORE_POWER_CUTS").map_or(4 * crate::soak_factor(), |n| n as u32);
        PowerConfig { cuts, rounds: 2, seed, max_acks_before_cut: 40, durability }
    }
}

/// What a power-loss run did.
#[derive(Clone, Debug, Default)]
pub struct PowerReport {
    /// The seed of the run.
    pub seed: u64,
    /// Power cuts applied.
    pub cuts: u32,
    /// Batches acknowledged by children before the cuts.
    pub acknowledged: u64,
    /// Acknowledged batches missing after a cut (`Buffered` only; `Immediate` fails).
    pub lost: u64,
    /// Cuts after which the unacknowledged in-flight batch was found (whole).
    pub in_flight_found: u32,
    /// Unsynced changes the cuts threw away or tore.
    pub unsynced_dropped: usize,
}

impl fmt::Display for PowerReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "power: seed={} cuts={} acknowledged_batches={} lost_acknowledged={} \
             in_flight_batches_found={} unsynced_changes_dropped_or_torn={}",
            self.seed,
            self.cuts,
            self.acknowledged,
            self.lost,
            self.in_flight_found,
            self.unsynced_dropped
        )
    }
}

/// A crash filesystem over a fresh temporary directory: `backing/`, `mnt/` (the mount,
/// holding `store/`) and room beside them for files that must not be on the mount.
#[cfg(target_os = "linux")]
pub(crate) struct Mount {
    pub(crate) fs: paxstore_crashfs::CrashFs,
    pub(crate) store: PathBuf,
    // Dropped after `fs` (fields drop in order): the mount goes before its directories.
    pub(crate) dir: tempfile::TempDir,
}

#[cfg(target_os = "linux")]
impl Mount {
    /// Mounts, with an empty `store/` directory that is durable from the start.
    pub(crate) fn new() -> Result<Mount, String> {
        let dir = tempfile::Builder::new()
            .prefix("paxstore-power-")
            .tempdir()
            .map_err(|e| format!("cannot create a temporary directory: {e}"))?;
        let (backing, mnt) = (dir.path().join("backing"), dir.path().join("mnt"));
        for d in [&backing, &mnt, &backing.join("store")] {
            std::fs::create_dir(d).map_err(|e| format!("cannot create {}: {e}", d.display()))?;
        }
        let fs = paxstore_crashfs::CrashFs::mount(&backing, &mnt)
            .map_err(|e| format!("cannot mount the crash filesystem: {e}"))?;
        Ok(Mount { fs, store: mnt.join("store"), dir })
    }

    /// A path beside the mount, for files that outlive its power cuts.
    pub(crate) fn outside(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }
}

/// The power cut number `n`: every kind in turn (nothing unsynced kept, a torn prefix,
/// reordered writes, reordered pages), each seeded from `rng`.
#[cfg(target_os = "linux")]
fn choose_cut(n: u32, rng: &mut SmallRng) -> paxstore_crashfs::PowerCut {
    let cut = paxstore_crashfs::PowerCut::seeded(rng.random());
    match n % 4 {
        0 => cut,
        1 => cut.torn_prefix(rng.random_range(1..=3)),
        2 => cut.reordered(),
        _ => cut.pages(),
    }
}

/// Runs the power-loss harness from the test at `test_path` (`module_path!()::fn_name`).
///
/// In the parent: runs `config.cuts` power cuts and returns what they showed, or the
/// first violation. In a child started by the harness, it writes batches until killed
/// and never returns.
#[cfg(target_os = "linux")]
pub fn run<F: Factory>(
    factory: &F,
    test_path: &str,
    config: &PowerConfig,
) -> Result<PowerReport, String> {
    if let Ok(dir) = std::env::var(CHILD_DIR_ENV) {
        crash::child_main(factory, Path::new(&dir));
    }
    let exe = std::env::current_exe().map_err(|e| format!("cannot find the test binary: {e}"))?;
    let name = libtest_name(test_path);
    let mut rng = SmallRng::seed_from_u64(config.seed);
    let mut report = PowerReport { seed: config.seed, ..PowerReport::default() };
    let rounds = config.rounds.max(1);
    let mounts = config.cuts.div_ceil(rounds);
    for mount_no in 0..mounts {
        let mut mount = Mount::new()?;
        let seed: u64 = rng.random();
        // history[k]: the model after the first k batches of this store.
        let mut history = vec![Model::default()];
        for round in 0..rounds.min(config.cuts - mount_no * rounds) {
            let ctx = format!(
                "power-loss run PAXSTORE_POWER_SEED={}, {} store, mount {mount_no}, round {round}, \
                 batch seed {seed}",
                config.seed, config.durability
            );
            let start = (history.len() - 1) as u64;
            let target = rng.random_range(1..=config.max_acks_before_cut.max(1));
            let linger = Duration::from_micros(rng.random_range(0..1500));
            let (acks_path, stderr_path) = (
                mount.outside(&format!("acks-{round}")),
                mount.outside(&format!("stderr-{round}")),
            );
            let acks = run_child(
                &exe,
                name,
                &mount.store,
                &acks_path,
                &stderr_path,
                (seed, start, false),
                target,
                linger,
            )
            .map_err(|e| format!("{ctx}: {e}"))?;
            let acked = check_acks(&acks, start).map_err(|e| format!("{ctx}: {e}"))?;
            for i in start..start + acked + 1 {
                let mut next = history[i as usize].clone();
                let _ = next.apply_batch(&harness_batch(seed, i, &next));
                history.push(next);
            }
            report.acknowledged += acked;
            let cut = choose_cut(report.cuts, &mut rng);
            let cut_report = mount.fs.power_cut(cut).map_err(|e| format!("{ctx}: the cut: {e}"))?;
            report.cuts += 1;
            report.unsynced_dropped += cut_report.unsynced - cut_report.kept;
            let ctx = format!("{ctx}, after the cut {cut_report}");
            let acked_total = start + acked;
            let found = check_after_cut(factory, &mount.store, &history, acked_total, config)
                .map_err(|e| format!("{ctx}: {e}"))?;
            if found > acked_total {
                report.in_flight_found += 1;
            }
            report.lost += acked_total.saturating_sub(found);
            history.truncate(found as usize + 1);
        }
    }
    Ok(report)
}

/// Reopens the store after a cut and returns how many batches it holds: `acked` or
/// `acked + 1` for `Immediate`, any whole prefix up to `acked + 1` for `Buffered`.
/// `history` holds the models after 0 to `acked + 1` batches.
#[cfg(target_os = "linux")]
fn check_after_cut<F: Factory>(
    factory: &F,
    store: &Path,
    history: &[Model],
    acked: u64,
    config: &PowerConfig,
) -> Result<u64, String> {
    let storage = factory.open(store).map_err(|e| format!("the reopen failed: {e}"))?;
    let lowest = match config.durability {
        Durability::Immediate => acked,
        Durability::Buffered => 0,
    };
    let mut first = None;
    for k in (lowest..=acked + 1).rev() {
        match compare(&storage, &history[k as usize]) {
            Ok(()) => return Ok(k),
            Err(e) if k == acked => first = Some(e),
            Err(_) => {}
        }
    }
    let what = match config.durability {
        Durability::Immediate => format!("after {acked} batches nor after {}", acked + 1),
        Durability::Buffered => format!("after any of the first 0 to {} batches", acked + 1),
    };
    Err(format!(
        "with {acked} batches acknowledged, the reopened store is neither the model {what} \
         (an acknowledged batch lost, or a torn batch); against the model after {acked}: {}",
        first.unwrap_or_default()
    ))
}

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

/// The models a failed-write run is checked against.
#[cfg(target_os = "linux")]
struct FaultModels {
    history: Vec<StorageOp<TestEntry>>,
    batch: Vec<StorageOp<TestEntry>>,
    after: Vec<StorageOp<TestEntry>>,
    /// After the history.
    before: Model,
    /// After the history and the batch.
    with_batch: Model,
}

/// The history written before the batch that fails, the batch, a batch after it, and
/// the models.
#[cfg(target_os = "linux")]
fn fault_models() -> Result<FaultModels, String> {
    use crate::cases::ops::ballot;
    use paxstore::StorageOp::*;
    let history = vec![
        AppendEntries((0..10).map(|i| TestEntry::new(i, 300)).collect()),
        SetDecidedIndex(5),
        SetPromise(ballot(1)),
    ];
    let mut entries: Vec<_> = (10..30).map(|i| TestEntry::new(i, 200)).collect();
    entries.push(TestEntry::new(30, 64 << 10));
    let batch = vec![
        AppendEntries(entries),
        SetDecidedIndex(20),
        SetAcceptedRound(ballot(2)),
        SetPromise(ballot(3)),
        Trim(3),
    ];
    let after = vec![SetPromise(ballot(4)), AppendEntries(vec![TestEntry::new(31, 100)])];
    let mut before = Model::default();
    before.apply_batch(&history).map_err(|e| format!("the suite's history is invalid: {e:?}"))?;
    let mut with_batch = before.clone();
    with_batch.apply_batch(&batch).map_err(|e| format!("the suite's batch is invalid: {e:?}"))?;
    Ok(FaultModels { history, batch, after, before, with_batch })
}

/// Runs the failed-write harness: see the module docs.
#[cfg(target_os = "linux")]
pub fn run_faults<F: Factory>(factory: &F, durability: Durability) -> Result<FaultReport, String> {
    use paxstore_crashfs::Effect;
    let models = fault_models()?;
    let mut report = FaultReport::default();
    let mut mount = Mount::new()?;
    {
        let dir = mount.store.join("count");
        let mut storage = factory.open(&dir).map_err(|e| format!("open {}: {e}", dir.display()))?;
        storage
            .write_atomically(models.history.clone())
            .map_err(|e| format!("the history: {e}"))?;
        let c0 = stats(&mount)?.calls;
        storage.write_atomically(models.batch.clone()).map_err(|e| format!("the batch: {e}"))?;
        report.calls = stats(&mount)?.calls - c0;
    }
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
fn stats(mount: &Mount) -> Result<paxstore_crashfs::Stats, String> {
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

/// Off Linux the crash filesystem does not exist; the cases never get here
/// ([`fuse_or_skip`] says why first).
#[cfg(not(target_os = "linux"))]
pub fn run<F: Factory>(
    _factory: &F,
    _test_path: &str,
    _config: &PowerConfig,
) -> Result<PowerReport, String> {
    Err("the crash filesystem runs on Linux only".into())
}

/// Off Linux the crash filesystem does not exist; see [`run`].
#[cfg(not(target_os = "linux"))]
pub fn run_faults<F: Factory>(
    _factory: &F,
    _durability: Durability,
) -> Result<FaultReport, String> {
    Err("the crash filesystem runs on Linux only".into())
}
