//! The cluster as users deploy it: three `paxstore-node` processes over TCP on
//! loopback, each fsyncing on its own, driven by closed-loop clients over the HTTP API.
//!
//! Per backend and durability, one cluster is started; for 1, 8 and 64 clients, each
//! client sends a put of a 128-byte value to the leader and sends the next one when the
//! answer arrives, for a fixed time after a short warm-up. A put is answered when it is
//! decided and applied on the leader (a quorum has it in storage). The figures: puts per
//! second, latency percentiles, and per node the storage writes and syncs per put
//! (from each node's `/v1/status`; the WAL counts its own syncs, other backends sync once
//! per write with `immediate`). Clients and nodes share the machine's cores. The disk's
//! ceiling is sampled right before each cell: the shared disk's rate varies within a run,
//! and the sync budget a cell used is read against the disk as it was then.
//!
//! The `paxstore-node` binary is found through `PAXSTORE_NODE_BIN`, or beside the report
//! binary (`scripts/report.sh` builds both).

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use paxstore::Durability;
use paxstore_backends::BackendKind;
use paxstore_node::local::{ClusterSpec, ProcessCluster};
use paxstore_node::KvClient;
use serde::{Deserialize, Serialize};

use crate::report::{self, Failure, Report};
use crate::stats;

/// The client counts of every cell.
pub const CLIENTS: [usize; 3] = [1, 8, 64];

/// One cell: a backend, a durability and a client count.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TcpClusterRow {
    /// Backend name.
    pub backend: String,
    /// `immediate`, `buffered`, or `none` (memory).
    pub durability: String,
    /// Closed-loop clients.
    pub clients: usize,
    /// Puts answered per second.
    pub ops_per_s: f64,
    /// Median put latency, µs.
    pub p50_us: f64,
    /// 99th-percentile put latency, µs.
    pub p99_us: f64,
    /// Storage syncs per put, per node (mean of the three nodes).
    pub syncs_per_op_per_node: f64,
    /// Storage writes per put, per node (mean of the three nodes).
    pub writes_per_op_per_node: f64,
    /// Puts that failed (timeouts, errors) during the measurement.
    pub errors: usize,
    /// Seconds measured.
    pub seconds: f64,
    /// The disk's ceiling (synced 4 KiB writes/s) sampled right before this cell; 0 in
    /// reports that predate it.
    #[serde(default)]
    pub ceiling_syncs_per_s: f64,
}

/// The sizes of the TCP cells.
#[derive(Clone, Copy, Debug)]
struct Plan {
    warmup: Duration,
    measure: Duration,
    buffered: bool,
}

impl Plan {
    fn new(quick: bool) -> Self {
        if quick {
            Plan {
                warmup: Duration::from_millis(200),
                measure: Duration::from_millis(600),
                buffered: false,
            }
        } else {
            Plan {
                warmup: Duration::from_millis(500),
                measure: Duration::from_secs(4),
                buffered: true,
            }
        }
    }
}

/// Where the `paxstore-node` binary is.
pub fn node_binary() -> Result<PathBuf, String> {
    if let Some(p) = std::env::var_os("PAXSTORE_NODE_BIN") {
        return Ok(PathBuf::from(p));
    }
    let me = std::env::current_exe().map_err(|e| format!("cannot find the report binary: {e}"))?;
    let bin = me.with_file_name("paxstore-node");
    if bin.is_file() {
        Ok(bin)
    } else {
        Err(format!(
            "the paxstore-node binary is not at {} (build it with `cargo build --release -p paxstore-node`, \
             as scripts/report.sh does, or set PAXSTORE_NODE_BIN)",
            bin.display()
        ))
    }
}

