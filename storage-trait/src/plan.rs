//! What a batch means, decided once: [`BatchPlan`], the net effect of a valid batch,
//! which every backend applies instead of walking the ops with logic of its own.
//!
//! A batch's ops apply in order, each to the state the ops before it left, so a later op
//! can undo part of an earlier one (an `AppendOnPrefix` cuts entries appended just
//! before it; a `Trim` drops them). The net effect is simpler than the ops: some stored
//! entries are kept (a range), the rest are removed (below it: compacted; above it: cut),
//! one run of the batch's entries follows them, and each metadata field either keeps its
//! value or takes the last value the batch gave it.

use std::ops::Range;

use crate::{Ballot, Entry, LogBounds, StopSign, StorageOp};

/// The net effect of a valid batch on the stored state, from
/// [`LogBounds::validate_batch`].
///
/// A backend applies it in this order, and the result is exactly what the ops, applied
/// one by one, would have left:
///
/// 1. remove the stored entries [`removed`](BatchPlan::removed) names (they are stored:
///    every index in both ranges lies in `[before.compacted_idx, before.log_end)`);
/// 2. write the batch's surviving entries, [`BatchValues::entries`], at absolute indices
///    `[append_from, after.log_end)` (they may overwrite indices step 1 removed);
/// 3. store `after.compacted_idx`, `after.decided_idx` (the log end follows), and each
///    metadata field the batch set: [`promise`](BatchPlan::promise),
///    [`accepted_round`](BatchPlan::accepted_round), [`BatchValues::stopsign`],
///    [`BatchValues::snapshot`].
///
/// The stored log after the batch is then `kept()` followed by the entries of step 2:
/// `[after.compacted_idx, after.log_end)`, with no gap.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct BatchPlan {
    /// The bounds the batch was validated against.
    pub before: LogBounds,
    /// The bounds after the batch.
    pub after: LogBounds,
    /// The first stored index an `AppendOnPrefix` of the batch cut: the stored entries
    /// at `[truncate_from, before.log_end)` are removed. `before.log_end` when the batch
    /// cuts nothing.
    pub truncate_from: usize,
    /// The absolute index of the first of the batch's entries that survive it; they fill
    /// `[append_from, after.log_end)` (empty when `append_from == after.log_end`).
    pub append_from: usize,
    /// Where those entries are in the batch, in order.
    pub appended: EntrySources,
    /// The ballot of the batch's last `SetPromise`, `None` if it has none.
    pub promise: Option<Ballot>,
    /// The ballot of the batch's last `SetAcceptedRound`, `None` if it has none.
    pub accepted_round: Option<Ballot>,
    /// The position of the batch's last `SetStopsign`, whose value replaces the stored
    /// one; `None` if the batch leaves the stop sign alone.
    pub stopsign_op: Option<usize>,
    /// The position of the batch's last `SetSnapshot`, whose value replaces the stored
    /// one; `None` if the batch leaves the snapshot alone.
    pub snapshot_op: Option<usize>,
}

/// A run of a batch's entries that survives the batch: the entries `entries` (positions
/// within the op's own list; `0..1` for an `AppendEntry`) of the op at position `op`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct EntrySource {
    /// The op's position in the batch, from 0.
    pub op: usize,
    /// Which of the op's entries, by their position in it.
    pub entries: Range<usize>,
}

/// The runs of a batch's entries that survive it ([`BatchPlan::appended`]), in order; read
/// them as a slice (`iter()`, `len()`, indexing). A batch has one run or two almost
/// always, and those are held inline: validating a batch allocates nothing for them.
#[derive(Clone, Default)]
pub struct EntrySources {
    /// The runs while there are at most [`INLINE`] and `spilled` is empty: `inline[..len]`.
    inline: [EntrySource; INLINE],
    len: usize,
    /// All the runs, once there were more than [`INLINE`] (then `inline` is unused).
    spilled: Vec<EntrySource>,
}

/// Runs held without an allocation.
const INLINE: usize = 2;

impl EntrySources {
    fn push(&mut self, source: EntrySource) {
        if self.spilled.is_empty() && self.len < INLINE {
            self.inline[self.len] = source;
            self.len += 1;
            return;
        }
        if self.spilled.is_empty() {
            self.spilled.extend(self.inline[..self.len].iter().cloned());
            self.len = 0;
        }
        self.spilled.push(source);
    }

