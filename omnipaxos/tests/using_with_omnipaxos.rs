//! The lines the README and the crate docs show under "Using paxstore with OmniPaxos",
//! run: an OmniPaxos node on the WAL. The test also checks that both documents show
//! exactly these lines.
#![cfg(feature = "wal")]

use std::error::Error;
use std::path::Path;

use omnipaxos::storage::{Entry, NoSnapshot};
use omnipaxos::{ClusterConfig, OmniPaxos, OmniPaxosConfig, ServerConfig};
use paxstore::Durability;
use paxstore_backends::wal::WalStorage;
use paxstore_omnipaxos::{OmniEntry, OmniStorage};
use serde::{Deserialize, Serialize};

#[derive(Clone, Debug, Serialize, Deserialize)]
enum KvCommand {
    Put(u64, u64),
}

impl Entry for KvCommand {
    type Snapshot = NoSnapshot;
}

type Node = OmniPaxos<KvCommand, OmniStorage<WalStorage<OmniEntry<KvCommand>>>>;

fn start(root: &Path) -> Result<Node, Box<dyn Error>> {
    let dir = &root.join("node-1");
    // docs:begin
    let wal = WalStorage::<OmniEntry<KvCommand>>::open(dir, Durability::Immediate)?;
    let storage = OmniStorage::new(wal)?;
    let config = OmniPaxosConfig {
        cluster_config: ClusterConfig {
            configuration_id: 1,
            nodes: vec![1, 2, 3],
            ..Default::default()
        },
        server_config: ServerConfig { pid: 1, ..Default::default() },
    };
    let mut node = config.build(storage)?;
    // docs:end
    node.try_become_leader();
    Ok(node)
}

#[test]
fn an_omnipaxos_node_on_the_wal() {
    let root = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let mut node = start(root.path()).unwrap_or_else(|e| panic!("{e}"));
    if let Err(err) = node.append(KvCommand::Put(1, 2)) {
        panic!("append refused: {err:?}");
    }
    // The promise the node made is on disk: a node started again over the directory
    // recovers it.
    let promise = node.get_promise();
    drop(node);
    let node = start(root.path()).unwrap_or_else(|e| panic!("{e}"));
    assert!(node.get_promise() >= promise);
}

#[test]
fn the_docs_show_these_lines() {
    let source = include_str!("using_with_omnipaxos.rs");
    let snippet: Vec<&str> = source
        .split("// docs:begin\n")
        .nth(1)
        .and_then(|rest| rest.split("    // docs:end").next())
        .unwrap_or_default()
        .lines()
        .map(str::trim)
        .collect();
    assert!(snippet.len() >= 8, "the snippet markers are in place");
    for (name, doc) in [
        ("README.md", include_str!("../../README.md")),
        ("src/lib.rs", include_str!("../src/lib.rs")),
    ] {
        let doc_lines: Vec<&str> =
            doc.lines().map(|l| l.trim_start_matches("//!").trim()).collect();
        let found = doc_lines.windows(snippet.len()).any(|w| w == snippet.as_slice());
        assert!(
            found,
            "{name} does not show the lines of tests/using_with_omnipaxos.rs:\n{}",
            snippet.join("\n")
        );
    }
}
