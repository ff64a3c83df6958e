//! Fail-recovery: replicas rebuilt over their storage resume with their promise,
//! accepted round, log, decided index, snapshot and stop sign, and rejoin.

// Tests may unwrap: a failure is the test failing.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use paxstore::{ClusterConfig, Storage};
use paxstore_backends::MemoryStorage;
use paxstore_paxos::cluster::LocalCluster;
use paxstore_paxos::sim::{SimEntry, TrimEntry};
use paxstore_paxos::{InjectedBug, LogEntry, PaxosError, Replica, ReplicaConfig};

type View =
    (paxstore::Ballot, paxstore::Ballot, usize, usize, usize, Option<(paxstore::StopSign, bool)>);

fn view<T: paxstore::Entry, S: Storage<T>>(r: &Replica<T, S>) -> View {
    (r.promise(), r.accepted_round(), r.decided_idx(), r.compacted_idx(), r.log_end(), r.stopsign())
}

#[test]
fn a_whole_cluster_restarts_from_storage_and_keeps_deciding() {
    let template = ReplicaConfig::new(1, ClusterConfig::default()).with_batch_size(2);
    let mut c = LocalCluster::new(3, &template, |_| MemoryStorage::<SimEntry>::new()).unwrap();
    c.elect_leader(500).unwrap();
    for i in 0..20 {
        c.append_at(1 + i % 3, SimEntry(i)).unwrap();
    }
    assert!(c.run_until(200, |c| c.min_decided_idx() == 20).unwrap());
    c.replica_mut(2).unwrap().snapshot(Some(10), true).unwrap();
    // An idle cluster writes a decided index that advanced within `decided_write_ticks`.
    for _ in 0..template.decided_write_ticks {
        c.step().unwrap();
    }
    let before: Vec<View> = c.replicas().map(view).collect();
    let logs_before: Vec<_> = c.replicas().map(|r| r.read_entries(..).unwrap()).collect();
    for pid in 1..=3 {
        c.crash(pid);
    }
    for pid in 1..=3 {
        c.restart(pid).unwrap();
    }
    let after: Vec<View> = c.replicas().map(view).collect();
    assert_eq!(before, after);
    let logs_after: Vec<_> = c.replicas().map(|r| r.read_entries(..).unwrap()).collect();
    assert_eq!(logs_before, logs_after);
    assert!(matches!(c.replica(2).unwrap().read(3).unwrap(), Some(LogEntry::Snapshotted(_))));
    c.elect_leader(500).unwrap();
    c.append_at(1, SimEntry(100)).unwrap();
    assert!(c.run_until(200, |c| c.min_decided_idx() == 21).unwrap());
}

/// The decided index is written only with a write that happens anyway: a crash right after
/// deciding may take it back, never below what the last write held, and the entries
/// decided again are the same.
#[test]
fn a_crash_may_take_back_the_decided_index_but_never_a_decided_entry() {
    let template = ReplicaConfig::new(1, ClusterConfig::default());
    let mut c = LocalCluster::new(3, &template, |_| MemoryStorage::<TrimEntry>::new()).unwrap();
    c.elect_leader(500).unwrap();
    for i in 0..30 {
        c.append(TrimEntry(i)).unwrap();
    }
    assert!(c.run_until(100, |c| c.min_decided_idx() == 30).unwrap());
    let decided: Vec<_> = c.replicas().map(|r| r.read_decided_suffix(0).unwrap()).collect();
    let written: Vec<usize> =
        c.replicas().map(|r| r.storage().get_decided_idx().unwrap()).collect();
    assert!(written.iter().any(|&w| w < 30), "no decided index was left unwritten: {written:?}");
    for pid in 1..=3 {
        c.crash(pid);
        c.restart(pid).unwrap();
    }
    let recovered: Vec<usize> = c.replicas().map(|r| r.decided_idx()).collect();
    assert_eq!(recovered, written, "a restart recovers exactly what was written");
    c.elect_leader(500).unwrap();
    assert!(c.run_until(200, |c| c.min_decided_idx() == 30).unwrap());
    let again: Vec<_> = c.replicas().map(|r| r.read_decided_suffix(0).unwrap()).collect();
    assert_eq!(decided, again, "the same entries are decided again");
}

/// Decides a stop sign on a 3-replica cluster (with `bug` injected everywhere), lets the
/// decided index reach storage (it is written lazily, after `decided_write_ticks` idle
/// ticks at most), then crashes and restarts every replica, delivering nothing: returns
/// whether each restarted replica reports its configuration ended.
fn restarted_replicas_know_the_stop_sign_is_decided(bug: Option<InjectedBug>) -> Vec<bool> {
    let template = ReplicaConfig::new(1, ClusterConfig::default());
    let mut c = LocalCluster::new(3, &template, |_| MemoryStorage::<TrimEntry>::new()).unwrap();
    if let Some(bug) = bug {
        c.inject_bug(bug);
    }
    c.elect_leader(500).unwrap();
    c.append(TrimEntry(1)).unwrap();
    let next =
        ClusterConfig { configuration_id: 2, nodes: vec![1, 2, 3, 4], flexible_quorum: None };
    c.replica_mut(1).unwrap().reconfigure(next.clone(), Some(b"hello".to_vec())).unwrap();
    assert!(c.run_until(100, |c| c.replicas().all(|r| r.is_reconfigured().is_some())).unwrap());
    let ticks = template.decided_write_ticks as usize + 2;
    c.run_until(ticks, |_| false).unwrap();
    let mut known = Vec::new();
    for pid in 1..=3 {
        c.crash(pid);
        c.drop_queued();
        c.restart(pid).unwrap();
        c.drop_queued();
        let r = c.replica(pid).unwrap();
        let (ss, decided) = r.stopsign().unwrap();
        assert_eq!(ss.next_config, next);
        assert_eq!(ss.metadata.as_deref(), Some(&b"hello"[..]));
        assert_eq!(r.decided_idx(), 1, "replica {pid}: the entry before the stop sign");
        known.push(decided);
    }
    if !known.contains(&false) {
        assert!(matches!(
            c.replica_mut(1).unwrap().append(TrimEntry(2)),
            Err(PaxosError::ConfigurationEnded { decided: true })
        ));
    }
    known
}

#[test]
fn a_restarted_replica_remembers_that_its_stop_sign_is_decided() {
    let known = restarted_replicas_know_the_stop_sign_is_decided(None);
    assert_eq!(known, vec![true; 3], "no leader needed: the decision is in storage");
}

#[test]
fn the_check_catches_a_decided_stop_sign_written_as_accepted() {
    let known =
        restarted_replicas_know_the_stop_sign_is_decided(Some(InjectedBug::ForgetDecidedStopsign));
    assert_eq!(known, vec![false; 3], "the injected bug must make every restart forget");
}

#[test]
fn a_replica_that_was_down_for_long_catches_up_after_restart() {
    let template = ReplicaConfig::new(1, ClusterConfig::default());
    let mut c = LocalCluster::new(5, &template, |_| MemoryStorage::<TrimEntry>::new()).unwrap();
    c.elect_leader(500).unwrap();
    c.crash(1);
    c.crash(2);
    for i in 0..50 {
        c.append(TrimEntry(i)).unwrap();
    }
    assert!(c.run_until(100, |c| c.min_decided_idx() == 50).unwrap());
    c.restart(1).unwrap();
    c.restart(2).unwrap();
    assert!(c.run_until(300, |c| c.min_decided_idx() == 50).unwrap());
    assert_eq!(c.replicas().count(), 5);
}