/// Runs every TCP cell over `backends`, sampling the disk's ceiling with `ceiling`
/// (synced writes/s) right before each; returns the rows and the cells that failed.
pub fn run(
    backends: &[BackendKind],
    quick: bool,
    work: &Path,
    ceiling: &mut dyn FnMut() -> Result<f64, String>,
) -> (Vec<TcpClusterRow>, Vec<Failure>) {
    let plan = Plan::new(quick);
    let mut rows = Vec::new();
    let mut failures = Vec::new();
    let bin = match node_binary() {
        Ok(b) => b,
        Err(e) => {
            failures.push(Failure { cell: "tcp cluster".into(), error: e });
            return (rows, failures);
        }
    };
    let runtime =
        match tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build() {
            Ok(rt) => rt,
            Err(e) => {
                failures.push(Failure {
                    cell: "tcp cluster".into(),
                    error: format!("tokio runtime: {e}"),
                });
                return (rows, failures);
            }
        };
    let mut cells: Vec<(BackendKind, Option<Durability>)> = Vec::new();
    for &k in backends {
        if k.is_persistent() {
            cells.push((k, Some(Durability::Immediate)));
            if plan.buffered {
                cells.push((k, Some(Durability::Buffered)));
            }
        } else {
            cells.push((k, None));
        }
    }
    for (i, (kind, durability)) in cells.iter().enumerate() {
        let label = format!(
            "tcp cluster x3 over {kind} {}",
            crate::workload::durability_label(*durability)
        );
        eprintln!("[tcp {}/{}] {label}, clients {CLIENTS:?} ...", i + 1, cells.len());
        let dir =
            work.join(format!("tcp-{kind}-{}", crate::workload::durability_label(*durability)));
        let ceiling_now = match ceiling() {
            Ok(c) => c,
            Err(e) => {
                failures.push(Failure { cell: label, error: format!("disk ceiling sample: {e}") });
                continue;
            }
        };
        let mut result = runtime.block_on(cell(&bin, *kind, *durability, &dir, plan, ceiling_now));
        let _ = std::fs::remove_dir_all(&dir);
        if let Err(CellError::Start(e)) = &result {
            // Free ports are chosen before the nodes bind them; another process can take
            // one in between. Start once more, on fresh ports, and say so.
            eprintln!(
                "[tcp {}/{}] {label} ... could not start ({e}); once more",
                i + 1,
                cells.len()
            );
            result = runtime.block_on(cell(&bin, *kind, *durability, &dir, plan, ceiling_now));
            let _ = std::fs::remove_dir_all(&dir);
        }
        let result = result.map_err(|e| match e {
            CellError::Start(e) => format!("starting the nodes (twice): {e}"),
            CellError::Run(e) => e,
        });
        match result {
            Ok(mut r) => {
                for row in &r {
                    eprintln!(
                        "[tcp {}/{}] {label} clients={} ... {} puts/s, p50 {:.0} µs, p99 {:.0} µs, {} syncs per put per node",
                        i + 1,
                        cells.len(),
                        row.clients,
                        report::fmt_num(row.ops_per_s),
                        row.p50_us,
                        row.p99_us,
                        report::fmt_per_entry(row.syncs_per_op_per_node)
                    );
                }
                rows.append(&mut r);
            }
            Err(e) => {
                eprintln!("[tcp {}/{}] {label} ... FAILED: {e}", i + 1, cells.len());
                failures.push(Failure { cell: label, error: e });
            }
        }
    }
    (rows, failures)
}

/// The per-node storage counters, summed over nodes: (writes, syncs).
async fn counters(apis: &[String]) -> Result<(u64, u64), String> {
    let mut total = (0, 0);
    for a in apis {
        let s =
            KvClient::new(a, Duration::from_secs(5)).status().await.map_err(|e| e.to_string())?;
        total.0 += s.storage_writes;
        total.1 += s.storage_syncs;
    }
    Ok(total)
}

