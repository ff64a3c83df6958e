//! The WAL's benchmark targets (issues 4 and 14), checked against the ceiling and the
//! other backends of the same run.

use super::fmt::{fmt_num, fmt_pct, fmt_ratio};
use super::model::{Report, StorageRow, HEADLINE_ENTRY_BYTES};

/// One of the WAL's benchmark targets, checked against this run's figures.
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

/// "The WAL's entries/s ≥ `factor` × `base`'s" over two cells of the same run.
fn entries_ratio(
    what: &str,
    target: &str,
    wal: Option<&StorageRow>,
    base: Option<&StorageRow>,
    factor: f64,
) -> Target {
    Target {
        what: what.into(),
        target: target.into(),
        measured: match (wal, base) {
            (Some(w), Some(b)) => format!(
                "{} vs {} entries/s = {}×",
                fmt_num(w.entries_per_s),
                fmt_num(b.entries_per_s),
                fmt_ratio(w.entries_per_s / b.entries_per_s)
            ),
            _ => "not measured".into(),
        },
        met: wal.zip(base).map(|(w, b)| w.entries_per_s >= factor * b.entries_per_s),
    }
}

/// The WAL's targets: issue 4's against the ceiling and RocksDB, then issue 14's (first
/// on reopen, 2.5× RocksDB at 100 per batch, reads at 90 % of the memory backend).
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
    let (w100, r100) = (wal("immediate", "append", 100), rocks("immediate", "append", 100));
    out.push(entries_ratio(
        "Immediate, 100 entries/batch",
        "≥ 2× RocksDB entries/s",
        w100,
        r100,
        2.0,
    ));
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
    out.push(entries_ratio(
        "get_entries of 100 recent entries",
        "≥ 5× RocksDB",
        wal("immediate", "read_recent", 100),
        rocks("immediate", "read_recent", 100),
        5.0,
    ));

    // Issue 14.
    let fastest_other =
        report.reopen.iter().filter(|r| r.backend != "wal").min_by(|a, b| a.ms.total_cmp(&b.ms));
    out.push(Target {
        what: "Reopen, against every backend".into(),
        target: "first (the lowest time)".into(),
        measured: match (w, fastest_other) {
            (Some(w), Some(o)) => format!(
                "{} ms vs {} {} ms = {}×",
                fmt_num(w.ms),
                o.backend,
                fmt_num(o.ms),
                fmt_ratio(o.ms / w.ms)
            ),
            _ => "not measured".into(),
        },
        met: w.zip(fastest_other).map(|(w, o)| w.ms <= o.ms),
    });
    out.push(entries_ratio(
        "Immediate, 100 entries/batch",
        "≥ 2.5× RocksDB entries/s",
        w100,
        r100,
        2.5,
    ));
    out.push(entries_ratio(
        "get_entries of 100 recent entries",
        "≥ 90% of the memory backend",
        wal("immediate", "read_recent", 100),
        report.storage_row("memory", "none", "read_recent", 100, e),
        0.9,
    ));
    out
}

#[cfg(test)]
mod tests {
    use super::super::model::{Ceiling, ReopenRow};
    use super::*;

    fn storage(backend: &str, durability: &str, op: &str, batch: usize, eps: f64) -> StorageRow {
        StorageRow {
            backend: backend.into(),
            durability: durability.into(),
            op: op.into(),
            batch,
            entry_bytes: HEADLINE_ENTRY_BYTES,
            entries_per_s: eps,
            batches_per_s: eps / batch as f64,
            p50_us: 1.0,
            p99_us: 2.0,
            entries_per_s_min: eps,
            entries_per_s_max: eps,
            reps: 1,
            fraction_of_ceiling: None,
            device_bytes_per_payload_byte: None,
            device_writes: Vec::new(),
        }
    }

    fn reopen(backend: &str, ms: f64) -> ReopenRow {
        ReopenRow {
            backend: backend.into(),
            entries: 1_000_000,
            entry_bytes: HEADLINE_ENTRY_BYTES,
            ms,
            ms_min: ms,
            ms_max: ms,
            reps: 1,
        }
    }

    /// A run where the WAL is 3× RocksDB at 100 per batch, reads at `read_share` of
    /// memory and reopens in `wal_ms` against redb's 3 ms.
    fn run(read_share: f64, wal_ms: f64) -> Report {
        let mut r = super::super::tests::empty_report();
        r.ceiling = Ceiling { sync_writes_per_s: 1000.0, ..r.ceiling };
        r.storage = vec![
            storage("wal", "immediate", "append", 1, 950.0),
            storage("wal", "immediate", "append", 100, 300_000.0),
            storage("rocksdb", "immediate", "append", 100, 100_000.0),
            storage("wal", "buffered", "append", 1000, 4e6),
            storage("wal", "immediate", "read_recent", 100, 10e6 * read_share),
            storage("rocksdb", "immediate", "read_recent", 100, 1e6),
            storage("memory", "none", "read_recent", 100, 10e6),
        ];
        r.reopen = vec![reopen("wal", wal_ms), reopen("redb", 3.0), reopen("rocksdb", 40.0)];
        r
    }

    fn met(report: &Report, target: &str) -> Option<bool> {
        let all = wal_targets(report);
        all.iter().find(|t| t.target == target).and_then(|t| t.met)
    }

    #[test]
    fn every_target_is_met_by_a_run_that_meets_it() {
        let targets = wal_targets(&run(0.95, 2.0));
        assert_eq!(targets.len(), 8);
        for t in &targets {
            assert_eq!(t.met, Some(true), "{t:?}");
        }
    }

    #[test]
    fn a_wal_second_on_reopen_or_slow_reads_misses_issue_14s_targets() {
        let second = run(0.95, 3.5);
        assert_eq!(met(&second, "first (the lowest time)"), Some(false));
        assert!(wal_targets(&second)
            .iter()
            .any(|t| t.measured == "3.50 ms vs redb 3.00 ms = 0.86×"));
        assert_eq!(met(&run(0.85, 2.0), "≥ 90% of the memory backend"), Some(false));
        let mut slow = run(0.95, 2.0);
        slow.storage[2].entries_per_s = 130_000.0; // the WAL at 2.3× RocksDB
        assert_eq!(met(&slow, "≥ 2.5× RocksDB entries/s"), Some(false));
        assert_eq!(met(&slow, "≥ 2× RocksDB entries/s"), Some(true));
    }

    #[test]
    fn a_missing_cell_is_not_measured_rather_than_met() {
        let mut r = run(0.95, 2.0);
        r.storage.retain(|s| s.backend != "memory");
        r.reopen.retain(|s| s.backend == "wal");
        assert_eq!(met(&r, "≥ 90% of the memory backend"), None);
        assert_eq!(met(&r, "first (the lowest time)"), None);
    }
}