    fn clear(&mut self) {
        self.len = 0;
        self.spilled.clear();
    }

    /// Keeps the runs for which `keep` (which may change them) says `true`, in order.
    fn retain_mut(&mut self, mut keep: impl FnMut(&mut EntrySource) -> bool) {
        if !self.spilled.is_empty() {
            self.spilled.retain_mut(keep);
            return;
        }
        let mut kept = 0;
        for i in 0..self.len {
            if keep(&mut self.inline[i]) {
                self.inline.swap(kept, i);
                kept += 1;
            }
        }
        self.len = kept;
    }
}

impl std::ops::Deref for EntrySources {
    type Target = [EntrySource];

    fn deref(&self) -> &[EntrySource] {
        if self.spilled.is_empty() {
            &self.inline[..self.len]
        } else {
            &self.spilled
        }
    }
}

impl PartialEq for EntrySources {
    fn eq(&self, other: &Self) -> bool {
        self[..] == other[..]
    }
}

impl Eq for EntrySources {}

impl std::fmt::Debug for EntrySources {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list().entries(self.iter()).finish()
    }
}

/// The values a batch stores, moved out of its ops by [`BatchPlan::into_values`].
#[derive(Debug)]
#[non_exhaustive]
pub struct BatchValues<T: Entry> {
    /// The batch's surviving entries, for absolute indices
    /// `[plan.append_from, plan.after.log_end)`.
    pub entries: Vec<T>,
    /// `Some(value)` if the batch sets the stop sign (`Some(None)` clears it).
    pub stopsign: Option<Option<StopSign>>,
    /// `Some(value)` if the batch sets the snapshot (`Some(None)` clears it).
    pub snapshot: Option<Option<T::Snapshot>>,
}

impl BatchPlan {
    /// The plan of an empty batch on a log with `bounds`: it changes nothing.
    pub(crate) fn new(bounds: LogBounds) -> Self {
        BatchPlan {
            before: bounds,
            after: bounds,
            truncate_from: bounds.log_end,
            append_from: bounds.log_end,
            appended: EntrySources::default(),
            promise: None,
            accepted_round: None,
            stopsign_op: None,
            snapshot_op: None,
        }
    }

    /// The stored entries the batch keeps: `[after.compacted_idx, truncate_from)`, or an
    /// empty range when compaction passes the cut.
    pub fn kept(&self) -> Range<usize> {
        let end = self.truncate_from;
        self.after.compacted_idx.min(end)..end
    }

    /// The stored entries the batch removes, as two ranges that may be empty: those
    /// below [`kept`](BatchPlan::kept) (compacted) and those above it (cut).
    pub fn removed(&self) -> [Range<usize>; 2] {
        let kept = self.kept();
        [self.before.compacted_idx..kept.start, kept.end..self.before.log_end]
    }

    /// The number of the batch's entries that survive it.
    pub fn appended_len(&self) -> usize {
        self.after.log_end - self.append_from
    }

    /// The batch's surviving entries, borrowed from `ops`, in order.
    ///
    /// `ops` must be the batch this plan was made from; given another, the entries are
    /// meaningless (never a panic).
    pub fn entries<'a, T: Entry>(&'a self, ops: &'a [StorageOp<T>]) -> impl Iterator<Item = &'a T> {
        self.appended.iter().flat_map(move |source| {
            let entries: &[T] = match ops.get(source.op) {
                Some(StorageOp::AppendEntry(entry)) => std::slice::from_ref(entry),
                Some(StorageOp::AppendEntries(es) | StorageOp::AppendOnPrefix(_, es)) => es,
                _ => &[],
            };
            entries.get(source.entries.clone()).unwrap_or_default()
        })
    }

