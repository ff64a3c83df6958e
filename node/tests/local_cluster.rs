//! `ProcessCluster::start` returns only once every node listens, and a node that cannot
//! start is an error that names it and quotes its log.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::net::{TcpListener, TcpStream};
use std::path::Path;
use std::time::Duration;

use paxstore_node::local::{free_ports, ClusterSpec, ProcessCluster};

const BIN: &str = env!("CARGO_BIN_EXE_paxstore-node");

#[test]
fn start_returns_once_every_node_listens() {
    let dir = tempfile::tempdir().unwrap();
    let spec = ClusterSpec::new(3, "memory", dir.path());
    let mut cluster = ProcessCluster::start(Path::new(BIN), &spec).unwrap();
    for node in cluster.nodes() {
        // No retry: the port is bound by the time `start` returns.
        TcpStream::connect_timeout(&node.api(), Duration::from_secs(1))
            .unwrap_or_else(|e| panic!("node {} at {}: {e}", node.addr.id, node.api()));
    }
    cluster.stop(Duration::from_secs(10)).unwrap();
}

#[test]
fn a_node_whose_port_is_taken_fails_start_with_its_log() {
    let dir = tempfile::tempdir().unwrap();
    // Another process's socket on node 2's client port, as when a free port is taken
    // between choosing it and the node binding it.
    let squatter = TcpListener::bind("127.0.0.1:0").unwrap();
    let taken = squatter.local_addr().unwrap().port();
    let free = free_ports(5).unwrap();
    let mut spec = ClusterSpec::new(3, "memory", dir.path());
    spec.api_ports = vec![free[0], taken, free[1]];
    spec.peer_ports = free[2..].to_vec();
    let err = ProcessCluster::start(Path::new(BIN), &spec).unwrap_err().to_string();
    assert!(err.contains("node 2 exited while starting"), "{err}");
    assert!(err.contains(&format!("cannot listen for clients on 127.0.0.1:{taken}")), "{err}");
    drop(squatter);
}
