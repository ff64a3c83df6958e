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
use crate::floor::{self, FloorCluster};
use crate::machine::Machine;
use crate::omni::OmniCluster;
use crate::replica::{self, Mode, PaxstoreCluster, REPLICAS};
use crate::report::{self, Ceiling, Failure, ReopenRow, ReplicaRow, Report, StorageRow};
use crate::stats::{self, Samples, Summary};
use crate::workload::{durability_label, BenchStore, Budget, ReadRange, Rng};
use crate::{charts, html, omni, BenchError};

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
    /// How appends arrive in the replica cells.
    pub replica_modes: Vec<Mode>,
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
            replica_modes: Mode::ALL.to_vec(),
            replica_buffered: true,
            replica_time: Duration::from_millis(1500),
        }
    }

    /// The quick matrix for CI: every backend and op, 128-byte entries, fewer and
    /// shorter repetitions, a 100,000-entry reopen (about 3–4 minutes here).
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
            replica_modes: Mode::ALL.to_vec(),
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
    Replica { batch_size: usize, mode: Mode },
}

/// Which replica implementation a replica cell drives.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Impl {
    /// paxstore's replica, over the cell's backend.
    Paxstore,
    /// OmniPaxos 0.2.4 over the cell's backend, through `paxstore_omnipaxos::OmniStorage`.
    OmniPaxos,
    /// OmniPaxos 0.2.4 over its own `MemoryStorage` (the cell's backend is memory).
    OmniMemoryStorage,
    /// The floor over bare `Vec`s (the cell's backend is memory): see [`crate::floor`].
    Floor,
    /// The floor through the cell's backend.
    FloorStore,
}

/// One cell of a group: a backend with its durability, and (for replica cells) which
/// replica runs over it.
#[derive(Clone, Copy, Debug)]
struct Cell {
    kind: BackendKind,
    durability: Option<Durability>,
    imp: Impl,
}

impl Cell {
    fn storage(kind: BackendKind, durability: Option<Durability>) -> Self {
        Cell { kind, durability, imp: Impl::Paxstore }
    }
}

/// What a replica cell is compared with, repetition by repetition (the two run in the
/// same round).
#[derive(Clone, Copy, Debug)]
enum Pair {
    /// A paxstore cell against OmniPaxos over the same backend and durability: this
    /// cell's decided/s over the other's.
    VsOmniPaxos(Cell),
    /// An OmniPaxos cell over a persistent backend other than the WAL against OmniPaxos
    /// over the WAL with the same durability: the other's decided/s over this cell's.
    WalOverThis(Cell),
}

/// The cell `cell` is compared with, if any.
fn pair_of(cell: Cell) -> Option<Pair> {
    let wal: Option<BackendKind> = "wal".parse().ok();
    match cell.imp {
        Impl::Paxstore => Some(Pair::VsOmniPaxos(Cell { imp: Impl::OmniPaxos, ..cell })),
        Impl::OmniPaxos if cell.kind.is_persistent() && Some(cell.kind) != wal => {
            wal.map(|kind| Pair::WalOverThis(Cell { kind, ..cell }))
        }
        Impl::OmniPaxos | Impl::OmniMemoryStorage | Impl::Floor | Impl::FloorStore => None,
    }
}

/// The OmniPaxos cell of the target comparison for a cell of paxstore's replica
/// or of the floor over `kind`: over memory, OmniPaxos over its own `MemoryStorage`; over
/// the WAL, OmniPaxos over paxstore's RocksDB with the same durability (each in the same
/// group).
fn target_of(cell: Cell) -> Option<Cell> {
    if !matches!(cell.imp, Impl::Paxstore | Impl::Floor | Impl::FloorStore) {
        return None;
    }
    match cell.kind.name() {
        "memory" => Some(Cell { imp: Impl::OmniMemoryStorage, ..cell }),
        "wal" => "rocksdb".parse().ok().map(|kind| Cell { kind, imp: Impl::OmniPaxos, ..cell }),
        _ => None,
    }
}

