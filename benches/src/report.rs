//! The report's data model (`report.json`), what it concludes from the figures, its
//! Markdown rendering, and the check CI runs on it.
//!
//! Every conclusion (which backend for which need, the WAL's targets, the ratios) is
//! computed from the rows of the same run; none is written by hand.

use std::fmt::Write as _;

use serde::{Deserialize, Serialize};

use crate::machine::Machine;

/// The version of this JSON layout; bumped when a field changes meaning. 3: OmniPaxos
/// rows over each paxstore backend (not only its `MemoryStorage`), `vs_omnipaxos` against
/// OmniPaxos over the same backend, and `wal_over_this`.
pub const SCHEMA_VERSION: u32 = 3;

/// The entry size of the headline figures.
pub const HEADLINE_ENTRY_BYTES: usize = 128;

/// Everything one run of the `report` binary measured.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Report {
    /// [`SCHEMA_VERSION`].
    pub schema_version: u32,
    /// `true` for a `--quick` run (fewer cells, shorter repetitions, smaller logs).
    pub quick: bool,
    /// The command line that produced the report.
    pub command: String,
    /// The machine it ran on.
    pub machine: Machine,
    /// The backends measured, in order.
    pub backends: Vec<String>,
    /// Wall time of the whole run, in seconds.
    pub duration_s: f64,
    /// The disk's raw ceiling.
    pub ceiling: Ceiling,
    /// The storage workloads.
    pub storage: Vec<StorageRow>,
    /// Reopen of a large log.
    pub reopen: Vec<ReopenRow>,
    /// The replicated cluster.
    pub replica: Vec<ReplicaRow>,
    /// Three node processes over TCP ([`crate::tcp_cluster`]).
    #[serde(default)]
    pub tcp_cluster: Vec<crate::tcp_cluster::TcpClusterRow>,
    /// Which backend to pick for which need, from the rows above.
    pub recommendations: Vec<Recommendation>,
    /// Cells that failed, with their error; a complete run has none.
    pub failures: Vec<Failure>,
}

/// The disk's raw synced-write rate: 4 KiB `pwrite` + `fdatasync` on a preallocated,
/// already-written file in the directory the backends wrote to.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Ceiling {
    /// Median over repetitions of synced writes per second.
    pub sync_writes_per_s: f64,
    /// Slowest repetition.
    pub sync_writes_per_s_min: f64,
    /// Fastest repetition.
    pub sync_writes_per_s_max: f64,
    /// Median write+sync latency, µs.
    pub p50_us: f64,
    /// 99th-percentile write+sync latency, µs.
    pub p99_us: f64,
    /// Bytes per write.
    pub write_bytes: usize,
    /// Size of the preallocated file the writes cycle through.
    pub file_bytes: usize,
    /// Repetitions.
    pub reps: usize,
}

/// One cell of the storage workloads.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct StorageRow {
    /// Backend name.
    pub backend: String,
    /// `immediate`, `buffered`, or `none` (memory).
    pub durability: String,
    /// `append`, `read_recent`, `read_old` or `trim`.
    pub op: String,
    /// Entries per call: appended per `write_atomically`, read per `get_entries`, or
    /// dropped per `Trim`.
    pub batch: usize,
    /// Payload bytes per entry.
    pub entry_bytes: usize,
    /// Median over repetitions of entries per second.
    pub entries_per_s: f64,
    /// Median over repetitions of calls per second.
    pub batches_per_s: f64,
    /// Median call latency, µs.
    pub p50_us: f64,
    /// 99th-percentile call latency, µs.
    pub p99_us: f64,
    /// Slowest repetition's entries per second.
    pub entries_per_s_min: f64,
    /// Fastest repetition's entries per second.
    pub entries_per_s_max: f64,
    /// Repetitions.
    pub reps: usize,
    /// For durable (`immediate`) appends and trims: calls per second divided by the
    /// ceiling's synced writes per second (each durable call needs at least one sync).
    pub fraction_of_ceiling: Option<f64>,
}

/// Reopen of a log of `entries` entries.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ReopenRow {
    /// Backend name.
    pub backend: String,
    /// Entries in the log reopened.
    pub entries: usize,
    /// Payload bytes per entry.
    pub entry_bytes: usize,
    /// Median over repetitions of the time from `open` until `get_log_len` answered, ms.
    pub ms: f64,
    /// Fastest repetition, ms.
    pub ms_min: f64,
    /// Slowest repetition, ms.
    pub ms_max: f64,
    /// Repetitions.
    pub reps: usize,
}

/// One cell of the replicated cluster.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ReplicaRow {
    /// `paxstore` or `omnipaxos` (0.2.4), driven the same way.
    #[serde(default = "paxstore_replica")]
    pub replica: String,
    /// Backend name (every replica uses it): a paxstore backend (OmniPaxos reaches it
    /// through `paxstore_omnipaxos::OmniStorage`), or `MemoryStorage`, OmniPaxos' own.
    pub backend: String,
    /// `immediate`, `buffered`, or `none` (memory).
    pub durability: String,
    /// How appends arrive: `upfront` (all, then delivery) or `stream` (one per round);
    /// `window` in reports of schema 1.
    #[serde(default = "window_mode")]
    pub mode: String,
    /// The replica's `batch_size`.
    pub batch_size: usize,
    /// Replicas in the cluster.
    pub replicas: usize,
    /// Median over repetitions of entries decided per second.
    pub decided_per_s: f64,
    /// Slowest repetition.
    pub decided_per_s_min: f64,
    /// Fastest repetition.
    pub decided_per_s_max: f64,
    /// Median latency from `append` on the leader until the entry is decided there, µs.
    pub p50_us: f64,
    /// 99th-percentile of that latency, µs.
    pub p99_us: f64,
    /// Repetitions.
    pub reps: usize,
    /// Storage writes per decided entry, per replica.
    #[serde(default)]
    pub writes_per_entry: f64,
    /// Syncs (`fdatasync`-type calls) per decided entry, per replica, where the storage
    /// counts them (the WAL does; memory has none).
    #[serde(default)]
    pub syncs_per_entry: Option<f64>,
    /// For a paxstore cell: the median over repetitions of paxstore's decided/s over
    /// OmniPaxos' over the same backend and durability, the two run back to back.
    /// (Schema 2: over OmniPaxos' `MemoryStorage`, for the memory backend only.)
    #[serde(default)]
    pub vs_omnipaxos: Option<f64>,
    /// The OmniPaxos cell `vs_omnipaxos` compares with, e.g. `omnipaxos over wal`.
    #[serde(default)]
    pub omnipaxos_pair: Option<String>,
    /// For an OmniPaxos cell over a persistent backend other than the WAL: the median over
    /// repetitions of OmniPaxos-over-the-WAL's decided/s over this cell's, the two run in
    /// the same round with the same durability (what moving an OmniPaxos service onto
    /// the WAL buys).
    #[serde(default)]
    pub wal_over_this: Option<f64>,
    /// For paxstore's replica and the floor over memory or the WAL: the paired ratios of
    /// this cell's decided/s to those of the OmniPaxos cell of the target comparison
    /// (`target_pair`), in wall time and in the driving thread's CPU time.
    #[serde(default)]
    pub vs_target: Option<PairedRatios>,
    /// The OmniPaxos cell `vs_target` compares with: `omnipaxos over MemoryStorage` for
    /// memory, `omnipaxos over rocksdb` (same durability) for the WAL.
    #[serde(default)]
    pub target_pair: Option<String>,
    /// For `immediate`: the share of the disk's sync budget the cell used, i.e. the
    /// storage writes of the three replicas per second (each a synced commit) divided by
    /// the ceiling's synced writes per second. (Schema 1: decided batches per second over
    /// the ceiling.)
    pub fraction_of_ceiling: Option<f64>,
}

