//! Storage failures at every write site: a wrapper fails the n-th `write_atomically` of
//! one replica, for every n a workload reaches. Each time: the failing call returns
//! `PaxosError::Storage`, so does every later call, nothing panics, no message of the
//! failed step is released, the in-memory state equals what storage holds, and a replica
//! rebuilt over the same storage resumes and the cluster converges on one decided log.

// Tests may unwrap: a failure is the test failing.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::cell::{Cell, RefCell};
use std::collections::BTreeSet;
use std::io;
use std::rc::Rc;

use paxstore::{
    Ballot, ClusterConfig, Entry, StopSign, Storage, StorageError, StorageOp, StorageResult,
};
use paxstore_backends::MemoryStorage;
use paxstore_paxos::cluster::LocalCluster;
use paxstore_paxos::sim::{SimEntry, SimValue, TrimEntry};
use paxstore_paxos::{LogEntry, PaxosError, ReplicaConfig};

/// Fails the `fail_at`-th write (from 1), recording the ops of the batch it refused.
struct Flaky<T: Entry> {
    inner: MemoryStorage<T>,
    writes: Rc<Cell<u64>>,
    fail_at: u64,
    refused: Rc<RefCell<Vec<&'static str>>>,
}

impl<T: Entry> Storage<T> for Flaky<T> {
    fn write_atomically(&mut self, ops: Vec<StorageOp<T>>) -> StorageResult<()> {
        let n = self.writes.get() + 1;
        self.writes.set(n);
        if n == self.fail_at {
            self.refused.borrow_mut().extend(ops.iter().map(|op| op.name()));
            return Err(StorageError::io(
                "writing (injected)",
                io::Error::other("injected failure"),
            ));
        }
        self.inner.write_atomically(ops)
    }
    fn get_entries(&self, from: usize, to: usize) -> StorageResult<Vec<T>> {
        self.inner.get_entries(from, to)
    }
    fn get_log_len(&self) -> StorageResult<usize> {
        self.inner.get_log_len()
    }
    fn get_decided_idx(&self) -> StorageResult<usize> {
        self.inner.get_decided_idx()
    }
    fn get_promise(&self) -> StorageResult<Option<Ballot>> {
        self.inner.get_promise()
    }
    fn get_accepted_round(&self) -> StorageResult<Option<Ballot>> {
        self.inner.get_accepted_round()
    }
    fn get_compacted_idx(&self) -> StorageResult<usize> {
        self.inner.get_compacted_idx()
    }
    fn get_stopsign(&self) -> StorageResult<Option<StopSign>> {
        self.inner.get_stopsign()
    }
    fn get_snapshot(&self) -> StorageResult<Option<T::Snapshot>> {
        self.inner.get_snapshot()
    }
}

type Cluster<T> = LocalCluster<T, Flaky<T>>;

/// Elects, appends at every replica, compacts (everywhere and locally), reconfigures.
fn workload<T: SimValue>(c: &mut Cluster<T>) -> Result<(), PaxosError> {
    c.elect_leader(500)?;
    for i in 0..12u64 {
        c.append_at(1 + i % 3, T::from_value(i))?;
        if i % 4 == 0 {
            c.step()?;
        }
    }
    c.run_until(200, |c| c.min_decided_idx() == 12)?;
    let snapshots = <T::Snapshot as paxstore::Snapshot<T>>::use_snapshots();
    let mut compacted = false;
    for _ in 0..200 {
        let leader = c.leader().ok_or(PaxosError::NotLeader { leader: None })?;
        let replica = c.replica_mut(leader).ok_or(PaxosError::NotLeader { leader: None })?;
        match replica.trim(6) {
            Ok(()) => {
                compacted = true;
                break;
            }
            Err(PaxosError::NotDecided { .. }) => c.step()?,
            Err(e) => return Err(e),
        }
    }
    assert!(compacted, "the leader never learned that index 6 is decided everywhere");
    c.deliver()?;
    if snapshots {
        if let Some(r) = c.replica_mut(1) {
            if r.compacted_idx() < 9 {
                r.snapshot(Some(9), true)?;
            }
        }
    }
    let mut next =
        ClusterConfig { configuration_id: 2, nodes: vec![1, 2, 3], flexible_quorum: None };
    next.nodes.sort();
    c.replica_mut(2).ok_or(PaxosError::NotLeader { leader: None })?.reconfigure(next, None)?;
    c.run_until(200, |c| c.replicas().all(|r| r.is_reconfigured().is_some()))?;
    Ok(())
}

fn cluster<T: SimValue>(
    target: u64,
    fail_at: u64,
    refused: &Rc<RefCell<Vec<&'static str>>>,
) -> Cluster<T> {
    let template = ReplicaConfig::new(1, ClusterConfig::default());
    LocalCluster::new(3, &template, |pid| Flaky {
        inner: MemoryStorage::new(),
        writes: Rc::new(Cell::new(0)),
        fail_at: if pid == target { fail_at } else { 0 },
        refused: Rc::clone(refused),
    })
    .unwrap()
}

