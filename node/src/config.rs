//! How a node is set up: who it is, its cluster, where it listens, its storage and
//! its timers.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::str::FromStr;
use std::time::Duration;

use paxstore::{ClusterConfig, Durability};
use paxstore_backends::BackendKind;
use paxstore_paxos::ReplicaConfig;

use crate::wire::{Hello, PROTOCOL_VERSION};

/// One node of the cluster as every node knows it: its id, where peers reach it, and
/// where its client API listens.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NodeAddr {
    /// The node's id (non-zero).
    pub id: u64,
    /// Where the other nodes connect to it.
    pub peer: SocketAddr,
    /// Where its HTTP client API listens, if known.
    pub api: Option<SocketAddr>,
}

/// The error of parsing a [`NodeAddr`].
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("bad node {given:?}: {reason} (expected ID=PEER_ADDR[,API_ADDR], e.g. 1=127.0.0.1:9001,127.0.0.1:8001)")]
pub struct ParseNodeError {
    /// What was given.
    pub given: String,
    /// What is wrong with it.
    pub reason: String,
}

impl FromStr for NodeAddr {
    type Err = ParseNodeError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let bad = |reason: String| ParseNodeError { given: s.to_owned(), reason };
        let (id, addrs) = s.split_once('=').ok_or_else(|| bad("no '='".into()))?;
        let id: u64 = id.trim().parse().map_err(|e| bad(format!("id {id:?}: {e}")))?;
        if id == 0 {
            return Err(bad("node ids start at 1".into()));
        }
        let (peer, api) = match addrs.split_once(',') {
            Some((p, a)) => (p, Some(a)),
            None => (addrs, None),
        };
        let peer = peer.trim().parse().map_err(|e| bad(format!("peer address {peer:?}: {e}")))?;
        let api = match api {
            Some(a) => Some(a.trim().parse().map_err(|e| bad(format!("API address {a:?}: {e}")))?),
            None => None,
        };
        Ok(NodeAddr { id, peer, api })
    }
}

impl std::fmt::Display for NodeAddr {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}={}", self.id, self.peer)?;
        if let Some(api) = self.api {
            write!(f, ",{api}")?;
        }
        Ok(())
    }
}

/// Everything a node needs to run.
#[derive(Clone, Debug)]
pub struct NodeConfig {
    /// This node's id; one of `nodes`.
    pub id: u64,
    /// Identifies the cluster; peers of another cluster are refused.
    pub cluster_id: u64,
    /// Every node of the cluster, this one included.
    pub nodes: Vec<NodeAddr>,
    /// Where the HTTP client API listens (default: this node's `api` in `nodes`).
    pub api_listen: Option<SocketAddr>,
    /// The storage engine.
    pub backend: BackendKind,
    /// When a storage write is durable.
    pub durability: Durability,
    /// The node's directory; the store lives in `dir/store`.
    pub dir: PathBuf,
    /// The length of one replica tick.
    pub tick: Duration,
    /// Ticks per heartbeat round of leader election.
    pub heartbeat_ticks: u32,
    /// How long a client request waits for its command to be applied before the node
    /// answers that the outcome is unknown.
    pub request_timeout: Duration,
    /// Fold the applied log into a snapshot (and trim it) every this many applied
    /// commands; 0 never does.
    pub snapshot_every: usize,
    /// The largest frame a peer may send.
    pub max_frame_bytes: usize,
    /// Frames waiting for one peer's connection, at most (more are dropped).
    pub peer_queue_frames: usize,
    /// Bytes waiting for one peer's connection, at most (more are dropped).
    pub peer_queue_bytes: usize,
    /// Inputs (peer messages, client requests) waiting for the replica, at most.
    pub input_queue: usize,
    /// Serve reads from local state without the log (not linearizable): the broken
    /// variant the kill test's checker must reject. Only with the `testing` feature.
    #[cfg(feature = "testing")]
    pub unsafe_local_reads: bool,
}

impl NodeConfig {
    /// A node `id` of `nodes` with default timers and limits, over `backend` in `dir`.
    pub fn new(id: u64, nodes: Vec<NodeAddr>, backend: BackendKind, dir: PathBuf) -> Self {
        NodeConfig {
            id,
            cluster_id: 1,
            nodes,
            api_listen: None,
            backend,
            durability: Durability::Immediate,
            dir,
            tick: Duration::from_millis(10),
            heartbeat_ticks: 10,
            request_timeout: Duration::from_secs(5),
            snapshot_every: 10_000,
            max_frame_bytes: 64 << 20,
            peer_queue_frames: 1024,
            peer_queue_bytes: 64 << 20,
            input_queue: 16 * 1024,
            #[cfg(feature = "testing")]
            unsafe_local_reads: false,
        }
    }

