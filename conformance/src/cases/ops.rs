//! Every op and getter, one at a time and in mixed batches, against the model.

use paxstore::StorageOp::*;
use paxstore::{Ballot, ClusterConfig, Snapshot, StopSign, Storage};

use crate::{Factory, Fixture, TestSnapshot};

pub(crate) fn ballot(n: u32) -> Ballot {
    Ballot::new(1, n, n % 3, u64::from(n) * 7 + 1)
}

pub(crate) fn stopsign(id: u32) -> StopSign {
    StopSign {
        next_config: ClusterConfig {
            configuration_id: id,
            nodes: vec![1, 2, 3],
            flexible_quorum: None,
        },
        metadata: Some(vec![id as u8; 3]),
    }
}

/// A fresh store is the initial state: empty log at 0, nothing set.
pub fn fresh_store_matches_the_empty_model<F: Factory>(factory: &F) {
    Fixture::new(factory).check();
}

/// `AppendEntry` adds one entry at the end.
pub fn append_entry<F: Factory>(factory: &F) {
    let mut fx = Fixture::new(factory);
    for len in [1, 10, 100] {
        let e = fx.entry(len);
        fx.write(vec![AppendEntry(e)]);
    }
}

/// `AppendEntries` adds entries in order at the end.
pub fn append_entries<F: Factory>(factory: &F) {
    let mut fx = Fixture::new(factory);
    for n in [1, 5, 50] {
        let es = fx.entries(n, 16);
        fx.write(vec![AppendEntries(es)]);
    }
}

/// `AppendEntries` of nothing changes nothing.
pub fn append_no_entries<F: Factory>(factory: &F) {
    let mut fx = Fixture::new(factory);
    fx.write(vec![AppendEntries(vec![])]);
    let es = fx.entries(3, 8);
    fx.write(vec![AppendEntries(es), AppendEntries(vec![])]);
}

/// The provided single-op setters are the one-op batches they stand for.
pub fn provided_setters_equal_one_op_batches<F: Factory>(factory: &F) {
    let mut fx = Fixture::new(factory);
    let e = fx.entry(4);
    let es = fx.entries(4, 4);
    let tail = fx.entries(2, 4);
    fx.note("the provided setters, one call each");
    let s = fx.storage();
    let results = [
        s.append_entry(e.clone()),
        s.append_entries(es.clone()),
        s.set_decided_idx(2),
        s.append_on_prefix(3, tail.clone()),
        s.set_promise(ballot(5)),
        s.set_accepted_round(ballot(4)),
        s.trim(1),
        s.set_compacted_idx(2),
        s.set_stopsign(Some(stopsign(2))),
        s.set_snapshot(Some(TestSnapshot::create(&es))),
    ];
    for (i, r) in results.into_iter().enumerate() {
        if let Err(err) = r {
            panic!("provided setter #{i} failed: {err}");
        }
    }
    let ops = vec![
        AppendEntry(e),
        AppendEntries(es.clone()),
        SetDecidedIndex(2),
        AppendOnPrefix(3, tail),
        SetPromise(ballot(5)),
        SetAcceptedRound(ballot(4)),
        Trim(1),
        SetCompactedIdx(2),
        SetStopsign(Some(stopsign(2))),
        SetSnapshot(Some(TestSnapshot::create(&es))),
    ];
    if let Err(e) = fx.model.apply_batch(&ops) {
        panic!("model refused the setters' ops: {e:?}");
    }
    fx.check();
}

/// `AppendOnPrefix` in the middle truncates the suffix and appends.
pub fn append_on_prefix_truncates<F: Factory>(factory: &F) {
    let mut fx = Fixture::new(factory);
    let es = fx.entries(10, 8);
    fx.write(vec![AppendEntries(es)]);
    let tail = fx.entries(3, 8);
    fx.write(vec![AppendOnPrefix(4, tail)]);
    let shorter = fx.entries(1, 8);
    fx.write(vec![AppendOnPrefix(2, shorter)]);
    fx.write(vec![AppendOnPrefix(1, vec![])]);
}

/// `AppendOnPrefix` at the end of the log appends, at its start replaces everything.
pub fn append_on_prefix_at_the_bounds<F: Factory>(factory: &F) {
    let mut fx = Fixture::new(factory);
    let es = fx.entries(5, 8);
    fx.write(vec![AppendOnPrefix(0, es)]);
    let more = fx.entries(2, 8);
    fx.write(vec![AppendOnPrefix(5, more)]);
    let fresh = fx.entries(3, 8);
    fx.write(vec![AppendOnPrefix(0, fresh)]);
}

/// `AppendOnPrefix` after a trim takes absolute indices, down to the compacted index.
pub fn append_on_prefix_after_trim<F: Factory>(factory: &F) {
    let mut fx = Fixture::new(factory);
    let es = fx.entries(10, 8);
    fx.write(vec![AppendEntries(es), Trim(6)]);
    let tail = fx.entries(2, 8);
    fx.write(vec![AppendOnPrefix(8, tail)]);
    let all = fx.entries(3, 8);
    fx.write(vec![AppendOnPrefix(6, all)]);
}

