//! The report's fixed matrix of cells, run one after another with progress on stderr.
//!
//! A failing cell is recorded in the report's `failures` and the run goes on, so one
//! backend's error does not cost the other backends' figures; the `report` binary exits
//! non-zero if any cell failed.

use std::fs;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use paxstore::Durability;
use paxstore_backends::BackendKind;

use crate::ceiling::{CeilingFile, FILE_BYTES, WRITE_BYTES};
use crate::machine::Machine;
use crate::replica::{self, REPLICAS};
use crate::report::{self, Ceiling, Failure, ReopenRow, ReplicaRow, Report, StorageRow};
use crate::stats::{self, Samples, Summary};
use crate::workload::{durability_label, BenchStore, Budget, ReadRange, Rng};
use crate::{charts, html, BenchError};

/// The sizes of the matrix: what a full and a `--quick` run measure.
#[derive(Clone, Debug)]
pub struct Matrix {
    /// Repetitions of every timed cell.
    pub reps: usize,
    /// Repetitions of the ceiling loop each time it is sampled (at the start, after each
    /// backend's appends, before the replica cells and at the end of the run).
    pub ceiling_reps: usize,
    /// Length of one ceiling repetition.
    pub ceiling_time: Duration,
    /// Length of one repetition of an append cell.
    pub append_time: Duration,
    /// Entries per `write_atomically` of the append cells.
    pub append_batches: Vec<usize>,
    /// Entry sizes of the append cells.
    pub entry_sizes: Vec<usize>,
    /// Entries in the log the read cells read from.
    pub read_fill: usize,
    /// Entries per `get_entries` of the read cells.
    pub read_batches: Vec<usize>,
    /// Length of one repetition of a read cell.
    pub read_time: Duration,
    /// Entries in the log each trim repetition trims.
    pub trim_fill: usize,
    /// Entries per `Trim`.
    pub trim_batches: Vec<usize>,
    /// Entries in the log reopened.
    pub reopen_entries: usize,
    /// The replica's `batch_size` values.
    pub replica_batches: Vec<usize>,
    /// Whether persistent backends also run the cluster with `Buffered` storage.
    pub replica_buffered: bool,
    /// Length of one repetition of a replica cell.
    pub replica_time: Duration,
}

impl Matrix {
    /// The full matrix: every cell of the issue, 3 repetitions (10–20 minutes here).
    pub fn full() -> Self {
        Matrix {
            reps: 3,
            ceiling_reps: 2,
            ceiling_time: Duration::from_secs(1),
            append_time: Duration::from_millis(500),
            append_batches: vec![1, 10, 100, 1000],
            entry_sizes: vec![16, 128, 4096],
            read_fill: 100_000,
            read_batches: vec![1, 100, 1000],
            read_time: Duration::from_millis(300),
            trim_fill: 100_000,
            trim_batches: vec![100, 1000],
            reopen_entries: 1_000_000,
            replica_batches: vec![1, 10, 100, 1000],
            replica_buffered: true,
            replica_time: Duration::from_millis(1500),
        }
    }

    /// The quick matrix for CI: every backend and op, 128-byte entries, fewer and
    /// shorter repetitions, a 100,000-entry reopen (under 3 minutes here).
    pub fn quick() -> Self {
        Matrix {
            reps: 2,
            ceiling_reps: 1,
            ceiling_time: Duration::from_millis(400),
            append_time: Duration::from_millis(120),
            append_batches: vec![1, 10, 100, 1000],
            entry_sizes: vec![128],
            read_fill: 20_000,
            read_batches: vec![100],
            read_time: Duration::from_millis(100),
            trim_fill: 20_000,
            trim_batches: vec![1000],
            reopen_entries: 100_000,
            replica_batches: vec![1, 10, 100, 1000],
            replica_buffered: false,
            replica_time: Duration::from_millis(400),
        }
    }
}

/// What a group of cells measures; every backend of the group runs it.
#[derive(Clone, Copy, Debug)]
enum Work {
    Append { batch: usize, bytes: usize },
    Read { range: ReadRange, batch: usize },
    Trim { per_trim: usize },
    Reopen,
    Replica { batch_size: usize },
}

