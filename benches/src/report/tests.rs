//! The report's tables and check against hand-made reports.

use super::*;
use crate::machine::Machine;

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

/// A report with no rows, for tests here and beside the report (TCP cells, targets).
pub(crate) fn empty_report() -> Report {
    report_of(&[], Vec::new())
}

pub(super) fn report_of(backends: &[&str], replica: Vec<ReplicaRow>) -> Report {
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
            row("floor", "bare", "upfront", 1, 4.0),
            row("floor", "memory", "upfront", 1, 3.5),
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
    without.replica.retain(|r| r.replica != "omnipaxos" || r.backend != "memory");
    assert_eq!(
        replica_lines(&without, &[("memory", false)]),
        ["replica: no omnipaxos row for memory"]
    );
    let mut without = report.clone();
    without.replica.retain(|r| r.replica != "floor");
    assert_eq!(
        replica_lines(&without, &[("memory", false)]),
        ["replica: no floor row for bare", "replica: no floor row for memory"]
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
            row("floor", "wal", "upfront", 100, 9500.0),
        ],
    );
    let table = omnipaxos_wal_table(&report);
    assert!(table.contains("| rocksdb (immediate) | **2.50×** (5,000 vs 2,000/s) |"), "{table}");
    assert!(!table.contains("| wal (immediate) |"), "the WAL is not compared with itself");
    assert!(replica_lines(&report, &backends).is_empty());
    let mut without = report.clone();
    without.replica.retain(|r| !(r.replica == "omnipaxos" && r.backend == "rocksdb"));
    assert_eq!(replica_lines(&without, &backends), ["replica: no omnipaxos row for rocksdb"]);
    assert!(omnipaxos_wal_table(&without).is_empty());
    let mut without = report.clone();
    without.replica.retain(|r| r.replica != "floor");
    assert_eq!(replica_lines(&without, &backends), ["replica: no floor row for wal"]);
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
            with_target(row("floor", "bare", "stream", 1, 5.0), "MemoryStorage", paired(1.8, 1.0)),
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
