//! The commit path: writing and syncing a record, undoing a refused one, writing a
//! segment's seal, and applying a committed batch to the in-memory state.

use std::mem;

use paxstore::{Durability, StorageError, StorageOp, StorageResult};

use super::format::{
    align, seal_record, seal_record_bytes, Out, RECORD_BATCH, RECORD_HEADER_BYTES, RECORD_SEAL,
};
use super::index::Index;
use super::record::checkpoint_record_bytes;
use super::segment::{self, io_err, Segment, FIRST_RECORD};
use super::{location, WalStorage};
use crate::codec::PersistentEntry;

/// With `Immediate`, how far ahead of the tail zeros are written (see FORMAT.md).
const ZERO_PREFILL: usize = 4 << 20;

/// With `Immediate`, records at least this large get no zeros written ahead of them.
const LARGE_RECORD: usize = 256 << 10;

impl<T: PersistentEntry> WalStorage<T> {
    /// The commit protocol of `write_atomically`: validate, encode, roll over if the
    /// record does not fit (sealing the full segment first), write and sync the record,
    /// then, and only then, move the in-memory state.
    pub(super) fn commit(&mut self, ops: Vec<StorageOp<T>>) -> StorageResult<()> {
        if let Some(poisoned) = &self.poisoned {
            return Err(StorageError::poisoned_by(poisoned));
        }
        if ops.is_empty() {
            return Ok(());
        }
        self.check_index_room(&ops)?;
        self.bounds().validate_batch(&ops)?;
        self.encode_batch(&ops)?;
        let framed = align(self.buf.len());
        let active_len = self.active().len();
        let new_entries = self.entry_offsets.len();
        let seal_room =
            if self.sealing { seal_record_bytes(self.active_entries + new_entries) } else { 0 };
        let rollover = self.must_roll || self.tail + framed + seal_room > active_len;
        if rollover {
            let ckpt = checkpoint_record_bytes(
                self.meta.stopsign.as_ref().map(Vec::len),
                self.meta.snapshot.as_ref().map(Vec::len),
            );
            let seal = if self.options.durability == Durability::Immediate {
                seal_record_bytes(new_entries)
            } else {
                0
            };
            self.ensure_spare_fits(FIRST_RECORD + ckpt + framed + seal)?;
        } else if self.spare.is_none() && self.tail > active_len / 2 {
            // Ahead of need; if it fails now, the rollover tries again (and reports).
            let _ = self.ensure_spare();
        }
        let (mut seg, offset, lsn) = if rollover {
            // Seal the active segment first (synced), so the new checkpoint can name it.
            let (ckpt_lsn, prev_seal) = if self.sealing {
                self.must_roll = true;
                self.write_seal(self.next_lsn)?;
                (self.next_lsn + 1, Some(self.tail))
            } else {
                (self.next_lsn, None)
            };
            let seg = self.spare.take().ok_or_else(|| StorageError::Backend {
                backend: "wal",
                detail: "no spare segment after preparing one".to_owned(),
            })?;
            self.encode_checkpoint(ckpt_lsn, prev_seal);
            (seg, FIRST_RECORD + self.ckpt.len(), ckpt_lsn + 1)
        } else {
            let seg = self.segments.pop_back().ok_or_else(|| StorageError::Backend {
                backend: "wal",
                detail: "no active segment".to_owned(),
            })?;
            (seg, self.tail, self.next_lsn)
        };
        seal_record(&mut self.buf, lsn, RECORD_BATCH);
        let written = if rollover {
            let mut bytes = mem::take(&mut self.ckpt);
            bytes.extend_from_slice(&self.buf);
            let r = self.write_record(&mut seg, FIRST_RECORD, &bytes);
            bytes.truncate(offset - FIRST_RECORD);
            self.ckpt = bytes;
            r
        } else {
            let buf = mem::take(&mut self.buf);
            let r = self.write_record(&mut seg, offset, &buf);
            self.buf = buf;
            r
        };
        // Put the segment back where it came from before looking at the outcome.
        let record_loc = location(seg.seq, offset);
        if rollover {
            if let Err(err) = written {
                self.spare = Some(seg);
                return Err(err);
            }
            self.must_roll = false;
            // The checkpoint went out with the batch, in the same write.
            self.counters.records += 1;
            self.active_entries = 0;
            self.sealing = self.options.durability == Durability::Immediate
                && offset + framed + seal_record_bytes(new_entries) <= seg.len();
            self.segments.push_back(seg);
        } else {
            self.segments.push_back(seg);
            written?;
        }
        // Committed: now, and only now, the in-memory state moves.
        self.tail = offset + framed;
        self.next_lsn = lsn + 1;
        self.active_entries += new_entries;
        let compacted = self.meta.compacted;
        self.apply(ops, record_loc);
        if self.meta.compacted != compacted || self.reclaim_pending {
            self.reclaim();
        }
        Ok(())
    }

