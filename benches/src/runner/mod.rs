//! The runner: the report's fixed matrix of cells, run one after another with progress on
//! stderr.
//!
//! A failing cell is recorded in the report's `failures` and the run goes on, so one
//! backend's error does not cost the other backends' figures; the `report` binary exits
//! non-zero if any cell failed.
//!
//! | file | job |
//! |---|---|
//! | `matrix.rs` | [`Matrix`]: the sizes of a full and a `--quick` run |
//! | `plan.rs` | the groups of cells, in order, and which cells are paired |
//! | `device.rs` | what reached the block device during a cell (write amplification) |
//! | `execute.rs` | how one repetition of one cell is built and run |
//! | `record.rs` | a finished cell's repetitions into a report row |
//! | `paired.rs` | ratios of paired replica cells, repetition by repetition |
//! | `output.rs` | [`write()`]: `report.json`, `report.md`, `index.html`, `charts/` |
//! | `mod.rs` | [`run`]: the loop over the plan, interleaving and progress |

use std::fs;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use paxstore_backends::BackendKind;

use crate::ceiling::{FILE_BYTES, WRITE_BYTES};
use crate::machine::Machine;
use crate::report::{self, Ceiling, Failure, Report};
use crate::stats;
use crate::workload::Rng;
use crate::BenchError;

mod device;
mod execute;
mod matrix;
mod output;
mod paired;
mod plan;
mod record;

pub use device::{Device, IDLE_WINDOW};
use execute::{Rep, Runner};
pub use matrix::Matrix;
pub use output::write;
use paired::{paired_ratio, Paired};
use plan::{pair_of, plan, replica_plan, target_of, Pair, Work};

/// What a run needs to know besides the matrix.
#[derive(Clone, Debug)]
pub struct RunOptions {
    /// The matrix.
    pub matrix: Matrix,
    /// `true` for `--quick`.
    pub quick: bool,
    /// The backends, in order.
    pub backends: Vec<BackendKind>,
    /// Where the report is written; the cells' directories live in `<out>/work`.
    pub out: PathBuf,
    /// The command line, for the report.
    pub command: String,
    /// Only the replica cells (and the ceiling).
    pub replica_only: bool,
}

fn fmt_elapsed(d: Duration) -> String {
    let s = d.as_secs();
    format!("{}m{:02}s", s / 60, s % 60)
}

/// An estimate of the time left after `done` of `total` cells took `elapsed`: the average
/// cell so far times the cells left (cells differ in cost, so it is only an estimate).
fn time_left(elapsed: Duration, done: usize, total: usize) -> String {
    if done == 0 || done >= total {
        return "done".to_owned();
    }
    let per_cell = elapsed.as_secs_f64() / done as f64;
    let left = Duration::from_secs_f64(per_cell * (total - done) as f64);
    format!("about {} left", fmt_elapsed(left))
}