/// The decided entries of every replica, from the highest compacted index on.
fn decided_logs<T: SimValue>(c: &Cluster<T>) -> Vec<Vec<u64>> {
    let from = c.replicas().map(|r| r.compacted_idx()).max().unwrap_or(0);
    let to = c.replicas().map(|r| r.decided_idx()).min().unwrap_or(0);
    c.replicas()
        .map(|r| {
            let log = r.read_entries(from..to).unwrap().unwrap_or_default();
            log.into_iter()
                .map(|e| match e {
                    LogEntry::Decided(e) => e.value(),
                    other => panic!("replica {}: {other:?} below the decided index", r.pid()),
                })
                .collect()
        })
        .collect()
}

/// Runs the workload failing the n-th write of `target`, for every n it reaches;
/// returns the op kinds of the refused batches.
fn every_write_of<T: SimValue>(target: u64) -> BTreeSet<&'static str> {
    let refused = Rc::new(RefCell::new(Vec::new()));
    let mut kinds = BTreeSet::new();
    for fail_at in 1.. {
        refused.borrow_mut().clear();
        let mut c = cluster::<T>(target, fail_at, &refused);
        let result = workload(&mut c);
        let Some(err) = c.replica(target).and_then(|r| r.error().cloned()) else {
            // The workload never reached write #fail_at of the target: every write was covered.
            result.unwrap();
            assert!(fail_at > 10, "too few writes: {fail_at}");
            println!("replica {target}: failed each of its {} writes in turn", fail_at - 1);
            return kinds;
        };
        kinds.extend(refused.borrow().iter().copied());
        assert!(matches!(err, PaxosError::Storage { .. }), "write {fail_at}: {err}");
        let r = c.replica_mut(target).unwrap();
        // Stopped: every later call returns the same error; the failed step sent nothing.
        assert!(
            matches!(r.take_outgoing_messages(), Err(PaxosError::Storage { .. })),
            "write {fail_at}: a message of the failed step left"
        );
        assert!(matches!(r.tick(), Err(PaxosError::Storage { .. })));
        assert!(matches!(r.append(T::from_value(99)), Err(PaxosError::Storage { .. })));
        assert!(matches!(r.read(0), Err(PaxosError::Storage { .. })));
        // Rolled back to what storage holds.
        let s = r.storage();
        assert_eq!(r.decided_idx(), s.get_decided_idx().unwrap(), "write {fail_at}");
        assert_eq!(r.log_end(), s.get_log_end().unwrap(), "write {fail_at}");
        assert_eq!(r.compacted_idx(), s.get_compacted_idx().unwrap(), "write {fail_at}");
        assert_eq!(r.promise(), s.get_promise().unwrap().unwrap_or_default(), "write {fail_at}");
        assert_eq!(r.accepted_round(), s.get_accepted_round().unwrap().unwrap_or_default());
        let decided_before = r.decided_idx();
        // Fail-recovery: rebuild over the same storage; the cluster converges.
        c.crash(target);
        c.restart(target).unwrap();
        let converged = c
            .run_until(400, |c| {
                let decided: Vec<usize> = c.replicas().map(|r| r.decided_idx()).collect();
                c.leader().is_some() && decided.iter().all(|d| *d == decided[0])
            })
            .unwrap();
        assert!(converged, "write {fail_at}: the cluster did not converge after recovery");
        assert!(c.replica(target).unwrap().decided_idx() >= decided_before);
        let logs = decided_logs(&c);
        assert!(
            logs.windows(2).all(|w| w[0] == w[1]),
            "write {fail_at}: decided logs differ: {logs:?}"
        );
    }
    unreachable!()
}

#[test]
fn leader_storage_failure_at_every_write() {
    let kinds = every_write_of::<SimEntry>(3);
    for op in [
        "SetPromise",
        "SetAcceptedRound",
        "AppendEntries",
        "SetDecidedIndex",
        "SetSnapshot",
        "SetStopsign",
    ] {
        assert!(kinds.contains(op), "no refused batch held {op}: {kinds:?}");
    }
}

#[test]
fn follower_storage_failure_at_every_write() {
    let kinds = every_write_of::<SimEntry>(1);
    for op in [
        "SetPromise",
        "SetAcceptedRound",
        "AppendEntries",
        "SetDecidedIndex",
        "SetSnapshot",
        "SetStopsign",
    ] {
        assert!(kinds.contains(op), "no refused batch held {op}: {kinds:?}");
    }
}

#[test]
fn trimming_replicas_survive_storage_failure_at_every_write() {
    for target in [1, 2, 3] {
        let kinds = every_write_of::<TrimEntry>(target);
        assert!(kinds.contains("Trim"), "replica {target}: no refused batch held Trim: {kinds:?}");
    }
}
