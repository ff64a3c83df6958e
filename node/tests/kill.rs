//! Real processes, really killed: three `paxstore-node` processes on loopback, clients
//! writing and reading concurrently, and a nemesis that SIGKILLs and restarts nodes (the
//! leader among them, several times) and pauses one (SIGSTOP/SIGCONT) to make it a
//! zombie. Every client operation is recorded with its invocation and completion time;
//! at the end:
//!
//! - the history is linearizable ([`paxstore_node::check`]);
//! - after a final acknowledged put per key, every node is SIGKILLed at once and
//!   restarted, and each key reads back the last acknowledged put (nothing acknowledged
//!   on a `Durability::Immediate` cluster is lost);
//! - every node holds the same decided log: the same applied state (digest) at the same
//!   index, and the same entries over the range every node still holds.
//!
//! A broken variant (`--unsafe-local-reads`: gets served from a node's local state) must
//! be rejected by the same checker, in a scenario where a restarted node cannot reach
//! the others.
//!
//! Knobs: `PAXSTORE_KILL_SECS` is how long the nemesis runs per backend (default 40
//! times `PAXSTORE_SOAK`, itself default 1). CI runs wal and redb; the sled and RocksDB
//! runs are `#[ignore]`d (reported as ignored, with the reason), and `--include-ignored`
//! runs them. The memory backend keeps nothing across a kill, so a killed node would
//! forget its promises: it is never run here. The longer run over every backend:
//!
//! ```text
//! PAXSTORE_KILL_SECS=300 cargo test --release -p paxstore-node --all-features --test kill -- --include-ignored
//! ```

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use paxstore_node::check::{check, HistOp, Verdict};
use paxstore_node::kv::{KvOp, KvOutcome};
use paxstore_node::local::{ClusterSpec, ProcessCluster};
use paxstore_node::{ClientError, KvClient};
use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};

const BIN: &str = env!("CARGO_BIN_EXE_paxstore-node");
const KEYS: [&str; 4] = ["k0", "k1", "k2", "k3"];
const CLIENTS: usize = 6;

/// One cluster at a time: the figures mean more without another cluster on the cores.
static SERIAL: Mutex<()> = Mutex::new(());

fn secs() -> u64 {
    let var = |name: &str| std::env::var(name).ok().and_then(|v| v.parse::<u64>().ok());
    var("PAXSTORE_KILL_SECS").unwrap_or_else(|| 40 * var("PAXSTORE_SOAK").unwrap_or(1).max(1))
}

