//! A cluster of real `omnipaxos::OmniPaxos` nodes in one process: messages are delivered by
//! a loop (and can be dropped to disconnect a node), time is `tick()`, and a node can be
//! dropped and built again over the same storage directory.
#![allow(dead_code, unreachable_pub, clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use omnipaxos::messages::Message;
use omnipaxos::storage::{Entry, NoSnapshot, Snapshot, Storage as OpStorage};
use omnipaxos::util::LogEntry;
use omnipaxos::{ClusterConfig, OmniPaxos, OmniPaxosConfig, ServerConfig};
use paxstore::Durability;
use paxstore_backends::BackendKind;
use paxstore_omnipaxos::{OmniEntry, OmniPaxosEntry, OmniStorage};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

/// An entry the cluster tests replicate: a number.
pub trait TestValue:
    OmniPaxosEntry + Entry<Snapshot: PartialEq> + PartialEq + Serialize + DeserializeOwned
{
    /// The entry holding `v`.
    fn of(v: u64) -> Self;
    /// The number it holds.
    fn value(&self) -> u64;
}

/// A number, for applications that do not snapshot (OmniPaxos' `NoSnapshot`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Value(pub u64);

impl Entry for Value {
    type Snapshot = NoSnapshot;
}

impl TestValue for Value {
    fn of(v: u64) -> Self {
        Value(v)
    }
    fn value(&self) -> u64 {
        self.0
    }
}

/// A number whose snapshot is a real one ([`Sum`]).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Counted(pub u64);

/// How many values a snapshot covers and their sum.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Sum {
    pub count: u64,
    pub sum: u64,
}

impl Entry for Counted {
    type Snapshot = Sum;
}

impl TestValue for Counted {
    fn of(v: u64) -> Self {
        Counted(v)
    }
    fn value(&self) -> u64 {
        self.0
    }
}

impl Snapshot<Counted> for Sum {
    fn create(entries: &[Counted]) -> Self {
        Sum { count: entries.len() as u64, sum: entries.iter().map(|v| v.0).sum() }
    }

    fn merge(&mut self, delta: Self) {
        self.count += delta.count;
        self.sum += delta.sum;
    }

    fn use_snapshots() -> bool {
        true
    }
}

/// An OmniPaxos storage on a paxstore backend chosen at run time.
pub type BackendStore<T> = OmniStorage<Box<dyn paxstore::Storage<OmniEntry<T>>>>;

/// Opens the store of node `pid` under `root` with `kind`.
pub fn open_backend<T: TestValue>(kind: BackendKind, root: &Path, pid: u64) -> BackendStore<T> {
    let dir = root.join(format!("node-{pid}"));
    // Buffered: the tests drop and reopen stores (a process crash, not a power loss), and
    // stay fast on every backend. `PAXSTORE_OMNI_DURABILITY=immediate` syncs every write.
    let durability = match std::env::var("PAXSTORE_OMNI_DURABILITY").as_deref() {
        Ok("immediate") => Durability::Immediate,
        _ => Durability::Buffered,
    };
    let storage = kind
        .open::<OmniEntry<T>>(&dir, durability)
        .unwrap_or_else(|e| panic!("{kind}: opening {}: {e}", dir.display()));
    OmniStorage::new(storage).unwrap_or_else(|e| panic!("{kind}: reading bounds: {e}"))
}

/// The backends compiled in, by name.
pub fn backends() -> Vec<BackendKind> {
    BackendKind::compiled_in()
}

type Opener<S> = Box<dyn Fn(u64) -> S>;

/// Three (or more) OmniPaxos nodes and the network between them.
pub struct Cluster<T: TestValue, S: OpStorage<T>> {
    pub name: String,
    pub root: tempfile::TempDir,
    nodes: BTreeMap<u64, Option<OmniPaxos<T, S>>>,
    connected: BTreeMap<u64, bool>,
    open: Opener<S>,
    pub config_id: u32,
    pub batch_size: usize,
    /// Messages delivered so far.
    pub delivered: u64,
}

impl<T: TestValue, S: OpStorage<T>> Cluster<T, S> {
    /// Nodes `1..=n` of configuration 1, each opened by `open(pid)`.
    pub fn new(
        name: &str,
        n: u64,
        batch_size: usize,
        open: impl Fn(&Path, u64) -> S + 'static,
    ) -> Self {
        let root = tempfile::Builder::new().prefix("paxstore-omnipaxos-").tempdir().unwrap();
        let path: PathBuf = root.path().to_owned();
        let open: Opener<S> = Box::new(move |pid| open(&path, pid));
        let mut cluster = Cluster {
            name: name.to_owned(),
            root,
            nodes: BTreeMap::new(),
            connected: BTreeMap::new(),
            open,
            config_id: 1,
            batch_size,
            delivered: 0,
        };
        for pid in 1..=n {
            cluster.nodes.insert(pid, None);
            cluster.connected.insert(pid, true);
        }
        for pid in 1..=n {
            cluster.start(pid);
        }
        cluster
    }

