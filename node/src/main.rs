//! `paxstore-node`: run a node, start a local cluster, or talk to one.
//!
//! ```text
//! paxstore-node run --id 1 --node 1=127.0.0.1:9001,127.0.0.1:8001 --node 2=... --dir DIR --backend wal
//! paxstore-node local-cluster --nodes 3 --backend wal
//! paxstore-node kv --node 127.0.0.1:8001 put greeting hello
//! paxstore-node status --node 127.0.0.1:8001
//! ```

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::{Args, Parser, Subcommand};
use paxstore::Durability;
use paxstore_backends::BackendKind;
use paxstore_node::local::{ClusterSpec, ProcessCluster};
use paxstore_node::{KvClient, Node, NodeAddr, NodeConfig};

/// A paxstore replica as a networked process: a replicated key-value service.
#[derive(Debug, Parser)]
#[command(version)]
struct Cli {
    /// Log level: error, warn, info, debug or trace.
    #[arg(long, global = true, default_value = "info")]
    log_level: tracing::Level,
    #[command(subcommand)]
    command: Cmd,
}

#[derive(Debug, Subcommand)]
enum Cmd {
    /// Run one node (until SIGTERM or Ctrl-C).
    Run(RunArgs),
    /// Start a cluster of node processes on 127.0.0.1 (until Ctrl-C).
    LocalCluster(LocalArgs),
    /// Put, get, delete or compare-and-set a key through a node.
    Kv(KvArgs),
    /// Print a node's status as JSON.
    Status {
        /// The node's client API address.
        #[arg(long, default_value = "127.0.0.1:8001")]
        node: String,
    },
}

#[derive(Debug, Args)]
struct RunArgs {
    /// This node's id.
    #[arg(long)]
    id: u64,
    /// Every node of the cluster, this one included: ID=PEER_ADDR[,API_ADDR] (repeat).
    #[arg(long = "node", required = true)]
    nodes: Vec<NodeAddr>,
    /// The cluster's id; nodes of another cluster are refused.
    #[arg(long, default_value_t = 1)]
    cluster_id: u64,
    /// The storage backend: wal, rocksdb, redb, sled or memory (those compiled in).
    #[arg(long, default_value = "wal")]
    backend: BackendKind,
    /// immediate (a write survives power loss) or buffered (a process crash).
    #[arg(long, default_value = "immediate")]
    durability: Durability,
    /// The node's directory.
    #[arg(long)]
    dir: PathBuf,
    /// Listen for clients here instead of this node's API address in --node.
    #[arg(long)]
    api_listen: Option<std::net::SocketAddr>,
    /// Milliseconds per replica tick.
    #[arg(long, default_value_t = 10)]
    tick_ms: u64,
    /// Ticks per heartbeat round (a leader is replaced after about two silent rounds).
    #[arg(long, default_value_t = 10)]
    heartbeat_ticks: u32,
    /// Milliseconds a client request waits to be applied before the answer is 504.
    #[arg(long, default_value_t = 5000)]
    request_timeout_ms: u64,
    /// Snapshot and trim the log every this many applied commands (0: never).
    #[arg(long, default_value_t = 10_000)]
    snapshot_every: usize,
    /// The largest frame a peer may send, in bytes.
    #[arg(long, default_value_t = 64 << 20)]
    max_frame_bytes: usize,
    /// Serve gets from local state without the log: NOT linearizable. Exists only to
    /// show that the kill test's checker catches it.
    #[cfg(feature = "testing")]
    #[arg(long)]
    unsafe_local_reads: bool,
}

#[derive(Debug, Args)]
struct LocalArgs {
    /// How many nodes.
    #[arg(long, default_value_t = 3)]
    nodes: usize,
    /// The storage backend of every node.
    #[arg(long, default_value = "wal")]
    backend: BackendKind,
    /// The durability of every node's store.
    #[arg(long, default_value = "immediate")]
    durability: Durability,
    /// The cluster's directory (default: a new one in the temporary directory).
    #[arg(long)]
    dir: Option<PathBuf>,
    /// The first client API port; node i listens on API_PORT + i - 1.
    #[arg(long, default_value_t = 8001)]
    api_port: u16,
    /// The first peer port; node i listens on PEER_PORT + i - 1.
    #[arg(long, default_value_t = 9001)]
    peer_port: u16,
    /// More arguments for every node's `run`, after `--`.
    #[arg(last = true)]
    node_args: Vec<String>,
}