/// Ratios of one cell's repetitions to those of the cell it ran beside, repetition by
/// repetition.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct PairedRatios {
    /// Of entries decided per second of wall time.
    pub wall: RatioSpread,
    /// Of entries decided per second of the driving thread's CPU time, where known.
    pub cpu: Option<RatioSpread>,
}

/// The lowest, median and highest of some ratios.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct RatioSpread {
    /// Lowest.
    pub min: f64,
    /// Median.
    pub median: f64,
    /// Highest.
    pub max: f64,
}

fn paxstore_replica() -> String {
    "paxstore".to_owned()
}

fn window_mode() -> String {
    "window".to_owned()
}

/// A need and the backend the figures say to pick for it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Recommendation {
    /// The need, e.g. "durable commits of single entries".
    pub need: String,
    /// The backend with the best figure.
    pub pick: String,
    /// Its figure, formatted with its unit.
    pub figure: String,
    /// How it compares: the runner-up and the ratio.
    pub versus: String,
}

/// A cell that failed.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Failure {
    /// The cell, as shown in the progress line.
    pub cell: String,
    /// The error.
    pub error: String,
}

impl Report {
    /// The storage row of one cell, if measured.
    pub fn storage_row(
        &self,
        backend: &str,
        durability: &str,
        op: &str,
        batch: usize,
        entry_bytes: usize,
    ) -> Option<&StorageRow> {
        self.storage.iter().find(|r| {
            r.backend == backend
                && r.durability == durability
                && r.op == op
                && r.batch == batch
                && r.entry_bytes == entry_bytes
        })
    }

    /// The replica row of one cell, if measured.
    pub fn replica_row(
        &self,
        replica: &str,
        backend: &str,
        durability: &str,
        mode: &str,
        batch: usize,
    ) -> Option<&ReplicaRow> {
        self.replica.iter().find(|r| {
            r.replica == replica
                && r.backend == backend
                && r.durability == durability
                && r.mode == mode
                && r.batch_size == batch
        })
    }

    /// The reopen row of a backend, if measured.
    pub fn reopen_row(&self, backend: &str) -> Option<&ReopenRow> {
        self.reopen.iter().find(|r| r.backend == backend)
    }
}

/// A ranking of backends by one figure, best first.
fn rank<'a>(
    candidates: impl Iterator<Item = (&'a str, f64)>,
    higher_is_better: bool,
) -> Vec<(&'a str, f64)> {
    let mut v: Vec<(&str, f64)> = candidates.filter(|(_, x)| x.is_finite() && *x > 0.0).collect();
    v.sort_by(|a, b| if higher_is_better { b.1.total_cmp(&a.1) } else { a.1.total_cmp(&b.1) });
    v
}

fn recommend(
    need: &str,
    ranked: &[(&str, f64)],
    unit: &str,
    higher_is_better: bool,
) -> Option<Recommendation> {
    let (pick, best) = *ranked.first()?;
    let versus = match ranked.get(1) {
        Some((second, x)) => {
            let ratio = if higher_is_better { best / x } else { x / best };
            format!("{}× {second} ({} {unit})", fmt_ratio(ratio), fmt_num(*x))
        }
        None => "only candidate".to_owned(),
    };
    Some(Recommendation {
        need: need.to_owned(),
        pick: pick.to_owned(),
        figure: format!("{} {unit}", fmt_num(best)),
        versus,
    })
}

/// Which backend to pick for which need, from the figures of `report` (every need whose
/// cells were measured).
pub fn recommendations(report: &Report) -> Vec<Recommendation> {
    let e = HEADLINE_ENTRY_BYTES;
    let storage = |durability: &'static str, op: &'static str, batch: usize, bytes: usize| {
        report
            .storage
            .iter()
            .filter(move |r| {
                r.durability == durability
                    && r.op == op
                    && r.batch == batch
                    && r.entry_bytes == bytes
            })
            .map(|r| (r.backend.as_str(), r.entries_per_s))
    };
    let persistent_reads = |op: &'static str, batch: usize| {
        report
            .storage
            .iter()
            .filter(move |r| r.durability != "none" && r.op == op && r.batch == batch)
            .map(|r| (r.backend.as_str(), r.entries_per_s))
    };
    let mut out = Vec::new();
    let mut push = |r: Option<Recommendation>| out.extend(r);
    push(recommend(
        "Durable commits one entry at a time (lowest commit latency)",
        &rank(storage("immediate", "append", 1, e), true),
        "commits/s",
        true,
    ));
    push(recommend(
        "Durable throughput with batching (100 entries per commit)",
        &rank(storage("immediate", "append", 100, e), true),
        "entries/s",
        true,
    ));
    push(recommend(
        "Durable large entries (4 KiB, 10 per commit)",
        &rank(storage("immediate", "append", 10, 4096), true),
        "entries/s",
        true,
    ));
    push(recommend(
        "Bulk ingest that may lose the last writes on power loss (Buffered, 1,000 per batch)",
        &rank(storage("buffered", "append", 1000, e), true),
        "entries/s",
        true,
    ));
    push(recommend(
        "Serving followers that catch up (read 100 recent entries)",
        &rank(persistent_reads("read_recent", 100), true),
        "entries/s",
        true,
    ));
    push(recommend(
        "Reading old history (100 entries from the older half)",
        &rank(persistent_reads("read_old", 100), true),
        "entries/s",
        true,
    ));
    push(recommend(
        "Fast restart (reopen a large log)",
        &rank(report.reopen.iter().map(|r| (r.backend.as_str(), r.ms)), false),
        "ms",
        false,
    ));
    push(recommend(
        "A durable 3-replica cluster (batch_size 100)",
        &rank(
            report
                .replica
                .iter()
                .filter(|r| {
                    r.replica == "paxstore"
                        && r.mode == "upfront"
                        && r.durability == "immediate"
                        && r.batch_size == 100
                })
                .map(|r| (r.backend.as_str(), r.decided_per_s)),
            true,
        ),
        "decided entries/s",
        true,
    ));
    push(recommend(
        "A durable 3-node OmniPaxos 0.2.4 service on paxstore (batch_size 100)",
        &rank(
            report
                .replica
                .iter()
                .filter(|r| {
                    r.replica == "omnipaxos"
                        && r.mode == "upfront"
                        && r.durability == "immediate"
                        && r.batch_size == 100
                })
                .map(|r| (r.backend.as_str(), r.decided_per_s)),
            true,
        ),
        "decided entries/s",
        true,
    ));
    push(recommend(
        "Tests and simulations, no persistence needed (1 entry per append)",
        &rank(storage("none", "append", 1, e), true),
        "entries/s",
        true,
    ));
    out
}