async fn leader(apis: &[String]) -> Option<String> {
    let deadline = Instant::now() + Duration::from_secs(30);
    while Instant::now() < deadline {
        for a in apis {
            if let Ok(s) = KvClient::new(a, Duration::from_secs(1)).status().await {
                if s.is_leader {
                    return Some(a.clone());
                }
            }
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    None
}

/// What the clients measured in one window.
#[derive(Default)]
struct Window {
    latencies: Vec<Duration>,
    errors: usize,
}

/// `clients` closed-loop clients putting to `api` until `until`.
async fn drive(api: &str, clients: usize, until: Instant) -> Window {
    let value = Arc::new("v".repeat(report::HEADLINE_ENTRY_BYTES));
    let tasks: Vec<_> = (0..clients)
        .map(|c| {
            let (api, value) = (api.to_owned(), value.clone());
            tokio::spawn(async move {
                let mut w = Window::default();
                let mut client = KvClient::new(&api, Duration::from_secs(10));
                let mut n = 0usize;
                while Instant::now() < until {
                    let key = format!("key-{}", (c * 7919 + n) % 1024);
                    n += 1;
                    let t = Instant::now();
                    match client.put(&key, &value).await {
                        Ok(_) => w.latencies.push(t.elapsed()),
                        Err(_) => w.errors += 1,
                    }
                }
                w
            })
        })
        .collect();
    let mut all = Window::default();
    for t in tasks {
        if let Ok(w) = t.await {
            all.latencies.extend(w.latencies);
            all.errors += w.errors;
        }
    }
    all
}

/// Why a TCP cell failed: its nodes did not start (worth one more try on fresh ports), or
/// the run failed.
enum CellError {
    Start(String),
    Run(String),
}

async fn cell(
    bin: &Path,
    kind: BackendKind,
    durability: Option<Durability>,
    dir: &Path,
    plan: Plan,
    ceiling_syncs_per_s: f64,
) -> Result<Vec<TcpClusterRow>, CellError> {
    let mut spec = ClusterSpec::new(3, kind.name(), dir);
    spec.durability = durability.unwrap_or(Durability::Immediate);
    spec.extra_args = ["--request-timeout-ms", "10000", "--log-level", "warn"]
        .iter()
        .map(|s| s.to_string())
        .collect();
    let mut cluster =
        ProcessCluster::start(bin, &spec).map_err(|e| CellError::Start(e.to_string()))?;
    let apis: Vec<String> = cluster.nodes().iter().map(|n| n.api().to_string()).collect();
    let result = async {
        let leader = leader(&apis).await.ok_or("no leader within 30 s")?;
        let mut rows = Vec::new();
        for clients in CLIENTS {
            drive(&leader, clients, Instant::now() + plan.warmup).await;
            let before = counters(&apis).await?;
            let started = Instant::now();
            let mut w = drive(&leader, clients, started + plan.measure).await;
            let seconds = started.elapsed().as_secs_f64();
            let after = counters(&apis).await?;
            let ops = w.latencies.len();
            if ops == 0 {
                return Err(format!(
                    "no put completed with {clients} clients ({} errors)",
                    w.errors
                ));
            }
            w.latencies.sort_unstable();
            let per_op_per_node = |d: u64| d as f64 / ops as f64 / apis.len() as f64;
            rows.push(TcpClusterRow {
                backend: kind.name().to_owned(),
                durability: crate::workload::durability_label(durability).to_owned(),
                clients,
                ops_per_s: ops as f64 / seconds,
                p50_us: stats::percentile_us(&w.latencies, 0.5),
                p99_us: stats::percentile_us(&w.latencies, 0.99),
                syncs_per_op_per_node: per_op_per_node(after.1.saturating_sub(before.1)),
                writes_per_op_per_node: per_op_per_node(after.0.saturating_sub(before.0)),
                errors: w.errors,
                seconds,
                ceiling_syncs_per_s,
            });
        }
        Ok(rows)
    }
    .await;
    // A node that died during the run is the likeliest cause of a failure: name it and
    // quote its log, which goes away with the cell's directory.
    let result = result.map_err(|e: String| {
        let mut why = e;
        while let Ok(Some((id, status))) = cluster.exited() {
            let tail = cluster.node(id).map(|n| n.log_tail(2048)).unwrap_or_default();
            why.push_str(&format!("; node {id} exited ({status}), {tail}"));
        }
        CellError::Run(why)
    });
    let _ = cluster.stop(Duration::from_secs(10));
    result
}

/// The report's section: the TCP table beside the in-process cluster and the ceiling.
pub fn section(report: &Report) -> String {
    let mut md = String::new();
    let _ = writeln!(md, "## The cluster over TCP: three node processes\n");
    if report.tcp_cluster.is_empty() {
        let _ = writeln!(md, "Not measured in this run.\n");
        return md;
    }
    let _ = writeln!(
        md,
        "Three `paxstore-node` processes on loopback, each with its own store and its own \
         fsyncs; closed-loop clients put 128-byte values to the leader over HTTP (one \
         request in flight per client). A put is answered once decided and applied on the \
         leader. *Ceiling* is the disk's synced 4 KiB writes/s sampled right before the \
         cell (the whole run's: {}); *sync budget used per node* is one node's syncs/s \
         against it. *In-process* is the cluster of the table above for the same backend \
         (three replicas on one thread, `stream`, `batch_size` 1: one entry appended per \
         round).\n",
        report::fmt_num(report.ceiling.sync_writes_per_s)
    );
    let _ = writeln!(
        md,
        "| backend | durability | clients | puts/s | p50 ms | p99 ms | syncs per put per node | writes per put per node | ceiling syncs/s | sync budget used per node | in-process decided/s |\n\
         |---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
    );
    for r in &report.tcp_cluster {
        let in_process = report
            .replica_row("paxstore", &r.backend, &r.durability, "stream", 1)
            .map_or("–".to_owned(), |x| report::fmt_num(x.decided_per_s));
        // Reports from before the per-cell sample hold the whole run's ceiling only.
        let ceiling = if r.ceiling_syncs_per_s > 0.0 {
            r.ceiling_syncs_per_s
        } else {
            report.ceiling.sync_writes_per_s
        };
        let budget = if r.durability == "immediate" && ceiling > 0.0 {
            report::fmt_pct(r.ops_per_s * r.syncs_per_op_per_node / ceiling)
        } else {
            "–".to_owned()
        };
        let errors = if r.errors > 0 { format!(" ({} errors)", r.errors) } else { String::new() };
        let _ = writeln!(
            md,
            "| {} | {} | {} | {}{errors} | {:.2} | {:.2} | {} | {} | {} | {budget} | {in_process} |",
            r.backend,
            r.durability,
            r.clients,
            report::fmt_num(r.ops_per_s),
            r.p50_us / 1e3,
            r.p99_us / 1e3,
            report::fmt_per_entry(r.syncs_per_op_per_node),
            report::fmt_per_entry(r.writes_per_op_per_node),
            report::fmt_num(ceiling),
        );
    }
    let _ = writeln!(
        md,
        "\nSyncs and writes are counted by each node (`GET /v1/status`): the WAL counts its \
         own `fdatasync`s; the other backends sync once per write with `immediate`. A node \
         writes once per step, and a step takes every request and message that arrived \
         since the last, so with more clients each sync carries more puts. The sync budget \
         can pass 100%: the ceiling is one process syncing one file in a loop, while three \
         nodes sync their own files at the same time. Clients, nodes and their syncs share \
         one machine and one disk: a deployment adds the network's round trip and gains a \
         disk per node.\n"
    );
    md
}

/// What the TCP table lacks for `backends` (names).
pub fn missing(report: &Report, backends: &[(String, bool)]) -> Vec<String> {
    let mut out = Vec::new();
    for (backend, _) in backends {
        for clients in CLIENTS {
            let has = report
                .tcp_cluster
                .iter()
                .any(|r| &r.backend == backend && r.clients == clients && r.ops_per_s > 0.0);
            if !has {
                out.push(format!("tcp cluster: no row for {backend} with {clients} clients"));
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(backend: &str, clients: usize) -> TcpClusterRow {
        TcpClusterRow {
            backend: backend.into(),
            durability: "immediate".into(),
            clients,
            ops_per_s: 1000.0,
            p50_us: 1500.0,
            p99_us: 4000.0,
            syncs_per_op_per_node: 0.5,
            writes_per_op_per_node: 0.5,
            errors: 0,
            seconds: 1.0,
            ceiling_syncs_per_s: 0.0,
        }
    }

    #[test]
    fn missing_names_each_backend_and_client_count_without_a_row() {
        let mut rows: Vec<TcpClusterRow> = CLIENTS.iter().map(|&c| row("wal", c)).collect();
        rows.push(row("redb", 1));
        let expected = [("wal".to_owned(), true), ("redb".to_owned(), true)];
        let lines = |rows: &[TcpClusterRow]| {
            let mut r = empty();
            r.tcp_cluster = rows.to_vec();
            missing(&r, &expected)
        };
        assert_eq!(
            lines(&rows),
            [
                "tcp cluster: no row for redb with 8 clients",
                "tcp cluster: no row for redb with 64 clients"
            ]
        );
        rows.extend([row("redb", 8), row("redb", 64)]);
        assert!(lines(&rows).is_empty());
        // A row that measured nothing does not count.
        rows[0].ops_per_s = 0.0;
        assert_eq!(lines(&rows), ["tcp cluster: no row for wal with 1 clients"]);
    }

    #[test]
    fn the_section_shows_each_row_with_the_sync_budget() {
        let mut r = empty();
        r.ceiling.sync_writes_per_s = 2000.0;
        assert!(section(&r).contains("Not measured in this run."));
        r.tcp_cluster = vec![row("wal", 8)];
        let md = section(&r);
        // 1,000 puts/s x 0.5 syncs per put = 500 syncs/s of a 2,000 syncs/s disk (the
        // run's ceiling: this row has no sample of its own).
        assert!(
            md.contains(
                "| wal | immediate | 8 | 1,000 | 1.50 | 4.00 | 0.500 | 0.500 | 2,000 | 25% | – |"
            ),
            "{md}"
        );
        // Its own sample, when it has one: 500 syncs/s of a 1,000 syncs/s disk.
        r.tcp_cluster[0].ceiling_syncs_per_s = 1000.0;
        let md = section(&r);
        assert!(
            md.contains(
                "| wal | immediate | 8 | 1,000 | 1.50 | 4.00 | 0.500 | 0.500 | 1,000 | 50% | – |"
            ),
            "{md}"
        );
        // No budget without syncs the disk must keep.
        r.tcp_cluster[0].durability = "buffered".into();
        assert!(section(&r).contains("| 1,000 | – | – |"), "{}", section(&r));
    }

    fn empty() -> Report {
        crate::report::tests::empty_report()
    }
}