fn node_args(extra: &[&str]) -> Vec<String> {
    let mut args: Vec<String> = [
        "--tick-ms",
        "10",
        "--heartbeat-ticks",
        "10",
        "--request-timeout-ms",
        "3000",
        "--snapshot-every",
        "300",
        "--log-level",
        "info",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    args.extend(extra.iter().map(|s| s.to_string()));
    args
}

/// The history, as clients record it.
struct Recorder {
    start: Instant,
    ops: Mutex<Vec<HistOp>>,
}

impl Recorder {
    fn now(&self) -> u64 {
        self.start.elapsed().as_nanos() as u64
    }

    fn record(&self, h: HistOp) {
        if let Ok(mut ops) = self.ops.lock() {
            ops.push(h);
        }
    }
}

/// What the clients and the nemesis did.
#[derive(Debug, Default)]
struct Tally {
    ok: usize,
    unknown: usize,
    not_applied: usize,
    kills: usize,
    leader_kills: usize,
    restarts: usize,
    pauses: usize,
}

/// Runs `op` through `client`, recording it; returns whether it completed.
async fn run_op(
    rec: &Recorder,
    client_id: usize,
    client: &mut KvClient,
    op: KvOp,
) -> Result<KvOutcome, ClientError> {
    let call = rec.now();
    let result = client.perform(&op).await;
    match &result {
        Ok(outcome) => rec.record(HistOp {
            client: client_id,
            op,
            call,
            completed: Some((rec.now(), outcome.clone())),
        }),
        Err(e) if e.may_have_taken_effect() => {
            rec.record(HistOp { client: client_id, op, call, completed: None })
        }
        // Certainly not applied: it is not part of the history.
        Err(_) => {}
    }
    result
}

async fn client_loop(
    id: usize,
    apis: Vec<String>,
    until: Instant,
    rec: Arc<Recorder>,
    tally: Arc<Mutex<Tally>>,
) {
    let mut rng = SmallRng::seed_from_u64(0x5eed ^ id as u64);
    let mut clients: Vec<KvClient> =
        apis.iter().map(|a| KvClient::new(a, Duration::from_secs(8))).collect();
    let mut node = id % apis.len();
    let mut seen: BTreeMap<&str, Option<String>> = BTreeMap::new();
    let mut n = 0u64;
    while Instant::now() < until {
        n += 1;
        let key = KEYS[rng.random_range(0..KEYS.len())];
        let value = format!("c{id}-{n}");
        let op = match rng.random_range(0..100) {
            0..40 => KvOp::Put { key: key.into(), value },
            40..75 => KvOp::Get { key: key.into() },
            75..95 => KvOp::Cas {
                key: key.into(),
                expected: seen.get(key).cloned().flatten(),
                new: value,
            },
            _ => KvOp::Delete { key: key.into() },
        };
        // Now and then, another node: appends on followers are forwarded.
        if rng.random_range(0..20) == 0 {
            node = rng.random_range(0..apis.len());
        }
        let result = run_op(&rec, id, &mut clients[node], op).await;
        let failed = match result {
            Ok(outcome) => {
                let v = match outcome {
                    KvOutcome::Get { value } => Some(value),
                    KvOutcome::Cas { current, .. } => Some(current),
                    KvOutcome::Put { .. } | KvOutcome::Delete { .. } => None,
                };
                if let Some(v) = v {
                    seen.insert(key, v);
                }
                if let Ok(mut t) = tally.lock() {
                    t.ok += 1;
                }
                false
            }
            Err(e) => {
                if let Ok(mut t) = tally.lock() {
                    if e.may_have_taken_effect() {
                        t.unknown += 1;
                    } else {
                        t.not_applied += 1;
                    }
                }
                true
            }
        };
        if failed {
            node = (node + 1) % apis.len();
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

/// The node that says it leads, among those running and not paused.
async fn leader(cluster: &ProcessCluster) -> Option<u64> {
    for n in cluster.nodes().iter().filter(|n| n.is_running() && !n.is_paused()) {
        let mut c = KvClient::new(&n.api().to_string(), Duration::from_millis(500));
        if let Ok(s) = c.status().await {
            if s.is_leader {
                return Some(s.id);
            }
        }
    }
    None
}

async fn wait_for_leader(cluster: &ProcessCluster, within: Duration) -> Option<u64> {
    let deadline = Instant::now() + within;
    while Instant::now() < deadline {
        if let Some(l) = leader(cluster).await {
            return Some(l);
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    None
}

/// Kills, restarts and pauses nodes until `until`, one node down at a time.
async fn nemesis(cluster: &mut ProcessCluster, until: Instant, tally: &Mutex<Tally>) {
    let mut rng = SmallRng::seed_from_u64(0xdead);
    let ids: Vec<u64> = cluster.nodes().iter().map(|n| n.addr.id).collect();
    let sleep = |ms: u64| tokio::time::sleep(Duration::from_millis(ms));
    while Instant::now() + Duration::from_millis(1500) < until {
        sleep(rng.random_range(800..2000)).await;
        let action = rng.random_range(0..10);
        let target = match action {
            0..5 => leader(cluster).await.unwrap_or(ids[rng.random_range(0..ids.len())]),
            _ => ids[rng.random_range(0..ids.len())],
        };
        let is_leader = leader(cluster).await == Some(target);
        let mut t = tally.lock().map_err(|_| ()).ok();
        if action < 8 {
            cluster.kill(target).ok();
            if let Some(t) = t.as_mut() {
                t.kills += 1;
                t.leader_kills += usize::from(is_leader);
            }
            drop(t);
            // Sometimes straight back up, sometimes after the others elected a leader.
            sleep(if action == 7 { 0 } else { rng.random_range(300..1500) }).await;
            cluster.restart(target).ok();
            if let Ok(mut t) = tally.lock() {
                t.restarts += 1;
            }
        } else {
            cluster.pause(target).ok();
            if let Some(t) = t.as_mut() {
                t.pauses += 1;
            }
            drop(t);
            sleep(rng.random_range(500..2000)).await;
            cluster.resume(target).ok();
        }
    }
}

/// Retries `op` on every node in turn until it completes (recording each attempt).
async fn until_done(
    rec: &Recorder,
    apis: &[String],
    op: impl Fn(usize) -> KvOp,
    within: Duration,
) -> Option<(KvOp, KvOutcome)> {
    let deadline = Instant::now() + within;
    let mut attempt = 0;
    while Instant::now() < deadline {
        let op = op(attempt);
        let mut c = KvClient::new(&apis[attempt % apis.len()], Duration::from_secs(8));
        if let Ok(outcome) = run_op(rec, 100, &mut c, op.clone()).await {
            return Some((op, outcome));
        }
        attempt += 1;
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    None
}

/// Waits until every node reports the same decided index, all applied; then compares
/// their states and the entries they all still hold. Returns (decided, common range).
async fn same_decided_log(apis: &[String]) -> Result<(usize, usize), String> {
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut last = Vec::new();
    while Instant::now() < deadline {
        let mut statuses = Vec::new();
        for a in apis {
            match KvClient::new(a, Duration::from_secs(2)).status().await {
                Ok(s) => statuses.push(s),
                Err(_) => break,
            }
        }
        let converged = statuses.len() == apis.len()
            && statuses.iter().all(|s| {
                s.decided_idx == statuses[0].decided_idx && s.applied_idx == s.decided_idx
            });
        if !converged {
            last = statuses;
            tokio::time::sleep(Duration::from_millis(200)).await;
            continue;
        }
        let decided = statuses[0].decided_idx;
        let from = statuses.iter().map(|s| s.compacted_idx).max().unwrap_or(0);
        let mut digests = Vec::new();
        for a in apis {
            let mut c = KvClient::new(a, Duration::from_secs(5));
            let state = c.state_digest().await.map_err(|e| e.to_string())?;
            let log = c.log_digest(from, decided).await.map_err(|e| e.to_string())?;
            digests.push((state.applied_idx, state.digest, log.digest));
        }
        return differing(&digests)
            .map(|e| format!("at decided index {decided}, log range [{from}, {decided}): {e}"))
            .map_or(Ok((decided, decided - from)), Err);
    }
    Err(format!("the nodes did not converge within 30 s: {last:?}"))
}

/// Each key's final read must be the last acknowledged put, or the value of a put whose
/// client never heard back (it may have been decided after the acknowledged one).
fn lost_puts(
    last_put: &BTreeMap<&str, String>,
    reads: &BTreeMap<&str, Option<String>>,
    history: &[HistOp],
) -> Vec<String> {
    let mut lost = Vec::new();
    for (key, value) in reads {
        let unacked = history.iter().any(|h| {
            h.completed.is_none()
                && matches!(&h.op, KvOp::Put { key: k, value: v } if k == key && Some(v) == value.as_ref())
        });
        if value.as_ref() != last_put.get(key) && !unacked {
            lost.push(format!(
                "{key}: read {value:?}, last acknowledged put {:?}",
                last_put.get(key)
            ));
        }
    }
    lost
}

/// `None` if every node's (applied index, state digest, log digest) is the same.
fn differing(digests: &[(usize, u64, u64)]) -> Option<String> {
    digests
        .iter()
        .any(|d| *d != digests[0])
        .then(|| format!("nodes differ: (applied, state digest, log digest) = {digests:?}"))
}

#[test]
fn the_end_checks_catch_a_lost_put_and_a_diverging_node() {
    let last: BTreeMap<&str, String> = [("k0", "final-k0-1".to_owned())].into();
    let put = |v: &str| KvOp::Put { key: "k0".into(), value: v.into() };
    let history = vec![
        HistOp { client: 0, op: put("final-k0-0"), call: 0, completed: None },
        HistOp {
            client: 0,
            op: put("final-k0-1"),
            call: 1,
            completed: Some((2, KvOutcome::Put { previous: None })),
        },
    ];
    let read = |v: Option<&str>| -> BTreeMap<&str, Option<String>> {
        [("k0", v.map(String::from))].into()
    };
    assert!(lost_puts(&last, &read(Some("final-k0-1")), &history).is_empty());
    // A put whose client never heard back may have been decided last.
    assert!(lost_puts(&last, &read(Some("final-k0-0")), &history).is_empty());
    // An older value, or nothing: the acknowledged put is lost.
    assert_eq!(lost_puts(&last, &read(Some("c1-5")), &history).len(), 1);
    assert_eq!(lost_puts(&last, &read(None), &history).len(), 1);
    assert_eq!(differing(&[(5, 1, 2), (5, 1, 2), (5, 1, 2)]), None);
    assert!(differing(&[(5, 1, 2), (5, 1, 3), (5, 1, 2)]).is_some());
    assert!(differing(&[(5, 1, 2), (5, 1, 2), (4, 1, 2)]).is_some());
}

fn tail(path: &Path) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(15)..].join("\n")
}

fn run_kill_test(backend: &str) {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let rt =
        tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let mut spec = ClusterSpec::new(3, backend, dir.path());
    spec.extra_args = node_args(&[]);
    let mut cluster = ProcessCluster::start(Path::new(BIN), &spec).unwrap();
    let apis: Vec<String> = cluster.nodes().iter().map(|n| n.api().to_string()).collect();
    let result = rt.block_on(async {
        wait_for_leader(&cluster, Duration::from_secs(30)).await.ok_or("no leader within 30 s")?;
        let rec = Arc::new(Recorder { start: Instant::now(), ops: Mutex::new(Vec::new()) });
        let tally = Arc::new(Mutex::new(Tally::default()));
        let until = Instant::now() + Duration::from_secs(secs());
        let clients: Vec<_> = (0..CLIENTS)
            .map(|id| tokio::spawn(client_loop(id, apis.clone(), until, rec.clone(), tally.clone())))
            .collect();
        nemesis(&mut cluster, until, &tally).await;
        for c in clients {
            c.await.map_err(|e| e.to_string())?;
        }
        for n in cluster.nodes().iter().map(|n| n.addr.id).collect::<Vec<_>>() {
            cluster.resume(n).ok();
            cluster.restart(n).map_err(|e| e.to_string())?;
        }
        wait_for_leader(&cluster, Duration::from_secs(30)).await.ok_or("no leader after the nemesis")?;

        // A last acknowledged put per key, then every node killed at once and restarted.
        let mut last_put = BTreeMap::new();
        for key in KEYS {
            let put = |attempt| KvOp::Put { key: key.into(), value: format!("final-{key}-{attempt}") };
            let (op, _) = until_done(&rec, &apis, put, Duration::from_secs(30))
                .await
                .ok_or(format!("the final put of {key} never completed"))?;
            if let KvOp::Put { value, .. } = op {
                last_put.insert(key, value);
            }
        }
        for n in 1..=3 {
            cluster.kill(n).map_err(|e| e.to_string())?;
        }
        for n in 1..=3 {
            cluster.restart(n).map_err(|e| e.to_string())?;
        }
        wait_for_leader(&cluster, Duration::from_secs(30)).await.ok_or("no leader after the full restart")?;
        let mut reads = BTreeMap::new();
        for key in KEYS {
            let get = |_| KvOp::Get { key: key.into() };
            let (_, outcome) = until_done(&rec, &apis, get, Duration::from_secs(30))
                .await
                .ok_or(format!("the final get of {key} never completed"))?;
            let KvOutcome::Get { value } = outcome else { return Err("not a get".into()) };
            reads.insert(key, value);
        }
        let history = rec.ops.lock().map_err(|e| e.to_string())?.clone();
        let lost = lost_puts(&last_put, &reads, &history);
        if !lost.is_empty() {
            return Err(format!("acknowledged puts lost after a full-cluster kill: {lost:?}"));
        }
        let (decided, common) = same_decided_log(&apis).await?;

        let history = rec.ops.lock().map_err(|e| e.to_string())?.clone();
        let started = Instant::now();
        let verdict = check(&history);
        let check_ms = started.elapsed().as_millis();
        let snapshots: Vec<usize> = {
            let mut v = Vec::new();
            for a in &apis {
                if let Ok(s) = KvClient::new(a, Duration::from_secs(2)).status().await {
                    v.push(s.compacted_idx);
                }
            }
            v
        };
        let t = tally.lock().map_err(|e| e.to_string())?;
        println!(
            "kill: backend={backend} secs={} ops={} ok={} unknown={} not_applied={} kills={} leader_kills={} restarts={} pauses={} full_cluster_kills=1 decided={decided} common_log={common} compacted={snapshots:?} check_ms={check_ms} verdict={verdict:?}",
            secs(), history.len(), t.ok, t.unknown, t.not_applied, t.kills, t.leader_kills, t.restarts, t.pauses,
        );
        if verdict != Verdict::Linearizable {
            return Err(format!("the history is not linearizable: {verdict:?}"));
        }
        if t.leader_kills < 2 || t.ok < 100 {
            return Err(format!("too little happened to mean anything: {t:?}"));
        }
        Ok::<(), String>(())
    });
    if let Err(e) = result {
        let logs: Vec<String> = cluster
            .nodes()
            .iter()
            .map(|n| format!("--- {}:\n{}", n.log.display(), tail(&n.log)))
            .collect();
        let kept = dir.keep();
        panic!(
            "kill test over {backend} failed: {e}\n(directory kept: {})\n{}",
            kept.display(),
            logs.join("\n")
        );
    }
    cluster.stop(Duration::from_secs(10)).ok();
}

#[cfg(feature = "wal")]
#[test]
fn kill_test_wal() {
    run_kill_test("wal");
}

#[cfg(feature = "redb")]
#[test]
fn kill_test_redb() {
    run_kill_test("redb");
}

#[cfg(feature = "sled")]
#[test]
#[ignore = "the longer run: CI runs wal and redb; `-- --include-ignored` runs this one"]
fn kill_test_sled() {
    run_kill_test("sled");
}

#[cfg(feature = "rocksdb")]
#[test]
#[ignore = "the longer run: CI runs wal and redb; `-- --include-ignored` runs this one"]
fn kill_test_rocksdb() {
    run_kill_test("rocksdb");
}

/// A node restarted while the other two are paused: it knows only what its store holds.
/// With `--unsafe-local-reads` its get answers from that stale state, after a newer put
/// was acknowledged, and the checker must reject the history; through the log, the get
/// waits for the others and returns the newer value.
/// Returns the verdict and what the get read (`None`: it never completed).
fn stale_read_scenario(unsafe_reads: bool) -> Result<(Verdict, Option<Option<String>>), String> {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let rt =
        tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let mut spec = ClusterSpec::new(3, "wal", dir.path());
    spec.extra_args = node_args(if unsafe_reads { &["--unsafe-local-reads"] } else { &[] });
    let mut cluster = ProcessCluster::start(Path::new(BIN), &spec).map_err(|e| e.to_string())?;
    rt.block_on(async {
        let rec = Recorder { start: Instant::now(), ops: Mutex::new(Vec::new()) };
        let leader = wait_for_leader(&cluster, Duration::from_secs(30)).await.ok_or("no leader")?;
        let follower = (1..=3).find(|&n| n != leader).ok_or("no follower")?;
        let others: Vec<u64> = (1..=3).filter(|&n| n != follower).collect();
        let api = |c: &ProcessCluster, id: u64| {
            c.node(id).map(|n| n.api().to_string()).map_err(|e| e.to_string())
        };
        let mut to_leader = KvClient::new(&api(&cluster, leader)?, Duration::from_secs(8));
        let put = |v: &str| KvOp::Put { key: "k".into(), value: v.into() };
        run_op(&rec, 0, &mut to_leader, put("old")).await.map_err(|e| e.to_string())?;
        cluster.kill(follower).map_err(|e| e.to_string())?;
        run_op(&rec, 0, &mut to_leader, put("new")).await.map_err(|e| e.to_string())?;
        for &n in &others {
            cluster.pause(n).map_err(|e| e.to_string())?;
        }
        cluster.restart(follower).map_err(|e| e.to_string())?;
        let mut to_follower = KvClient::new(&api(&cluster, follower)?, Duration::from_secs(8));
        let deadline = Instant::now() + Duration::from_secs(20);
        while to_follower.status().await.is_err() && Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        // The others come back a second later.
        let resume_at = Instant::now() + Duration::from_secs(1);
        let read = async {
            let mut value = None;
            while value.is_none() && Instant::now() < deadline {
                if let Ok(KvOutcome::Get { value: v }) =
                    run_op(&rec, 1, &mut to_follower, KvOp::Get { key: "k".into() }).await
                {
                    value = Some(v);
                }
            }
            value
        };
        let resume = async {
            tokio::time::sleep_until(resume_at.into()).await;
            for &n in &others {
                cluster.resume(n).map_err(|e| e.to_string())?;
            }
            Ok::<(), String>(())
        };
        let (value, resumed) = tokio::join!(read, resume);
        resumed?;
        let history = rec.ops.lock().map_err(|e| e.to_string())?.clone();
        Ok((check(&history), value))
    })
}

#[cfg(feature = "wal")]
#[test]
fn the_checker_rejects_reads_served_from_local_state() {
    let (verdict, read) = stale_read_scenario(true).unwrap();
    assert!(matches!(verdict, Verdict::Violation { .. }), "read {read:?}, verdict {verdict:?}");
    assert!(matches!(&read, Some(v) if v.as_deref() != Some("new")), "{read:?}");
}

#[cfg(feature = "wal")]
#[test]
fn reads_through_the_log_pass_the_same_scenario() {
    let (verdict, read) = stale_read_scenario(false).unwrap();
    assert_eq!(verdict, Verdict::Linearizable);
    assert_eq!(read, Some(Some("new".into())), "the read must complete, after the others resume");
}
