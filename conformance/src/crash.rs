//! The crash harness: kill a writer with SIGKILL at a random moment, reopen, and check
//! that what survived is exactly the model after a prefix of batches that includes
//! every acknowledged one.
//!
//! The parent test re-runs its own test binary as a child, selecting the same test by
//! name (`<name> --exact`) with [`CHILD_DIR_ENV`] set. The child opens the store, applies
//! numbered batches from a seeded generator and appends one line per acknowledged batch to
//! an ack file (one `write` each, so a line is in the page cache before the next batch
//! starts). The parent waits for a random number of acks, waits a random few hundred
//! microseconds more, kills the child, reads the acks, reopens the store and compares it
//! with the model after `acked` batches, or after `acked + 1` (the batch in flight when
//! the kill landed may or may not have become durable; it must be whole either way).
//! Each iteration runs two rounds on the same directory, so the second round writes on
//! top of a store recovered from a crash and is killed again.
//!
//! Environment: `PAXSTORE_CRASH_ITERATIONS` (default 30), `PAXSTORE_CRASH_SEED` (default:
//! from the clock; printed, and a failure names it so the run replays),
//! `PAXSTORE_CRASH_KEEP_DIR` (set: a failing iteration's files are kept and named).

use std::fmt;
use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use paxstore::StorageOp::*;
use paxstore::{Snapshot, Storage, StorageError, StorageOp};
use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};

use crate::cases::ops::{ballot, stopsign};
use crate::check::{compare, write_by};
use crate::{Factory, Model, TestEntry, TestSnapshot};

/// Set in the child: the store directory.
pub const CHILD_DIR_ENV: &str = "PAXSTORE_CRASH_CHILD_DIR";
const CHILD_ACKS_ENV: &str = "PAXSTORE_CRASH_CHILD_ACKS";
const CHILD_SEED_ENV: &str = "PAXSTORE_CRASH_CHILD_SEED";
const CHILD_START_ENV: &str = "PAXSTORE_CRASH_CHILD_START";
/// Set in the child of [`run_flushing`]: `flush` after every batch, before its ack.
const CHILD_FLUSH_ENV: &str = "PAXSTORE_CRASH_CHILD_FLUSH";
/// The most batches one child writes before it stops by itself.
const CHILD_MAX_BATCHES: u64 = 100_000;

/// How many iterations, from which seed.
#[derive(Clone, Copy, Debug)]
pub struct CrashConfig {
    /// Kill/reopen iterations, each of [`CrashConfig::rounds`] kills.
    pub iterations: u32,
    /// Kills per iteration on the same directory.
    pub rounds: u32,
    /// Seeds every random choice of the run.
    pub seed: u64,
    /// The most acks the parent waits for before a kill.
    pub max_acks_before_kill: u32,
}

impl CrashConfig {
    /// From `PAXSTORE_CRASH_ITERATIONS` (default 30 times [`soak_factor`](crate::soak_factor))
    /// and `PAXSTORE_CRASH_SEED`.
    pub fn from_env() -> Self {
        let var = |name: &str| std::env::var(name).ok().and_then(|v| v.parse::<u64>().ok());
        let seed = var("PAXSTORE_CRASH_SEED").unwrap_or_else(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(1, |d| d.as_nanos() as u64)
        });
        let iterations =
            var("PAXSTORE_CRASH_ITERATIONS").map_or(30 * crate::soak_factor(), |n| n as u32);
        CrashConfig { iterations, rounds: 2, seed, max_acks_before_kill: 80 }
    }
}

/// What a crash run did.
#[derive(Clone, Debug, Default)]
pub struct CrashReport {
    /// The seed of the run.
    pub seed: u64,
    /// Children killed.
    pub kills: u32,
    /// Batches acknowledged by children, all found after reopen.
    pub acknowledged: u64,
    /// Kills after which the unacknowledged in-flight batch was found (whole).
    pub in_flight_found: u32,
}

impl fmt::Display for CrashReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "crash: seed={} kills={} acknowledged_batches={} in_flight_batches_found={} lost=0 torn=0",
            self.seed, self.kills, self.acknowledged, self.in_flight_found
        )
    }
}

