//! The report's fixed matrix of cells, run one after another with progress on stderr.
//!
//! A failing cell is recorded in the report's `failures` and the run goes on, so one
//! backend's error does not cost the other backends' figures; the `report` binary exits
//! non-zero if any cell failed.

use std::fs;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use paxstore::Durability;
use paxstore_backends::BackendKind;

use crate::ceiling::{CeilingFile, FILE_BYTES, WRITE_BYTES};
use crate::machine::Machine;
use crate::replica::{self, REPLICAS};
use crate::report::{self, Ceiling, Failure, ReopenRow, ReplicaRow, Report, StorageRow};
use crate::stats::{self, Samples, Summary};
use crate::workload::{durabilities, durability_label, BenchStore, Budget, ReadRange, Rng};
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

/// One cell of the matrix.
#[derive(Clone, Debug)]
enum Cell {
    Ceiling,
    Append { kind: BackendKind, durability: Option<Durability>, batch: usize, bytes: usize },
    Read { kind: BackendKind, range: ReadRange, batch: usize },
    Trim { kind: BackendKind, durability: Option<Durability>, per_trim: usize },
    Reopen { kind: BackendKind },
    Replica { kind: BackendKind, durability: Option<Durability>, batch_size: usize },
}

/// The durability of the read cells' store: what a replica serving reads runs with.
fn read_durability(kind: BackendKind) -> Option<Durability> {
    kind.is_persistent().then_some(Durability::Immediate)
}

impl Cell {
    fn label(&self, m: &Matrix) -> String {
        match self {
            Cell::Ceiling => "disk ceiling: 4 KiB pwrite + fdatasync".to_owned(),
            Cell::Append { kind, durability, batch, bytes } => format!(
                "{kind} {} append batch={batch} entry={bytes}B",
                durability_label(*durability)
            ),
            Cell::Read { kind, range, batch } => format!(
                "{kind} {} {} batch={batch} (log of {})",
                durability_label(read_durability(*kind)),
                range.op_name(),
                m.read_fill
            ),
            Cell::Trim { kind, durability, per_trim } => format!(
                "{kind} {} trim batch={per_trim} (log of {})",
                durability_label(*durability),
                m.trim_fill
            ),
            Cell::Reopen { kind } => format!("{kind} reopen of {} entries", m.reopen_entries),
            Cell::Replica { kind, durability, batch_size } => format!(
                "{kind} {} replica x{REPLICAS} batch_size={batch_size}",
                durability_label(*durability)
            ),
        }
    }
}

fn plan(m: &Matrix, backends: &[BackendKind]) -> Vec<Cell> {
    // The ceiling is sampled at the start, after each backend's appends, before the
    // replica cells and at the end, so its median spans the whole run's conditions.
    let mut cells = vec![Cell::Ceiling];
    for &kind in backends {
        for durability in durabilities(kind) {
            for &bytes in &m.entry_sizes {
                for &batch in &m.append_batches {
                    cells.push(Cell::Append { kind, durability, batch, bytes });
                }
            }
        }
        cells.push(Cell::Ceiling);
    }
    for &kind in backends {
        for range in [ReadRange::Recent, ReadRange::Old] {
            for &batch in &m.read_batches {
                cells.push(Cell::Read { kind, range, batch });
            }
        }
    }
    for &kind in backends {
        for durability in durabilities(kind) {
            for &per_trim in &m.trim_batches {
                cells.push(Cell::Trim { kind, durability, per_trim });
            }
        }
    }
    for &kind in backends.iter().filter(|k| k.is_persistent()) {
        cells.push(Cell::Reopen { kind });
    }
    if replica::AVAILABLE {
        cells.push(Cell::Ceiling);
        for &kind in backends {
            let mut ds = durabilities(kind);
            if !m.replica_buffered {
                ds.truncate(1);
            }
            for durability in ds {
                for &batch_size in &m.replica_batches {
                    cells.push(Cell::Replica { kind, durability, batch_size });
                }
            }
        }
    }
    cells.push(Cell::Ceiling);
    cells
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

/// State carried between cells: the read cells share one filled store per backend.
struct Runner<'a> {
    opts: &'a RunOptions,
    work: PathBuf,
    read_store: Option<BenchStore>,
    rng: Rng,
    ceiling_runs: Vec<Samples>,
    storage: Vec<StorageRow>,
    reopen: Vec<ReopenRow>,
    replica: Vec<ReplicaRow>,
}

/// The result of one cell, for the progress line.
type CellResult = Result<String, BenchError>;

