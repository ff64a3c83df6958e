//! Two things OmniPaxos 0.2.4 itself gets wrong, shown on its own
//! `omnipaxos_storage::MemoryStorage` (so they are OmniPaxos', not paxstore's), and what
//! the same runs leave on paxstore through `OmniStorage`. Each test asserts the behaviour
//! observed, so it fails if a later OmniPaxos changes it.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::{open_backend, Cluster, Counted, Sum, TestValue, Value};
use omnipaxos::storage::Storage as OpStorage;
use omnipaxos::util::LogEntry;
use omnipaxos::ClusterConfig;
use omnipaxos_storage::memory_storage::MemoryStorage;
use paxstore_backends::BackendKind;

/// 10 entries and a decided stop sign, then the leader is cut off and another is elected.
fn leader_change_after_a_stop_sign<S: OpStorage<Value>>(c: &mut Cluster<Value, S>) -> u64 {
    let leader = c.elect();
    c.propose(leader, 0..10);
    c.decide_until(10);
    let next = ClusterConfig { configuration_id: 2, nodes: vec![1, 2, 3], flexible_quorum: None };
    c.node_mut(leader).reconfigure(next, None).unwrap();
    c.tick_until("the stop sign decided", 100, |c| {
        c.pids().iter().all(|&p| c.node(p).is_reconfigured().is_some())
    });
    for pid in c.pids() {
        assert_eq!(c.node(pid).get_decided_idx(), 11, "node {pid}: 10 entries and the stop sign");
    }
    c.disconnect(leader);
    c.tick_until("a new leader", 300, |c| c.leader().is_some_and(|l| l != leader));
    c.reconnect(leader);
    for _ in 0..10 {
        c.tick();
    }
    c.leader().unwrap()
}

/// After a leader change once the stop sign is decided, every node decides index 12: one
/// past the stop sign, which sits at 10. The nodes synchronised by the new leader read
/// their decided log as the stop sign alone (the 10 entries are gone from the read), and
/// the new leader no longer reports the configuration as stopped.
#[test]
fn omnipaxos_counts_the_stop_sign_twice_after_a_leader_change() {
    let mut c = Cluster::new("omnipaxos MemoryStorage", 3, 1, |_, _| MemoryStorage::default());
    let leader = leader_change_after_a_stop_sign(&mut c);
    for pid in c.pids() {
        assert_eq!(c.node(pid).get_decided_idx(), 12, "node {pid}");
        let log = c.decided_log(pid);
        if pid == leader {
            assert!(c.node(pid).is_reconfigured().is_none(), "the new leader {pid}");
            assert!(log.is_empty(), "the new leader {pid} reads nothing: {log:?}");
        } else {
            assert!(
                matches!(log.as_slice(), [LogEntry::StopSign(_, true)]),
                "node {pid} reads only the stop sign: {log:?}"
            );
        }
    }
}

/// The same run on paxstore: OmniPaxos' in-memory state is the same (its accepted and
/// decided indices come from its own messages), but the store holds the decided stop sign
/// as `log_end + 1` (rule `StopsignCountedTwice`), so a node restarted over its files
/// reports the configuration as stopped and reads all 10 entries and the stop sign.
#[test]
#[cfg(feature = "wal")]
fn on_paxstore_a_restarted_node_recovers_the_decided_stop_sign() {
    let kind = BackendKind::Wal;
    let mut c = Cluster::new("wal", 3, 1, move |root, pid| open_backend::<Value>(kind, root, pid));
    let leader = leader_change_after_a_stop_sign(&mut c);
    for pid in c.pids() {
        assert_eq!(c.node(pid).get_decided_idx(), 12, "node {pid}: OmniPaxos' own state");
    }
    for pid in c.pids() {
        c.crash(pid);
        c.start(pid);
        let node = c.node(pid);
        assert!(node.is_reconfigured().is_some(), "node {pid} (leader: {leader})");
        assert_eq!(node.get_decided_idx(), 11, "node {pid}: as stored");
        let values: Vec<u64> = c.decided_values(pid).into_values().collect();
        assert_eq!(values, (0..10).collect::<Vec<_>>(), "node {pid}");
    }
}

/// A follower that missed entries is synchronised with a *delta* snapshot (the leader has
/// not compacted): OmniPaxos sets the follower's decided index first and then builds the
/// follower's own part of the snapshot from entries up to that new index, which the
/// follower does not hold; the read returns `[]`, so the snapshot the follower installs
/// leaves out its own decided prefix.
fn delta_snapshot_sync<S: OpStorage<Counted>>(c: &mut Cluster<Counted, S>) -> (u64, u64) {
    let leader = c.elect();
    let follower = c.pids().into_iter().find(|&p| p != leader).unwrap();
    c.propose(leader, 0..100);
    c.decide_until(100);
    c.disconnect(follower);
    c.propose(leader, 100..250);
    c.decide_until(250);
    c.reconnect(follower);
    c.tick_until("the follower catching up", 300, |c| c.node(follower).get_decided_idx() == 250);
    (leader, follower)
}

fn assert_prefix_missing<S: OpStorage<Counted>>(c: &Cluster<Counted, S>, follower: u64) {
    let log = c.decided_log(follower);
    let all: Vec<Counted> = (0..250).map(Counted::of).collect();
    let missing_prefix: Vec<Counted> = (100..250).map(Counted::of).collect();
    match log.first() {
        Some(LogEntry::Snapshotted(s)) => {
            assert_eq!(s.trimmed_idx, 250);
            assert_ne!(s.snapshot, <Sum as omnipaxos::storage::Snapshot<Counted>>::create(&all));
            assert_eq!(
                s.snapshot,
                <Sum as omnipaxos::storage::Snapshot<Counted>>::create(&missing_prefix),
                "{}: the snapshot covers only [100, 250)",
                c.name
            );
        }
        other => panic!("{}: expected a snapshot, read {other:?}", c.name),
    }
}

#[test]
fn omnipaxos_delta_snapshot_sync_loses_the_followers_prefix() {
    let mut c = Cluster::new("omnipaxos MemoryStorage", 3, 1, |_, _| MemoryStorage::default());
    let (_, follower) = delta_snapshot_sync(&mut c);
    assert_prefix_missing(&c, follower);
}

/// paxstore cannot correct it: the snapshot is built by OmniPaxos from what the store
/// answers, and the store answers as OmniPaxos' contract says.
#[test]
fn on_paxstore_the_delta_snapshot_is_the_same() {
    let kind = BackendKind::Memory;
    let mut c =
        Cluster::new("memory", 3, 1, move |root, pid| open_backend::<Counted>(kind, root, pid));
    let (_, follower) = delta_snapshot_sync(&mut c);
    assert_prefix_missing(&c, follower);
}
