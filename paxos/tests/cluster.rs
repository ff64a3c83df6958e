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
use paxstore_paxos::{InjectedBug, LogEntry, ReplicaConfig};

fn decide_appends<S: Storage<TrimEntry>>(
    appends: u64,
    batch_size: usize,
    storage: impl FnMut(u64) -> S,
) -> LocalCluster<TrimEntry, S> {
    let template = ReplicaConfig::new(1, ClusterConfig::default()).with_batch_size(batch_size);
    let mut cluster = LocalCluster::new(3, &template, storage).unwrap();
    let leader = cluster.elect_leader(1_000).unwrap();
    let chunk = 1_000;
    let mut next = 0;
    while next < appends {
        let replica = cluster.replica_mut(leader).unwrap();
        for i in next..(next + chunk).min(appends) {
            replica.append(TrimEntry(i)).unwrap();
        }
        next = (next + chunk).min(appends);
        // The leader wrote the burst once and sent one accept per follower; each follower
        // writes it once.
        cluster.deliver().unwrap();
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

/// A follower whose log is a prefix of the log the new leader adopts (same round, not
/// longer) is sent only what it lacks, not everything after its decided index.
#[test]
fn a_follower_holding_a_prefix_of_the_adopted_log_gets_only_what_it_lacks() {
    assert_eq!(resync_after_leader_change(None), (50, 0));
}

#[test]
fn taking_the_adopted_log_for_the_new_round_resends_everything_undecided() {
    assert_eq!(resync_after_leader_change(Some(InjectedBug::ResendAfterDecided)), (0, 50));
}

/// Leader 3 sends 50 entries to both followers and dies before they learn any is decided;
/// returns where the new leader's sync to replica 1 starts and how many entries it holds.
fn resync_after_leader_change(bug: Option<InjectedBug>) -> (usize, usize) {
    use paxstore_paxos::messages::PaxosMessage;
    use paxstore_paxos::Payload;

    let template = ReplicaConfig::new(1, ClusterConfig::default());
    let mut c = LocalCluster::new(3, &template, |_| MemoryStorage::<TrimEntry>::new()).unwrap();
    if let Some(bug) = bug {
        c.inject_bug(bug);
    }
    assert_eq!(c.elect_leader(1_000).unwrap(), 3);
    for i in 0..50 {
        c.replica_mut(3).unwrap().append(TrimEntry(i)).unwrap();
    }
    c.collect().unwrap();
    // The accept reaches both followers, but the leader dies before they learn that
    // anything is decided.
    c.deliver_link(3, 1).unwrap();
    c.deliver_link(3, 2).unwrap();
    c.crash(3);
    c.drop_queued();
    assert_eq!([1, 2].map(|p| c.replica(p).unwrap().log_end()), [50, 50]);
    assert_eq!([1, 2].map(|p| c.replica(p).unwrap().decided_idx()), [0, 0]);
    // Replica 2 takes over; 1's log (round of 3, 50 entries) is a prefix of the adopted one.
    let mut sync_to_1 = None;
    'ticks: for _ in 0..200 {
        c.tick().unwrap();
        while c.queued() > 0 {
            for m in c.queued_messages().iter().filter(|m| m.from == 2 && m.to == 1) {
                for p in &m.payloads {
                    if let Payload::Paxos(PaxosMessage::AcceptSync(a)) = p {
                        sync_to_1 = Some(a.sync.clone());
                        break 'ticks;
                    }
                }
            }
            c.deliver_round().unwrap();
        }
    }
    let sync = sync_to_1.expect("replica 2 never synchronised replica 1");
    assert!(c.run_until(100, |c| c.min_decided_idx() == 50).unwrap());
    (sync.suffix_start, sync.entries.len())
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
