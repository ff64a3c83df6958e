//! A 3-node cluster of the real `omnipaxos::OmniPaxos` (0.2.4) over each compiled-in
//! paxstore backend, through `OmniStorage`: election, appends at OmniPaxos batch sizes 1
//! and 100, a leader change with appends in flight, a follower synchronised after missing
//! entries, trim, snapshot, reconfiguration with a stop sign, and a node restarted over
//! its files. Every scenario ends with every live node holding the same decided log.
//!
//! Stores are opened `Buffered` (a dropped node is a process crash, not a power loss);
//! `PAXSTORE_OMNI_DURABILITY=immediate` syncs every write. `PAXSTORE_OMNI_APPENDS` sets
//! the number of appends of the append scenarios (default 10,000).
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::{open_backend, BackendStore, Cluster, Counted, Sum, TestValue, Value};
use omnipaxos::util::LogEntry;
use omnipaxos::ClusterConfig;
use paxstore_backends::BackendKind;

/// A cluster of `T` entries: [`Value`] (no snapshots), or [`Counted`] (snapshots) for the
/// scenarios about snapshots.
fn cluster<T: TestValue>(kind: BackendKind, batch_size: usize) -> Cluster<T, BackendStore<T>> {
    Cluster::new(kind.name(), 3, batch_size, move |root, pid| open_backend(kind, root, pid))
}

fn appends() -> u64 {
    std::env::var("PAXSTORE_OMNI_APPENDS").ok().and_then(|v| v.parse().ok()).unwrap_or(10_000)
}

fn leader_election(kind: BackendKind) {
    let mut c = cluster::<Value>(kind, 1);
    let leader = c.elect();
    for pid in c.pids() {
        assert_eq!(c.node(pid).get_current_leader(), Some((leader, true)), "{kind}: node {pid}");
    }
    // The promise is stored: every node's storage holds the leader's ballot.
    for pid in c.pids() {
        assert_eq!(c.node(pid).get_promise().pid, leader, "{kind}: node {pid}'s promise");
    }
}

/// `n` appends proposed at the leader, `per_round` between deliveries, with OmniPaxos
/// batching `batch_size` entries per storage write.
fn appends_at(kind: BackendKind, batch_size: usize, per_round: u64) {
    let n = appends();
    let mut c = cluster::<Value>(kind, batch_size);
    let leader = c.elect();
    let mut next = 0;
    while next < n {
        let end = (next + per_round).min(n);
        c.propose(leader, next..end);
        next = end;
        c.tick();
    }
    c.decide_until(n as usize);
    assert_eq!(c.assert_same_decided(), n as usize);
    for pid in c.pids() {
        let values: Vec<u64> = c.decided_values(pid).into_values().collect();
        assert_eq!(values, (0..n).collect::<Vec<_>>(), "{kind}: node {pid} decided log");
    }
}

fn appends_at_batch_size_1(kind: BackendKind) {
    appends_at(kind, 1, 10);
}

fn appends_at_batch_size_100(kind: BackendKind) {
    appends_at(kind, 100, 100);
}

/// The leader is cut off with entries it proposed half replicated: accepted by the
/// followers but not decided, and more it never sent. The others elect a new leader,
/// which decides what a majority accepted; the old leader rejoins and its undecided
/// entries are replaced.
fn leader_change_with_appends_in_flight(kind: BackendKind) {
    let mut c = cluster::<Value>(kind, 1);
    let old = c.elect();
    c.propose(old, 0..100);
    c.decide_until(100);
    // Accepts reach the followers; their `Accepted` replies are lost.
    c.propose(old, 100..150);
    c.deliver_if(|m| m.get_sender() == old);
    c.disconnect(old);
    // Proposed but never sent.
    c.propose(old, 150..160);
    c.tick_until("a new leader", 300, |c| c.leader().is_some_and(|l| l != old));
    let new = c.leader().unwrap();
    c.propose(new, 1000..1100);
    c.decide_until(250);
    c.reconnect(old);
    c.tick_until("the old leader catching up", 300, |c| {
        c.node(old).get_decided_idx() == c.node(new).get_decided_idx()
    });
    let decided = c.assert_same_decided();
    let values: Vec<u64> = c.decided_values(new).into_values().collect();
    // What the followers accepted from the old leader survives; what only it held does not.
    assert_eq!(&values[..150], &(0..150).collect::<Vec<_>>()[..], "{kind}");
    assert_eq!(decided, 250, "{kind}: 150 from the old leader and 100 from the new one");
    assert!(!values.contains(&150), "{kind}: an entry only the old leader held was decided");
}

