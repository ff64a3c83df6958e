//! The in-memory index: where each live entry is, by position in the log.
//!
//! Entries of segments that recovery took from their seals are found through the seal's
//! table, read in place from the segment's map (a [`Run`] per sealed segment, nothing
//! copied); every other entry has one `u64` location in `tail`
//! (`segment << 32 | offset`). Runs always come before the tail: they are older.

use std::collections::VecDeque;
use std::sync::Arc;

use memmap2::Mmap;

use super::format::u32_at;
use super::location;

/// The live entries of one sealed segment: `len` `u32` offsets in its seal's table,
/// starting at byte `table` of the segment's map.
#[derive(Debug, Clone)]
pub(crate) struct Run {
    seq: u64,
    map: Arc<Mmap>,
    table: usize,
    len: usize,
}

impl Run {
    /// A run over the `len` table entries at byte `table` of segment `seq`'s map; the
    /// caller checked that they lie inside the map.
    pub(crate) fn new(seq: u64, map: Arc<Mmap>, table: usize, len: usize) -> Self {
        Run { seq, map, table, len }
    }

    fn location(&self, k: usize) -> u64 {
        location(self.seq, u32_at(&self.map, self.table + 4 * k) as usize)
    }
}

/// A slice of the locations [`Index::pieces`] returns.
#[derive(Debug)]
pub(crate) enum Piece<'a> {
    /// Entries of sealed segment `seq`: their offsets, `u32` little-endian, in its map.
    Run { seq: u64, offsets: &'a [u8] },
    /// Entries of the tail: one location each.
    Tail(&'a [u64]),
}

/// The locations of the live entries, in log order.
#[derive(Debug, Default)]
pub(crate) struct Index {
    runs: VecDeque<Run>,
    /// The entries in `runs`.
    runs_len: usize,
    tail: VecDeque<u64>,
}

impl Index {
    /// The number of entries.
    pub(crate) fn len(&self) -> usize {
        self.runs_len + self.tail.len()
    }

    /// Appends the location of one entry.
    pub(crate) fn push(&mut self, loc: u64) {
        self.tail.push_back(loc);
    }

    /// Appends a sealed segment's entries. Runs must precede the tail, so if the tail
    /// holds entries the run's locations are copied into it instead.
    pub(crate) fn push_run(&mut self, run: Run) {
        if self.tail.is_empty() {
            self.runs_len += run.len;
            self.runs.push_back(run);
        } else {
            self.tail.extend((0..run.len).map(|k| run.location(k)));
        }
    }

    /// Keeps the first `n` entries.
    pub(crate) fn truncate(&mut self, n: usize) {
        if n >= self.runs_len {
            self.tail.truncate(n - self.runs_len);
            return;
        }
        self.tail.clear();
        let mut kept = 0;
        let mut keep_runs = 0;
        for run in self.runs.iter_mut() {
            if kept + run.len >= n {
                run.len = n - kept;
                keep_runs += usize::from(run.len > 0);
                break;
            }
            kept += run.len;
            keep_runs += 1;
        }
        self.runs.truncate(keep_runs);
        self.runs_len = n;
    }

    /// Removes the first `n` entries (all of them if there are fewer).
    pub(crate) fn drain_front(&mut self, mut n: usize) {
        while n > 0 {
            let Some(run) = self.runs.front_mut() else { break };
            if run.len <= n {
                n -= run.len;
                self.runs_len -= run.len;
                self.runs.pop_front();
            } else {
                run.table += 4 * n;
                run.len -= n;
                self.runs_len -= n;
                n = 0;
            }
        }
        let n = n.min(self.tail.len());
        self.tail.drain(..n);
    }

    /// Removes every entry.
    pub(crate) fn clear(&mut self) {
        self.runs.clear();
        self.runs_len = 0;
        self.tail.clear();
    }

    /// The location of the first entry.
    pub(crate) fn front(&self) -> Option<u64> {
        match self.runs.front() {
            Some(run) => Some(run.location(0)),
            None => self.tail.front().copied(),
        }
    }

    /// How many entries at the end are in segment `seq`, and their offsets, oldest
    /// first. Only counts the tail (a sealed segment is never the one written to).
    pub(crate) fn last_in_segment(&self, seq: u64) -> impl ExactSizeIterator<Item = u32> + '_ {
        let n = self.tail.iter().rev().take_while(|&&loc| loc >> 32 == seq).count();
        self.tail.range(self.tail.len() - n..).map(|&loc| (loc & u64::from(u32::MAX)) as u32)
    }

    /// The locations of entries `from..to` (positions in the index), in order.
    #[cfg(test)]
    pub(crate) fn range(&self, from: usize, to: usize) -> impl Iterator<Item = u64> + '_ {
        self.pieces(from, to).flat_map(|piece| -> Box<dyn Iterator<Item = u64> + '_> {
            match piece {
                Piece::Run { seq, offsets } => Box::new(
                    offsets.chunks_exact(4).map(move |o| location(seq, u32_at(o, 0) as usize)),
                ),
                Piece::Tail(locs) => Box::new(locs.iter().copied()),
            }
        })
    }

    /// The locations of entries `from..to` (positions in the index), in order, as slices
    /// of the seal tables and of the tail: a reader walks each slice in a plain loop.
    pub(crate) fn pieces(&self, from: usize, to: usize) -> impl Iterator<Item = Piece<'_>> + '_ {
        let mut skip = from;
        let mut want = to.saturating_sub(from);
        let mut from_runs = Vec::new();
        for run in &self.runs {
            if want == 0 {
                break;
            }
            if skip >= run.len {
                skip -= run.len;
                continue;
            }
            let n = (run.len - skip).min(want);
            let at = run.table + 4 * skip;
            from_runs.push(Piece::Run { seq: run.seq, offsets: &run.map[at..at + 4 * n] });
            want -= n;
            skip = 0;
        }
        let tail_from = from.saturating_sub(self.runs_len).min(self.tail.len());
        let tail_to = (tail_from + want).min(self.tail.len());
        let (a, b) = self.tail.as_slices();
        let a_part = a.get(tail_from.min(a.len())..tail_to.min(a.len())).unwrap_or_default();
        let b_from = tail_from.saturating_sub(a.len());
        let b_part = b.get(b_from..tail_to.saturating_sub(a.len())).unwrap_or_default();
        from_runs
            .into_iter()
            .chain([a_part, b_part].into_iter().filter(|s| !s.is_empty()).map(Piece::Tail))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A map holding `offsets` as a seal table at byte 0.
    fn run(seq: u64, offsets: &[u32]) -> Run {
        let mut bytes: Vec<u8> = offsets.iter().flat_map(|o| o.to_le_bytes()).collect();
        bytes.resize(bytes.len().max(8), 0);
        let mut map = memmap2::MmapMut::map_anon(bytes.len()).unwrap();
        map.copy_from_slice(&bytes);
        Run::new(seq, Arc::new(map.make_read_only().unwrap()), 0, offsets.len())
    }

    fn all(index: &Index) -> Vec<u64> {
        index.range(0, index.len()).collect()
    }

    /// The index against a plain vector of locations under every operation.
    #[test]
    fn runs_and_tail_behave_like_one_sequence() {
        for cut in 0..9 {
            for drop in 0..9 {
                let mut index = Index::default();
                let mut model: Vec<u64> = Vec::new();
                for (seq, offs) in
                    [(1u64, &[40u32, 48, 56][..]), (2, &[32, 40][..]), (3, &[64][..])]
                {
                    index.push_run(run(seq, offs));
                    model.extend(offs.iter().map(|&o| location(seq, o as usize)));
                }
                for loc in [location(4, 8), location(4, 16)] {
                    index.push(loc);
                    model.push(loc);
                }
                assert_eq!(all(&index), model);
                index.truncate(cut.min(index.len()));
                model.truncate(cut);
                index.push(location(5, 8));
                model.push(location(5, 8));
                assert_eq!(all(&index), model, "truncate({cut})");
                index.drain_front(drop);
                model.drain(..drop.min(model.len()));
                assert_eq!(all(&index), model, "truncate({cut}), drain_front({drop})");
                assert_eq!(index.len(), model.len());
                assert_eq!(index.front(), model.first().copied());
                for a in 0..=model.len() {
                    for b in a..=model.len() {
                        assert_eq!(index.range(a, b).collect::<Vec<_>>(), model[a..b]);
                    }
                }
                let in_5 = usize::from(model.last() == Some(&location(5, 8)));
                assert_eq!(index.last_in_segment(5).collect::<Vec<_>>(), vec![8; in_5]);
            }
        }
    }

    #[test]
    fn a_run_after_tail_entries_is_copied_in_order() {
        let mut index = Index::default();
        index.push(location(1, 8));
        index.push_run(run(2, &[16, 24]));
        assert_eq!(all(&index), vec![location(1, 8), location(2, 16), location(2, 24)]);
    }
}
