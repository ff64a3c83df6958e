//! Power loss and failed writes, for real, on the crash filesystem
//! ([`paxstore_crashfs`]): the harnesses behind the cases
//! [`power_loss_keeps_acknowledged_batches`](crate::cases::power_loss_keeps_acknowledged_batches)
//! and [`failed_write_changes_nothing`](crate::cases::failed_write_changes_nothing).
//!
//! **Power loss.** As the SIGKILL harness ([`crate::crash`]), the parent re-runs its own
//! test binary as a child that writes numbered batches and acknowledges each in a file
//! outside the mount; here the store lives on a crash filesystem mounted by the parent.
//! The parent kills the child at a random moment, cuts the power (losing, tearing or
//! reordering what was not made durable: [`paxstore_crashfs::PowerCut`]), reopens the store and compares it
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
//! Failed writes and kills at each I/O call of a batch are in [`crate::faults`].
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

use paxstore::Durability;
use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};

use crate::check::compare;
use crate::crash::{self, check_acks, harness_batch, libtest_name, run_child, CHILD_DIR_ENV};
use crate::{Factory, Model};

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