/// One of the WAL's benchmark targets (issue 4), checked against this run's figures.
#[derive(Clone, Debug, PartialEq)]
pub struct Target {
    /// What is measured.
    pub what: String,
    /// The target, in words.
    pub target: String,
    /// The WAL's figure and the baseline it is compared with.
    pub measured: String,
    /// Whether the target is met; `None` when a cell is missing.
    pub met: Option<bool>,
}

/// The WAL's targets from issue 4, against the ceiling and RocksDB of the same run.
pub fn wal_targets(report: &Report) -> Vec<Target> {
    let e = HEADLINE_ENTRY_BYTES;
    let ceiling = report.ceiling.sync_writes_per_s;
    let wal = |d, op, b| report.storage_row("wal", d, op, b, e);
    let rocks = |d, op, b| report.storage_row("rocksdb", d, op, b, e);
    let mut out = Vec::new();
    let w1 = wal("immediate", "append", 1);
    out.push(Target {
        what: "Immediate, 1 entry/batch".into(),
        target: "≥ 90% of the ceiling".into(),
        measured: w1.map_or("not measured".into(), |w| {
            format!(
                "{} commits/s = {} of {} sync writes/s",
                fmt_num(w.batches_per_s),
                fmt_pct(w.batches_per_s / ceiling),
                fmt_num(ceiling)
            )
        }),
        met: w1.map(|w| w.batches_per_s >= 0.9 * ceiling),
    });
    let (w, r) = (wal("immediate", "append", 100), rocks("immediate", "append", 100));
    out.push(Target {
        what: "Immediate, 100 entries/batch".into(),
        target: "≥ 2× RocksDB entries/s".into(),
        measured: match (w, r) {
            (Some(w), Some(r)) => format!(
                "{} vs {} entries/s = {}×",
                fmt_num(w.entries_per_s),
                fmt_num(r.entries_per_s),
                fmt_ratio(w.entries_per_s / r.entries_per_s)
            ),
            _ => "not measured".into(),
        },
        met: w.zip(r).map(|(w, r)| w.entries_per_s >= 2.0 * r.entries_per_s),
    });
    let w = wal("buffered", "append", 1000);
    out.push(Target {
        what: "Buffered, 1,000 entries/batch".into(),
        target: "≥ 3,000,000 entries/s".into(),
        measured: w
            .map_or("not measured".into(), |w| format!("{} entries/s", fmt_num(w.entries_per_s))),
        met: w.map(|w| w.entries_per_s >= 3e6),
    });
    let (w, r) = (report.reopen_row("wal"), report.reopen_row("rocksdb"));
    out.push(Target {
        what: format!("Reopen of {} entries", fmt_num(w.map_or(0.0, |w| w.entries as f64))),
        target: "≤ 1 s and ≥ 3× faster than RocksDB".into(),
        measured: match (w, r) {
            (Some(w), Some(r)) => format!(
                "{} ms vs {} ms = {}× faster",
                fmt_num(w.ms),
                fmt_num(r.ms),
                fmt_ratio(r.ms / w.ms)
            ),
            (Some(w), None) => format!("{} ms (RocksDB not measured)", fmt_num(w.ms)),
            _ => "not measured".into(),
        },
        met: w.zip(r).map(|(w, r)| w.ms <= 1000.0 && r.ms >= 3.0 * w.ms),
    });
    let (w, r) = (wal("immediate", "read_recent", 100), rocks("immediate", "read_recent", 100));
    out.push(Target {
        what: "get_entries of 100 recent entries".into(),
        target: "≥ 5× RocksDB".into(),
        measured: match (w, r) {
            (Some(w), Some(r)) => format!(
                "{} vs {} entries/s = {}×",
                fmt_num(w.entries_per_s),
                fmt_num(r.entries_per_s),
                fmt_ratio(w.entries_per_s / r.entries_per_s)
            ),
            _ => "not measured".into(),
        },
        met: w.zip(r).map(|(w, r)| w.entries_per_s >= 5.0 * r.entries_per_s),
    });
    out
}

/// What a report lacks for `backends`: one line per missing cell family. `replica`
/// says whether the replica cells are expected (the cluster harness is built).
pub fn missing(report: &Report, backends: &[(String, bool)], replica: bool) -> Vec<String> {
    let mut out = Vec::new();
    if report.ceiling.sync_writes_per_s.is_nan() || report.ceiling.sync_writes_per_s <= 0.0 {
        out.push(format!("ceiling.sync_writes_per_s is {}", report.ceiling.sync_writes_per_s));
    }
    for (backend, persistent) in backends {
        let durabilities: &[&str] =
            if *persistent { &["immediate", "buffered"] } else { &["none"] };
        let has = |op: &str, d: Option<&str>| {
            report.storage.iter().any(|r| {
                &r.backend == backend
                    && r.op == op
                    && d.is_none_or(|d| r.durability == d)
                    && r.entries_per_s > 0.0
            })
        };
        // Writes under every durability; reads under any (they do not depend on it).
        for d in durabilities {
            for op in ["append", "trim"] {
                if !has(op, Some(d)) {
                    out.push(format!("storage: no {op} row for {backend} ({d})"));
                }
            }
        }
        for op in ["read_recent", "read_old"] {
            if !has(op, None) {
                out.push(format!("storage: no {op} row for {backend}"));
            }
        }
        if *persistent && !report.reopen.iter().any(|r| &r.backend == backend && r.ms > 0.0) {
            out.push(format!("reopen: no row for {backend}"));
        }
        // Both replicas over every backend.
        for imp in ["paxstore", "omnipaxos"] {
            if replica
                && !report
                    .replica
                    .iter()
                    .any(|r| r.replica == imp && &r.backend == backend && r.decided_per_s > 0.0)
            {
                out.push(format!("replica: no {imp} row for {backend}"));
            }
        }
    }
    // OmniPaxos also runs over its own MemoryStorage, beside the memory backend.
    if replica
        && backends.iter().any(|(b, _)| b == "memory")
        && !report.replica.iter().any(|r| {
            r.replica == "omnipaxos" && r.backend == OMNI_MEMORY_NAME && r.decided_per_s > 0.0
        })
    {
        out.push(format!("replica: no omnipaxos row for {OMNI_MEMORY_NAME}"));
    }
    out.extend(crate::tcp_cluster::missing(report, backends));
    for f in &report.failures {
        out.push(format!("failed cell {}: {}", f.cell, f.error));
    }
    out
}