/// The deterministic batch number `i` of a run seeded with `seed`, given the state the
/// batches before it left (the harness mixes in big batches: [`harness_batch`]). Keeps the log short (it trims as it goes) and mixes every op,
/// entries up to 64 KiB, and now and then a batch that must be refused.
pub fn batch(seed: u64, i: u64, model: &Model) -> Vec<StorageOp<TestEntry>> {
    let mut rng = SmallRng::seed_from_u64(seed ^ i.wrapping_mul(0x9E37_79B9_7F4A_7C15));
    let mut m = model.clone();
    let mut ops = Vec::new();
    let mut next_id = i * 1000;
    for _ in 0..rng.random_range(1..=4) {
        let end = m.log_end();
        let op = match rng.random_range(0..100) {
            0..=39 => {
                let n = rng.random_range(1..=8);
                let entries = (0..n)
                    .map(|_| {
                        next_id += 1;
                        let len = if rng.random_bool(0.05) {
                            rng.random_range(4096..65536)
                        } else {
                            rng.random_range(0..200)
                        };
                        TestEntry::new(next_id, len)
                    })
                    .collect();
                AppendEntries(entries)
            }
            40..=49 => {
                // With a decided stop sign (`decided_idx = end + 1`) the op is refused.
                let low = m.compacted_idx.max(m.decided_idx).min(end);
                let from = rng.random_range(low..=end);
                next_id += 1;
                AppendOnPrefix(from, vec![TestEntry::new(next_id, 32); rng.random_range(0..3)])
            }
            50..=69 => SetDecidedIndex(rng.random_range(m.decided_idx.min(end)..=end)),
            70..=79 => {
                let high = m.decided_idx.max(m.compacted_idx).min(end);
                let low = if end - m.compacted_idx > 64 { high } else { m.compacted_idx };
                Trim(rng.random_range(low..=high))
            }
            80..=84 => SetPromise(ballot(i as u32)),
            85..=89 => SetAcceptedRound(ballot(i as u32)),
            90..=93 => {
                SetSnapshot(Some(TestSnapshot::create(&m.log[m.log.len().saturating_sub(3)..])))
            }
            94..=96 => SetStopsign(Some(stopsign(i as u32))),
            97 => SetCompactedIdx(end + rng.random_range(0..3)),
            _ => Trim(end + 1), // refused: the whole batch must leave no trace
        };
        let _ = m.apply_batch(std::slice::from_ref(&op));
        ops.push(op);
    }
    ops
}

/// The batch number `i` the harness writes: [`batch`], except that once a stop sign is
/// set, one batch in ten on average decides it (`SetDecidedIndex(log_end + 1)`), and
/// while it is decided, one in four opens the log again; so kills also land on a decided
/// stop sign (about a quarter of the batches once a stop sign is set), on batches refused
/// because it closed the log, and on its undoing. While the log is open, one batch in 16
/// is a big one (100 to 2,000 entries, up to 8 MiB, with metadata), and one kill in two
/// is aimed at the next big batch.
pub fn harness_batch(seed: u64, i: u64, model: &Model) -> Vec<StorageOp<TestEntry>> {
    let mut rng =
        SmallRng::seed_from_u64(seed.rotate_left(29) ^ i.wrapping_mul(0xD6E8_FEB8_6659_FD93));
    let end = model.log_end();
    if model.stopsign_decided() {
        if rng.random_bool(0.25) {
            return vec![SetDecidedIndex(end)];
        }
    } else if model.stopsign.is_some() && rng.random_bool(0.1) {
        return vec![SetDecidedIndex(end + 1)];
    } else if rng.random_ratio(1, BIG_BATCH_ONE_IN) {
        return big_batch(&mut rng, i, model);
    }
    batch(seed, i, model)
}

/// While the log is open, one batch in this many (on average) is a [`big_batch`].
const BIG_BATCH_ONE_IN: u32 = 16;

/// The fewest entries of the big batches that [`harness_batch`] makes now and then.
pub const BIG_BATCH_ENTRIES: usize = 100;