    /// The values the batch stores, moved out of `ops`: its surviving entries, and the
    /// stop sign and snapshot it sets.
    ///
    /// `ops` must be the batch this plan was made from; given another, the values are
    /// meaningless (never a panic).
    pub fn into_values<T: Entry>(&self, ops: Vec<StorageOp<T>>) -> BatchValues<T> {
        let mut values = BatchValues { entries: Vec::new(), stopsign: None, snapshot: None };
        let total = self.appended_len();
        let mut sources = self.appended.iter().peekable();
        for (position, op) in ops.into_iter().enumerate() {
            let source = sources.next_if(|source| source.op == position);
            match op {
                StorageOp::AppendEntry(entry) if source.is_some() => {
                    values.entries.reserve_exact(total.saturating_sub(values.entries.len()));
                    values.entries.push(entry);
                }
                StorageOp::AppendEntries(mut es) | StorageOp::AppendOnPrefix(_, mut es) => {
                    let Some(source) = source else { continue };
                    let range = source.entries.clone();
                    if values.entries.is_empty() && range.len() == total && range.end <= es.len() {
                        // The one run that survives (the usual batch): its vector is
                        // moved whole, without a copy.
                        es.truncate(range.end);
                        es.drain(..range.start);
                        values.entries = es;
                    } else {
                        values.entries.reserve_exact(total.saturating_sub(values.entries.len()));
                        values.entries.extend(es.into_iter().skip(range.start).take(range.len()));
                    }
                }
                StorageOp::SetStopsign(s) if self.stopsign_op == Some(position) => {
                    values.stopsign = Some(s);
                }
                StorageOp::SetSnapshot(s) if self.snapshot_op == Some(position) => {
                    values.snapshot = Some(s);
                }
                _ => {}
            }
        }
        values
    }

    /// Adds op `op`, at `position`, which the bounds accepted; `before` are the bounds
    /// the ops before it left. Every index here lies within bounds the op was checked
    /// against, so none of this arithmetic can overflow.
    pub(crate) fn add<T: Entry>(&mut self, position: usize, op: &StorageOp<T>, before: LogBounds) {
        match op {
            StorageOp::AppendEntry(_) => self.append(position, 1),
            StorageOp::AppendEntries(entries) => self.append(position, entries.len()),
            StorageOp::AppendOnPrefix(from_idx, entries) => {
                self.cut(*from_idx);
                self.append(position, entries.len());
            }
            StorageOp::SetCompactedIdx(idx) if *idx > before.log_end => {
                // Every entry is dropped and the empty log starts at `idx`.
                self.appended.clear();
                self.append_from = *idx;
            }
            StorageOp::SetCompactedIdx(idx) | StorageOp::Trim(idx) => self.compact(*idx),
            StorageOp::SetPromise(ballot) => self.promise = Some(*ballot),
            StorageOp::SetAcceptedRound(ballot) => self.accepted_round = Some(*ballot),
            StorageOp::SetStopsign(_) => self.stopsign_op = Some(position),
            StorageOp::SetSnapshot(_) => self.snapshot_op = Some(position),
            StorageOp::SetDecidedIndex(_) => {}
        }
    }

    /// The batch's entries so far fill `[append_from, append_from + len)`.
    fn appended_so_far(&self) -> usize {
        self.appended.iter().map(|source| source.entries.len()).sum()
    }

    fn append(&mut self, op: usize, n: usize) {
        if n > 0 {
            self.appended.push(EntrySource { op, entries: 0..n });
        }
    }

    /// Removes every entry at `idx` and above: stored ones by moving the cut, the
    /// batch's own by shortening its runs.
    fn cut(&mut self, idx: usize) {
        if idx <= self.append_from {
            self.truncate_from = self.truncate_from.min(idx);
            self.appended.clear();
            self.append_from = idx;
            return;
        }
        let mut keep = idx - self.append_from;
        self.appended.retain_mut(|source| {
            let n = source.entries.len().min(keep);
            source.entries.end = source.entries.start + n;
            keep -= n;
            n > 0
        });
    }