#[derive(Debug, Args)]
struct KvArgs {
    /// The node's client API address.
    #[arg(long, default_value = "127.0.0.1:8001")]
    node: String,
    /// Seconds to wait for an answer.
    #[arg(long, default_value_t = 10)]
    timeout: u64,
    #[command(subcommand)]
    op: KvCmd,
}

#[derive(Debug, Subcommand)]
enum KvCmd {
    /// Set KEY to VALUE.
    Put {
        /// The key.
        key: String,
        /// The value.
        value: String,
    },
    /// Print KEY's value (linearizable: the read goes through the log).
    Get {
        /// The key.
        key: String,
    },
    /// Remove KEY.
    Delete {
        /// The key.
        key: String,
    },
    /// Set KEY to NEW if it holds --expected (or is absent, with --absent).
    Cas {
        /// The key.
        key: String,
        /// The value written if the key holds the expected one.
        new: String,
        /// The value the key must hold.
        #[arg(long, conflicts_with = "absent", required_unless_present = "absent")]
        expected: Option<String>,
        /// The key must be absent.
        #[arg(long)]
        absent: bool,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    tracing_subscriber::fmt().with_max_level(cli.log_level).with_writer(std::io::stderr).init();
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("paxstore-node: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let result = match cli.command {
        Cmd::Run(args) => runtime.block_on(run(args)),
        Cmd::LocalCluster(args) => runtime.block_on(local_cluster(args)),
        Cmd::Kv(args) => runtime.block_on(kv(args)),
        Cmd::Status { node } => runtime.block_on(status(node)),
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("paxstore-node: {e}");
            ExitCode::FAILURE
        }
    }
}

/// Resolves on SIGINT (Ctrl-C) or SIGTERM.
async fn stop_signal() -> Result<(), String> {
    use tokio::signal::unix::{signal, SignalKind};
    let mut term = signal(SignalKind::terminate()).map_err(|e| format!("SIGTERM handler: {e}"))?;
    let mut int = signal(SignalKind::interrupt()).map_err(|e| format!("SIGINT handler: {e}"))?;
    tokio::select! {
        _ = term.recv() => {}
        _ = int.recv() => {}
    }
    Ok(())
}

async fn run(args: RunArgs) -> Result<ExitCode, String> {
    let mut config = NodeConfig::new(args.id, args.nodes, args.backend, args.dir);
    config.cluster_id = args.cluster_id;
    config.durability = args.durability;
    config.api_listen = args.api_listen;
    config.tick = Duration::from_millis(args.tick_ms);
    config.heartbeat_ticks = args.heartbeat_ticks;
    config.request_timeout = Duration::from_millis(args.request_timeout_ms);
    config.snapshot_every = args.snapshot_every;
    config.max_frame_bytes = args.max_frame_bytes;
    #[cfg(feature = "testing")]
    {
        config.unsafe_local_reads = args.unsafe_local_reads;
    }
    let node = Node::start(config).await.map_err(|e| e.to_string())?;
    stop_signal().await?;
    node.shutdown().await;
    Ok(ExitCode::SUCCESS)
}