/// A big batch: a promise, 100 to 2,000 entries of 512 B to 4 KiB each (up to 8 MiB), a
/// decided index in the middle of them and an accepted round, in one batch; so a kill
/// lands in a batch that a backend may be tempted to commit in pieces.
fn big_batch(rng: &mut SmallRng, i: u64, model: &Model) -> Vec<StorageOp<TestEntry>> {
    let n = rng.random_range(BIG_BATCH_ENTRIES..=2000);
    let len = rng.random_range(512..=4096);
    // Ids apart from those of `batch` (`i * 1000 + k`).
    let first = (1 << 40) + i * 4096;
    let entries = (0..n as u64).map(|k| TestEntry::new(first + k, len)).collect();
    vec![
        SetPromise(ballot(i as u32)),
        AppendEntries(entries),
        SetDecidedIndex(model.log_end() + n / 2),
        SetAcceptedRound(ballot(i as u32)),
    ]
}

/// Whether `ops` is a [`big_batch`].
fn is_big(ops: &[StorageOp<TestEntry>]) -> bool {
    ops.iter().any(|op| matches!(op, AppendEntries(es) if es.len() >= BIG_BATCH_ENTRIES))
}

/// Where to kill, one round in two: the number of acks after which the next big batch
/// is in flight (within `max_acks` batches of `start`), and a linger spread from 100 µs
/// to 300 ms on a log scale, so the kill lands anywhere in a batch that takes a while.
/// `None` when the round is not aimed or no big batch comes soon enough.
fn aim_at_big_batch(
    rng: &mut SmallRng,
    seed: u64,
    start: u64,
    model: &Model,
    max_acks: u32,
) -> Option<(u32, Duration)> {
    if !rng.random_bool(0.5) {
        return None;
    }
    let mut m = model.clone();
    for ahead in 0..u64::from(max_acks) {
        let ops = harness_batch(seed, start + ahead, &m);
        if is_big(&ops) && ahead > 0 {
            let micros = 100.0 * 3000f64.powf(rng.random::<f64>());
            return Some((ahead as u32, Duration::from_micros(micros as u64)));
        }
        let _ = m.apply_batch(&ops);
    }
    None
}

/// The test's name as libtest knows it: `module_path!()` of the test plus the function
/// name, without the crate's name.
pub(crate) fn libtest_name(path: &str) -> &str {
    path.split_once("::").map_or(path, |(_, rest)| rest)
}

/// Runs the crash harness from the test at `test_path` (`module_path!()::fn_name`).
///
/// In the parent: runs `config.iterations` kill/reopen iterations and returns what they
/// showed, or the first violation. In a child started by the harness (the environment
/// says so), it writes batches until killed and never returns.
pub fn run<F: Factory>(
    factory: &F,
    test_path: &str,
    config: &CrashConfig,
) -> Result<CrashReport, String> {
    run_with(factory, test_path, config, false)
}

/// [`run`], but the child calls [`Storage::flush`] after every successful batch, before
/// acknowledging it.
pub fn run_flushing<F: Factory>(
    factory: &F,
    test_path: &str,
    config: &CrashConfig,
) -> Result<CrashReport, String> {
    run_with(factory, test_path, config, true)
}

fn run_with<F: Factory>(
    factory: &F,
    test_path: &str,
    config: &CrashConfig,
    flush: bool,
) -> Result<CrashReport, String> {
    if let Ok(dir) = std::env::var(CHILD_DIR_ENV) {
        child_main(factory, Path::new(&dir));
    }
    let exe = std::env::current_exe().map_err(|e| format!("cannot find the test binary: {e}"))?;
    let name = libtest_name(test_path);
    let mut rng = SmallRng::seed_from_u64(config.seed);
    let mut report = CrashReport { seed: config.seed, ..CrashReport::default() };
    for iteration in 0..config.iterations {
        let dirs = tempfile::Builder::new()
            .prefix("paxstore-crash-")
            .tempdir()
            .map_err(|e| format!("cannot create a temporary directory: {e}"))?;
        let store = dirs.path().join("store");
        std::fs::create_dir(&store)
            .map_err(|e| format!("cannot create {}: {e}", store.display()))?;
        let seed: u64 = rng.random();
        run_iteration(
            factory,
            &exe,
            name,
            config,
            &mut rng,
            &mut report,
            &dirs,
            iteration,
            seed,
            flush,
        )
        .map_err(|err| keep_on_failure(dirs, err))?;
    }
    Ok(report)
}