    /// Drops every entry below `idx` (at most the log end): the batch's own by
    /// shortening its runs from the front; stored ones are dropped by `after`'s
    /// compacted index.
    fn compact(&mut self, idx: usize) {
        if idx <= self.append_from {
            return;
        }
        let mut drop = (idx - self.append_from).min(self.appended_so_far());
        self.append_from = idx;
        self.appended.retain_mut(|source| {
            let n = source.entries.len().min(drop);
            source.entries.start += n;
            drop -= n;
            !source.entries.is_empty()
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{ClusterConfig, NoSnapshot, StorageError};

    #[derive(Clone, Debug, PartialEq, Eq)]
    struct E(u32);

    impl Entry for E {
        type Snapshot = NoSnapshot;
    }

    /// The stored state, as the ops define it.
    #[derive(Clone, Debug, PartialEq, Eq)]
    struct State {
        log: Vec<E>,
        compacted_idx: usize,
        decided_idx: usize,
        promise: Option<Ballot>,
        accepted_round: Option<Ballot>,
        stopsign: Option<StopSign>,
        snapshot: Option<NoSnapshot>,
    }

    impl State {
        fn bounds(&self) -> LogBounds {
            LogBounds {
                compacted_idx: self.compacted_idx,
                log_end: self.compacted_idx + self.log.len(),
                decided_idx: self.decided_idx,
                has_stopsign: self.stopsign.is_some(),
            }
        }

        /// One op, the obvious way (the bounds checked it).
        fn apply_op(&mut self, op: StorageOp<E>) {
            let c = self.compacted_idx;
            match op {
                StorageOp::AppendEntry(e) => self.log.push(e),
                StorageOp::AppendEntries(es) => self.log.extend(es),
                StorageOp::AppendOnPrefix(i, es) => {
                    self.log.truncate(i - c);
                    self.log.extend(es);
                }
                StorageOp::Trim(i) | StorageOp::SetCompactedIdx(i) => {
                    let n = (i - c).min(self.log.len());
                    self.log.drain(..n);
                    self.compacted_idx = i;
                }
                StorageOp::SetDecidedIndex(i) => self.decided_idx = i,
                StorageOp::SetPromise(b) => self.promise = Some(b),
                StorageOp::SetAcceptedRound(b) => self.accepted_round = Some(b),
                StorageOp::SetStopsign(s) => self.stopsign = s,
                StorageOp::SetSnapshot(s) => self.snapshot = s,
            }
        }

        /// The batch applied through its plan, as a backend does; `ignore_cut` is a
        /// deliberately broken consumer that keeps the stored entries a batch cuts.
        fn apply_plan(&mut self, plan: &BatchPlan, ops: Vec<StorageOp<E>>, ignore_cut: bool) {
            let values = plan.into_values(ops);
            let kept = plan.kept();
            if !ignore_cut {
                self.log.truncate(kept.end - self.compacted_idx);
            }
            self.log.drain(..kept.start - self.compacted_idx);
            self.log.extend(values.entries);
            self.compacted_idx = plan.after.compacted_idx;
            self.decided_idx = plan.after.decided_idx;
            self.promise = plan.promise.or(self.promise);
            self.accepted_round = plan.accepted_round.or(self.accepted_round);
            if let Some(s) = values.stopsign {
                self.stopsign = s;
            }
            if let Some(s) = values.snapshot {
                self.snapshot = s;
            }
        }
    }

    /// Every op kind, with indices around a log `[2, 6)` decided to 3.
    fn op_kinds(next: &mut u32) -> Vec<StorageOp<E>> {
        let mut e = || {
            *next += 1;
            E(*next)
        };
        let stopsign = StopSign { next_config: ClusterConfig::default(), metadata: None };
        let mut ops = vec![
            StorageOp::AppendEntry(e()),
            StorageOp::AppendEntries(vec![e(), e()]),
            StorageOp::AppendEntries(Vec::new()),
            StorageOp::SetPromise(Ballot::new(1, 2, 0, 1)),
            StorageOp::SetAcceptedRound(Ballot::new(1, 3, 0, 1)),
            StorageOp::SetStopsign(Some(stopsign)),
            StorageOp::SetStopsign(None),
            StorageOp::SetSnapshot(Some(NoSnapshot)),
            StorageOp::SetSnapshot(None),
        ];
        for i in 1..=10 {
            ops.push(StorageOp::AppendOnPrefix(i, vec![e()]));
            ops.push(StorageOp::AppendOnPrefix(i, Vec::new()));
            ops.push(StorageOp::Trim(i));
            ops.push(StorageOp::SetCompactedIdx(i));
            ops.push(StorageOp::SetDecidedIndex(i));
        }
        ops
    }

    /// Runs every batch of up to three ops on the log `[2, 6)` and returns how many
    /// valid batches the plan, applied by `apply_plan`, left in another state than the
    /// ops applied one by one.
    fn mismatches(ignore_cut: bool) -> usize {
        let start = State {
            log: vec![E(1000), E(1001), E(1002), E(1003)],
            compacted_idx: 2,
            decided_idx: 3,
            promise: None,
            accepted_round: None,
            stopsign: None,
            snapshot: None,
        };
        // One list per position in the batch, so no two ops share an entry.
        let mut next = 0;
        let kinds: Vec<_> = (0..3).map(|_| op_kinds(&mut next)).collect();
        let n = kinds[0].len();
        let (mut valid, mut wrong) = (0, 0);
        for len in 0..=3u32 {
            for mut choice in 0..n.pow(len) {
                let mut ops = Vec::new();
                for kinds in &kinds[..len as usize] {
                    ops.push(kinds[choice % n].clone());
                    choice /= n;
                }
                let plan = match start.bounds().validate_batch(&ops) {
                    Ok(plan) => plan,
                    Err(StorageError::InvalidOp { .. }) => continue,
                    Err(err) => panic!("{err}"),
                };
                valid += 1;
                let mut by_ops = start.clone();
                for op in ops.clone() {
                    by_ops.apply_op(op);
                }
                let borrowed: Vec<E> = plan.entries(&ops).cloned().collect();
                assert_eq!(borrowed.len(), plan.appended_len(), "{ops:?}");
                assert_eq!(by_ops.bounds(), plan.after, "{ops:?}");
                let mut by_plan = start.clone();
                by_plan.apply_plan(&plan, ops.clone(), ignore_cut);
                if by_plan != by_ops
                    || borrowed[..] != by_ops.log[by_ops.log.len() - borrowed.len()..]
                {
                    wrong += 1;
                }
            }
        }
        assert!(valid > 10_000, "only {valid} valid batches");
        wrong
    }

    #[test]
    fn the_plan_of_every_small_batch_leaves_what_its_ops_leave() {
        assert_eq!(mismatches(false), 0);
    }

    /// The check above catches a backend that applies the plan but keeps cut entries.
    #[test]
    fn a_consumer_that_ignores_the_cut_is_caught() {
        assert!(mismatches(true) > 0);
    }

    /// Runs held inline and runs spilled to the heap read, compare and shrink alike.
    #[test]
    fn entry_sources_keep_their_order_inline_and_spilled() {
        let run = |op: usize| EntrySource { op, entries: 0..op + 1 };
        for n in 0..=5 {
            let mut sources = EntrySources::default();
            (0..n).for_each(|op| sources.push(run(op)));
            assert_eq!(
                sources.iter().map(|s| s.op).collect::<Vec<_>>(),
                (0..n).collect::<Vec<_>>()
            );
            let mut odd = sources.clone();
            odd.retain_mut(|s| {
                s.entries.start += 1;
                s.op % 2 == 1
            });
            let expected: Vec<_> = (0..n)
                .filter(|op| op % 2 == 1)
                .map(|op| EntrySource { op, entries: 1..op + 1 })
                .collect();
            assert_eq!(odd[..], expected[..], "{n} runs");
            assert_eq!(odd == sources, n == 0 || expected[..] == sources[..]);
            odd.push(run(9));
            assert_eq!(odd.last(), Some(&run(9)));
            odd.clear();
            assert!(odd.is_empty());
        }
    }

    #[test]
    fn removed_ranges_are_stored_entries_and_disjoint_from_what_is_kept() {
        let bounds =
            LogBounds { compacted_idx: 2, log_end: 6, decided_idx: 2, has_stopsign: false };
        let ops = vec![StorageOp::AppendOnPrefix(4, vec![E(1)]), StorageOp::Trim(3)];
        let plan = bounds.validate_batch(&ops).map_err(|e| e.to_string());
        let plan = plan.as_ref().map(|p| (p.removed(), p.kept(), p.append_from));
        assert_eq!(plan, Ok(([2..3, 4..6], 3..4, 4)));
        // Compacting past the end drops every stored entry; the batch's entries follow.
        let ops = vec![StorageOp::SetCompactedIdx(9), StorageOp::AppendEntry(E(2))];
        let plan = bounds.validate_batch(&ops).map_err(|e| e.to_string());
        let plan = plan.as_ref().map(|p| (p.removed(), p.kept(), p.append_from, p.after.log_end));
        assert_eq!(plan, Ok(([2..6, 6..6], 6..6, 9, 10)));
    }
}
