//! Which backend for which need: the report's first table, ranked from the rows of the
//! same run. Add a need: one more `push(recommend(...))` in [`recommendations`].

use super::fmt::{fmt_num, fmt_ratio};
use super::model::{Recommendation, Report, HEADLINE_ENTRY_BYTES};

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
    // Decided entries/s of `replica` on each backend, 3 replicas, Immediate, 100 per batch.
    let durable_cluster = |replica: &'static str| {
        report
            .replica
            .iter()
            .filter(move |r| {
                r.replica == replica
                    && r.mode == "upfront"
                    && r.durability == "immediate"
                    && r.batch_size == 100
            })
            .map(|r| (r.backend.as_str(), r.decided_per_s))
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
        &rank(durable_cluster("paxstore"), true),
        "decided entries/s",
        true,
    ));
    push(recommend(
        "A durable 3-node OmniPaxos 0.2.4 service on paxstore (batch_size 100)",
        &rank(durable_cluster("omnipaxos"), true),
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