    /// Checks that the configuration can run: ids distinct and non-zero, this node among
    /// them, an API address, non-zero timers and limits.
    pub fn validate(&self) -> Result<(), String> {
        let mut ids: Vec<u64> = self.nodes.iter().map(|n| n.id).collect();
        ids.sort_unstable();
        let len = ids.len();
        ids.dedup();
        if ids.len() != len {
            return Err(format!("node ids repeat: {ids:?}"));
        }
        if ids.contains(&0) {
            return Err("node ids start at 1".into());
        }
        if !ids.contains(&self.id) {
            return Err(format!("--id {} is not among the nodes {ids:?}", self.id));
        }
        if self.api_addr().is_none() {
            return Err(format!("node {} has no API address (give ID=PEER,API)", self.id));
        }
        if self.tick.is_zero() || self.heartbeat_ticks == 0 || self.request_timeout.is_zero() {
            return Err("the tick, heartbeat ticks and request timeout must be non-zero".into());
        }
        if self.max_frame_bytes < 1024 || self.peer_queue_frames == 0 || self.input_queue == 0 {
            return Err("frame and queue limits are too small".into());
        }
        Ok(())
    }

    /// This node's entry in `nodes`.
    pub fn me(&self) -> Option<&NodeAddr> {
        self.nodes.iter().find(|n| n.id == self.id)
    }

    /// Where the client API listens.
    pub fn api_addr(&self) -> Option<SocketAddr> {
        self.api_listen.or_else(|| self.me().and_then(|n| n.api))
    }

    /// The node ids, sorted.
    pub fn node_ids(&self) -> Vec<u64> {
        let mut ids: Vec<u64> = self.nodes.iter().map(|n| n.id).collect();
        ids.sort_unstable();
        ids
    }

    /// The replica's configuration: heartbeat rounds of `heartbeat_ticks`, a retransmission
    /// every two rounds, batches of one (a step already groups what arrived together).
    pub fn replica_config(&self) -> ReplicaConfig {
        let cluster =
            ClusterConfig { configuration_id: 1, nodes: self.node_ids(), flexible_quorum: None };
        let mut config = ReplicaConfig::new(self.id, cluster);
        config.heartbeat_ticks = self.heartbeat_ticks;
        config.resend_ticks = self.heartbeat_ticks.saturating_mul(2);
        config
    }

    /// The hello this node sends `to`.
    pub fn hello_to(&self, to: u64) -> Hello {
        Hello {
            protocol: PROTOCOL_VERSION,
            cluster_id: self.cluster_id,
            configuration_id: self.replica_config().cluster.configuration_id,
            nodes: self.node_ids(),
            from: self.id,
            to,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn node_addresses_parse_and_print_back() {
        let n: NodeAddr = "2=127.0.0.1:9002,127.0.0.1:8002".parse().unwrap();
        assert_eq!(n.id, 2);
        assert_eq!(n.api, Some("127.0.0.1:8002".parse().unwrap()));
        assert_eq!(n.to_string().parse::<NodeAddr>().unwrap(), n);
        let n: NodeAddr = "3=127.0.0.1:9003".parse().unwrap();
        assert_eq!(n.api, None);
        for bad in ["", "x=1.2.3.4:5", "0=127.0.0.1:1", "1=nowhere", "1=127.0.0.1:1,nowhere", "1"] {
            let err = bad.parse::<NodeAddr>().unwrap_err();
            assert!(err.to_string().contains("expected ID=PEER_ADDR"), "{err}");
        }
    }

    #[test]
    fn validation_names_what_is_wrong() {
        let nodes: Vec<NodeAddr> = ["1=127.0.0.1:1,127.0.0.1:2", "2=127.0.0.1:3"]
            .iter()
            .map(|s| s.parse().unwrap())
            .collect();
        let ok = NodeConfig::new(1, nodes.clone(), BackendKind::Memory, "/tmp".into());
        assert_eq!(ok.validate(), Ok(()));
        let not_member = NodeConfig { id: 5, ..ok.clone() };
        assert!(not_member.validate().unwrap_err().contains("--id 5"));
        let no_api = NodeConfig { id: 2, ..ok.clone() };
        assert!(no_api.validate().unwrap_err().contains("no API address"));
        let mut repeated = ok.clone();
        repeated.nodes.push(nodes[0].clone());
        assert!(repeated.validate().unwrap_err().contains("repeat"));
    }
}