/// One workload over several backends. Its repetitions are interleaved (repetition 1 of
/// every backend, then repetition 2, ..., in alternating order), so a noisy minute on the
/// shared disk hits every backend of the comparison alike; a durable group also takes a ceiling sample in
/// every round, so the ceiling is measured under the same conditions as the cells.
#[derive(Clone, Debug)]
struct Group {
    work: Work,
    /// The backends, the durability each runs with, and the replica.
    cells: Vec<Cell>,
    /// Whether a ceiling sample joins each round.
    with_ceiling: bool,
}

/// The durability of the read cells' store: what a replica serving reads runs with.
fn read_durability(kind: BackendKind) -> Option<Durability> {
    kind.is_persistent().then_some(Durability::Immediate)
}

impl Group {
    fn label(&self, m: &Matrix, cell: Cell) -> String {
        let (kind, d) = (cell.kind, durability_label(cell.durability));
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
            Work::Replica { batch_size, mode } => {
                let (replica, over) = match cell.imp {
                    Impl::Paxstore => ("paxstore", format!("{kind} {d}")),
                    Impl::OmniPaxos => ("omnipaxos", format!("{kind} {d}")),
                    Impl::OmniMemoryStorage => ("omnipaxos", OMNI_MEMORY.to_owned()),
                    Impl::Floor => ("floor", FLOOR_BARE.to_owned()),
                    Impl::FloorStore => ("floor", format!("{kind} {d}")),
                };
                format!("{replica} x{REPLICAS} over {over} {} batch_size={batch_size}", mode.name())
            }
        }
    }
}

/// The cells of one durability class: `Immediate` groups hold every persistent backend
/// with `Immediate` and the memory backend (durability none); `Buffered` groups hold the
/// persistent backends with `Buffered`.
fn class(backends: &[BackendKind], durability: Durability) -> Vec<Cell> {
    backends
        .iter()
        .filter_map(|&k| match (k.is_persistent(), durability) {
            (true, d) => Some(Cell::storage(k, Some(d))),
            (false, Durability::Immediate) => Some(Cell::storage(k, None)),
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
    let reads: Vec<_> = backends.iter().map(|&k| Cell::storage(k, read_durability(k))).collect();
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
            .map(|&k| Cell::storage(k, Some(Durability::Immediate)))
            .collect(),
        with_ceiling: false,
    });
    groups.extend(replica_plan(m, backends));
    groups.retain(|g| !g.cells.is_empty());
    groups
}