/// A follower is cut off while the others decide (and snapshot) more; reconnected, it is
/// synchronised by the leader (`sync_log`, with the leader's snapshot).
fn follower_missed_entries_is_synchronised(kind: BackendKind) {
    let mut c = cluster::<Counted>(kind, 1);
    let leader = c.elect();
    let follower = c.pids().into_iter().find(|&p| p != leader).unwrap();
    c.propose(leader, 0..50);
    c.decide_until(50);
    c.disconnect(follower);
    c.propose(leader, 50..400);
    c.decide_until(400);
    c.node_mut(leader).snapshot(Some(300), true).expect("snapshot below the decided index");
    c.reconnect(follower);
    c.tick_until("the follower catching up", 300, |c| c.node(follower).get_decided_idx() == 400);
    assert_eq!(c.assert_same_decided(), 400);
    // The leader's own snapshot covers [0, 300); a follower that missed entries below it
    // gets a complete snapshot of the decided log instead.
    let log = c.decided_log(follower);
    assert!(
        matches!(&log[0], LogEntry::Snapshotted(s) if s.trimmed_idx == 400 && s.snapshot == Sum { count: 400, sum: (0..400).sum() }),
        "{kind}: the follower installed the leader's snapshot: {:?}",
        log.first()
    );
    c.propose(leader, 400..410);
    c.decide_until(410);
    c.assert_same_decided();
}

/// The leader trims the log everywhere; reads start at the trimmed index.
fn trim(kind: BackendKind) {
    let mut c = cluster::<Value>(kind, 1);
    let leader = c.elect();
    c.propose(leader, 0..200);
    c.decide_until(200);
    c.node_mut(leader).trim(Some(120)).expect("trim below what every node accepted");
    c.tick();
    for pid in c.pids() {
        assert_eq!(c.node(pid).get_compacted_idx(), 120, "{kind}: node {pid}");
        let log = c.decided_log(pid);
        assert!(matches!(log[0], LogEntry::Trimmed(120)), "{kind}: node {pid}: {:?}", log[0]);
        assert_eq!(log.len(), 1 + 80);
    }
    c.propose(leader, 200..220);
    c.decide_until(220);
    c.assert_same_decided();
}

/// Every node snapshots the decided log; reads give the snapshot, then the entries.
fn snapshot(kind: BackendKind) {
    let mut c = cluster::<Counted>(kind, 1);
    let leader = c.elect();
    c.propose(leader, 1..=100);
    c.decide_until(100);
    c.node_mut(leader).snapshot(Some(60), false).expect("snapshot below the decided index");
    c.tick();
    for pid in c.pids() {
        assert_eq!(c.node(pid).get_compacted_idx(), 60, "{kind}: node {pid}");
        let log = c.decided_log(pid);
        let want = Sum { count: 60, sum: (1..=60).sum() };
        assert!(
            matches!(&log[0], LogEntry::Snapshotted(s) if s.trimmed_idx == 60 && s.snapshot == want),
            "{kind}: node {pid}: {:?}",
            log[0]
        );
        assert_eq!(log.len(), 1 + 40);
    }
    c.assert_same_decided();
}

