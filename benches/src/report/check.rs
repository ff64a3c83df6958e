//! The check CI runs on a report (`check-report`): which cells a complete run must hold.

use super::model::{DeviceWrites, Report, OMNI_MEMORY_NAME};

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
    // The floor, beside the cells of the target table: bare and through memory, and
    // through the WAL.
    for (backend, _) in backends.iter().filter(|_| replica) {
        let floors: &[&str] = match backend.as_str() {
            "memory" => &["bare", "memory"],
            "wal" => &["wal"],
            _ => &[],
        };
        for floor in floors {
            if !report
                .replica
                .iter()
                .any(|r| r.replica == "floor" && r.backend == *floor && r.decided_per_s > 0.0)
            {
                out.push(format!("replica: no floor row for {floor}"));
            }
        }
    }
    out.extend(amplification_mismatches(report));
    out.extend(crate::tcp_cluster::missing(report, backends));
    for f in &report.failures {
        out.push(format!("failed cell {}: {}", f.cell, f.error));
    }
    out
}

/// Rows whose write-amplification column is not what their device counters give
/// ([`DeviceWrites::amplification`]): a column computed from another counter (the page
/// cache dirtied, the backend's own count) or left without its counters.
fn amplification_mismatches(report: &Report) -> Vec<String> {
    let mut out = Vec::new();
    for r in &report.storage {
        let expected = DeviceWrites::lowest(&r.device_writes);
        let same = match (r.device_bytes_per_payload_byte, expected) {
            (Some(a), Some(e)) => (a - e).abs() <= 1e-9 * e.abs().max(1.0),
            (None, None) => true,
            _ => false,
        };
        if !same {
            out.push(format!(
                "storage: {} {} {} {}/batch: device B / payload B is {:?}, the device counters \
                 give {:?}",
                r.backend, r.durability, r.op, r.batch, r.device_bytes_per_payload_byte, expected
            ));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::StorageRow;

    fn row(column: Option<f64>, writes: Vec<DeviceWrites>) -> StorageRow {
        StorageRow {
            backend: "wal".to_owned(),
            durability: "immediate".to_owned(),
            op: "append".to_owned(),
            batch: 100,
            entry_bytes: 128,
            entries_per_s: 1.0,
            batches_per_s: 1.0,
            p50_us: 1.0,
            p99_us: 1.0,
            entries_per_s_min: 1.0,
            entries_per_s_max: 1.0,
            reps: 2,
            fraction_of_ceiling: None,
            device_bytes_per_payload_byte: column,
            device_writes: writes,
        }
    }

    /// A WAL-like cell of two repetitions: the device saw 2.5 MB (then 3 MB: another
    /// process wrote meanwhile) for 1 MB of payload, 0.5 MB of it the idle baseline; the
    /// WAL counted 2.1 MB; the page cache dirtied 29 MB (large folios).
    fn reps() -> Vec<DeviceWrites> {
        let rep = DeviceWrites {
            device_bytes: 2_500_000,
            idle_bytes: 500_000,
            payload_bytes: 1_000_000,
            own_bytes: Some(2_100_000),
            dirtied_bytes: Some(29_000_000),
        };
        vec![rep, DeviceWrites { device_bytes: 3_000_000, ..rep }]
    }

    fn mismatches(rows: Vec<StorageRow>) -> Vec<String> {
        let mut report = crate::report::tests::report_of(&["wal"], Vec::new());
        report.storage = rows;
        amplification_mismatches(&report)
    }

    #[test]
    fn the_column_is_the_lowest_repetitions_device_bytes_per_payload_byte() {
        let r = reps();
        assert_eq!(r[0].amplification(), Some(2.5));
        assert_eq!(r[0].noise(), Some(0.5));
        assert_eq!(r[0].own_amplification(), Some(2.1));
        assert_eq!(DeviceWrites::lowest(&r), Some(2.5));
        assert_eq!(DeviceWrites::lowest(&[]), None);
        assert!(mismatches(vec![row(Some(2.5), reps()), row(None, Vec::new())]).is_empty());
    }

    /// The broken variants: the column taken from the page cache dirtied, from the
    /// backend's own count, from the device less the idle baseline, from the highest
    /// repetition, or with no counters behind it.
    #[test]
    fn a_column_from_another_counter_is_caught() {
        for wrong in [29.0, 2.1, 2.0, 3.0] {
            let found = mismatches(vec![row(Some(wrong), reps())]);
            assert_eq!(found.len(), 1, "{wrong}: {found:?}");
            assert!(found[0].contains("wal immediate append 100/batch"), "{found:?}");
        }
        assert_eq!(mismatches(vec![row(Some(2.5), Vec::new())]).len(), 1);
        assert_eq!(mismatches(vec![row(None, reps())]).len(), 1);
    }
}
