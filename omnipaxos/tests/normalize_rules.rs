//! Each normalisation rule, on the batches the real OmniPaxos 0.2.4 writes.
//!
//! A 3-node OmniPaxos cluster runs on `Shadow` storages: each write goes to `OmniStorage`
//! over paxstore's memory backend **and** to OmniPaxos' own `MemoryStorage` (OmniPaxos'
//! meaning of the batch), the two states are compared after every write, and every batch
//! is recorded with the state it was applied to. Per rule, the test shows that OmniPaxos
//! wrote batches the rule rewrote, that paxstore refuses such a real batch without the
//! rule (with the error the rule exists for), and (through the shadow) that with every
//! rule each batch left the same state as OmniPaxos' own storage.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::cell::RefCell;
use std::rc::Rc;

use common::{Cluster, Counted, TestValue, Value};
use omnipaxos::ballot_leader_election::Ballot;
use omnipaxos::storage::{StopSign, Storage as OpStorage, StorageOp as OpOp, StorageResult};
use omnipaxos::ClusterConfig;
use omnipaxos_storage::memory_storage::MemoryStorage as OpMemory;
use paxstore::{InvalidOp, LogBounds, Storage, StorageError};
use paxstore_backends::MemoryStorage;
use paxstore_omnipaxos::normalize::{normalize_with, Rule};
use paxstore_omnipaxos::{OmniEntry, OmniStorage};

/// One write OmniPaxos made.
struct Write<T: TestValue> {
    pid: u64,
    /// The paxstore bounds it was applied to.
    bounds: LogBounds,
    /// The batch as OmniPaxos wrote it.
    ops: Vec<OpOp<T>>,
    /// The rules that rewrote it.
    applied: Vec<Rule>,
}

type Writes<T> = Rc<RefCell<Vec<Write<T>>>>;

fn clone_op<T: TestValue>(op: &OpOp<T>) -> OpOp<T> {
    match op {
        OpOp::AppendEntry(e) => OpOp::AppendEntry(e.clone()),
        OpOp::AppendEntries(es) => OpOp::AppendEntries(es.clone()),
        OpOp::AppendOnPrefix(i, es) => OpOp::AppendOnPrefix(*i, es.clone()),
        OpOp::SetPromise(b) => OpOp::SetPromise(*b),
        OpOp::SetDecidedIndex(i) => OpOp::SetDecidedIndex(*i),
        OpOp::SetAcceptedRound(b) => OpOp::SetAcceptedRound(*b),
        OpOp::SetCompactedIdx(i) => OpOp::SetCompactedIdx(*i),
        OpOp::Trim(i) => OpOp::Trim(*i),
        OpOp::SetStopsign(s) => OpOp::SetStopsign(s.clone()),
        OpOp::SetSnapshot(s) => OpOp::SetSnapshot(s.clone()),
    }
}

/// `OmniStorage` over paxstore's memory backend, shadowed by OmniPaxos' `MemoryStorage`.
struct Shadow<T: TestValue> {
    pid: u64,
    paxstore: OmniStorage<MemoryStorage<OmniEntry<T>>>,
    reference: OpMemory<T>,
    writes: Writes<T>,
}

impl<T: TestValue> Shadow<T> {
    fn new(pid: u64, writes: Writes<T>) -> Self {
        let paxstore = OmniStorage::new(MemoryStorage::new()).unwrap();
        Shadow { pid, paxstore, reference: OpMemory::default(), writes }
    }

    fn bounds(&self) -> LogBounds {
        let s = self.paxstore.inner();
        let compacted_idx = s.get_compacted_idx().unwrap();
        LogBounds {
            compacted_idx,
            log_end: compacted_idx + s.get_log_len().unwrap(),
            decided_idx: s.get_decided_idx().unwrap(),
            has_stopsign: s.get_stopsign().unwrap().is_some(),
        }
    }