/// `SetPromise` and `SetAcceptedRound` store the ballot; later sets replace it.
pub fn set_promise_and_accepted_round<F: Factory>(factory: &F) {
    let mut fx = Fixture::new(factory);
    fx.write(vec![SetPromise(ballot(3))]);
    fx.write(vec![SetAcceptedRound(ballot(2))]);
    fx.write(vec![SetPromise(ballot(9)), SetAcceptedRound(ballot(9))]);
    fx.write(vec![SetPromise(Ballot::new(u32::MAX, u32::MAX, u32::MAX, u64::MAX))]);
}

/// `SetDecidedIndex` moves within `[0, log_end]`, backwards too.
pub fn set_decided_idx<F: Factory>(factory: &F) {
    let mut fx = Fixture::new(factory);
    fx.write(vec![SetDecidedIndex(0)]);
    let es = fx.entries(6, 8);
    fx.write(vec![AppendEntries(es), SetDecidedIndex(6)]);
    fx.write(vec![SetDecidedIndex(3)]);
}

/// `Trim` drops the prefix, keeps every other entry at its absolute index, and
/// `get_log_len` counts only the entries still stored.
pub fn trim_keeps_absolute_indices<F: Factory>(factory: &F) {
    let mut fx = Fixture::new(factory);
    let es = fx.entries(20, 8);
    fx.write(vec![AppendEntries(es), SetDecidedIndex(15)]);
    fx.write(vec![Trim(5)]);
    fx.write(vec![Trim(12)]);
    let more = fx.entries(3, 8);
    fx.write(vec![AppendEntries(more)]);
    assert_eq!(fx.storage().get_log_len().ok(), Some(11), "log_len after trims");
    assert_eq!(fx.storage().get_compacted_idx().ok(), Some(12), "compacted_idx after trims");
}

/// `Trim` to the end of the log leaves an empty log that starts there.
pub fn trim_to_log_end<F: Factory>(factory: &F) {
    let mut fx = Fixture::new(factory);
    let es = fx.entries(7, 8);
    fx.write(vec![AppendEntries(es), Trim(7)]);
    let more = fx.entries(2, 8);
    fx.write(vec![AppendEntries(more)]);
}

/// `Trim` to the compacted index changes nothing.
pub fn trim_to_compacted_idx_is_a_no_op<F: Factory>(factory: &F) {
    let mut fx = Fixture::new(factory);
    fx.write(vec![Trim(0)]);
    let es = fx.entries(4, 8);
    fx.write(vec![AppendEntries(es), Trim(2)]);
    fx.write(vec![Trim(2)]);
}

/// `SetCompactedIdx` within the log is exactly `Trim`.
pub fn set_compacted_idx_within_log<F: Factory>(factory: &F) {
    let mut fx = Fixture::new(factory);
    let es = fx.entries(10, 8);
    fx.write(vec![AppendEntries(es), SetCompactedIdx(4)]);
    fx.write(vec![SetCompactedIdx(10)]);
}

/// `SetCompactedIdx` past the end drops every entry and starts an empty log there.
pub fn set_compacted_idx_past_end<F: Factory>(factory: &F) {
    let mut fx = Fixture::new(factory);
    let es = fx.entries(5, 8);
    fx.write(vec![AppendEntries(es)]);
    let snap = TestSnapshot { entries: 100, last_id: Some(99), digest: 7 };
    fx.write(vec![SetSnapshot(Some(snap)), SetCompactedIdx(100), SetDecidedIndex(100)]);
    let more = fx.entries(3, 8);
    fx.write(vec![AppendEntries(more)]);
    fx.write(vec![SetCompactedIdx(1_000_000)]);
}

/// `SetStopsign` stores and clears the stop sign.
pub fn set_stopsign<F: Factory>(factory: &F) {
    let mut fx = Fixture::new(factory);
    fx.write(vec![SetStopsign(Some(stopsign(2)))]);
    let mut s = stopsign(3);
    s.metadata = None;
    fx.write(vec![SetStopsign(Some(s))]);
    fx.write(vec![SetStopsign(None)]);
}

/// `SetSnapshot` stores and clears the snapshot.
pub fn set_snapshot<F: Factory>(factory: &F) {
    let mut fx = Fixture::new(factory);
    let es = fx.entries(10, 8);
    let mut snap = TestSnapshot::create(&es[..5]);
    fx.write(vec![AppendEntries(es.clone()), SetSnapshot(Some(snap.clone())), Trim(5)]);
    snap.merge(TestSnapshot::create(&es[5..]));
    fx.write(vec![SetSnapshot(Some(snap)), Trim(10)]);
    fx.write(vec![SetSnapshot(None)]);
}

