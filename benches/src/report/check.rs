//! The check CI runs on a report (`check-report`): which cells a complete run must hold.

use super::model::{Report, OMNI_MEMORY_NAME};

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
    out.extend(crate::tcp_cluster::missing(report, backends));
    for f in &report.failures {
        out.push(format!("failed cell {}: {}", f.cell, f.error));
    }
    out
}
