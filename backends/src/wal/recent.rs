//! The most recently written entries, kept as the caller passed them, so a read of the
//! log's tail clones them instead of decoding them from the map (a decode costs a
//! replica's hot read path about half again what a clone does: issue 14's read profile).

use std::collections::VecDeque;

use paxstore::BatchPlan;

/// A suffix of the log: the entries at absolute indices `[start, start + entries.len())`,
/// at most `cap_bytes` of them by encoded size. Empty after `open` (entries written by an
/// earlier process are read from the segments).
#[derive(Debug)]
pub(crate) struct Recent<T> {
    start: usize,
    entries: VecDeque<T>,
    /// The encoded size of each entry in `entries` (its `u32` length prefix included).
    sizes: VecDeque<u32>,
    bytes: usize,
    cap_bytes: usize,
}

impl<T: Clone> Recent<T> {
    /// An empty suffix ending at `log_end`, holding up to `cap_bytes` (0: none).
    pub(crate) fn new(log_end: usize, cap_bytes: usize) -> Self {
        Recent {
            start: log_end,
            entries: VecDeque::new(),
            sizes: VecDeque::new(),
            bytes: 0,
            cap_bytes,
        }
    }

    fn end(&self) -> usize {
        self.start + self.entries.len()
    }

    /// Follows a committed batch: cuts what it cut, adds the entries it appended
    /// (`appended`, moved out of the batch, with their encoded `sizes`), drops what it
    /// compacted, then the oldest entries past the byte budget.
    pub(crate) fn apply(&mut self, plan: &BatchPlan, appended: Vec<T>, sizes: &[u32]) {
        if self.cap_bytes == 0 {
            self.start = plan.after.log_end;
            return;
        }
        let cut = plan.kept().end;
        if cut < self.end() {
            let keep = cut.saturating_sub(self.start);
            self.truncate(keep);
        }
        if appended.len() != sizes.len() {
            // Not the batch's entries (a broken invariant): hold nothing rather than guess.
            self.truncate(0);
            self.start = plan.after.log_end;
            return;
        }
        if self.end() != plan.append_from {
            // Not contiguous with what is held (held nothing, or the batch compacted past
            // it): start again at the batch's entries.
            self.truncate(0);
            self.start = plan.append_from;
        }
        for (entry, &size) in appended.into_iter().zip(sizes) {
            self.entries.push_back(entry);
            self.sizes.push_back(size);
            self.bytes += size as usize;
        }
        while self.start < plan.after.compacted_idx || self.bytes > self.cap_bytes {
            if !self.pop_front() {
                self.start = self.start.max(plan.after.compacted_idx);
                break;
            }
        }
    }

    fn pop_front(&mut self) -> bool {
        match (self.entries.pop_front(), self.sizes.pop_front()) {
            (Some(_), Some(size)) => {
                self.start += 1;
                self.bytes -= size as usize;
                true
            }
            _ => false,
        }
    }

    fn truncate(&mut self, keep: usize) {
        self.entries.truncate(keep);
        for size in self.sizes.drain(keep.min(self.sizes.len())..) {
            self.bytes -= size as usize;
        }
    }

    /// Clones of the entries `[from, to)` if every one of them is held.
    pub(crate) fn get(&self, from: usize, to: usize) -> Option<Vec<T>> {
        if from < self.start || to > self.end() || from > to {
            return None;
        }
        let mut out = Vec::with_capacity(to - from);
        out.extend(self.entries.range(from - self.start..to - self.start).cloned());
        Some(out)
    }
}

#[cfg(test)]
mod tests {
    use paxstore::{Entry, LogBounds, NoSnapshot, StorageOp};
    use rand::rngs::SmallRng;
    use rand::{Rng, SeedableRng};

    use super::*;

    #[derive(Clone, Debug, PartialEq, Eq)]
    struct E(u64);
    impl Entry for E {
        type Snapshot = NoSnapshot;
    }

    /// Random batches of appends, cuts and trims against a plain vector: after each one,
    /// what is held is a suffix of the log ending at its end, within the byte budget
    /// (entries of 10 bytes), and every range of it reads back as the log has it.
    #[test]
    fn holds_a_suffix_of_the_log_through_cuts_and_trims() {
        for seed in 0..200 {
            let mut rng = SmallRng::seed_from_u64(seed);
            let cap = rng.random_range(0..200);
            let mut recent = Recent::new(0, cap);
            let mut bounds = LogBounds::default();
            let mut log: Vec<u64> = Vec::new();
            let mut next = 0;
            for _ in 0..100 {
                let mut ops = Vec::new();
                for _ in 0..rng.random_range(1..4) {
                    let new = |next: &mut u64, n| -> Vec<E> {
                        (0..n)
                            .map(|_| {
                                *next += 1;
                                E(*next)
                            })
                            .collect()
                    };
                    let n = rng.random_range(0..8);
                    match rng.random_range(0..4) {
                        0 | 1 => ops.push(StorageOp::AppendEntries(new(&mut next, n))),
                        2 => {
                            let end = bounds.log_end;
                            let at = rng.random_range(bounds.compacted_idx.min(end)..=end);
                            ops.push(StorageOp::AppendOnPrefix(at, new(&mut next, n)))
                        }
                        _ => {
                            let end = bounds.log_end;
                            ops.push(StorageOp::SetDecidedIndex(end));
                            ops.push(StorageOp::Trim(rng.random_range(bounds.compacted_idx..=end)));
                        }
                    }
                }
                let Ok(plan) = bounds.validate_batch(&ops) else { continue };
                for op in &ops {
                    match op {
                        StorageOp::AppendEntries(es) => log.extend(es.iter().map(|e| e.0)),
                        StorageOp::AppendOnPrefix(at, es) => {
                            log.truncate(*at);
                            log.extend(es.iter().map(|e| e.0));
                        }
                        _ => {}
                    }
                }
                let sizes = vec![10; plan.appended_len()];
                recent.apply(&plan, plan.into_values(ops).entries, &sizes);
                bounds = plan.after;
                let compacted = bounds.compacted_idx;
                // `log` holds every index from 0; those below `compacted` are never read.
                let held = recent.end() - recent.start;
                assert_eq!(
                    recent.end(),
                    bounds.log_end,
                    "seed {seed}: held suffix ends at the log end"
                );
                assert!(recent.start >= compacted && held * 10 <= cap, "seed {seed}");
                for a in recent.start..=recent.end() {
                    let got = recent.get(a, recent.end()).unwrap();
                    let want: Vec<E> = log[a..bounds.log_end].iter().map(|&v| E(v)).collect();
                    assert_eq!(got, want, "seed {seed}: [{a}, {})", recent.end());
                }
                assert_eq!(recent.get(recent.start.wrapping_sub(1), recent.end()), None);
            }
        }
    }
}