/// The replica groups: every mode and batch size; in each, paxstore's replica and OmniPaxos
/// over each backend side by side, and (with the memory backend) OmniPaxos over its own
/// `MemoryStorage`; the floor bare and through the memory backend, and through the WAL.
fn replica_plan(m: &Matrix, backends: &[BackendKind]) -> Vec<Group> {
    let mut groups = Vec::new();
    if !replica::AVAILABLE {
        return groups;
    }
    let classes = [Durability::Immediate, Durability::Buffered];
    let replica_classes: &[Durability] = if m.replica_buffered { &classes } else { &classes[..1] };
    for &d in replica_classes {
        for &mode in &m.replica_modes {
            for &batch_size in &m.replica_batches {
                let mut cells = Vec::new();
                for c in class(backends, d) {
                    cells.push(c);
                    cells.push(Cell { imp: Impl::OmniPaxos, ..c });
                    if c.kind == BackendKind::Memory {
                        cells.push(Cell { imp: Impl::OmniMemoryStorage, ..c });
                        cells.push(Cell { imp: Impl::Floor, ..c });
                    }
                    if matches!(c.kind.name(), "memory" | "wal") {
                        cells.push(Cell { imp: Impl::FloorStore, ..c });
                    }
                }
                groups.push(Group {
                    work: Work::Replica { batch_size, mode },
                    cells,
                    with_ceiling: d == Durability::Immediate,
                });
            }
        }
    }
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
    /// Only the replica cells (and the ceiling).
    pub replica_only: bool,
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
    fn rep(&mut self, work: Work, cell: Cell) -> Result<Rep, BenchError> {
        let (kind, durability) = (cell.kind, cell.durability);
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
            Work::Replica { batch_size, mode } => {
                let time = self.m().replica_time;
                Rep::Replica(match cell.imp {
                    Impl::Paxstore => {
                        let mut c = PaxstoreCluster::new(kind, durability, &self.work, batch_size)?;
                        replica::timed_run(&mut c.rounds, mode, batch_size, time)?
                    }
                    Impl::OmniPaxos => {
                        let mut c = OmniCluster::new(kind, durability, &self.work, batch_size)?;
                        replica::timed_run(&mut c.rounds, mode, batch_size, time)?
                    }
                    Impl::OmniMemoryStorage => {
                        let mut rounds = omni::memory_cluster(batch_size)?;
                        replica::timed_run(&mut rounds, mode, batch_size, time)?
                    }
                    Impl::Floor => {
                        let mut rounds = floor::bare_cluster(batch_size)?;
                        replica::timed_run(&mut rounds, mode, batch_size, time)?
                    }
                    Impl::FloorStore => {
                        let mut c = FloorCluster::new(kind, durability, &self.work, batch_size)?;
                        replica::timed_run(&mut c.rounds, mode, batch_size, time)?
                    }
                })
            }
        })
    }

    /// Records a finished cell (for a replica cell with a [`Pair`], with the ratios of its
    /// repetitions to those of its pair); returns its progress summary.
    fn record(
        &mut self,
        work: Work,
        cell: Cell,
        reps: Vec<Rep>,
        paired: Option<Paired>,
        target: Option<Paired>,
    ) -> String {
        let (kind, durability) = (cell.kind, cell.durability);
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
            Work::Replica { batch_size, mode } => {
                self.push_replica(cell, batch_size, mode, &runs, paired, target)
            }
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
        cell: Cell,
        batch_size: usize,
        mode: Mode,
        runs: &[replica::ClusterRun],
        paired: Option<Paired>,
        target: Option<Paired>,
    ) -> String {
        let (kind, durability) = (cell.kind, cell.durability);
        let mut rates: Vec<f64> = runs.iter().map(replica::ClusterRun::decided_per_s).collect();
        let min = rates.iter().copied().fold(f64::INFINITY, f64::min);
        let max = rates.iter().copied().fold(0.0, f64::max);
        let median = stats::median(&mut rates);
        let mut lat: Vec<Duration> =
            runs.iter().flat_map(|r| r.latencies.iter().copied()).collect();
        lat.sort_unstable();
        let (p50, p99) = (stats::percentile_us(&lat, 0.5), stats::percentile_us(&lat, 0.99));
        let mut total = replica::ClusterRun { syncs: Some(0), ..Default::default() };
        for r in runs {
            total.absorb(r.clone());
        }
        let (writes, syncs) = (total.writes_per_entry(), total.syncs_per_entry());
        let (replica, backend) = match cell.imp {
            Impl::Paxstore => ("paxstore", kind.name()),
            Impl::OmniPaxos => ("omnipaxos", kind.name()),
            Impl::OmniMemoryStorage => ("omnipaxos", OMNI_MEMORY),
            Impl::Floor => ("floor", FLOOR_BARE),
            Impl::FloorStore => ("floor", kind.name()),
        };
        let target_pair = target_of(cell).map(|t| match t.imp {
            Impl::OmniMemoryStorage => format!("omnipaxos over {OMNI_MEMORY}"),
            _ => format!("omnipaxos over {}", t.kind.name()),
        });
        let (vs_omnipaxos, wal_over_this) = match pair_of(cell) {
            Some(Pair::VsOmniPaxos(_)) => (paired, None),
            Some(Pair::WalOverThis(_)) => (None, paired),
            None => (None, None),
        };
        self.replica.push(ReplicaRow {
            replica: replica.to_owned(),
            backend: backend.to_owned(),
            durability: durability_label(durability).to_owned(),
            mode: mode.name().to_owned(),
            batch_size,
            replicas: REPLICAS,
            decided_per_s: median,
            decided_per_s_min: min,
            decided_per_s_max: max,
            p50_us: p50,
            p99_us: p99,
            reps: runs.len(),
            writes_per_entry: writes,
            syncs_per_entry: syncs,
            vs_omnipaxos: vs_omnipaxos.map(|p| p.wall.median),
            omnipaxos_pair: matches!(cell.imp, Impl::Paxstore)
                .then(|| format!("omnipaxos over {}", kind.name())),
            wal_over_this: wal_over_this.map(|p| p.wall.median),
            vs_target: target.map(Paired::ratios),
            target_pair,
            fraction_of_ceiling: (durability == Some(Durability::Immediate)).then_some(0.0),
        });
        format!(
            "{} decided/s ({}–{}), p50 {:.0} µs, p99 {:.0} µs, {} writes{} per entry per replica{}{}",
            report::fmt_num(median),
            report::fmt_num(min),
            report::fmt_num(max),
            p50,
            p99,
            report::fmt_per_entry(writes),
            syncs.map_or(String::new(), |s| format!(" and {} syncs", report::fmt_per_entry(s))),
            match (vs_omnipaxos, wal_over_this) {
                (Some(p), _) => format!(", vs OmniPaxos (paired) {}", p.show()),
                (_, Some(p)) => format!(", OmniPaxos on the WAL vs here (paired) {}", p.show()),
                (None, None) => String::new(),
            },
            target.map_or(String::new(), |p| format!(
                ", vs {} (paired) {}",
                target_of(cell).map_or("", |t| if t.imp == Impl::OmniMemoryStorage {
                    "OmniPaxos over MemoryStorage"
                } else {
                    "OmniPaxos over rocksdb"
                }),
                p.show()
            ))
        )
    }
}