/// A number with thousands separators, and two significant decimals below 10.
pub fn fmt_num(x: f64) -> String {
    if !x.is_finite() {
        return "–".to_owned();
    }
    if x.abs() < 10.0 {
        return format!("{x:.2}");
    }
    let s = format!("{:.0}", x.abs());
    let mut out = String::new();
    for (i, c) in s.chars().enumerate() {
        if i > 0 && (s.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    if x < 0.0 {
        out.insert(0, '-');
    }
    out
}

/// A count per decided entry: three significant figures below 1 (`0.00300`, `0.333`), so
/// one write per thousand entries does not read as zero.
pub fn fmt_per_entry(x: f64) -> String {
    if x.is_finite() && x > 0.0 && x < 1.0 {
        let decimals = (2.0 - x.log10().floor()).clamp(0.0, 9.0) as usize;
        format!("{x:.decimals$}")
    } else {
        fmt_num(x)
    }
}

/// A ratio with two significant figures or one decimal, e.g. `2.4` or `37`.
pub fn fmt_ratio(x: f64) -> String {
    if !x.is_finite() {
        "–".to_owned()
    } else if x >= 10.0 {
        format!("{x:.0}")
    } else {
        format!("{x:.2}")
    }
}

/// A fraction as a percentage, e.g. `87%`.
pub fn fmt_pct(x: f64) -> String {
    if !x.is_finite() {
        "–".to_owned()
    } else if x < 0.1 {
        format!("{:.1}%", x * 100.0)
    } else {
        format!("{:.0}%", x * 100.0)
    }
}

/// The spread of repetitions as `min–max`.
fn spread(min: f64, max: f64) -> String {
    format!("{}–{}", fmt_num(min), fmt_num(max))
}

/// The charts a report refers to: file name (under `charts/`) and title.
pub const CHARTS: [(&str, &str); 3] = [
    ("appends-immediate.svg", "Durable (Immediate) appends of 128-byte entries"),
    ("appends-buffered.svg", "Buffered and in-memory appends of 128-byte entries"),
    ("replica.svg", "3-replica cluster, upfront appends: entries decided per second"),
];

/// The headline table: durable appends of 128-byte entries, one row per backend, one
/// column per batch size, with the batch-1 commit rate as a fraction of the ceiling.
pub fn headline_table(report: &Report, batches: &[usize]) -> String {
    let mut md = String::new();
    let _ = write!(md, "| backend (Immediate, 128 B entries) |");
    for b in batches {
        let _ = write!(md, " {b}/batch entries/s |");
    }
    let _ = writeln!(md, " 1/batch vs ceiling |");
    let _ = writeln!(md, "|---|{}---|", "---:|".repeat(batches.len()));
    for backend in &report.backends {
        let mut cells = String::new();
        let mut any = false;
        for b in batches {
            match report.storage_row(backend, "immediate", "append", *b, HEADLINE_ENTRY_BYTES) {
                Some(r) => {
                    any = true;
                    let _ = write!(cells, " {} |", fmt_num(r.entries_per_s));
                }
                None => cells.push_str(" – |"),
            }
        }
        if !any {
            continue;
        }
        let frac = report
            .storage_row(backend, "immediate", "append", 1, HEADLINE_ENTRY_BYTES)
            .and_then(|r| r.fraction_of_ceiling)
            .map_or("–".to_owned(), fmt_pct);
        let _ = writeln!(md, "| {backend} |{cells} {frac} |");
    }
    let _ = writeln!(
        md,
        "| *disk ceiling: 4 KiB write + fdatasync* | {} syncs/s |{} 100% |",
        fmt_num(report.ceiling.sync_writes_per_s),
        " |".repeat(batches.len().saturating_sub(1))
    );
    md
}

/// The full Markdown report. Charts are referenced as `charts/<name>.svg`.
pub fn to_markdown(report: &Report) -> String {
    let mut md = String::new();
    let m = &report.machine;
    let _ = writeln!(md, "# paxstore backend comparison\n");
    let _ = writeln!(
        md,
        "Run {} on {}.  \nCommand: `{}` ({} run, {:.0} s).  \nBackends: {}. All figures are \
         medians of repeated runs in fresh directories on the disk under test; spreads are \
         min–max over repetitions.\n",
        m.date,
        m.summary(),
        report.command,
        if report.quick { "quick" } else { "full" },
        report.duration_s,
        report.backends.join(", ")
    );

    let _ = writeln!(md, "## Which backend for which need\n");
    let _ = writeln!(md, "| need | pick | its figure | vs the runner-up |\n|---|---|---:|---|");
    for r in &report.recommendations {
        let _ = writeln!(md, "| {} | **{}** | {} | {} |", r.need, r.pick, r.figure, r.versus);
    }
    let _ = writeln!(md);

    let _ = writeln!(md, "## Durable appends vs the disk's ceiling\n");
    md.push_str(&headline_table(report, &[1, 10, 100, 1000]));
    let _ = writeln!(
        md,
        "\nThe ceiling is a loop of 4 KiB `pwrite` + `fdatasync` on a preallocated, \
         already-written file in the same directory: {} syncs/s (spread {}, p50 {} µs, \
         p99 {} µs). A backend that syncs once per commit cannot commit faster; \
         \"vs ceiling\" is commits/s ÷ syncs/s.\n",
        fmt_num(report.ceiling.sync_writes_per_s),
        spread(report.ceiling.sync_writes_per_s_min, report.ceiling.sync_writes_per_s_max),
        fmt_num(report.ceiling.p50_us),
        fmt_num(report.ceiling.p99_us)
    );
    let above: Vec<String> = report
        .storage
        .iter()
        .filter(|r| r.fraction_of_ceiling.is_some_and(|f| f > 1.0))
        .map(|r| {
            format!(
                "{} {} batch={} entry={} B ({})",
                r.backend,
                r.op,
                r.batch,
                r.entry_bytes,
                r.fraction_of_ceiling.map_or(String::new(), fmt_pct)
            )
        })
        .collect();
    if !above.is_empty() {
        let _ = writeln!(
            md,
            "Durable cells above 100% of the ceiling: {}. The ceiling is the median of {} \
             samples taken across the run (spread {}); a durable figure above it means the \
             disk was faster during that cell than at the ceiling's median (a shared, noisy \
             disk), or that the backend does not issue one full sync per call.\n",
            above.join("; "),
            report.ceiling.reps,
            spread(report.ceiling.sync_writes_per_s_min, report.ceiling.sync_writes_per_s_max)
        );
    }
    let _ = writeln!(md, "![{}](charts/{})\n", CHARTS[0].1, CHARTS[0].0);
    let _ = writeln!(md, "![{}](charts/{})\n", CHARTS[1].1, CHARTS[1].0);

    if report.backends.iter().any(|b| b == "wal") {
        let _ = writeln!(md, "## The WAL's targets (issue 4)\n");
        let _ =
            writeln!(md, "| what (128 B entries) | target | measured | met |\n|---|---|---|---|");
        for t in wal_targets(report) {
            let met = match t.met {
                Some(true) => "yes",
                Some(false) => "**no**",
                None => "–",
            };
            let _ = writeln!(md, "| {} | {} | {} | {met} |", t.what, t.target, t.measured);
        }
        let _ = writeln!(md);
    }

    let _ = writeln!(md, "## The replicated cluster\n");
    if report.replica.is_empty() {
        let _ = writeln!(md, "Not measured in this run.\n");
    } else {
        let _ = writeln!(
            md,
            "Two replicas, the same driver and the same workload: paxstore's replica, and \
             OmniPaxos 0.2.4 over the same paxstore backend through `paxstore-omnipaxos`' \
             `OmniStorage` (each OmniPaxos storage call one paxstore `write_atomically`, with \
             the backend's durability), plus OmniPaxos over its own `MemoryStorage`. Both \
             are driven in the same rounds by the same code (the driver only calls `append`, \
             `tick`, take-outgoing and `handle_incoming`), with the same entries, batch \
             sizes and trims; see Method.\n"
        );
        let versus = omnipaxos_table(report);
        if !versus.is_empty() {
            let _ = writeln!(
                md,
                "### paxstore's replica vs OmniPaxos 0.2.4 on the same backend, paired\n"
            );
            md.push_str(&versus);
            let _ = writeln!(md);
        }
        let wal = omnipaxos_wal_table(report);
        if !wal.is_empty() {
            let _ = writeln!(
                md,
                "### OmniPaxos 0.2.4 on the paxstore WAL vs on the other backends, paired\n"
            );
            md.push_str(&wal);
            let _ = writeln!(md);
        }
        let target = target_table(report);
        if !target.is_empty() {
            let _ = writeln!(
                md,
                "### The targets: paxstore's replica and the floor vs OmniPaxos 0.2.4, paired\n"
            );
            md.push_str(&target);
            let _ = writeln!(md);
        }
        let _ = writeln!(md, "### Every replica cell\n");
        md.push_str(&replica_table(report));
        let _ = writeln!(md, "\n![{}](charts/{})\n", CHARTS[2].1, CHARTS[2].0);
    }

    md.push_str(&crate::tcp_cluster::section(report));

    let _ = writeln!(md, "## All storage cells\n");
    let _ = writeln!(
        md,
        "| backend | durability | op | batch | entry | entries/s | spread | calls/s | p50 µs | p99 µs | vs ceiling |\n\
         |---|---|---|---:|---:|---:|---:|---:|---:|---:|---:|"
    );
    // Grouped for reading: by backend (in the report's order), op, durability, size, batch.
    let order = |b: &str| report.backends.iter().position(|x| x == b);
    let ops = ["append", "read_recent", "read_old", "trim"];
    let mut rows: Vec<&StorageRow> = report.storage.iter().collect();
    rows.sort_by_key(|r| {
        (
            order(&r.backend),
            ops.iter().position(|o| *o == r.op),
            r.durability != "immediate",
            r.entry_bytes,
            r.batch,
        )
    });
    for r in rows {
        let _ = writeln!(
            md,
            "| {} | {} | {} | {} | {} B | {} | {} | {} | {} | {} | {} |",
            r.backend,
            r.durability,
            r.op,
            r.batch,
            r.entry_bytes,
            fmt_num(r.entries_per_s),
            spread(r.entries_per_s_min, r.entries_per_s_max),
            fmt_num(r.batches_per_s),
            fmt_num(r.p50_us),
            fmt_num(r.p99_us),
            r.fraction_of_ceiling.map_or("".to_owned(), fmt_pct)
        );
    }
    let _ = writeln!(md);

    let _ = writeln!(md, "## Reopen\n");
    let _ = writeln!(
        md,
        "| backend | entries | entry | ms (median) | spread |\n|---|---:|---:|---:|---:|"
    );
    for r in &report.reopen {
        let _ = writeln!(
            md,
            "| {} | {} | {} B | {} | {} |",
            r.backend,
            fmt_num(r.entries as f64),
            r.entry_bytes,
            fmt_num(r.ms),
            spread(r.ms_min, r.ms_max)
        );
    }
    let _ = writeln!(
        md,
        "\nTime from `open` until `get_log_len` answers, after the log was written with \
         Immediate batches of 1,000 and closed; the page cache is warm (the files were just \
         written), so this is the process-restart case, not a cold boot.\n"
    );

    if !report.failures.is_empty() {
        let _ = writeln!(md, "## Failed cells\n");
        for f in &report.failures {
            let _ = writeln!(md, "- `{}`: {}", f.cell, f.error);
        }
        let _ = writeln!(md);
    }

    let _ = writeln!(md, "## Method\n");
    let _ = writeln!(
        md,
        "- **Interleaving**: the backends of one comparison run their repetitions in turn \
         (repetition 1 of every backend, then repetition 2, ...), and every durable group \
         takes a ceiling sample in each round, so a noisy minute on a shared disk hits every \
         figure of a comparison alike. The ceiling is the median over all its samples.\n\
         - **Above 100% of the ceiling**: the ceiling writes a fresh 4 KiB block per sync; a \
         one-entry commit writes ~150 bytes, often into the same 4 KiB page as the previous \
         commit, which a virtual disk with a write-back cache may sync faster.\n\
         - **Appends**: `write_atomically([AppendEntries(batch)])`; the batch is built before \
         the timer starts, so entries/s is time inside the backend. Payloads are \
         incompressible.\n\
         - **Reads**: `get_entries` of `batch` entries, from ranges ending in the last 1,000 \
         entries (`read_recent`) or starting in the older half (`read_old`) of a log of \
         128-byte entries, with the store still open (Immediate).\n\
         - **Trim**: `Trim` of `batch` entries at a time from the head of a filled log.\n\
         - **Replica**: 3 replicas in one process on one thread, each over its own store, \
         driven in rounds the way users drive a sans-IO replica: in each round every replica \
         in turn takes its outgoing messages (for paxstore, that take is its one storage \
         write of the round) and the receivers handle them. After a leader is elected, \
         `upfront` appends a run of entries on the leader (1,000, or 10 batches if more) and \
         then delivers rounds until all are decided on every replica; `stream` appends one \
         entry per round. OmniPaxos 0.2.4 runs under the very same driver (`append`, `tick`, \
         `take_outgoing_messages`, `handle_incoming`), over each paxstore backend through \
         `paxstore-omnipaxos`' `OmniStorage` (one paxstore `write_atomically` per OmniPaxos \
         storage call, with the cell's durability) and over its own `MemoryStorage`; its \
         `batch_size` is set like paxstore's, and both replicas run in the same group, \
         repetition by repetition. decided/s counts entries decided on every \
         replica; latency runs from `append` to decided on the leader. Writes are the \
         storage calls that change state; syncs are counted by the WAL itself. The three \
         replicas' syncs run one after another on one disk; \"sync budget used\" is their \
         writes per second (each a synced commit with `immediate`) over the ceiling. The \
         leader trims what every replica decided every 4,096 entries and after each run, \
         for both replicas, so the logs in memory stay bounded.\n\
         - **Floor**: the least work a replicated log does under the same driver \
         (`paxstore_benches::floor`): replica 1 leads from the start (no election, ballots, \
         recovery or retransmission); at each take it moves the appended entries into its \
         log and sends each follower one copy with its decided index; a follower appends \
         and acknowledges at its next take; the leader decides on a majority; trims as \
         above. `bare` keeps the log in a `Vec`; over a backend, each append and trim is \
         one `write_atomically`. Its ratio to OmniPaxos is the most a replica could show \
         in that cell under this driver.\n\
         - **Durability**: `immediate` means a successful write survives power loss, as each \
         backend documents it; `buffered` means it survives a process crash. See each \
         backend's module docs for what its sync does."
    );
    md
}

/// The paired comparison with OmniPaxos 0.2.4: one row per backend (paxstore's replica
/// and OmniPaxos over it), one column per batch size and mode; each cell is paxstore's
/// decided/s over OmniPaxos' (median of the pairs run back to back), with both sides'
/// writes per decided entry per replica.
pub fn omnipaxos_table(report: &Report) -> String {
    let pax: Vec<&ReplicaRow> =
        report.replica.iter().filter(|r| r.vs_omnipaxos.is_some()).collect();
    let mut md = String::new();
    if pax.is_empty() {
        return md;
    }
    let mut cols: Vec<(usize, &str)> =
        pax.iter().map(|r| (r.batch_size, r.mode.as_str())).collect();
    cols.sort_unstable_by_key(|(b, m)| (*b, *m != "upfront"));
    cols.dedup();
    let mut pairs: Vec<(&str, &str, &str)> = Vec::new();
    for r in &pax {
        let key =
            (r.backend.as_str(), r.durability.as_str(), r.omnipaxos_pair.as_deref().unwrap_or(""));
        if !pairs.contains(&key) {
            pairs.push(key);
        }
    }
    let _ = write!(md, "| paxstore over | OmniPaxos over |");
    for (b, m) in &cols {
        let _ = write!(md, " batch {b} {m} |");
    }
    let _ = writeln!(md, "\n|---|---|{}", "---:|".repeat(cols.len()));
    for (backend, durability, pair) in pairs {
        let _ = write!(
            md,
            "| {backend} ({durability}) | {} |",
            pair.trim_start_matches("omnipaxos over ")
        );
        for (b, m) in &cols {
            let p = report.replica_row("paxstore", backend, durability, m, *b);
            let o_backend = pair.trim_start_matches("omnipaxos over ");
            let o = report.replica_row("omnipaxos", o_backend, durability, m, *b);
            match p.and_then(|p| p.vs_omnipaxos.map(|v| (p, v))) {
                Some((p, v)) => {
                    let writes = o.map_or("–".to_owned(), |o| fmt_per_entry(o.writes_per_entry));
                    let _ = write!(
                        md,
                        " **{}×** ({} vs {} w/e) |",
                        fmt_ratio(v),
                        fmt_per_entry(p.writes_per_entry),
                        writes
                    );
                }
                None => md.push_str(" – |"),
            }
        }
        let _ = writeln!(md);
    }
    let _ = writeln!(
        md,
        "\nEach cell: paxstore's entries decided per second over OmniPaxos', the median over \
         repetitions run back to back; in brackets, storage writes per decided entry per \
         replica, paxstore vs OmniPaxos."
    );
    md
}

/// The name OmniPaxos' own in-memory storage has in the replica rows.
const OMNI_MEMORY_NAME: &str = "MemoryStorage";

/// OmniPaxos 0.2.4 on the WAL against OmniPaxos on each other persistent backend: one row
/// per backend and durability, one column per batch size and mode; each cell is
/// OmniPaxos-over-the-WAL's decided/s over OmniPaxos-over-that-backend's (median of the
/// pairs run in the same round), with both figures.
pub fn omnipaxos_wal_table(report: &Report) -> String {
    let rows: Vec<&ReplicaRow> =
        report.replica.iter().filter(|r| r.wal_over_this.is_some()).collect();
    let mut md = String::new();
    if rows.is_empty() {
        return md;
    }
    let mut cols: Vec<(usize, &str)> =
        rows.iter().map(|r| (r.batch_size, r.mode.as_str())).collect();
    cols.sort_unstable_by_key(|(b, m)| (*b, *m != "upfront"));
    cols.dedup();
    let mut keys: Vec<(&str, &str)> = Vec::new();
    for r in &rows {
        let key = (r.backend.as_str(), r.durability.as_str());
        if !keys.contains(&key) {
            keys.push(key);
        }
    }
    let _ = write!(md, "| OmniPaxos on the WAL vs on |");
    for (b, m) in &cols {
        let _ = write!(md, " batch {b} {m} |");
    }
    let _ = writeln!(md, "\n|---|{}", "---:|".repeat(cols.len()));
    for (backend, durability) in keys {
        let _ = write!(md, "| {backend} ({durability}) |");
        for (b, m) in &cols {
            let this = report.replica_row("omnipaxos", backend, durability, m, *b);
            let wal = report.replica_row("omnipaxos", "wal", durability, m, *b);
            match (this.and_then(|t| t.wal_over_this.map(|v| (t, v))), wal) {
                (Some((t, v)), Some(w)) => {
                    let _ = write!(
                        md,
                        " **{}×** ({} vs {}/s) |",
                        fmt_ratio(v),
                        fmt_num(w.decided_per_s),
                        fmt_num(t.decided_per_s)
                    );
                }
                _ => md.push_str(" – |"),
            }
        }
        let _ = writeln!(md);
    }
    let _ = writeln!(
        md,
        "\nEach cell: OmniPaxos over the paxstore WAL, entries decided per second, over \
         OmniPaxos over that backend (both through `OmniStorage`, same durability), the \
         median over repetitions run in the same round; in brackets, both medians. What \
         moving an OmniPaxos service from that backend onto the WAL buys."
    );
    md
}

/// The target comparison: paxstore's replica over memory against OmniPaxos 0.2.4 over its
/// own `MemoryStorage` (target 1.5×, in CPU time), and over the WAL against OmniPaxos over
/// paxstore's RocksDB with the same durability (target 2×, in wall time: syncs are waits,
/// not CPU), one row per mode and batch size, each with the floor's ratio in the same run
/// beside it, and syncs and writes per decided entry per replica on both sides.
pub fn target_table(report: &Report) -> String {
    let mut rows: Vec<&ReplicaRow> = report
        .replica
        .iter()
        .filter(|r| r.replica == "paxstore" && r.vs_target.is_some())
        .collect();
    let mut md = String::new();
    if rows.is_empty() {
        return md;
    }
    let order = |b: &str| report.backends.iter().position(|x| x == b).unwrap_or(usize::MAX);
    rows.sort_by_key(|r| {
        (order(&r.backend), r.durability.clone(), r.mode != "upfront", r.batch_size)
    });
    let _ = writeln!(
        md,
        "| paxstore over | vs OmniPaxos over | mode | batch | paxstore, CPU time | paxstore, wall \
         time | target | floor (bare) | floor through the store | syncs/entry/replica | \
         writes/entry/replica |\n\
         |---|---|---|---:|---:|---:|---|---:|---:|---:|---:|"
    );
    for r in rows {
        let Some(v) = r.vs_target else { continue };
        let pair = r.target_pair.as_deref().unwrap_or("");
        let o_backend = pair.trim_start_matches("omnipaxos over ");
        let o = report.replica_row(
            "omnipaxos",
            o_backend,
            other_durability(r, o_backend),
            &r.mode,
            r.batch_size,
        );
        let floor = |backend: &str| {
            report
                .replica_row("floor", backend, &r.durability, &r.mode, r.batch_size)
                .and_then(|f| f.vs_target)
        };
        let memory = r.backend == "memory";
        let (target, measure) = if memory { (1.5, v.cpu) } else { (2.0, Some(v.wall)) };
        let met = match measure {
            Some(m) if m.median >= target => "met",
            Some(_) => "**missed**",
            None => "–",
        };
        let cpu_of = |p: Option<PairedRatios>| {
            p.map_or("–".to_owned(), |p| {
                if memory {
                    p.cpu.map_or("–".to_owned(), show_spread)
                } else {
                    show_spread(p.wall)
                }
            })
        };
        let syncs = |x: Option<&ReplicaRow>| {
            x.and_then(|x| x.syncs_per_entry).map_or("–".to_owned(), fmt_per_entry)
        };
        let writes = |x: Option<&ReplicaRow>| {
            x.map_or("–".to_owned(), |x| fmt_per_entry(x.writes_per_entry))
        };
        let _ = writeln!(
            md,
            "| {} ({}) | {} | {} | {} | {} | {} | {}× {} | {} | {} | {} vs {} | {} vs {} |",
            r.backend,
            r.durability,
            o_backend,
            r.mode,
            r.batch_size,
            v.cpu.map_or("–".to_owned(), show_spread),
            show_spread(v.wall),
            fmt_ratio(target),
            met,
            if memory { cpu_of(floor("bare")) } else { "–".to_owned() },
            cpu_of(floor(&r.backend)),
            syncs(Some(r)),
            syncs(o),
            writes(Some(r)),
            writes(o),
        );
    }
    let _ = writeln!(
        md,
        "\nEach ratio: entries decided per second over OmniPaxos' in the same group, \
         repetition by repetition (the two run back to back, in alternating order), as \
         median (lowest–highest). The target is judged in CPU time for memory (the driving \
         thread's own time: steadier on a shared machine) and in wall time for the WAL \
         (waiting for a sync takes no CPU). The floor columns give the same ratio for the \
         floor (see Method) in the same run, in the same measure: the least work a \
         replicated log does under this driver, bare and through the same store; where a \
         cell misses, the floor says how much of the target the driver leaves reachable. \
         Syncs are counted by the WAL itself (`WalStorage::stats`); memory has none; \
         RocksDB's are not counted (\"–\"): through `OmniStorage` each OmniPaxos write is one \
         RocksDB commit, synced with `immediate`. Both: paxstore vs OmniPaxos, per decided \
         entry per replica."
    );
    md
}

/// The durability label of the OmniPaxos cell `r` is compared with over `backend`.
fn other_durability<'a>(r: &'a ReplicaRow, backend: &str) -> &'a str {
    if backend == OMNI_MEMORY_NAME {
        "none"
    } else {
        &r.durability
    }
}