/// Set to keep a failing iteration's directory (store, acks, children's stderr) and name
/// it in the error, for inspecting the files the failure left.
pub const KEEP_DIR_ENV: &str = "PAXSTORE_CRASH_KEEP_DIR";

fn keep_on_failure(dirs: tempfile::TempDir, err: String) -> String {
    if std::env::var_os(KEEP_DIR_ENV).is_none() {
        return err;
    }
    format!("{err} (files kept in {})", dirs.keep().display())
}

#[allow(clippy::too_many_arguments)]
fn run_iteration<F: Factory>(
    factory: &F,
    exe: &Path,
    name: &str,
    config: &CrashConfig,
    rng: &mut SmallRng,
    report: &mut CrashReport,
    dirs: &tempfile::TempDir,
    iteration: u32,
    seed: u64,
    flush: bool,
) -> Result<(), String> {
    let store = dirs.path().join("store");
    {
        let mut model = Model::default();
        let mut start = 0u64;
        for round in 0..config.rounds {
            let ctx = format!(
                "crash run seed {} (PAXSTORE_CRASH_SEED={}), iteration {iteration}, round {round}, batch seed {seed}",
                config.seed, config.seed
            );
            let acks_path = dirs.path().join(format!("acks-{round}"));
            let stderr_path = dirs.path().join(format!("stderr-{round}"));
            let max_acks = config.max_acks_before_kill.max(1);
            let (target, linger) = aim_at_big_batch(rng, seed, start, &model, max_acks)
                .unwrap_or_else(|| {
                    let target = rng.random_range(1..=max_acks);
                    (target, Duration::from_micros(rng.random_range(0..1500)))
                });
            let acks = run_child(
                exe,
                name,
                &store,
                &acks_path,
                &stderr_path,
                (seed, start, flush),
                target,
                linger,
            )
            .map_err(|e| format!("{ctx}: {e}"))?;
            report.kills += 1;
            let acked = check_acks(&acks, start).map_err(|e| format!("{ctx}: {e}"))?;
            for i in start..start + acked {
                let _ = model.apply_batch(&harness_batch(seed, i, &model));
            }
            report.acknowledged += acked;
            start += acked;
            let storage = factory
                .open(&store)
                .map_err(|e| format!("{ctx}: reopen after SIGKILL failed: {e}"))?;
            if let Err(first) = compare(&storage, &model) {
                let mut next = model.clone();
                let in_flight = next.apply_batch(&harness_batch(seed, start, &model));
                match (in_flight, compare(&storage, &next)) {
                    (Ok(()), Ok(())) => {
                        report.in_flight_found += 1;
                        model = next;
                        start += 1;
                    }
                    _ => {
                        return Err(format!(
                            "{ctx}: after SIGKILL with {acked} batches acknowledged this round \
                             ({start} in all), the reopened store is neither the model after \
                             {start} batches nor after {} (a lost acknowledged batch or a torn \
                             batch): {first}",
                            start + 1
                        ))
                    }
                }
            }
            drop(storage);
        }
    }
    Ok(())
}

/// The lines of the ack file.
pub(crate) enum Ack {
    Ok(u64),
    Rejected(u64),
    Failed(String),
    Done,
}