    /// Refuses, before anything is written, a batch after which the log would end past
    /// `usize::MAX` (e.g. an append after `SetCompactedIdx(usize::MAX)`): its indices
    /// cannot be represented. Run before the contract's validation, whose index sums
    /// assume they fit.
    fn check_index_room(&self, ops: &[StorageOp<T>]) -> StorageResult<()> {
        let mut end = self.bounds().log_end;
        for op in ops {
            let (from, count) = match op {
                StorageOp::AppendEntry(_) => (end, 1),
                StorageOp::AppendEntries(es) => (end, es.len()),
                StorageOp::AppendOnPrefix(from, es) => (*from, es.len()),
                StorageOp::SetCompactedIdx(i) => (end.max(*i), 0),
                _ => (end, 0),
            };
            end = from.checked_add(count).ok_or(StorageError::TooLarge {
                what: "log: entries past index usize::MAX (entries that do not fit, limit: room left)",
                bytes: count as u64,
                limit: (usize::MAX - from) as u64,
            })?;
        }
        Ok(())
    }

    /// Writes `bytes` at `offset` of `seg` and, with `Immediate`, syncs them. On failure
    /// the bytes are zeroed again (best effort) so a later reopen does not find a batch
    /// that was refused; a failed sync, or a failed clean-up, poisons the instance.
    pub(super) fn write_record(
        &mut self,
        seg: &mut Segment,
        offset: usize,
        bytes: &[u8],
    ) -> StorageResult<()> {
        if let Err(e) = self.io.write_at(&seg.file, offset as u64, bytes) {
            let err = io_err("writing to", &seg.path, e);
            self.undo_write(seg, offset, bytes.len());
            return Err(err);
        }
        if self.options.durability == Durability::Immediate {
            self.zero_ahead(seg, offset + bytes.len(), bytes.len());
            if let Err(e) = self.io.sync_data(&seg.file) {
                let err = io_err("syncing", &seg.path, e);
                self.undo_write(seg, offset, bytes.len());
                self.poisoned = Some(StorageError::poisoned_by(&err));
                return Err(err);
            }
        }
        self.counters.records += 1;
        self.counters.record_bytes += bytes.len() as u64;
        Ok(())
    }

    /// With `Immediate`, after a record of `len` bytes ending at `end` was written (and
    /// before its sync): keeps written zeros at least half a prefill ahead of the tail, so
    /// the next synced record writes land on allocated, written blocks (FORMAT.md). A large
    /// record gets no zeros ahead: its sync is bandwidth-bound, zeros would double the
    /// bytes written, and one extent change per large sync is cheap. Best effort: the zeros
    /// are an optimisation, so a full disk only stops them (the record, written first, got
    /// the space; what the zeros took is taken by the next records, which overwrite them).
    fn zero_ahead(&mut self, seg: &mut Segment, end: usize, len: usize) {
        if len >= LARGE_RECORD {
            seg.zeroed_to = seg.zeroed_to.max(end);
        } else if end + ZERO_PREFILL / 2 > seg.zeroed_to {
            seg.zeroed_to = seg.zeroed_to.max(end);
            // A failure leaves `zeroed_to` where the zeros reached; the next record tries
            // again from there.
            let _ = segment::zero_fill(&*self.io, seg, end + ZERO_PREFILL);
        }
    }