/// Runs the matrix and returns the report (not yet written).
pub fn run(opts: &RunOptions) -> Result<Report, BenchError> {
    let started = Instant::now();
    let work = opts.out.join("work");
    fs::create_dir_all(&work).map_err(BenchError::io("creating the work directory", &work))?;
    let machine = Machine::describe(&work);
    let groups = if opts.replica_only {
        replica_plan(&opts.matrix, &opts.backends)
    } else {
        plan(&opts.matrix, &opts.backends)
    };
    let total: usize = groups.iter().map(|g| g.cells.len()).sum();
    eprintln!(
        "paxstore report: {total} cells in {} groups over {} on {} ({})",
        groups.len(),
        opts.backends.iter().map(|k| k.name()).collect::<Vec<_>>().join(", "),
        machine.filesystem,
        work.display()
    );
    let device = Device::of(&work);
    match &device {
        Some(d) => eprintln!("write amplification from {}", d.stat_path().display()),
        None => eprintln!("no block device found under {}: no write amplification", work.display()),
    }
    let mut runner = Runner {
        opts,
        device,
        work: work.clone(),
        read_stores: Vec::new(),
        reopen_stores: Vec::new(),
        rng: Rng::new(0x5eed),
        ceiling: None,
        ceiling_runs: Vec::new(),
        storage: Vec::new(),
        reopen: Vec::new(),
        replica: Vec::new(),
    };
    let mut failures = Vec::new();
    let ceiling_start = runner.ceiling_sample(opts.matrix.ceiling_time)?;
    eprintln!(
        "[0/{total}] disk ceiling: 4 KiB pwrite + fdatasync ... {} syncs/s",
        report::fmt_num(ceiling_start)
    );
    let mut done = 0;
    for group in &groups {
        if !matches!(group.work, Work::Read { .. }) {
            runner.read_stores.clear();
        }
        let t = Instant::now();
        let labels: Vec<String> =
            group.cells.iter().map(|&c| group.label(&opts.matrix, c)).collect();
        eprintln!(
            "[{}-{}/{total}] {} ... ({} repetitions, interleaved{})",
            done + 1,
            done + group.cells.len(),
            labels.join(" | "),
            opts.matrix.reps,
            if group.with_ceiling { ", with a ceiling sample each round" } else { "" }
        );
        let mut reps: Vec<Result<Vec<Rep>, BenchError>> = Vec::new();
        for &cell in &group.cells {
            reps.push(runner.prepare(group.work, cell.kind, cell.durability).map(|()| Vec::new()));
        }
        for round in 0..opts.matrix.reps {
            // The order alternates, so no cell always runs first (or right after another).
            let order: Vec<usize> = if round % 2 == 0 {
                (0..group.cells.len()).collect()
            } else {
                (0..group.cells.len()).rev().collect()
            };
            for i in order {
                let cell = group.cells[i];
                if let Ok(done_reps) = &mut reps[i] {
                    match runner.rep(group.work, cell) {
                        Ok(r) => done_reps.push(r),
                        Err(e) => reps[i] = Err(e),
                    }
                }
            }
            if group.with_ceiling {
                runner.ceiling_sample(opts.matrix.append_time)?;
            }
        }
        // A replica cell against the cell it pairs with, rep by rep.
        let paired: Vec<Option<Paired>> = group
            .cells
            .iter()
            .zip(&reps)
            .map(|(&c, mine)| {
                let (other, this_first) = match pair_of(c)? {
                    Pair::VsOmniPaxos(o) => (o, true),
                    Pair::WalOverThis(o) => (o, false),
                };
                let j = group.cells.iter().position(|o| {
                    o.imp == other.imp && o.kind == other.kind && o.durability == other.durability
                })?;
                match (mine, &reps[j]) {
                    (Ok(a), Ok(b)) if this_first => paired_ratio(a, b),
                    (Ok(a), Ok(b)) => paired_ratio(b, a),
                    _ => None,
                }
            })
            .collect();
        // A cell of paxstore's replica or of the floor against the OmniPaxos cell of the
        // target comparison, rep by rep.
        let targets: Vec<Option<Paired>> = group
            .cells
            .iter()
            .zip(&reps)
            .map(|(&c, mine)| {
                let other = target_of(c)?;
                let j = group.cells.iter().position(|o| {
                    o.imp == other.imp && o.kind == other.kind && o.durability == other.durability
                })?;
                match (mine, &reps[j]) {
                    (Ok(a), Ok(b)) => paired_ratio(a, b),
                    _ => None,
                }
            })
            .collect();
        let cells = group.cells.iter().zip(reps).zip(paired).zip(targets);
        for (i, (((&cell, result), paired), target)) in cells.enumerate() {
            done += 1;
            let line = match result {
                Ok(r) => runner.record(group.work, cell, r, paired, target),
                Err(e) => {
                    failures.push(Failure { cell: labels[i].clone(), error: e.to_string() });
                    format!("FAILED: {e}")
                }
            };
            eprintln!("[{done}/{total}] {} ... {line}", labels[i]);
        }
        runner.reopen_stores.clear();
        eprintln!(
            "      [{:.1} s, total {}, {}]",
            t.elapsed().as_secs_f64(),
            fmt_elapsed(started.elapsed()),
            time_left(started.elapsed(), done, total)
        );
    }
    let ceiling_time = opts.matrix.ceiling_time;
    let mut ceiling = || runner.ceiling_sample(ceiling_time).map_err(|e| e.to_string());
    let (tcp_cluster, tcp_failures) =
        crate::tcp_cluster::run(&opts.backends, opts.quick, &work, &mut ceiling);
    failures.extend(tcp_failures);
    let ceiling_end = runner.ceiling_sample(opts.matrix.ceiling_time)?;
    eprintln!(
        "[{total}/{total}] disk ceiling: 4 KiB pwrite + fdatasync ... {} syncs/s",
        report::fmt_num(ceiling_end)
    );
    runner.read_stores.clear();
    runner.ceiling = None;
    let _ = fs::remove_dir_all(&work);

    let c = stats::summarize(&runner.ceiling_runs);
    let ceiling = Ceiling {
        sync_writes_per_s: c.calls_per_s,
        sync_writes_per_s_min: c.items_per_s_min,
        sync_writes_per_s_max: c.items_per_s_max,
        p50_us: c.p50_us,
        p99_us: c.p99_us,
        write_bytes: WRITE_BYTES,
        file_bytes: FILE_BYTES,
        reps: c.reps,
    };
    let per_sync =
        |x: f64| if ceiling.sync_writes_per_s > 0.0 { x / ceiling.sync_writes_per_s } else { 0.0 };
    for r in &mut runner.storage {
        if r.fraction_of_ceiling.is_some() {
            r.fraction_of_ceiling = Some(per_sync(r.batches_per_s));
        }
    }
    for r in &mut runner.replica {
        if r.fraction_of_ceiling.is_some() {
            let writes_per_s = r.decided_per_s * r.writes_per_entry * r.replicas as f64;
            r.fraction_of_ceiling = Some(per_sync(writes_per_s));
        }
    }
    let mut report = Report {
        schema_version: report::SCHEMA_VERSION,
        quick: opts.quick,
        command: opts.command.clone(),
        machine,
        backends: opts.backends.iter().map(|k| k.name().to_owned()).collect(),
        duration_s: started.elapsed().as_secs_f64(),
        ceiling,
        storage: runner.storage,
        reopen: runner.reopen,
        replica: runner.replica,
        tcp_cluster,
        recommendations: Vec::new(),
        failures,
    };
    report.recommendations = report::recommendations(&report);
    Ok(report)
}