#[allow(clippy::too_many_arguments)]
pub(crate) fn run_child(
    exe: &Path,
    name: &str,
    store: &Path,
    acks_path: &PathBuf,
    stderr_path: &PathBuf,
    (seed, start, flush): (u64, u64, bool),
    target: u32,
    linger: Duration,
) -> Result<Vec<Ack>, String> {
    File::create(acks_path).map_err(|e| format!("cannot create the ack file: {e}"))?;
    let stderr =
        File::create(stderr_path).map_err(|e| format!("cannot create the stderr file: {e}"))?;
    let mut command = Command::new(exe);
    if flush {
        command.env(CHILD_FLUSH_ENV, "1");
    }
    // `--include-ignored`: a case its suite skips (`skip = [..]`, `only = [..]`) is
    // reported ignored, and still runs when asked for; its child must run too.
    let mut child = command
        .args([name, "--exact", "--include-ignored", "--nocapture", "--test-threads=1"])
        .env(CHILD_DIR_ENV, store)
        .env(CHILD_ACKS_ENV, acks_path)
        .env(CHILD_SEED_ENV, seed.to_string())
        .env(CHILD_START_ENV, start.to_string())
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(stderr)
        .spawn()
        .map_err(|e| format!("cannot start the child {}: {e}", exe.display()))?;
    let started = Instant::now();
    let exited = loop {
        let lines = std::fs::read(acks_path)
            .map(|b| b.iter().filter(|&&c| c == b'\n').count())
            .unwrap_or(0);
        if lines >= target as usize {
            break false;
        }
        match child.try_wait() {
            Ok(Some(_)) => break true,
            Ok(None) => {}
            Err(e) => return Err(format!("cannot poll the child: {e}")),
        }
        if started.elapsed() > Duration::from_secs(60) {
            let _ = child.kill();
            let _ = child.wait();
            return Err(format!(
                "the child made no progress in 60 s; its stderr: {}",
                tail(stderr_path)
            ));
        }
        std::thread::sleep(Duration::from_micros(200));
    };
    if !exited {
        std::thread::sleep(linger);
        // `Child::kill` sends SIGKILL on Unix: no destructor, no flush runs in the child.
        child.kill().map_err(|e| format!("cannot kill the child: {e}"))?;
    }
    let status = child.wait().map_err(|e| format!("cannot reap the child: {e}"))?;
    let text =
        std::fs::read_to_string(acks_path).map_err(|e| format!("cannot read the acks: {e}"))?;
    // Only whole lines count: a line cut by the kill acknowledges nothing.
    let complete = text.rfind('\n').map_or("", |i| &text[..i]);
    let acks: Vec<Ack> = complete
        .lines()
        .map(|line| match line.split_once(' ') {
            Some(("ok", n)) => n.parse().map(Ack::Ok).map_err(|_| line.to_owned()),
            Some(("rejected", n)) => n.parse().map(Ack::Rejected).map_err(|_| line.to_owned()),
            Some(("fail", msg)) => Ok(Ack::Failed(msg.to_owned())),
            _ if line == "done" => Ok(Ack::Done),
            _ => Err(line.to_owned()),
        })
        .collect::<Result<_, _>>()
        .map_err(|line| format!("unreadable ack line {line:?}"))?;
    if exited && !acks.iter().any(|a| matches!(a, Ack::Done | Ack::Failed(_))) {
        return Err(format!(
            "the child exited ({status}) before it was killed; its stderr: {}",
            tail(stderr_path)
        ));
    }
    Ok(acks)
}

/// The number of batches acknowledged, checking they are numbered from `start` on.
pub(crate) fn check_acks(acks: &[Ack], start: u64) -> Result<u64, String> {
    let mut expected = start;
    for ack in acks {
        match ack {
            Ack::Ok(n) | Ack::Rejected(n) if *n == expected => expected += 1,
            Ack::Ok(n) | Ack::Rejected(n) => {
                return Err(format!("the child acknowledged batch {n} where {expected} was due"))
            }
            Ack::Failed(msg) => return Err(format!("the child failed: {msg}")),
            Ack::Done => {}
        }
    }
    Ok(expected - start)
}

fn tail(path: &Path) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let lines: Vec<_> = text.lines().rev().take(15).collect();
    lines.into_iter().rev().collect::<Vec<_>>().join("\n")
}

/// The child: open the store, replay the generator to where the parent says the store
/// is, then write and acknowledge batches until killed. Never returns.
pub(crate) fn child_main<F: Factory>(factory: &F, dir: &Path) -> ! {
    let acks_path = std::env::var(CHILD_ACKS_ENV).unwrap_or_default();
    let mut acks = match OpenOptions::new().append(true).open(&acks_path) {
        Ok(f) => f,
        Err(_) => std::process::exit(3),
    };
    let result = child_loop(factory, dir, &mut acks);
    let line = match result {
        Ok(()) => "done\n".to_owned(),
        Err(msg) => format!("fail {}\n", msg.replace('\n', " ")),
    };
    let _ = acks.write_all(line.as_bytes());
    std::process::exit(0)
}