    fn config(&self, pid: u64) -> OmniPaxosConfig {
        OmniPaxosConfig {
            cluster_config: ClusterConfig {
                configuration_id: self.config_id,
                nodes: self.nodes.keys().copied().collect(),
                flexible_quorum: None,
            },
            server_config: ServerConfig {
                pid,
                batch_size: self.batch_size,
                election_tick_timeout: 1,
                resend_message_tick_timeout: 5,
                flush_batch_tick_timeout: 2,
                ..Default::default()
            },
        }
    }

    /// Builds node `pid` over its storage (a restart, if it ran before).
    pub fn start(&mut self, pid: u64) {
        let storage = (self.open)(pid);
        let node = self.config(pid).build(storage).expect("a valid configuration");
        self.nodes.insert(pid, Some(node));
    }

    /// Drops node `pid` (its storage is closed; its files stay).
    pub fn crash(&mut self, pid: u64) {
        self.nodes.insert(pid, None);
    }

    /// Restarts node `pid` over its files and tells its peers it is back.
    pub fn restart(&mut self, pid: u64) {
        self.start(pid);
        self.reconnect(pid);
    }

    pub fn node(&self, pid: u64) -> &OmniPaxos<T, S> {
        self.nodes[&pid].as_ref().unwrap_or_else(|| panic!("{}: node {pid} is down", self.name))
    }

    pub fn node_mut(&mut self, pid: u64) -> &mut OmniPaxos<T, S> {
        let name = self.name.clone();
        self.nodes
            .get_mut(&pid)
            .and_then(Option::as_mut)
            .unwrap_or_else(|| panic!("{name}: node {pid} is down"))
    }

    pub fn pids(&self) -> Vec<u64> {
        self.nodes.keys().copied().collect()
    }

    /// The nodes that are up and connected.
    pub fn live(&self) -> Vec<u64> {
        self.nodes
            .iter()
            .filter(|(pid, node)| node.is_some() && self.connected[*pid])
            .map(|(pid, _)| *pid)
            .collect()
    }

    /// Drops every message to and from `pid` from now on.
    pub fn disconnect(&mut self, pid: u64) {
        self.connected.insert(pid, false);
    }

    /// Delivers messages to and from `pid` again, and tells both sides.
    pub fn reconnect(&mut self, pid: u64) {
        self.connected.insert(pid, true);
        for other in self.live() {
            if other != pid {
                self.node_mut(other).reconnected(pid);
                self.node_mut(pid).reconnected(other);
            }
        }
    }

    /// Delivers messages until none is left, keeping those `keep` accepts.
    pub fn deliver_if(&mut self, mut keep: impl FnMut(&Message<T>) -> bool) {
        for _ in 0..10_000 {
            let mut msgs = Vec::new();
            for pid in self.pids() {
                if let Some(node) = self.nodes.get_mut(&pid).and_then(Option::as_mut) {
                    let mut out = Vec::new();
                    node.take_outgoing_messages(&mut out);
                    msgs.extend(out);
                }
            }
            if msgs.is_empty() {
                return;
            }
            for msg in msgs {
                let (from, to) = (msg.get_sender(), msg.get_receiver());
                let up = |pid: u64| self.connected.get(&pid) == Some(&true);
                if !(up(from) && up(to) && keep(&msg)) {
                    continue;
                }
                if let Some(node) = self.nodes.get_mut(&to).and_then(Option::as_mut) {
                    node.handle_incoming(msg);
                    self.delivered += 1;
                }
            }
        }
        panic!("{}: messages never stopped flowing", self.name);
    }

    /// Delivers every message until none is left.
    pub fn deliver(&mut self) {
        self.deliver_if(|_| true);
    }

    /// One tick on every node that is up, then delivery.
    pub fn tick(&mut self) {
        for node in self.nodes.values_mut().flatten() {
            node.tick();
        }
        self.deliver();
    }

