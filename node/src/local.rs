//! A cluster of `paxstore-node run` processes on loopback: what `paxstore-node
//! local-cluster` starts, and what the kill test and the TCP benchmark drive (kill,
//! restart, pause and resume single nodes).

use std::fs::File;
use std::io;
use std::io::{Read, Seek, SeekFrom, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use paxstore::Durability;
use rustix::process::{kill_process, Pid, Signal};

use crate::api::NodeStatus;
use crate::NodeAddr;

/// `n` TCP ports on 127.0.0.1 that were free a moment ago (bound to port 0, then
/// released).
pub fn free_ports(n: usize) -> io::Result<Vec<u16>> {
    let listeners: Vec<TcpListener> =
        (0..n).map(|_| TcpListener::bind("127.0.0.1:0")).collect::<io::Result<_>>()?;
    listeners.iter().map(|l| l.local_addr().map(|a| a.port())).collect()
}

/// How long [`ProcessCluster::start`] waits for every node to listen (a node opens its
/// store first; a large RocksDB or fjall store takes a while to open).
pub const START_TIMEOUT: Duration = Duration::from_secs(60);

/// What cluster to start.
#[derive(Clone, Debug)]
pub struct ClusterSpec {
    /// How many nodes (ids 1..=n).
    pub nodes: usize,
    /// The backend name (`--backend`).
    pub backend: String,
    /// The durability of every node's store.
    pub durability: Durability,
    /// The cluster's directory: node `i` keeps its store in `dir/node-i` and logs to
    /// `dir/node-i.log`.
    pub dir: PathBuf,
    /// The client API ports, one per node (empty: free ports).
    pub api_ports: Vec<u16>,
    /// The peer ports, one per node (empty: free ports).
    pub peer_ports: Vec<u16>,
    /// More arguments for every `paxstore-node run`.
    pub extra_args: Vec<String>,
}

impl ClusterSpec {
    /// `nodes` nodes over `backend` in `dir`, with `Immediate` durability and free ports.
    pub fn new(nodes: usize, backend: &str, dir: &Path) -> Self {
        ClusterSpec {
            nodes,
            backend: backend.to_owned(),
            durability: Durability::Immediate,
            dir: dir.to_owned(),
            api_ports: Vec::new(),
            peer_ports: Vec::new(),
            extra_args: Vec::new(),
        }
    }
}

/// One node process of a [`ProcessCluster`].
#[derive(Debug)]
pub struct NodeProcess {
    /// The node's id and addresses.
    pub addr: NodeAddr,
    /// Its directory.
    pub dir: PathBuf,
    /// Its log file (stdout and stderr).
    pub log: PathBuf,
    args: Vec<String>,
    child: Option<Child>,
    paused: bool,
}

impl NodeProcess {
    /// Its client API address.
    pub fn api(&self) -> SocketAddr {
        self.addr.api.unwrap_or(self.addr.peer)
    }

    /// Whether its process runs (it may be paused).
    pub fn is_running(&self) -> bool {
        self.child.is_some()
    }

    /// Whether it is paused (SIGSTOP).
    pub fn is_paused(&self) -> bool {
        self.paused
    }

    /// Its process id, while it runs.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// The last `max` bytes of its log (lossy UTF-8), for error messages; a log that
    /// cannot be read says why instead.
    pub fn log_tail(&self, max: u64) -> String {
        let read = || -> io::Result<String> {
            let mut f = File::open(&self.log)?;
            let len = f.metadata()?.len();
            f.seek(SeekFrom::Start(len.saturating_sub(max)))?;
            let mut bytes = Vec::new();
            f.read_to_end(&mut bytes)?;
            Ok(String::from_utf8_lossy(&bytes).trim_end().to_owned())
        };
        match read() {
            Ok(tail) if tail.is_empty() => format!("(its log {} is empty)", self.log.display()),
            Ok(tail) => format!("its log {} ends with:\n{tail}", self.log.display()),
            Err(e) => format!("(its log {} cannot be read: {e})", self.log.display()),
        }
    }
}

/// Node processes on loopback, all of one cluster. Dropping it kills them all.
#[derive(Debug)]
pub struct ProcessCluster {
    bin: PathBuf,
    nodes: Vec<NodeProcess>,
}

impl ProcessCluster {
    /// Starts `spec.nodes` processes of the `paxstore-node` binary `bin` and waits until
    /// each listens (see [`ProcessCluster::wait_listening`], up to [`START_TIMEOUT`]). With
    /// free ports (`spec.api_ports`/`peer_ports` empty) a port can be taken by another
    /// process between choosing it and the node binding it: the error then names the node
    /// and quotes its log, and a caller that owns `spec.dir` may start again.
    pub fn start(bin: &Path, spec: &ClusterSpec) -> io::Result<Self> {
        let n = spec.nodes;
        let pick = |given: &Vec<u16>| -> io::Result<Vec<u16>> {
            if given.is_empty() {
                free_ports(n)
            } else if given.len() == n {
                Ok(given.clone())
            } else {
                Err(io::Error::new(
                    io::ErrorKind::InvalidInput,
                    format!("{} ports for {n} nodes", given.len()),
                ))
            }
        };
        let (api, peer) = (pick(&spec.api_ports)?, pick(&spec.peer_ports)?);
        let addrs: Vec<NodeAddr> = (0..n)
            .map(|i| NodeAddr {
                id: i as u64 + 1,
                peer: SocketAddr::from(([127, 0, 0, 1], peer[i])),
                api: Some(SocketAddr::from(([127, 0, 0, 1], api[i]))),
            })
            .collect();
        std::fs::create_dir_all(&spec.dir)?;
        let mut nodes = Vec::with_capacity(n);
        for addr in &addrs {
            let dir = spec.dir.join(format!("node-{}", addr.id));
            let mut args = vec![
                "run".to_owned(),
                "--id".to_owned(),
                addr.id.to_string(),
                "--backend".to_owned(),
                spec.backend.clone(),
                "--durability".to_owned(),
                spec.durability.to_string(),
                "--dir".to_owned(),
                dir.display().to_string(),
            ];
            for a in &addrs {
                args.push("--node".to_owned());
                args.push(a.to_string());
            }
            args.extend(spec.extra_args.iter().cloned());
            let log = spec.dir.join(format!("node-{}.log", addr.id));
            nodes.push(NodeProcess {
                addr: addr.clone(),
                dir,
                log,
                args,
                child: None,
                paused: false,
            });
        }
        let mut cluster = ProcessCluster { bin: bin.to_owned(), nodes };
        for id in 1..=n as u64 {
            cluster.restart(id)?;
        }
        cluster.wait_listening(START_TIMEOUT)?;
        Ok(cluster)
    }

    /// Waits until every running node answers on its client API as itself (its status
    /// names its id: a connection alone could reach another process holding the port). A
    /// node binds its peer port before its API port, so both are bound by then. A node
    /// whose process exits first, or one still not answering after `timeout`, is an error
    /// that quotes the end of its log.
    pub fn wait_listening(&mut self, timeout: Duration) -> io::Result<()> {
        let deadline = Instant::now() + timeout;
        for node in &mut self.nodes {
            while let Some(child) = &mut node.child {
                if let Some(status) = child.try_wait()? {
                    node.child = None;
                    return Err(io::Error::other(format!(
                        "node {} exited while starting ({status}); {}",
                        node.addr.id,
                        node.log_tail(2048)
                    )));
                }
                if answers_as(node.api(), node.addr.id) {
                    break;
                }
                if Instant::now() >= deadline {
                    return Err(io::Error::new(
                        io::ErrorKind::TimedOut,
                        format!(
                            "node {} is not listening on {} after {timeout:?}; {}",
                            node.addr.id,
                            node.api(),
                            node.log_tail(2048)
                        ),
                    ));
                }
                std::thread::sleep(Duration::from_millis(20));
            }
        }
        Ok(())
    }

    /// Every node.
    pub fn nodes(&self) -> &[NodeProcess] {
        &self.nodes
    }

    /// Node `id`.
    pub fn node(&self, id: u64) -> io::Result<&NodeProcess> {
        self.nodes
            .iter()
            .find(|n| n.addr.id == id)
            .ok_or_else(|| io::Error::new(io::ErrorKind::NotFound, format!("no node {id}")))
    }

    fn node_mut(&mut self, id: u64) -> io::Result<&mut NodeProcess> {
        self.nodes
            .iter_mut()
            .find(|n| n.addr.id == id)
            .ok_or_else(|| io::Error::new(io::ErrorKind::NotFound, format!("no node {id}")))
    }

    /// Starts node `id`'s process if it is not running (its log file is appended to).
    pub fn restart(&mut self, id: u64) -> io::Result<()> {
        let bin = self.bin.clone();
        let node = self.node_mut(id)?;
        if node.child.is_some() {
            return Ok(());
        }
        let log = File::options().create(true).append(true).open(&node.log)?;
        let child = Command::new(&bin)
            .args(&node.args)
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log)
            .spawn()?;
        node.child = Some(child);
        node.paused = false;
        Ok(())
    }

    /// SIGKILLs node `id` and reaps it (resuming it first if paused, so it dies at once).
    pub fn kill(&mut self, id: u64) -> io::Result<()> {
        let node = self.node_mut(id)?;
        if let Some(mut child) = node.child.take() {
            child.kill()?;
            child.wait()?;
        }
        node.paused = false;
        Ok(())
    }

    /// SIGSTOPs node `id`: it holds its sockets but answers nothing.
    pub fn pause(&mut self, id: u64) -> io::Result<()> {
        self.signal(id, Signal::STOP)?;
        self.node_mut(id)?.paused = true;
        Ok(())
    }

    /// SIGCONTs node `id`.
    pub fn resume(&mut self, id: u64) -> io::Result<()> {
        self.signal(id, Signal::CONT)?;
        self.node_mut(id)?.paused = false;
        Ok(())
    }

    fn signal(&mut self, id: u64, sig: Signal) -> io::Result<()> {
        let node = self.node_mut(id)?;
        match &node.child {
            Some(child) => Ok(kill_process(Pid::from_child(child), sig)?),
            None => {
                Err(io::Error::new(io::ErrorKind::NotFound, format!("node {id} is not running")))
            }
        }
    }

    /// Whether any node's process exited on its own; returns its id and status.
    pub fn exited(&mut self) -> io::Result<Option<(u64, std::process::ExitStatus)>> {
        for node in &mut self.nodes {
            if let Some(child) = &mut node.child {
                if let Some(status) = child.try_wait()? {
                    node.child = None;
                    return Ok(Some((node.addr.id, status)));
                }
            }
        }
        Ok(None)
    }

    /// SIGTERMs every node and waits up to `grace` for them to exit; SIGKILLs the rest.
    /// Returns the ids of the nodes that had to be killed.
    pub fn stop(&mut self, grace: Duration) -> io::Result<Vec<u64>> {
        for node in &mut self.nodes {
            if let Some(child) = &node.child {
                let pid = Pid::from_child(child);
                if node.paused {
                    kill_process(pid, Signal::CONT)?;
                }
                // A node that already exited is reaped below.
                let _ = kill_process(pid, Signal::TERM);
            }
        }
        let deadline = Instant::now() + grace;
        let mut killed = Vec::new();
        for node in &mut self.nodes {
            let Some(mut child) = node.child.take() else { continue };
            loop {
                if child.try_wait()?.is_some() {
                    break;
                }
                if Instant::now() >= deadline {
                    child.kill()?;
                    child.wait()?;
                    killed.push(node.addr.id);
                    break;
                }
                std::thread::sleep(Duration::from_millis(20));
            }
        }
        Ok(killed)
    }
}

/// Whether the process answering `GET /v1/status` at `api` says it is node `id`. A probe
/// of one fixed request: a refused or slow connection, or any other answer, is `false`.
fn answers_as(api: SocketAddr, id: u64) -> bool {
    let probe = || -> io::Result<bool> {
        let mut s = TcpStream::connect_timeout(&api, Duration::from_millis(200))?;
        s.set_read_timeout(Some(Duration::from_secs(1)))?;
        s.write_all(
            format!("GET /v1/status HTTP/1.1\r\nHost: {api}\r\nConnection: close\r\n\r\n")
                .as_bytes(),
        )?;
        let mut answer = Vec::new();
        s.read_to_end(&mut answer)?;
        let body =
            answer.windows(4).position(|w| w == b"\r\n\r\n").map_or(&[][..], |i| &answer[i + 4..]);
        Ok(serde_json::from_slice::<NodeStatus>(body).is_ok_and(|status| status.id == id))
    };
    probe().unwrap_or(false)
}

impl Drop for ProcessCluster {
    fn drop(&mut self) {
        for node in &mut self.nodes {
            if let Some(mut child) = node.child.take() {
                let _ = child.kill();
                let _ = child.wait();
            }
        }
    }
}