async fn local_cluster(args: LocalArgs) -> Result<ExitCode, String> {
    if args.nodes == 0 {
        return Err("--nodes must be at least 1".into());
    }
    let bin = std::env::current_exe().map_err(|e| format!("cannot find this program: {e}"))?;
    let dir = match args.dir {
        Some(d) => d,
        None => std::env::temp_dir().join(format!("paxstore-local-{}", std::process::id())),
    };
    let ports = |first: u16| -> Result<Vec<u16>, String> {
        (0..args.nodes)
            .map(|i| {
                u16::try_from(i)
                    .ok()
                    .and_then(|i| first.checked_add(i))
                    .ok_or_else(|| format!("port {first} + {i} is past 65535"))
            })
            .collect()
    };
    let mut spec = ClusterSpec::new(args.nodes, args.backend.name(), &dir);
    spec.durability = args.durability;
    spec.api_ports = ports(args.api_port)?;
    spec.peer_ports = ports(args.peer_port)?;
    spec.extra_args = args.node_args;
    let mut cluster =
        ProcessCluster::start(&bin, &spec).map_err(|e| format!("starting the nodes: {e}"))?;
    println!(
        "paxstore local cluster: {} nodes, backend {} ({}), data in {}",
        args.nodes,
        args.backend,
        args.durability,
        dir.display()
    );
    for n in cluster.nodes() {
        println!(
            "  node {}: client API http://{}  (peers {}, log {})",
            n.addr.id,
            n.api(),
            n.addr.peer,
            n.log.display()
        );
    }
    let apis: Vec<String> = cluster.nodes().iter().map(|n| n.api().to_string()).collect();
    match wait_for_leader(&apis, Duration::from_secs(30)).await {
        Some(leader) => println!("leader: node {leader}. Ctrl-C stops the cluster."),
        None => println!("no leader yet (see the node logs). Ctrl-C stops the cluster."),
    }
    let stop = stop_signal();
    tokio::pin!(stop);
    let outcome = loop {
        tokio::select! {
            r = &mut stop => break r.map(|()| None),
            _ = tokio::time::sleep(Duration::from_millis(500)) => {
                match cluster.exited() {
                    Ok(Some((id, status))) => break Ok(Some((id, status))),
                    Ok(None) => {}
                    Err(e) => break Err(format!("watching the nodes: {e}")),
                }
            }
        }
    };
    let killed =
        cluster.stop(Duration::from_secs(10)).map_err(|e| format!("stopping the nodes: {e}"))?;
    if !killed.is_empty() {
        eprintln!("nodes {killed:?} did not stop within 10 s and were killed");
    }
    match outcome? {
        None => {
            println!("stopped; the data stays in {}", dir.display());
            Ok(ExitCode::SUCCESS)
        }
        Some((id, status)) => Err(format!(
            "node {id} exited on its own ({status}); the others are stopped; see its log"
        )),
    }
}

/// Polls the nodes until one reports itself leader; its id, or `None` at the deadline.
async fn wait_for_leader(apis: &[String], within: Duration) -> Option<u64> {
    let deadline = tokio::time::Instant::now() + within;
    let mut clients: Vec<KvClient> =
        apis.iter().map(|a| KvClient::new(a, Duration::from_secs(1))).collect();
    while tokio::time::Instant::now() < deadline {
        for c in &mut clients {
            if let Ok(s) = c.status().await {
                if s.is_leader {
                    return Some(s.id);
                }
            }
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    None
}

async fn kv(args: KvArgs) -> Result<ExitCode, String> {
    let mut client = KvClient::new(&args.node, Duration::from_secs(args.timeout));
    let show = |v: &Option<String>| v.clone().unwrap_or_else(|| "(absent)".into());
    match args.op {
        KvCmd::Put { key, value } => {
            let previous = client.put(&key, &value).await.map_err(|e| e.to_string())?;
            println!("ok (was {})", show(&previous));
        }
        KvCmd::Get { key } => match client.get(&key).await.map_err(|e| e.to_string())? {
            Some(v) => println!("{v}"),
            None => {
                eprintln!("{key}: absent");
                return Ok(ExitCode::from(1));
            }
        },
        KvCmd::Delete { key } => {
            let previous = client.delete(&key).await.map_err(|e| e.to_string())?;
            println!("ok (was {})", show(&previous));
        }
        KvCmd::Cas { key, new, expected, absent } => {
            let expected = if absent { None } else { expected };
            let a = client.cas(&key, expected.as_deref(), &new).await.map_err(|e| e.to_string())?;
            if a.ok {
                println!("ok");
            } else {
                println!("not set: {key} is {}", show(&a.current));
                return Ok(ExitCode::from(1));
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

async fn status(node: String) -> Result<ExitCode, String> {
    let mut client = KvClient::new(&node, Duration::from_secs(5));
    let s = client.status().await.map_err(|e| e.to_string())?;
    println!("{}", serde_json::to_string_pretty(&s).map_err(|e| e.to_string())?);
    Ok(ExitCode::SUCCESS)
}
