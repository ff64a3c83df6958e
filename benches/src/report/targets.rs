//! The WAL's benchmark targets (issue 4), checked against the ceiling and RocksDB of the
//! same run.

use super::fmt::{fmt_num, fmt_pct, fmt_ratio};
use super::model::{Report, HEADLINE_ENTRY_BYTES};

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