    /// Zeroes a refused record's bytes again, best effort. A write that failed never
    /// completed, so its record cannot be whole even if this fails (recovery then cuts it
    /// as a torn tail); after a failed sync the instance is poisoned anyway.
    pub(super) fn undo_write(&mut self, seg: &Segment, offset: usize, len: usize) {
        let zeros = vec![0u8; len];
        let _ = self.io.write_at(&seg.file, offset as u64, &zeros);
    }

    /// Writes and syncs, at the tail of the active segment, its seal with LSN `lsn`: the
    /// offsets of the live entries it holds (a suffix of the log).
    pub(super) fn write_seal(&mut self, lsn: u64) -> StorageResult<()> {
        let seq = self.active().seq;
        let offsets = self.index.last_in_segment(seq);
        let n = offsets.len();
        let start = self.meta.compacted + self.index.len() - n;
        let mut seal = Vec::with_capacity(seal_record_bytes(n));
        seal.resize(RECORD_HEADER_BYTES, 0);
        let mut out = Out(&mut seal);
        out.u64(start as u64);
        out.u32(n as u32);
        for offset in offsets {
            out.u32(offset);
        }
        seal_record(&mut seal, lsn, RECORD_SEAL);
        let mut active = self.segments.pop_back().ok_or_else(|| StorageError::Backend {
            backend: "wal",
            detail: "no active segment".to_owned(),
        })?;
        let written = self.write_record(&mut active, self.tail, &seal);
        self.segments.push_back(active);
        written?;
        self.counters.seals += 1;
        Ok(())
    }

    /// Applies a written batch to the in-memory state; `record_loc` is the location of
    /// its record's first byte.
    pub(super) fn apply(&mut self, ops: Vec<StorageOp<T>>, record_loc: u64) {
        let offsets = mem::take(&mut self.entry_offsets);
        let mut offsets_iter = offsets.iter();
        let mut meta_ranges = self.meta_ranges.iter();
        let mut push = |index: &mut Index, n: usize| {
            for off in offsets_iter.by_ref().take(n) {
                index.push(record_loc + u64::from(*off));
            }
        };
        for op in ops {
            match op {
                StorageOp::AppendEntry(_) => push(&mut self.index, 1),
                StorageOp::AppendEntries(es) => push(&mut self.index, es.len()),
                StorageOp::AppendOnPrefix(from, es) => {
                    self.index.truncate(from - self.meta.compacted);
                    push(&mut self.index, es.len());
                }
                StorageOp::SetPromise(b) => self.meta.promise = Some(b),
                StorageOp::SetDecidedIndex(i) => self.meta.decided = i,
                StorageOp::SetAcceptedRound(b) => self.meta.accepted = Some(b),
                StorageOp::SetCompactedIdx(i) | StorageOp::Trim(i) => {
                    let n = (i - self.meta.compacted).min(self.index.len());
                    self.index.drain_front(n);
                    self.meta.compacted = i;
                }
                StorageOp::SetStopsign(s) => {
                    self.meta.stopsign =
                        s.and_then(|_| meta_ranges.next()).map(|&(a, b)| self.buf[a..b].to_vec());
                }
                StorageOp::SetSnapshot(s) => {
                    self.meta.snapshot =
                        s.and_then(|_| meta_ranges.next()).map(|&(a, b)| self.buf[a..b].to_vec());
                }
            }
        }
        self.entry_offsets = offsets;
    }
}
