//! The Markdown report (`report.md`): its sections in order, the headline table and the
//! storage and reopen tables. The replica tables live in `replica_tables.rs`; the charts it
//! embeds are listed in `charts.rs`.

use std::fmt::Write as _;

use super::charts::CHARTS;
use super::fmt::{fmt_num, fmt_pct, spread};
use super::model::{Report, StorageRow, HEADLINE_ENTRY_BYTES};
use super::replica_tables::{omnipaxos_table, omnipaxos_wal_table, replica_table, target_table};
use super::targets::wal_targets;

/// The headline table: durable appends of 128-byte entries, one row per backend, one
/// column per batch size, with the batch-1 commit rate as a fraction of the ceiling.
pub fn headline_table(report: &Report, batches: &[usize]) -> String {
    let mut md = String::new();
    let _ = write!(md, "| backend (Immediate, 128 B entries) |");
    for b in batches {
        let _ = write!(md, " {b}/batch entries/s |");
    }
    let _ = writeln!(md, " 1/batch vs ceiling | device B / payload B ({}/batch) |", join(batches));
    let _ = writeln!(md, "|---|{}---|---:|", "---:|".repeat(batches.len()));
    for backend in &report.backends {
        let mut cells = String::new();
        let mut amps = Vec::new();
        let mut any = false;
        for b in batches {
            let row = report.storage_row(backend, "immediate", "append", *b, HEADLINE_ENTRY_BYTES);
            amps.push(fmt_amplification(row));
            match row {
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
        let _ = writeln!(md, "| {backend} |{cells} {frac} | {} |", amps.join(" · "));
    }
    let _ = writeln!(
        md,
        "| *disk ceiling: 4 KiB write + fdatasync* | {} syncs/s |{} 100% | |",
        fmt_num(report.ceiling.sync_writes_per_s),
        " |".repeat(batches.len().saturating_sub(1))
    );
    md
}

/// `a · b · c` of batch sizes.
fn join(batches: &[usize]) -> String {
    batches.iter().map(ToString::to_string).collect::<Vec<_>>().join(" · ")
}

/// A write amplification figure, or `–` where none was measured.
/// A row's write amplification, `2.13 (idle 0.40)`: the lowest repetition's device bytes
/// per payload byte, and the idle baseline of that repetition (other processes' writes in
/// a window of the same length just before it).
fn fmt_amplification(row: Option<&StorageRow>) -> String {
    let Some(r) = row else { return "–".to_owned() };
    let Some(a) = r.device_bytes_per_payload_byte else { return "–".to_owned() };
    let idle =
        r.device_writes.iter().find(|d| d.amplification() == Some(a)).and_then(|d| d.noise());
    match idle {
        Some(n) => format!("{a:.2} (idle {n:.2})"),
        None => format!("{a:.2}"),
    }
}

/// A row's write amplification by the backend's own count (the lowest repetition), where
/// it keeps one.
fn fmt_own(row: &StorageRow) -> String {
    let own = row.device_writes.iter().filter_map(|d| d.own_amplification());
    own.min_by(f64::total_cmp).map_or(String::new(), |a| format!("{a:.2}"))
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
        let _ = writeln!(md, "## The WAL's targets (issues 4 and 14)\n");
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
        "| backend | durability | op | batch | entry | entries/s | spread | calls/s | p50 µs | p99 µs | vs ceiling | device B / payload B | own B / payload B |\n\
         |---|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
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
            "| {} | {} | {} | {} | {} B | {} | {} | {} | {} | {} | {} | {} | {} |",
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
            r.fraction_of_ceiling.map_or("".to_owned(), fmt_pct),
            fmt_amplification(Some(r)),
            fmt_own(r)
        );
    }
    let _ = writeln!(
        md,
        "\n\"device B / payload B\" is write amplification: the bytes that reached the \
         block device (its sectors-written counter, `/sys/block/<dev>/stat`, read after a \
         `syncfs` before and after each repetition: the backend's buffered data and the \
         filesystem's journal are in it) per byte of entry payload appended (128 B entries: \
         framing, keys and whole 4 KiB blocks per sync count as amplification; store \
         creation and warm-up are in it, so short cells overstate fixed costs such as a \
         first segment's or memtable's setup). The counter is the device's: other \
         processes' writes during the repetition are in it too, so each repetition gives \
         an upper bound and the column shows the lowest. \"idle\" is what the device \
         took in a window of the same length just before that repetition ({} ms sampled, \
         scaled): a figure not well above its idle figure is mostly other processes' \
         writes and cannot be told apart from them. What a backend writes after the cell \
         (compaction, close) is not counted. \"own B / payload B\" is the backend's own \
         count of bytes written, where it keeps one (the WAL: records, headers and zeros \
         ahead of the tail), free of other processes' writes and of the filesystem's. \
         `/proc/self/io` `write_bytes` (page cache dirtied, charged per folio: it \
         overstates large writes) is in `report.json` as `dirtied_bytes`, not here.\n",
        crate::runner::IDLE_WINDOW.as_millis()
    );

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
         `upfront` appends a run of entries on the leader (1,000, or 10 batches if more; made \
         before the clock starts, as the workload's work) and then delivers rounds until all are decided on every replica; `stream` appends one \
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