/// Every sub-range `[from, to)` of a trimmed log reads back as the model says.
pub fn get_entries_every_range<F: Factory>(factory: &F) {
    let mut fx = Fixture::new(factory);
    let es = fx.entries(12, 8);
    fx.write(vec![AppendEntries(es), Trim(3)]);
    let (c, end) = (fx.model.compacted_idx, fx.model.log_end());
    for from in c..=end {
        for to in from..=end {
            let want = fx.model.log[from - c..to - c].to_vec();
            match fx.storage().get_entries(from, to) {
                Ok(got) => assert_eq!(got, want, "get_entries({from}, {to})"),
                Err(err) => panic!("get_entries({from}, {to}) failed: {err}"),
            }
        }
        let want = fx.model.log[from - c..].to_vec();
        match fx.storage().get_suffix(from) {
            Ok(got) => assert_eq!(got, want, "get_suffix({from})"),
            Err(err) => panic!("get_suffix({from}) failed: {err}"),
        }
    }
}

/// A batch of many kinds of ops applies them in order, each seeing the earlier ones.
pub fn mixed_batch_applies_in_order<F: Factory>(factory: &F) {
    let mut fx = Fixture::new(factory);
    let a = fx.entries(8, 8);
    let b = fx.entries(3, 8);
    let c = fx.entry(8);
    fx.write(vec![
        SetPromise(ballot(2)),
        AppendEntries(a.clone()),
        SetAcceptedRound(ballot(2)),
        SetDecidedIndex(4),
        AppendOnPrefix(6, b),
        SetSnapshot(Some(TestSnapshot::create(&a[..3]))),
        Trim(3),
        AppendEntry(c),
        SetDecidedIndex(10),
        SetStopsign(Some(stopsign(5))),
        SetPromise(ballot(3)),
    ]);
}

/// An empty batch succeeds and changes nothing.
pub fn empty_batch_changes_nothing<F: Factory>(factory: &F) {
    let mut fx = Fixture::new(factory);
    fx.write(vec![]);
    let es = fx.entries(3, 8);
    fx.write(vec![AppendEntries(es), SetPromise(ballot(1))]);
    fx.write(vec![]);
}

/// `AppendOnPrefix` exactly at the decided index is allowed: only decided entries are
/// immutable.
pub fn append_on_prefix_at_decided_idx<F: Factory>(factory: &F) {
    let mut fx = Fixture::new(factory);
    let es = fx.entries(8, 8);
    fx.write(vec![AppendEntries(es), SetDecidedIndex(5)]);
    let tail = fx.entries(4, 8);
    fx.write(vec![AppendOnPrefix(5, tail)]);
}

/// OmniPaxos issue #129: after a trim, `get_log_len` counts the entries still stored,
/// not the absolute end of the log, and `get_log_end` is their sum.
pub fn log_len_after_trim_counts_stored_entries<F: Factory>(factory: &F) {
    let mut fx = Fixture::new(factory);
    let es = fx.entries(10, 8);
    fx.write(vec![AppendEntries(es), SetDecidedIndex(10), Trim(4)]);
    let s = fx.storage();
    assert_eq!(s.get_log_len().ok(), Some(6), "get_log_len after Trim(4) of 10 entries");
    assert_eq!(s.get_compacted_idx().ok(), Some(4), "get_compacted_idx after Trim(4)");
    assert_eq!(s.get_log_end().ok(), Some(10), "get_log_end after Trim(4) of 10 entries");
}

/// A follower installing a snapshot that covers entries it never had, in one batch, then
/// carrying on from there.
pub fn snapshot_install_batch<F: Factory>(factory: &F) {
    let mut fx = Fixture::new(factory);
    let es = fx.entries(3, 8);
    fx.write(vec![AppendEntries(es), SetPromise(ballot(1)), SetAcceptedRound(ballot(1))]);
    let covered = fx.entries(50, 8);
    fx.write(vec![
        SetPromise(ballot(2)),
        SetAcceptedRound(ballot(2)),
        SetSnapshot(Some(TestSnapshot::create(&covered))),
        SetCompactedIdx(50),
        SetDecidedIndex(50),
    ]);
    let next = fx.entries(5, 8);
    fx.write(vec![AppendEntries(next), SetDecidedIndex(53)]);
}

/// The steady state of a replica: append, decide, trim, over and over, checked each time.
pub fn append_decide_trim_cycles<F: Factory>(factory: &F) {
    let mut fx = Fixture::new(factory);
    for round in 0..40 {
        let es = fx.entries(1 + round % 5, 32);
        let end = fx.model.log_end() + es.len();
        let mut ops = vec![AppendEntries(es), SetDecidedIndex(end - 1)];
        if round % 3 == 2 {
            ops.push(Trim(end - 2));
        }
        fx.write(ops);
    }
}