impl Runner<'_> {
    fn m(&self) -> &Matrix {
        &self.opts.matrix
    }

    fn run_cell(&mut self, cell: &Cell) -> CellResult {
        match *cell {
            Cell::Ceiling => self.ceiling(),
            Cell::Append { kind, durability, batch, bytes } => {
                let budget = Budget::time(self.m().append_time);
                let mut runs = Vec::new();
                for _ in 0..self.m().reps {
                    let mut store = BenchStore::create_in(kind, durability, &self.work)?;
                    runs.push(store.append_run(batch, bytes, 3, budget)?);
                }
                Ok(self.push_storage(kind, durability, "append", batch, bytes, &runs))
            }
            Cell::Read { kind, range, batch } => {
                let fill = self.m().read_fill;
                if self.read_store.as_ref().map(BenchStore::kind) != Some(kind) {
                    self.read_store = None;
                    let mut store = BenchStore::create_in(kind, read_durability(kind), &self.work)?;
                    store.fill(fill, report::HEADLINE_ENTRY_BYTES)?;
                    self.read_store = Some(store);
                }
                let budget = Budget::time(self.m().read_time);
                let mut runs = Vec::new();
                if let Some(store) = &self.read_store {
                    for _ in 0..self.m().reps {
                        runs.push(store.read_run(range, batch, &mut self.rng, budget)?);
                    }
                }
                let bytes = report::HEADLINE_ENTRY_BYTES;
                Ok(self.push_storage(
                    kind,
                    read_durability(kind),
                    range.op_name(),
                    batch,
                    bytes,
                    &runs,
                ))
            }
            Cell::Trim { kind, durability, per_trim } => {
                self.read_store = None;
                let budget = Budget { min_calls: 1, ..Budget::time(self.m().append_time) };
                let mut runs = Vec::new();
                for _ in 0..self.m().reps {
                    let mut store = BenchStore::create_in(kind, durability, &self.work)?;
                    store.fill(self.m().trim_fill, report::HEADLINE_ENTRY_BYTES)?;
                    runs.push(store.trim_run(per_trim, budget)?);
                }
                let bytes = report::HEADLINE_ENTRY_BYTES;
                Ok(self.push_storage(kind, durability, "trim", per_trim, bytes, &runs))
            }
            Cell::Reopen { kind } => self.reopen(kind),
            Cell::Replica { kind, durability, batch_size } => {
                self.read_store = None;
                let mut runs = Vec::new();
                for _ in 0..self.m().reps {
                    runs.push(replica::run_cluster(
                        kind,
                        durability,
                        &self.work,
                        batch_size,
                        self.m().replica_time,
                    )?);
                }
                Ok(self.push_replica(kind, durability, batch_size, &runs))
            }
        }
    }

    fn ceiling(&mut self) -> CellResult {
        let mut file = CeilingFile::create_in(&self.work)?;
        let mut rates = Vec::new();
        for _ in 0..self.m().ceiling_reps {
            let run = file.run(self.m().ceiling_time)?;
            rates.push(run.calls_per_s());
            self.ceiling_runs.push(run);
        }
        let s = stats::summarize(&self.ceiling_runs);
        Ok(format!(
            "{} syncs/s this time (all so far: median {}, p50 {:.0} µs)",
            rates.iter().map(|r| report::fmt_num(*r)).collect::<Vec<_>>().join(", "),
            report::fmt_num(s.calls_per_s),
            s.p50_us
        ))
    }

    fn reopen(&mut self, kind: BackendKind) -> CellResult {
        self.read_store = None;
        let entries = self.m().reopen_entries;
        let mut store = BenchStore::create_in(kind, Some(Durability::Immediate), &self.work)?;
        let filled = Instant::now();
        store.fill(entries, report::HEADLINE_ENTRY_BYTES)?;
        let fill_s = filled.elapsed().as_secs_f64();
        let mut ms: Vec<f64> = Vec::new();
        for _ in 0..self.m().reps {
            ms.push(store.reopen()?.as_secs_f64() * 1e3);
        }
        let min = ms.iter().copied().fold(f64::INFINITY, f64::min);
        let max = ms.iter().copied().fold(0.0, f64::max);
        let median = stats::median(&mut ms);
        self.reopen.push(ReopenRow {
            backend: kind.name().to_owned(),
            entries,
            entry_bytes: report::HEADLINE_ENTRY_BYTES,
            ms: median,
            ms_min: min,
            ms_max: max,
            reps: ms.len(),
        });
        Ok(format!(
            "{} ms (spread {:.0}–{:.0}; filled in {fill_s:.1} s)",
            report::fmt_num(median),
            min,
            max
        ))
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

/// Runs the matrix and returns the report (not yet written).
pub fn run(opts: &RunOptions) -> Result<Report, BenchError> {
    let started = Instant::now();
    let work = opts.out.join("work");
    fs::create_dir_all(&work).map_err(BenchError::io("creating the work directory", &work))?;
    let machine = Machine::describe(&work);
    let cells = plan(&opts.matrix, &opts.backends);
    eprintln!(
        "paxstore report: {} cells over {} on {} ({})",
        cells.len(),
        opts.backends.iter().map(|k| k.name()).collect::<Vec<_>>().join(", "),
        machine.filesystem,
        work.display()
    );
    let mut runner = Runner {
        opts,
        work: work.clone(),
        read_store: None,
        rng: Rng::new(0x5eed),
        ceiling_runs: Vec::new(),
        storage: Vec::new(),
        reopen: Vec::new(),
        replica: Vec::new(),
    };
    let mut failures = Vec::new();
    for (i, cell) in cells.iter().enumerate() {
        let label = cell.label(&opts.matrix);
        eprint!("[{}/{}] {label} ... ", i + 1, cells.len());
        let _ = std::io::stderr().flush();
        let t = Instant::now();
        match runner.run_cell(cell) {
            Ok(summary) => eprintln!(
                "{summary} [{:.1} s, total {}]",
                t.elapsed().as_secs_f64(),
                fmt_elapsed(started.elapsed())
            ),
            Err(e) => {
                eprintln!("FAILED: {e}");
                failures.push(Failure { cell: label, error: e.to_string() });
            }
        }
    }
    drop(runner.read_store.take());
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