    fn write(&mut self, ops: Vec<OpOp<T>>) -> StorageResult<()> {
        let bounds = self.bounds();
        let before: Vec<u64> = Rule::ALL.iter().map(|&r| self.paxstore.times_applied(r)).collect();
        let recorded: Vec<_> = ops.iter().map(clone_op).collect();
        let shadow: Vec<_> = ops.iter().map(clone_op).collect();
        if let Err(err) = self.paxstore.write_atomically(ops) {
            panic!(
                "node {}: OmniStorage refused a batch OmniPaxos wrote: {err}\n{recorded:?}",
                self.pid
            );
        }
        self.reference.write_atomically(shadow)?;
        self.assert_same_state(&recorded);
        let applied = Rule::ALL
            .iter()
            .zip(before)
            .filter(|(&r, n)| self.paxstore.times_applied(r) > *n)
            .map(|(&r, _)| r)
            .collect();
        self.writes.borrow_mut().push(Write { pid: self.pid, bounds, ops: recorded, applied });
        Ok(())
    }

    fn assert_same_state(&self, batch: &[OpOp<T>]) {
        let (p, r) = (&self.paxstore, &self.reference);
        let what = |field: &str| format!("node {}: {field} differs after {batch:?}", self.pid);
        let c = r.get_compacted_idx().unwrap();
        assert_eq!(p.get_compacted_idx().unwrap(), c, "{}", what("compacted index"));
        assert_eq!(p.get_log_len().unwrap(), r.get_log_len().unwrap(), "{}", what("log length"));
        // Rule StopsignCountedTwice: where OmniPaxos stores `log_end + 2` after counting
        // its stop sign twice, paxstore stores `log_end + 1`.
        let (pd, rd) = (p.get_decided_idx().unwrap(), r.get_decided_idx().unwrap());
        let end = c + r.get_log_len().unwrap();
        let counted_twice = r.get_stopsign().unwrap().is_some() && (pd, rd) == (end + 1, end + 2);
        assert!(pd == rd || counted_twice, "{}: {pd} vs {rd}", what("decided index"));
        assert_eq!(p.get_suffix(c).unwrap(), r.get_suffix(c).unwrap(), "{}", what("entries"));
        assert_eq!(p.get_promise().unwrap(), r.get_promise().unwrap(), "{}", what("promise"));
        assert_eq!(
            p.get_accepted_round().unwrap(),
            r.get_accepted_round().unwrap(),
            "{}",
            what("accepted round")
        );
        assert_eq!(p.get_stopsign().unwrap(), r.get_stopsign().unwrap(), "{}", what("stop sign"));
        assert_eq!(p.get_snapshot().unwrap(), r.get_snapshot().unwrap(), "{}", what("snapshot"));
    }
}

impl<T: TestValue> OpStorage<T> for Shadow<T> {
    fn write_atomically(&mut self, ops: Vec<OpOp<T>>) -> StorageResult<()> {
        self.write(ops)
    }
    fn append_entry(&mut self, entry: T) -> StorageResult<()> {
        self.write(vec![OpOp::AppendEntry(entry)])
    }
    fn append_entries(&mut self, entries: Vec<T>) -> StorageResult<()> {
        self.write(vec![OpOp::AppendEntries(entries)])
    }
    fn append_on_prefix(&mut self, from_idx: usize, entries: Vec<T>) -> StorageResult<()> {
        self.write(vec![OpOp::AppendOnPrefix(from_idx, entries)])
    }
    fn set_promise(&mut self, n_prom: Ballot) -> StorageResult<()> {
        self.write(vec![OpOp::SetPromise(n_prom)])
    }
    fn set_decided_idx(&mut self, ld: usize) -> StorageResult<()> {
        self.write(vec![OpOp::SetDecidedIndex(ld)])
    }
    fn get_decided_idx(&self) -> StorageResult<usize> {
        self.paxstore.get_decided_idx()
    }
    fn set_accepted_round(&mut self, na: Ballot) -> StorageResult<()> {
        self.write(vec![OpOp::SetAcceptedRound(na)])
    }
    fn get_accepted_round(&self) -> StorageResult<Option<Ballot>> {
        self.paxstore.get_accepted_round()
    }
    fn get_entries(&self, from: usize, to: usize) -> StorageResult<Vec<T>> {
        self.paxstore.get_entries(from, to)
    }
    fn get_log_len(&self) -> StorageResult<usize> {
        self.paxstore.get_log_len()
    }
    fn get_suffix(&self, from: usize) -> StorageResult<Vec<T>> {
        self.paxstore.get_suffix(from)
    }
    fn get_promise(&self) -> StorageResult<Option<Ballot>> {
        self.paxstore.get_promise()
    }
    fn set_stopsign(&mut self, s: Option<StopSign>) -> StorageResult<()> {
        self.write(vec![OpOp::SetStopsign(s)])
    }
    fn get_stopsign(&self) -> StorageResult<Option<StopSign>> {
        self.paxstore.get_stopsign()
    }
    fn trim(&mut self, idx: usize) -> StorageResult<()> {
        self.write(vec![OpOp::Trim(idx)])
    }
    fn set_compacted_idx(&mut self, idx: usize) -> StorageResult<()> {
        self.write(vec![OpOp::SetCompactedIdx(idx)])
    }
    fn get_compacted_idx(&self) -> StorageResult<usize> {
        self.paxstore.get_compacted_idx()
    }
    fn set_snapshot(&mut self, snapshot: Option<T::Snapshot>) -> StorageResult<()> {
        self.write(vec![OpOp::SetSnapshot(snapshot)])
    }
    fn get_snapshot(&self) -> StorageResult<Option<T::Snapshot>> {
        self.paxstore.get_snapshot()
    }
}