    /// Ticks until `done` holds, at most `max` times.
    pub fn tick_until(&mut self, what: &str, max: usize, mut done: impl FnMut(&Self) -> bool) {
        for _ in 0..max {
            if done(self) {
                return;
            }
            self.tick();
        }
        assert!(done(self), "{}: {what} did not happen within {max} ticks", self.name);
    }

    /// The leader every live node follows, if they agree and it is in its accept phase.
    pub fn leader(&self) -> Option<u64> {
        let live = self.live();
        let leaders: Vec<_> = live.iter().map(|&p| self.node(p).get_current_leader()).collect();
        match leaders.first() {
            Some(Some((leader, true)))
                if leaders.iter().all(|l| l.map(|l| l.0) == Some(*leader)) =>
            {
                live.contains(leader).then_some(*leader)
            }
            _ => None,
        }
    }

    /// Ticks until the live nodes have agreed on the same leader for 3 ticks in a row (a
    /// just-started cluster can hand leadership over once); returns it.
    pub fn elect(&mut self) -> u64 {
        let mut stable = (None, 0);
        self.tick_until("a stable leader", 200, |c| {
            let leader = c.leader();
            stable = if leader.is_some() && leader == stable.0 {
                (leader, stable.1 + 1)
            } else {
                (leader, 0)
            };
            stable.1 >= 3
        });
        self.leader().unwrap_or_else(|| panic!("{}: no leader", self.name))
    }

    /// Proposes `values` at `pid`.
    pub fn propose(&mut self, pid: u64, values: impl IntoIterator<Item = u64>) {
        let name = self.name.clone();
        let node = self.node_mut(pid);
        for v in values {
            if let Err(err) = node.append(T::of(v)) {
                panic!("{name}: node {pid} refused a proposal: {err:?}");
            }
        }
    }

    /// Ticks until every live node has decided at least `idx`.
    pub fn decide_until(&mut self, idx: usize) {
        self.tick_until(&format!("decided index {idx} on every live node"), 500, |c| {
            c.live().iter().all(|&p| c.node(p).get_decided_idx() >= idx)
        });
    }

    /// Node `pid`'s decided log from 0, as OmniPaxos reads it.
    pub fn decided_log(&self, pid: u64) -> Vec<LogEntry<T>> {
        self.node(pid).read_decided_suffix(0).unwrap_or_default()
    }

    /// Node `pid`'s decided values by absolute index (trimmed and snapshotted prefixes
    /// left out).
    pub fn decided_values(&self, pid: u64) -> BTreeMap<usize, u64> {
        let mut out = BTreeMap::new();
        let mut idx = 0;
        for entry in self.decided_log(pid) {
            match entry {
                LogEntry::Decided(v) => {
                    out.insert(idx, v.value());
                    idx += 1;
                }
                LogEntry::Trimmed(i) => idx = i,
                LogEntry::Snapshotted(s) => idx = s.trimmed_idx,
                LogEntry::StopSign(..) => idx += 1,
                LogEntry::Undecided(_) => {
                    panic!("{}: undecided entry in a decided read", self.name)
                }
            }
        }
        out
    }

    /// Checks that every live node has the same decided index and, wherever two nodes
    /// both still hold a decided entry, the same entry. Returns the decided index.
    pub fn assert_same_decided(&self) -> usize {
        let live = self.live();
        let first = self.node(live[0]).get_decided_idx();
        for &pid in &live {
            assert_eq!(
                self.node(pid).get_decided_idx(),
                first,
                "{}: node {pid} decided a different index than node {}",
                self.name,
                live[0]
            );
        }
        let logs: Vec<_> = live.iter().map(|&p| (p, self.decided_values(p))).collect();
        for (a, log_a) in &logs {
            for (b, log_b) in &logs {
                for (idx, v) in log_a {
                    if let Some(w) = log_b.get(idx) {
                        assert_eq!(
                            v, w,
                            "{}: nodes {a} and {b} decided different entries at {idx}",
                            self.name
                        );
                    }
                }
            }
        }
        // A snapshot a node holds summarises the entries another node still holds.
        for &a in &live {
            let Some(LogEntry::Snapshotted(s)) = self.decided_log(a).into_iter().next() else {
                continue;
            };
            for (b, log_b) in &logs {
                if (0..s.trimmed_idx).all(|i| log_b.contains_key(&i)) {
                    let covered: Vec<T> = (0..s.trimmed_idx).map(|i| T::of(log_b[&i])).collect();
                    let want = T::Snapshot::create(&covered);
                    assert_eq!(
                        s.snapshot, want,
                        "{}: node {a}'s snapshot vs node {b}'s entries",
                        self.name
                    );
                }
            }
        }
        first
    }
}
