//! The commit path: writing and syncing a record, undoing a refused one, writing a
//! segment's seal, and applying a committed batch to the in-memory state.

use std::mem;

use paxstore::{BatchPlan, Durability, StorageError, StorageOp, StorageResult};

use super::format::{
    align, seal_record, seal_record_bytes, Out, RECORD_BATCH, RECORD_HEADER_BYTES, RECORD_SEAL,
};
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
        let plan = self.bounds().validate_batch(&ops)?;
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
        self.apply(&plan, &ops, record_loc);
        if self.meta.compacted != compacted || self.reclaim_pending {
            self.reclaim();
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
        if self.options.durability == Durability::Immediate {
            // Keep written zeros at least half a prefill ahead of the tail, so the synced
            // record write lands on allocated, written blocks (FORMAT.md). The record's own
            // bytes are never zeroed first (they are written now anyway), and a large
            // record gets no zeros ahead: its sync is bandwidth-bound, and zeros would
            // double the bytes written, while one extent change per large sync is cheap.
            let end = offset + bytes.len();
            if bytes.len() >= LARGE_RECORD {
                seg.zeroed_to = seg.zeroed_to.max(end);
            } else if end + ZERO_PREFILL / 2 > seg.zeroed_to {
                seg.zeroed_to = seg.zeroed_to.max(end);
                segment::zero_fill(&*self.io, seg, end + ZERO_PREFILL)?;
            }
        }
        if let Err(e) = self.io.write_at(&seg.file, offset as u64, bytes) {
            let err = io_err("writing to", &seg.path, e);
            self.undo_write(seg, offset, bytes.len());
            return Err(err);
        }
        if self.options.durability == Durability::Immediate {
            if let Err(e) = self.io.sync_data(&seg.file) {
                let err = io_err("syncing", &seg.path, e);
                self.undo_write(seg, offset, bytes.len());
                self.poisoned = Some(StorageError::poisoned_by(&err));
                return Err(err);
            }
        }
        Ok(())
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
        written
    }

    /// Applies a written batch to the in-memory state by its `plan`; `record_loc` is the
    /// location of its record's first byte. The encoder wrote every entry of the batch in
    /// op order (`entry_offsets`) and every stop sign and snapshot value it sets
    /// (`meta_ranges`); this finds in them the ones the plan keeps.
    pub(super) fn apply(&mut self, plan: &BatchPlan, ops: &[StorageOp<T>], record_loc: u64) {
        let kept = plan.kept();
        self.index.truncate(kept.end - self.meta.compacted);
        self.index.drain_front(kept.start - self.meta.compacted);
        let mut sources = plan.appended.iter().peekable();
        let (mut entries_before, mut values_before) = (0, 0);
        for (position, op) in ops.iter().enumerate() {
            if let Some(source) = sources.next_if(|source| source.op == position) {
                let offsets = self.entry_offsets.iter().skip(entries_before + source.entries.start);
                for offset in offsets.take(source.entries.len()) {
                    self.index.push(record_loc + u64::from(*offset));
                }
            }
            let value = |is_some: bool| {
                let range = self.meta_ranges.get(values_before).filter(|_| is_some);
                range.map(|&(a, b)| self.buf[a..b].to_vec())
            };
            match op {
                StorageOp::AppendEntry(_) => entries_before += 1,
                StorageOp::AppendEntries(es) | StorageOp::AppendOnPrefix(_, es) => {
                    entries_before += es.len();
                }
                StorageOp::SetStopsign(s) if plan.stopsign_op == Some(position) => {
                    self.meta.stopsign = value(s.is_some());
                }
                StorageOp::SetSnapshot(s) if plan.snapshot_op == Some(position) => {
                    self.meta.snapshot = value(s.is_some());
                }
                _ => {}
            }
            if matches!(op, StorageOp::SetStopsign(Some(_)) | StorageOp::SetSnapshot(Some(_))) {
                values_before += 1;
            }
        }
        self.meta.compacted = plan.after.compacted_idx;
        self.meta.decided = plan.after.decided_idx;
        self.meta.promise = plan.promise.or(self.meta.promise);
        self.meta.accepted = plan.accepted_round.or(self.meta.accepted);
    }
}