/// The name the report gives OmniPaxos' own in-memory storage.
const OMNI_MEMORY: &str = "MemoryStorage";

/// The backend name of the floor over bare `Vec`s.
const FLOOR_BARE: &str = "bare";

/// `a`'s rate over `b`'s, repetition by repetition (the two ran back to back in each
/// round): the lowest, the median and the highest.
fn paired_ratio(a: &[Rep], b: &[Rep]) -> Option<Paired> {
    let runs = || {
        a.iter().zip(b).filter_map(|pair| match pair {
            (Rep::Replica(x), Rep::Replica(y)) => Some((x, y)),
            _ => None,
        })
    };
    let wall = Spread::of(runs().map(|(x, y)| x.decided_per_s() / y.decided_per_s()))?;
    let cpu = Spread::of(
        runs().filter_map(|(x, y)| Some(x.decided_per_cpu_s()? / y.decided_per_cpu_s()?)),
    );
    Some(Paired { wall, cpu })
}

/// The paired ratios of a cell's repetitions to those of its OmniPaxos pair: of decided
/// entries per second of wall time, and per second of the driving thread's CPU time (where
/// known; steadier on a shared machine, where wall time includes waiting for a core).
#[derive(Clone, Copy, Debug)]
struct Paired {
    wall: Spread,
    cpu: Option<Spread>,
}

impl Paired {
    /// As the report stores it.
    fn ratios(self) -> report::PairedRatios {
        let r = |s: Spread| report::RatioSpread { min: s.min, median: s.median, max: s.max };
        report::PairedRatios { wall: r(self.wall), cpu: self.cpu.map(r) }
    }

    fn show(&self) -> String {
        format!(
            "{} in wall time{}",
            self.wall.show(),
            self.cpu.map_or(String::new(), |c| format!(", {} in CPU time", c.show()))
        )
    }
}

/// The lowest, median and highest of some ratios.
#[derive(Clone, Copy, Debug)]
struct Spread {
    min: f64,
    median: f64,
    max: f64,
}

impl Spread {
    /// Over the finite, positive `ratios`; `None` if there is none.
    fn of(ratios: impl Iterator<Item = f64>) -> Option<Spread> {
        let mut ratios: Vec<f64> = ratios.filter(|r| r.is_finite() && *r > 0.0).collect();
        if ratios.is_empty() {
            return None;
        }
        let min = ratios.iter().copied().fold(f64::INFINITY, f64::min);
        let max = ratios.iter().copied().fold(0.0, f64::max);
        Some(Spread { min, median: stats::median(&mut ratios), max })
    }

    fn show(&self) -> String {
        format!(
            "{}× ({}–{}×)",
            report::fmt_ratio(self.median),
            report::fmt_ratio(self.min),
            report::fmt_ratio(self.max)
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
