//! The replicated cluster's tables: paxstore's replica against OmniPaxos on the same
//! backend, OmniPaxos on the WAL against the other backends, and every replica cell.

use std::fmt::Write as _;

use super::fmt::{fmt_num, fmt_pct, fmt_per_entry, fmt_ratio, spread};
use super::model::{PairedRatios, RatioSpread, ReplicaRow, Report, OMNI_MEMORY_NAME};

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