fn shadow_cluster<T: TestValue>() -> (Cluster<T, Shadow<T>>, Writes<T>) {
    let writes: Writes<T> = Rc::default();
    let w = writes.clone();
    let cluster = Cluster::new("shadow", 3, 1, move |_, pid| Shadow::new(pid, w.clone()));
    (cluster, writes)
}

/// Why paxstore refuses `write` normalised with every rule but `rule`, if it does.
fn refusal_without<T: TestValue>(write: &Write<T>, rule: Rule) -> Option<InvalidOp> {
    let rules: Vec<Rule> = Rule::ALL.into_iter().filter(|&r| r != rule).collect();
    let ops = write.ops.iter().map(clone_op).collect();
    let batch = normalize_with(write.bounds, ops, &rules).unwrap();
    match write.bounds.validate_batch(&batch.ops) {
        Ok(_) => None,
        Err(StorageError::InvalidOp { reason, .. }) => Some(reason),
        Err(err) => panic!("validation failed with {err}"),
    }
}

/// The writes `rule` rewrote, and the refusals paxstore gives them without it.
fn hits<T: TestValue>(writes: &Writes<T>, rule: Rule) -> (usize, Vec<InvalidOp>) {
    let writes = writes.borrow();
    let hit: Vec<&Write<T>> = writes.iter().filter(|w| w.applied.contains(&rule)).collect();
    for w in hit.iter().take(2) {
        eprintln!("{} on node {} at {:?}: {:?}", rule.name(), w.pid, w.bounds, w.ops);
    }
    (hit.len(), hit.iter().filter_map(|w| refusal_without(w, rule)).collect())
}

/// A follower cut off while the others decide and snapshot past its log end is
/// synchronised with the leader's snapshot: `sync_log` writes `Trim(s), SetCompactedIdx(s)`
/// with `s` past the follower's log end, and its decided index before the entries.
fn follower_synced_from_a_snapshot() -> Writes<Counted> {
    let (mut c, writes) = shadow_cluster::<Counted>();
    let leader = c.elect();
    let follower = c.pids().into_iter().find(|&p| p != leader).unwrap();
    c.propose(leader, 0..20);
    c.decide_until(20);
    c.disconnect(follower);
    c.propose(leader, 20..120);
    c.decide_until(120);
    c.node_mut(leader).snapshot(Some(100), true).unwrap();
    c.reconnect(follower);
    c.tick_until("the follower catching up", 200, |c| c.node(follower).get_decided_idx() == 120);
    c.assert_same_decided();
    writes
}

#[test]
fn trim_then_compact_on_a_snapshot_install() {
    let writes = follower_synced_from_a_snapshot();
    let (n, refusals) = hits(&writes, Rule::TrimThenCompact);
    assert!(n > 0, "OmniPaxos wrote no Trim + SetCompactedIdx pair");
    assert!(
        refusals.iter().any(|r| matches!(r, InvalidOp::TrimPastEnd { .. })),
        "without the rule, no real batch was refused with TrimPastEnd: {refusals:?}"
    );
}