/// One workload over several backends. Its repetitions are interleaved (repetition 1 of
/// every backend, then repetition 2, ...), so a noisy minute on the shared disk hits
/// every backend of the comparison alike; a durable group also takes a ceiling sample in
/// every round, so the ceiling is measured under the same conditions as the cells.
#[derive(Clone, Debug)]
struct Group {
    work: Work,
    /// The backends and the durability each runs with.
    cells: Vec<(BackendKind, Option<Durability>)>,
    /// Whether a ceiling sample joins each round.
    with_ceiling: bool,
}

/// The durability of the read cells' store: what a replica serving reads runs with.
fn read_durability(kind: BackendKind) -> Option<Durability> {
    kind.is_persistent().then_some(Durability::Immediate)
}

impl Group {
    fn label(&self, m: &Matrix, kind: BackendKind, durability: Option<Durability>) -> String {
        let d = durability_label(durability);
        match self.work {
            Work::Append { batch, bytes } => {
                format!("{kind} {d} append batch={batch} entry={bytes}B")
            }
            Work::Read { range, batch } => {
                format!("{kind} {d} {} batch={batch} (log of {})", range.op_name(), m.read_fill)
            }
            Work::Trim { per_trim } => {
                format!("{kind} {d} trim batch={per_trim} (log of {})", m.trim_fill)
            }
            Work::Reopen => format!("{kind} reopen of {} entries", m.reopen_entries),
            Work::Replica { batch_size } => {
                format!("{kind} {d} replica x{REPLICAS} batch_size={batch_size}")
            }
        }
    }
}

/// The cells of one durability class: `Immediate` groups hold every persistent backend
/// with `Immediate` and the memory backend (durability none); `Buffered` groups hold the
/// persistent backends with `Buffered`.
fn class(
    backends: &[BackendKind],
    durability: Durability,
) -> Vec<(BackendKind, Option<Durability>)> {
    backends
        .iter()
        .filter_map(|&k| match (k.is_persistent(), durability) {
            (true, d) => Some((k, Some(d))),
            (false, Durability::Immediate) => Some((k, None)),
            (false, Durability::Buffered) => None,
        })
        .collect()
}

fn plan(m: &Matrix, backends: &[BackendKind]) -> Vec<Group> {
    let mut groups = Vec::new();
    let classes = [Durability::Immediate, Durability::Buffered];
    for d in classes {
        for &bytes in &m.entry_sizes {
            for &batch in &m.append_batches {
                groups.push(Group {
                    work: Work::Append { batch, bytes },
                    cells: class(backends, d),
                    with_ceiling: d == Durability::Immediate,
                });
            }
        }
    }
    let reads: Vec<_> = backends.iter().map(|&k| (k, read_durability(k))).collect();
    for range in [ReadRange::Recent, ReadRange::Old] {
        for &batch in &m.read_batches {
            groups.push(Group {
                work: Work::Read { range, batch },
                cells: reads.clone(),
                with_ceiling: false,
            });
        }
    }
    for d in classes {
        for &per_trim in &m.trim_batches {
            groups.push(Group {
                work: Work::Trim { per_trim },
                cells: class(backends, d),
                with_ceiling: false,
            });
        }
    }
    groups.push(Group {
        work: Work::Reopen,
        cells: backends
            .iter()
            .filter(|k| k.is_persistent())
            .map(|&k| (k, Some(Durability::Immediate)))
            .collect(),
        with_ceiling: false,
    });
    if replica::AVAILABLE {
        let replica_classes: &[Durability] =
            if m.replica_buffered { &classes } else { &classes[..1] };
        for &d in replica_classes {
            for &batch_size in &m.replica_batches {
                groups.push(Group {
                    work: Work::Replica { batch_size },
                    cells: class(backends, d),
                    with_ceiling: d == Durability::Immediate,
                });
            }
        }
    }
    groups.retain(|g| !g.cells.is_empty());
    groups
}

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
}