fn show_spread(s: RatioSpread) -> String {
    format!("{}× ({}–{})", fmt_ratio(s.median), fmt_ratio(s.min), fmt_ratio(s.max))
}

/// Every replica cell: one row per replica, backend, durability, mode and batch size.
pub fn replica_table(report: &Report) -> String {
    let mut md = String::new();
    let _ = writeln!(
        md,
        "| replica | backend | durability | mode | batch | decided/s | spread | p50 µs | p99 µs | \
         writes/entry/replica | syncs/entry/replica | vs OmniPaxos | OmniPaxos on the WAL vs this | \
         sync budget used |\n\
         |---|---|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
    );
    let order = |b: &str| report.backends.iter().position(|x| x == b).unwrap_or(usize::MAX);
    let mut rows: Vec<&ReplicaRow> = report.replica.iter().collect();
    rows.sort_by_key(|r| {
        (
            r.durability == "buffered",
            r.mode != "upfront",
            r.batch_size,
            order(&r.backend),
            r.replica != "paxstore",
        )
    });
    for r in rows {
        let _ = writeln!(
            md,
            "| {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} |",
            r.replica,
            r.backend,
            r.durability,
            r.mode,
            r.batch_size,
            fmt_num(r.decided_per_s),
            spread(r.decided_per_s_min, r.decided_per_s_max),
            fmt_num(r.p50_us),
            fmt_num(r.p99_us),
            fmt_per_entry(r.writes_per_entry),
            r.syncs_per_entry.map_or("–".to_owned(), fmt_per_entry),
            r.vs_omnipaxos.map_or("".to_owned(), |v| format!("{}×", fmt_ratio(v))),
            r.wal_over_this.map_or("".to_owned(), |v| format!("{}×", fmt_ratio(v))),
            r.fraction_of_ceiling.map_or("".to_owned(), fmt_pct)
        );
    }
    md
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(replica: &str, backend: &str, mode: &str, batch: usize, rate: f64) -> ReplicaRow {
        let paxstore = replica == "paxstore";
        let in_memory = ["memory", "MemoryStorage", "bare"].contains(&backend);
        let durability = if in_memory { "none" } else { "immediate" };
        ReplicaRow {
            replica: replica.to_owned(),
            backend: backend.to_owned(),
            durability: durability.to_owned(),
            mode: mode.to_owned(),
            batch_size: batch,
            replicas: 3,
            decided_per_s: rate,
            decided_per_s_min: rate,
            decided_per_s_max: rate,
            p50_us: 1.0,
            p99_us: 2.0,
            reps: 1,
            writes_per_entry: if paxstore { 0.001 } else { 0.34 },
            syncs_per_entry: Some(0.0),
            vs_omnipaxos: paxstore.then_some(1.5),
            omnipaxos_pair: paxstore.then(|| format!("omnipaxos over {backend}")),
            wal_over_this: (!paxstore && backend == "rocksdb").then_some(2.5),
            vs_target: None,
            target_pair: None,
            fraction_of_ceiling: None,
        }
    }

    fn report_of(backends: &[&str], replica: Vec<ReplicaRow>) -> Report {
        Report {
            schema_version: SCHEMA_VERSION,
            quick: true,
            command: String::new(),
            machine: Machine::describe(std::path::Path::new(".")),
            backends: backends.iter().map(|b| (*b).to_owned()).collect(),
            duration_s: 0.0,
            ceiling: Ceiling {
                sync_writes_per_s: 1.0,
                sync_writes_per_s_min: 1.0,
                sync_writes_per_s_max: 1.0,
                p50_us: 1.0,
                p99_us: 1.0,
                write_bytes: 4096,
                file_bytes: 4096,
                reps: 1,
            },
            storage: Vec::new(),
            reopen: Vec::new(),
            replica,
            tcp_cluster: Vec::new(),
            recommendations: Vec::new(),
            failures: Vec::new(),
        }
    }

    /// The replica lines of what `report` lacks for `backends`.
    fn replica_lines(report: &Report, backends: &[(&str, bool)]) -> Vec<String> {
        let expected: Vec<(String, bool)> =
            backends.iter().map(|(b, p)| ((*b).to_owned(), *p)).collect();
        missing(report, &expected, true).into_iter().filter(|l| l.starts_with("replica")).collect()
    }

    #[test]
    fn the_omnipaxos_table_pairs_each_paxstore_cell_with_omnipaxos_on_the_same_backend() {
        let report = report_of(
            &["memory"],
            vec![
                row("paxstore", "memory", "upfront", 1, 3.0),
                row("omnipaxos", "memory", "upfront", 1, 2.0),
                row("omnipaxos", "MemoryStorage", "upfront", 1, 2.5),
            ],
        );
        let table = omnipaxos_table(&report);
        assert!(
            table.contains("| memory (none) | memory | **1.50×** (0.00100 vs 0.340 w/e) |"),
            "{table}"
        );
        let all = replica_table(&report);
        assert!(
            all.contains("| paxstore | memory |")
                && all.contains("| omnipaxos | memory |")
                && all.contains("| omnipaxos | MemoryStorage |"),
            "{all}"
        );
        assert!(replica_lines(&report, &[("memory", false)]).is_empty());
        let mut without = report.clone();
        without.replica.retain(|r| r.backend != "MemoryStorage");
        assert_eq!(
            replica_lines(&without, &[("memory", false)]),
            ["replica: no omnipaxos row for MemoryStorage"]
        );
        let mut without = report.clone();
        without.replica.retain(|r| r.replica == "paxstore" || r.backend != "memory");
        assert_eq!(
            replica_lines(&without, &[("memory", false)]),
            ["replica: no omnipaxos row for memory"]
        );
    }

    #[test]
    fn the_wal_table_gives_omnipaxos_on_the_wal_over_omnipaxos_on_each_other_backend() {
        let backends = [("wal", true), ("rocksdb", true)];
        let report = report_of(
            &["wal", "rocksdb"],
            vec![
                row("paxstore", "wal", "upfront", 100, 9000.0),
                row("omnipaxos", "wal", "upfront", 100, 5000.0),
                row("paxstore", "rocksdb", "upfront", 100, 4000.0),
                row("omnipaxos", "rocksdb", "upfront", 100, 2000.0),
            ],
        );
        let table = omnipaxos_wal_table(&report);
        assert!(
            table.contains("| rocksdb (immediate) | **2.50×** (5,000 vs 2,000/s) |"),
            "{table}"
        );
        assert!(!table.contains("| wal (immediate) |"), "the WAL is not compared with itself");
        assert!(replica_lines(&report, &backends).is_empty());
        let mut without = report.clone();
        without.replica.retain(|r| !(r.replica == "omnipaxos" && r.backend == "rocksdb"));
        assert_eq!(replica_lines(&without, &backends), ["replica: no omnipaxos row for rocksdb"]);
        assert!(omnipaxos_wal_table(&without).is_empty());
    }

    fn paired(cpu: f64, wall: f64) -> PairedRatios {
        let r = |x: f64| RatioSpread { min: x - 0.1, median: x, max: x + 0.1 };
        PairedRatios { wall: r(wall), cpu: Some(r(cpu)) }
    }

    fn with_target(mut r: ReplicaRow, pair: &str, ratios: PairedRatios) -> ReplicaRow {
        r.vs_target = Some(ratios);
        r.target_pair = Some(format!("omnipaxos over {pair}"));
        r
    }

    /// Each paxstore cell of the target comparison gets a row, judged in CPU time over
    /// memory and in wall time over the WAL, with the floor's ratios of the same cell
    /// beside it and the syncs and writes of both sides.
    #[test]
    fn the_target_table_sets_each_ratio_beside_the_floor_of_its_cell() {
        let mut wal_pax = row("paxstore", "wal", "stream", 1, 900.0);
        wal_pax.syncs_per_entry = Some(1.0);
        let mut rocks = row("omnipaxos", "rocksdb", "stream", 1, 300.0);
        rocks.syncs_per_entry = None;
        rocks.writes_per_entry = 2.0;
        let report = report_of(
            &["memory", "wal", "rocksdb"],
            vec![
                with_target(
                    row("paxstore", "memory", "stream", 1, 3.0),
                    "MemoryStorage",
                    paired(1.2, 2.0),
                ),
                row("omnipaxos", "MemoryStorage", "stream", 1, 2.5),
                with_target(
                    row("floor", "bare", "stream", 1, 5.0),
                    "MemoryStorage",
                    paired(1.8, 1.0),
                ),
                with_target(
                    row("floor", "memory", "stream", 1, 4.0),
                    "MemoryStorage",
                    paired(1.4, 1.0),
                ),
                with_target(wal_pax, "rocksdb", paired(9.0, 3.0)),
                with_target(row("floor", "wal", "stream", 1, 9.0), "rocksdb", paired(9.0, 3.5)),
                rocks,
                row("paxstore", "rocksdb", "stream", 1, 2.5),
            ],
        );
        let t = target_table(&report);
        let lines: Vec<&str> =
            t.lines().filter(|l| l.starts_with("| memory") || l.starts_with("| wal")).collect();
        assert_eq!(lines.len(), 2, "one row per paxstore cell with a target: {t}");
        assert_eq!(
            lines[0],
            "| memory (none) | MemoryStorage | stream | 1 | 1.20× (1.10–1.30) | 2.00× (1.90–2.10) | \
             1.50× **missed** | 1.80× (1.70–1.90) | 1.40× (1.30–1.50) | 0.00 vs 0.00 | 0.00100 vs 0.340 |"
        );
        assert_eq!(
            lines[1],
            "| wal (immediate) | rocksdb | stream | 1 | 9.00× (8.90–9.10) | 3.00× (2.90–3.10) | \
             2.00× met | – | 3.50× (3.40–3.60) | 1.00 vs – | 0.00100 vs 2.00 |"
        );
        let mut none = report.clone();
        none.replica.iter_mut().for_each(|r| r.vs_target = None);
        assert!(target_table(&none).is_empty());
    }

    #[test]
    fn numbers_format_for_people() {
        assert_eq!(fmt_num(1_234_567.4), "1,234,567");
        assert_eq!(fmt_num(999.0), "999");
        assert_eq!(fmt_num(1000.0), "1,000");
        assert_eq!(fmt_num(2.71), "2.71");
        assert_eq!(fmt_ratio(2.449), "2.45");
        assert_eq!(fmt_pct(0.871), "87%");
        assert_eq!(fmt_per_entry(0.003), "0.00300");
        assert_eq!(fmt_per_entry(1.0 / 3.0), "0.333");
        assert_eq!(fmt_per_entry(0.0), "0.00");
        assert_eq!(fmt_per_entry(2.0), "2.00");
    }
}