#[test]
fn trim_then_compact_on_a_trim() {
    let (mut c, writes) = shadow_cluster::<Value>();
    let leader = c.elect();
    c.propose(leader, 0..50);
    c.decide_until(50);
    c.node_mut(leader).trim(Some(30)).unwrap();
    c.tick();
    let (n, refusals) = hits(&writes, Rule::TrimThenCompact);
    // Every node trimmed with the pair, which is valid either way within the log.
    assert_eq!(n, 3, "one Trim + SetCompactedIdx pair per node");
    assert!(refusals.is_empty(), "{refusals:?}");
    assert!(c.pids().iter().all(|&p| c.node(p).get_compacted_idx() == 30));
}

#[test]
fn decided_last_on_a_follower_sync() {
    let writes = follower_synced_from_a_snapshot();
    let (n, refusals) = hits(&writes, Rule::DecidedLast);
    assert!(n > 0, "OmniPaxos wrote no batch with its decided index before other ops");
    assert!(
        refusals.iter().any(|r| matches!(r, InvalidOp::DecidedPastEnd { .. })),
        "without the rule, no real batch was refused with DecidedPastEnd: {refusals:?}"
    );
}

/// A leader change with accepted but undecided entries: the new leader syncs a follower
/// whose log is longer than the common prefix, deciding entries the batch rewrites.
#[test]
fn decided_last_on_a_leader_change() {
    let (mut c, writes) = shadow_cluster::<Value>();
    let old = c.elect();
    c.propose(old, 0..10);
    c.decide_until(10);
    c.propose(old, 10..20);
    c.deliver_if(|m| m.get_sender() == old);
    c.disconnect(old);
    c.tick_until("a new leader", 300, |c| c.leader().is_some_and(|l| l != old));
    let new = c.leader().unwrap();
    c.propose(new, 100..110);
    c.decide_until(30);
    c.reconnect(old);
    c.tick_until("the old leader catching up", 100, |c| c.node(old).get_decided_idx() == 30);
    c.assert_same_decided();
    let (n, refusals) = hits(&writes, Rule::DecidedLast);
    assert!(n > 0, "the leader change wrote no batch with its decided index before other ops");
    assert!(
        refusals.iter().any(|r| matches!(r, InvalidOp::DecidedPastEnd { .. })),
        "without the rule, no real batch was refused: {refusals:?}"
    );
}

/// A leader change after the stop sign is decided: the new leader syncs the others with
/// an empty suffix at the stop sign's slot or after it, and then decides one past it.
fn leader_change_after_a_decided_stop_sign() -> Writes<Value> {
    let (mut c, writes) = shadow_cluster::<Value>();
    let leader = c.elect();
    c.propose(leader, 0..10);
    c.decide_until(10);
    let next = ClusterConfig { configuration_id: 2, nodes: vec![1, 2, 3], flexible_quorum: None };
    c.node_mut(leader).reconfigure(next, None).unwrap();
    c.tick_until("the stop sign decided", 100, |c| {
        c.pids().iter().all(|&p| c.node(p).is_reconfigured().is_some())
    });
    c.disconnect(leader);
    c.tick_until("a new leader", 300, |c| c.leader().is_some_and(|l| l != leader));
    c.reconnect(leader);
    c.tick_until("all caught up", 100, |c| c.leader().is_some());
    // 10 entries and the stop sign, counted twice by OmniPaxos (rule StopsignCountedTwice).
    assert_eq!(c.assert_same_decided(), 12);
    writes
}

#[test]
fn empty_suffix_at_end_after_a_decided_stop_sign() {
    let writes = leader_change_after_a_decided_stop_sign();
    let (n, refusals) = hits(&writes, Rule::EmptySuffixAtEnd);
    assert!(n > 0, "OmniPaxos wrote no empty suffix at the log end");
    assert!(
        refusals.iter().any(|r| matches!(
            r,
            InvalidOp::AppendOnPrefixPastEnd { .. }
                | InvalidOp::AppendOnPrefixOverwritesDecided { .. }
        )),
        "without the rule, no real batch was refused: {refusals:?}"
    );
}

#[test]
fn stopsign_counted_twice_after_a_leader_change() {
    let writes = leader_change_after_a_decided_stop_sign();
    let (n, refusals) = hits(&writes, Rule::StopsignCountedTwice);
    assert!(n > 0, "OmniPaxos did not decide past its stop sign");
    assert!(
        refusals.iter().any(|r| matches!(r, InvalidOp::DecidedPastEnd { idx: 12, log_end: 10 })),
        "without the rule, no real batch was refused with DecidedPastEnd: {refusals:?}"
    );
}
