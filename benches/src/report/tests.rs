//! The report's tables and check against hand-made reports.

use super::*;
use crate::machine::Machine;

fn row(replica: &str, backend: &str, mode: &str, batch: usize, rate: f64) -> ReplicaRow {
    let paxstore = replica == "paxstore";
    let durability =
        if backend == "memory" || backend == "MemoryStorage" { "none" } else { "immediate" };
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
    assert!(table.contains("| rocksdb (immediate) | **2.50×** (5,000 vs 2,000/s) |"), "{table}");
    assert!(!table.contains("| wal (immediate) |"), "the WAL is not compared with itself");
    assert!(replica_lines(&report, &backends).is_empty());
    let mut without = report.clone();
    without.replica.retain(|r| !(r.replica == "omnipaxos" && r.backend == "rocksdb"));
    assert_eq!(replica_lines(&without, &backends), ["replica: no omnipaxos row for rocksdb"]);
    assert!(omnipaxos_wal_table(&without).is_empty());
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