/// What one repetition of one cell produced.
enum Rep {
    Storage(Samples),
    Reopen(Duration),
    Replica(replica::ClusterRun),
}

/// State carried between groups.
struct Runner<'a> {
    opts: &'a RunOptions,
    work: PathBuf,
    /// The read cells' filled stores, one per backend, kept across the read groups.
    read_stores: Vec<BenchStore>,
    /// The reopen group's filled stores.
    reopen_stores: Vec<BenchStore>,
    rng: Rng,
    ceiling: Option<CeilingFile>,
    ceiling_runs: Vec<Samples>,
    storage: Vec<StorageRow>,
    reopen: Vec<ReopenRow>,
    replica: Vec<ReplicaRow>,
}

impl Runner<'_> {
    fn m(&self) -> &Matrix {
        &self.opts.matrix
    }

    fn ceiling_sample(&mut self, time: Duration) -> Result<f64, BenchError> {
        if self.ceiling.is_none() {
            self.ceiling = Some(CeilingFile::create_in(&self.work)?);
        }
        let Some(file) = self.ceiling.as_mut() else { return Ok(0.0) };
        let run = file.run(time)?;
        let rate = run.calls_per_s();
        self.ceiling_runs.push(run);
        Ok(rate)
    }

    /// Prepares what a group's repetitions share (filled stores).
    fn prepare(
        &mut self,
        work: Work,
        kind: BackendKind,
        durability: Option<Durability>,
    ) -> Result<(), BenchError> {
        match work {
            Work::Read { .. } if !self.read_stores.iter().any(|s| s.kind() == kind) => {
                let mut store = BenchStore::create_in(kind, durability, &self.work)?;
                store.fill(self.m().read_fill, report::HEADLINE_ENTRY_BYTES)?;
                self.read_stores.push(store);
            }
            Work::Reopen => {
                let mut store = BenchStore::create_in(kind, durability, &self.work)?;
                store.fill(self.m().reopen_entries, report::HEADLINE_ENTRY_BYTES)?;
                self.reopen_stores.push(store);
            }
            _ => {}
        }
        Ok(())
    }

    /// One repetition of one cell.
    fn rep(
        &mut self,
        work: Work,
        kind: BackendKind,
        durability: Option<Durability>,
    ) -> Result<Rep, BenchError> {
        let bytes = report::HEADLINE_ENTRY_BYTES;
        Ok(match work {
            Work::Append { batch, bytes } => {
                let mut store = BenchStore::create_in(kind, durability, &self.work)?;
                Rep::Storage(store.append_run(
                    batch,
                    bytes,
                    3,
                    Budget::time(self.m().append_time),
                )?)
            }
            Work::Read { range, batch } => {
                let budget = Budget::time(self.m().read_time);
                let Some(store) = self.read_stores.iter().find(|s| s.kind() == kind) else {
                    return Err(BenchError::WrongAnswer {
                        backend: kind.name().to_owned(),
                        detail: "its read store was not filled".to_owned(),
                    });
                };
                Rep::Storage(store.read_run(range, batch, &mut self.rng, budget)?)
            }
            Work::Trim { per_trim } => {
                let budget = Budget { min_calls: 1, ..Budget::time(self.m().append_time) };
                let mut store = BenchStore::create_in(kind, durability, &self.work)?;
                store.fill(self.m().trim_fill, bytes)?;
                Rep::Storage(store.trim_run(per_trim, budget)?)
            }
            Work::Reopen => {
                let Some(store) = self.reopen_stores.iter_mut().find(|s| s.kind() == kind) else {
                    return Err(BenchError::WrongAnswer {
                        backend: kind.name().to_owned(),
                        detail: "its reopen store was not filled".to_owned(),
                    });
                };
                Rep::Reopen(store.reopen()?)
            }
            Work::Replica { batch_size } => Rep::Replica(replica::run_cluster(
                kind,
                durability,
                &self.work,
                batch_size,
                self.m().replica_time,
            )?),
        })
    }

    /// Records a finished cell; returns its progress summary.
    fn record(
        &mut self,
        work: Work,
        kind: BackendKind,
        durability: Option<Durability>,
        reps: Vec<Rep>,
    ) -> String {
        let mut samples = Vec::new();
        let mut ms = Vec::new();
        let mut runs = Vec::new();
        for r in reps {
            match r {
                Rep::Storage(s) => samples.push(s),
                Rep::Reopen(d) => ms.push(d.as_secs_f64() * 1e3),
                Rep::Replica(c) => runs.push(c),
            }
        }
        let bytes = report::HEADLINE_ENTRY_BYTES;
        match work {
            Work::Append { batch, bytes } => {
                self.push_storage(kind, durability, "append", batch, bytes, &samples)
            }
            Work::Read { range, batch } => {
                self.push_storage(kind, durability, range.op_name(), batch, bytes, &samples)
            }
            Work::Trim { per_trim } => {
                self.push_storage(kind, durability, "trim", per_trim, bytes, &samples)
            }
            Work::Reopen => self.push_reopen(kind, ms),
            Work::Replica { batch_size } => self.push_replica(kind, durability, batch_size, &runs),
        }
    }

    fn push_reopen(&mut self, kind: BackendKind, mut ms: Vec<f64>) -> String {
        let min = ms.iter().copied().fold(f64::INFINITY, f64::min);
        let max = ms.iter().copied().fold(0.0, f64::max);
        let median = stats::median(&mut ms);
        self.reopen.push(ReopenRow {
            backend: kind.name().to_owned(),
            entries: self.m().reopen_entries,
            entry_bytes: report::HEADLINE_ENTRY_BYTES,
            ms: median,
            ms_min: min,
            ms_max: max,
            reps: ms.len(),
        });
        format!(
            "{} ms (spread {}–{})",
            report::fmt_num(median),
            report::fmt_num(min),
            report::fmt_num(max)
        )
    }

    fn push_storage(
        &mut self,
        kind: BackendKind,
        durability: Option<Durability>,
        op: &str,
        batch: usize,
        entry_bytes: usize,
        runs: &[Samples],
    ) -> String {
        let s: Summary = stats::summarize(runs);
        let durable = durability == Some(Durability::Immediate) && (op == "append" || op == "trim");
        self.storage.push(StorageRow {
            backend: kind.name().to_owned(),
            durability: durability_label(durability).to_owned(),
            op: op.to_owned(),
            batch,
            entry_bytes,
            entries_per_s: s.items_per_s,
            batches_per_s: s.calls_per_s,
            p50_us: s.p50_us,
            p99_us: s.p99_us,
            entries_per_s_min: s.items_per_s_min,
            entries_per_s_max: s.items_per_s_max,
            reps: s.reps,
            // Filled in at the end, against the ceiling of the whole run.
            fraction_of_ceiling: durable.then_some(0.0),
        });
        format!(
            "{} entries/s ({}–{}), {} calls/s, p50 {:.0} µs, p99 {:.0} µs",
            report::fmt_num(s.items_per_s),
            report::fmt_num(s.items_per_s_min),
            report::fmt_num(s.items_per_s_max),
            report::fmt_num(s.calls_per_s),
            s.p50_us,
            s.p99_us
        )
    }

    fn push_replica(
        &mut self,
        kind: BackendKind,
        durability: Option<Durability>,
        batch_size: usize,
        runs: &[replica::ClusterRun],
    ) -> String {
        let mut rates: Vec<f64> = runs.iter().map(replica::ClusterRun::decided_per_s).collect();
        let min = rates.iter().copied().fold(f64::INFINITY, f64::min);
        let max = rates.iter().copied().fold(0.0, f64::max);
        let median = stats::median(&mut rates);
        let mut lat: Vec<Duration> =
            runs.iter().flat_map(|r| r.latencies.iter().copied()).collect();
        lat.sort_unstable();
        let (p50, p99) = (stats::percentile_us(&lat, 0.5), stats::percentile_us(&lat, 0.99));
        self.replica.push(ReplicaRow {
            backend: kind.name().to_owned(),
            durability: durability_label(durability).to_owned(),
            batch_size,
            replicas: REPLICAS,
            decided_per_s: median,
            decided_per_s_min: min,
            decided_per_s_max: max,
            p50_us: p50,
            p99_us: p99,
            reps: runs.len(),
            fraction_of_ceiling: (durability == Some(Durability::Immediate)).then_some(0.0),
        });
        format!(
            "{} decided/s ({}–{}), p50 {:.0} µs, p99 {:.0} µs",
            report::fmt_num(median),
            report::fmt_num(min),
            report::fmt_num(max),
            p50,
            p99
        )
    }
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
    let groups = plan(&opts.matrix, &opts.backends);
    let total: usize = groups.iter().map(|g| g.cells.len()).sum();
    eprintln!(
        "paxstore report: {total} cells in {} groups over {} on {} ({})",
        groups.len(),
        opts.backends.iter().map(|k| k.name()).collect::<Vec<_>>().join(", "),
        machine.filesystem,
        work.display()
    );
    let mut runner = Runner {
        opts,
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
            group.cells.iter().map(|&(k, d)| group.label(&opts.matrix, k, d)).collect();
        eprintln!(
            "[{}-{}/{total}] {} ... ({} repetitions, interleaved{})",
            done + 1,
            done + group.cells.len(),
            labels.join(" | "),
            opts.matrix.reps,
            if group.with_ceiling { ", with a ceiling sample each round" } else { "" }
        );
        let mut reps: Vec<Result<Vec<Rep>, BenchError>> = Vec::new();
        for &(kind, durability) in &group.cells {
            reps.push(runner.prepare(group.work, kind, durability).map(|()| Vec::new()));
        }
        for _ in 0..opts.matrix.reps {
            for (i, &(kind, durability)) in group.cells.iter().enumerate() {
                if let Ok(done_reps) = &mut reps[i] {
                    match runner.rep(group.work, kind, durability) {
                        Ok(r) => done_reps.push(r),
                        Err(e) => reps[i] = Err(e),
                    }
                }
            }
            if group.with_ceiling {
                runner.ceiling_sample(opts.matrix.append_time)?;
            }
        }
        for (i, (&(kind, durability), result)) in group.cells.iter().zip(reps).enumerate() {
            done += 1;
            let line = match result {
                Ok(r) => runner.record(group.work, kind, durability, r),
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
            r.fraction_of_ceiling = Some(per_sync(r.decided_per_s / r.batch_size as f64));
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
        recommendations: Vec::new(),
        failures,
    };
    report.recommendations = report::recommendations(&report);
    Ok(report)
}

/// Writes `report.json`, `report.md`, `index.html` and `charts/*.svg` into `out`;
/// returns the files written.
pub fn write(report: &Report, out: &Path) -> Result<Vec<PathBuf>, BenchError> {
    let charts_dir = out.join("charts");
    fs::create_dir_all(&charts_dir)
        .map_err(BenchError::io("creating the charts directory", &charts_dir))?;
    let mut written = Vec::new();
    let mut put = |path: PathBuf, bytes: &[u8]| -> Result<(), BenchError> {
        fs::write(&path, bytes).map_err(BenchError::io("writing a report file", &path))?;
        written.push(path);
        Ok(())
    };
    let charts = charts::all_charts(report)?;
    for (name, svg) in &charts {
        put(charts_dir.join(name), svg.as_bytes())?;
    }
    let json_path = out.join("report.json");
    let json = serde_json::to_string_pretty(report)
        .map_err(|source| BenchError::Json { path: json_path.clone(), source })?;
    put(json_path, json.as_bytes())?;
    let md = report::to_markdown(report);
    put(out.join("report.md"), md.as_bytes())?;
    let page = html::to_html("paxstore backend comparison", &md, &|name| {
        charts.iter().find(|(n, _)| n == name).map(|(_, svg)| svg.clone())
    });
    put(out.join("index.html"), page.as_bytes())?;
    Ok(written)
}