fn child_loop<F: Factory>(factory: &F, dir: &Path, acks: &mut File) -> Result<(), String> {
    let var = |name: &str| -> Result<u64, String> {
        std::env::var(name).ok().and_then(|v| v.parse().ok()).ok_or(format!("{name} is not set"))
    };
    let (seed, start) = (var(CHILD_SEED_ENV)?, var(CHILD_START_ENV)?);
    let flush = std::env::var_os(CHILD_FLUSH_ENV).is_some();
    let mut storage = factory.open(dir).map_err(|e| format!("open: {e}"))?;
    let mut model = Model::default();
    for i in 0..start {
        let _ = model.apply_batch(&harness_batch(seed, i, &model));
    }
    compare(&storage, &model).map_err(|e| format!("the reopened store is not the model: {e}"))?;
    for i in start..start + CHILD_MAX_BATCHES {
        let mut ops = harness_batch(seed, i, &model);
        let want = model.apply_batch(&ops);
        // Odd batches through the second way in, so a backend that overrides it is held
        // to the same durability.
        let line = match (write_by(&mut storage, &mut ops, i % 2 == 1), want) {
            (Ok(()), Ok(())) if flush => match storage.flush() {
                Ok(()) => format!("ok {i}\n"),
                Err(e) => return Err(format!("flush after batch {i}: {e}")),
            },
            (Ok(()), Ok(())) => format!("ok {i}\n"),
            (Err(StorageError::InvalidOp { .. }), Err(_)) => format!("rejected {i}\n"),
            (got, want) => {
                return Err(format!("batch {i}: backend returned {got:?}, model {want:?}"))
            }
        };
        acks.write_all(line.as_bytes()).map_err(|e| format!("ack: {e}"))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use paxstore::InvalidOp;

    use super::*;

    /// What a harness run of `batches` batches from a fresh store goes through.
    #[derive(Debug, Default)]
    struct Seen {
        /// Batches after which the stop sign is decided.
        decided: u32,
        /// Batches refused because the decided stop sign closes the log.
        refused_closed: u32,
        /// Batches that opened the log again.
        reopened: u32,
    }

    fn walk(
        seed: u64,
        batches: u64,
        next: fn(u64, u64, &Model) -> Vec<StorageOp<TestEntry>>,
    ) -> Seen {
        let mut model = Model::default();
        let mut seen = Seen::default();
        for i in 0..batches {
            let was_decided = model.stopsign_decided();
            let result = model.apply_batch(&next(seed, i, &model));
            if let Err((_, InvalidOp::AppendAfterDecidedStopsign { .. })) = result {
                seen.refused_closed += 1;
            }
            match (was_decided, model.stopsign_decided()) {
                (false, true) => seen.decided += 1,
                (true, false) => seen.reopened += 1,
                _ => {}
            }
        }
        seen
    }

    /// Within the batches one harness iteration writes (two kills of up to 80
    /// acknowledged batches), nearly every seed decides a stop sign, write batches it refuses,
    /// and open the log again; the plain [`batch`] sequence never decides one.
    #[test]
    fn the_harness_decides_stop_signs_refuses_appends_after_them_and_undoes_them() {
        let seeds = 0..40u64;
        let runs: Vec<Seen> = seeds.clone().map(|s| walk(s, 160, harness_batch)).collect();
        let with_decided = runs.iter().filter(|s| s.decided > 0).count();
        assert!(
            with_decided >= 36,
            "only {with_decided} of 40 seeds decided a stop sign: {runs:?}"
        );
        assert!(runs.iter().any(|s| s.refused_closed > 0), "{runs:?}");
        assert!(runs.iter().any(|s| s.reopened > 0), "{runs:?}");
        for s in seeds {
            let plain = walk(s, 160, batch);
            assert_eq!(plain.decided, 0, "seed {s}: plain batches decided a stop sign: {plain:?}");
        }
    }
}
