//! The replicated cluster's tables: paxstore's replica against OmniPaxos on the same
//! backend, OmniPaxos on the WAL against the other backends, and every replica cell.

use std::fmt::Write as _;

use super::fmt::{fmt_num, fmt_pct, fmt_per_entry, fmt_ratio, spread};
use super::model::{ReplicaRow, Report};

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
