//! A 3-replica [`LocalCluster`] decides many appends with the same decided log on every
//! replica, over the memory backend and every persistent backend compiled in.
//!
//! Over memory, CI runs the full 100,000 appends. Over the persistent backends, CI runs
//! 2,000; the full 100,000-append run is `#[ignore]`d (run it with `--ignored`).

// Tests may unwrap: a failure is the test failing.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use paxstore::{ClusterConfig, Durability, Storage};
use paxstore_backends::{BackendKind, MemoryStorage};
use paxstore_paxos::cluster::LocalCluster;
use paxstore_paxos::sim::TrimEntry;
use paxstore_paxos::{LogEntry, ReplicaConfig};

fn decide_appends<S: Storage<TrimEntry>>(
    appends: u64,
    batch_size: usize,
    storage: impl FnMut(u64) -> S,
) -> LocalCluster<TrimEntry, S> {
    let template = ReplicaConfig::new(1, ClusterConfig::default()).with_batch_size(batch_size);
    let mut cluster = LocalCluster::new(3, &template, storage).unwrap();
    cluster.elect_leader(1_000).unwrap();
    let chunk = 1_000;
    let mut next = 0;
    while next < appends {
        for i in next..(next + chunk).min(appends) {
            cluster.append(TrimEntry(i)).unwrap();
        }
        next = (next + chunk).min(appends);
        // Followers take each burst of accepts in one step: one write per burst.
        cluster.deliver_grouped().unwrap();
    }
    let n = appends as usize;
    assert!(cluster.run_until(100, |c| c.min_decided_idx() == n).unwrap(), "not all decided");
    for r in cluster.replicas() {
        let log = r.read_decided_suffix(0).unwrap().unwrap();
        assert_eq!(log.len(), n, "replica {}", r.pid());
        for (i, e) in log.into_iter().enumerate() {
            assert_eq!(e, LogEntry::Decided(TrimEntry(i as u64)), "replica {} index {i}", r.pid());
        }
    }
    cluster
}

#[test]
fn memory_cluster_decides_100k_appends_batch_1_and_100() {
    for batch in [1, 100] {
        decide_appends(100_000, batch, |_| MemoryStorage::new());
    }
}

fn persistent_kinds() -> Vec<BackendKind> {
    BackendKind::compiled_in().into_iter().filter(|k| k.is_persistent()).collect()
}

fn persistent_cluster(appends: u64) {
    for kind in persistent_kinds() {
        for batch in [1, 100] {
            let dir = tempfile::tempdir().unwrap();
            let started = std::time::Instant::now();
            let cluster = decide_appends(appends, batch, |pid| {
                kind.open::<TrimEntry>(&dir.path().join(pid.to_string()), Durability::Buffered)
                    .unwrap()
            });
            drop(cluster);
            println!(
                "{kind}: {appends} appends, batch {batch}: decided on 3 replicas in {:?}",
                started.elapsed()
            );
        }
    }
}

#[test]
fn persistent_clusters_decide_2k_appends_batch_1_and_100() {
    persistent_cluster(2_000);
}

#[test]
#[ignore = "long: 100,000 appends per backend and batch size"]
fn persistent_clusters_decide_100k_appends_batch_1_and_100() {
    persistent_cluster(100_000);
}

#[test]
fn a_single_replica_decides_alone() {
    let template = ReplicaConfig::new(1, ClusterConfig::default()).with_batch_size(3);
    let mut cluster =
        LocalCluster::new(1, &template, |_| MemoryStorage::<TrimEntry>::new()).unwrap();
    cluster.elect_leader(100).unwrap();
    for i in 0..10 {
        cluster.append(TrimEntry(i)).unwrap();
    }
    assert!(cluster.run_until(10, |c| c.min_decided_idx() == 10).unwrap());
}