/// A stop sign is decided on every node; a node restarted over its files reports it as
/// decided before it hears from anyone (the decided stop sign is stored).
fn reconfiguration_with_a_stop_sign(kind: BackendKind) {
    let mut c = cluster::<Value>(kind, 1);
    let leader = c.elect();
    c.propose(leader, 0..30);
    c.decide_until(30);
    let next = ClusterConfig { configuration_id: 2, nodes: vec![1, 2, 3], flexible_quorum: None };
    c.node_mut(leader).reconfigure(next.clone(), Some(vec![7])).expect("a valid configuration");
    c.tick_until("the stop sign decided everywhere", 100, |c| {
        c.pids().iter().all(|&p| c.node(p).is_reconfigured().is_some())
    });
    for pid in c.pids() {
        let ss = c.node(pid).is_reconfigured().unwrap();
        assert_eq!((ss.next_config, ss.metadata), (next.clone(), Some(vec![7])), "{kind}");
        assert_eq!(c.node(pid).get_decided_idx(), 31, "{kind}: 30 entries and the stop sign");
    }
    assert_eq!(c.assert_same_decided(), 31);
    // The configuration is closed: proposals are refused.
    assert!(c.node_mut(leader).append(Value(99)).is_err(), "{kind}");
    if kind.is_persistent() {
        let follower = c.pids().into_iter().find(|&p| p != leader).unwrap();
        c.crash(follower);
        c.start(follower);
        let ss = c.node(follower).is_reconfigured();
        assert!(ss.is_some(), "{kind}: after a restart the stop sign is still decided");
        assert_eq!(c.node(follower).get_decided_idx(), 31, "{kind}");
        assert_eq!(c.decided_values(follower).len(), 30, "{kind}: the decided entries");
    }
}

/// A node is dropped, the others decide more, and it is built again over its paxstore
/// files: it recovers its log and promise, rejoins and catches up.
#[cfg_attr(
    not(any(feature = "wal", feature = "redb", feature = "sled", feature = "rocksdb")),
    allow(dead_code)
)]
fn restarted_node_rejoins(kind: BackendKind) {
    let mut c = cluster::<Value>(kind, 1);
    let leader = c.elect();
    let restarted = c.pids().into_iter().find(|&p| p != leader).unwrap();
    c.propose(leader, 0..100);
    c.decide_until(100);
    c.crash(restarted);
    c.propose(leader, 100..300);
    c.tick_until("the others deciding without it", 100, |c| {
        c.live().iter().all(|&p| c.node(p).get_decided_idx() == 300)
    });
    c.start(restarted);
    assert!(c.node(restarted).get_decided_idx() >= 100, "{kind}: it recovered its decided index");
    c.reconnect(restarted);
    c.tick_until("the restarted node catching up", 300, |c| {
        c.node(restarted).get_decided_idx() == 300
    });
    c.propose(leader, 300..310);
    c.decide_until(310);
    assert_eq!(c.assert_same_decided(), 310);
}

macro_rules! backend_tests {
    ($module:ident: $kind:expr $(, $feature:literal)?; $($restart:ident)?) => {
        $(#[cfg(feature = $feature)])?
        mod $module {
            use super::*;

            #[test]
            fn leader_election() {
                super::leader_election($kind);
            }
            #[test]
            fn appends_at_batch_size_1() {
                super::appends_at_batch_size_1($kind);
            }
            #[test]
            fn appends_at_batch_size_100() {
                super::appends_at_batch_size_100($kind);
            }
            #[test]
            fn leader_change_with_appends_in_flight() {
                super::leader_change_with_appends_in_flight($kind);
            }
            #[test]
            fn follower_missed_entries_is_synchronised() {
                super::follower_missed_entries_is_synchronised($kind);
            }
            #[test]
            fn trim() {
                super::trim($kind);
            }
            #[test]
            fn snapshot() {
                super::snapshot($kind);
            }
            #[test]
            fn reconfiguration_with_a_stop_sign() {
                super::reconfiguration_with_a_stop_sign($kind);
            }
            $(
                #[test]
                fn $restart() {
                    super::restarted_node_rejoins($kind);
                }
            )?
        }
    };
}

// The memory backend keeps nothing across a restart: no restart case.
backend_tests!(memory: BackendKind::Memory;);
backend_tests!(wal: BackendKind::Wal, "wal"; restarted_node_rejoins);
backend_tests!(redb: BackendKind::Redb, "redb"; restarted_node_rejoins);
backend_tests!(sled: BackendKind::Sled, "sled"; restarted_node_rejoins);
backend_tests!(rocksdb: BackendKind::RocksDb, "rocksdb"; restarted_node_rejoins);
