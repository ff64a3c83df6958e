//! The commit path: writing and syncing a record, undoing a refused one, writing a
//! segment's seal, and applying a committed batch to the in-memory state.

use paxstore::{BatchPlan, Durability, StorageError, StorageOp, StorageResult};

use super::format::{
    align, frame_record, seal_record_bytes, u32_at, LeWriter, RECORD_BATCH, RECORD_HEADER_BYTES,
    RECORD_SEAL,
};
use super::io::WalIo;
use super::record::checkpoint_record_bytes;
use super::segment::{self, io_err, Segment, FIRST_RECORD};
use super::stats::Counters;
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
        let rollover = self.roll_on_next_write || self.tail + framed + seal_room > active_len;
        if rollover {
            let checkpoint = checkpoint_record_bytes(
                self.meta.stopsign.as_ref().map(Vec::len),
                self.meta.snapshot.as_ref().map(Vec::len),
            );
            let seal = if self.options.durability == Durability::Immediate {
                seal_record_bytes(new_entries)
            } else {
                0
            };
            self.ensure_spare_fits(FIRST_RECORD + checkpoint + framed + seal)?;
        } else if self.spare.is_none() && self.tail > active_len / 2 {
            // Ahead of need; if it fails now, the rollover tries again (and reports).
            let _ = self.ensure_spare();
        }
        let (offset, lsn) = if rollover {
            // Seal the active segment first (synced), so the new checkpoint can name it.
            let (checkpoint_lsn, prev_seal) = if self.sealing {
                self.roll_on_next_write = true;
                self.write_seal(self.next_lsn)?;
                (self.next_lsn + 1, Some(self.tail))
            } else {
                (self.next_lsn, None)
            };
            self.encode_checkpoint(checkpoint_lsn, prev_seal);
            (FIRST_RECORD + self.checkpoint.len(), checkpoint_lsn + 1)
        } else {
            (self.tail, self.next_lsn)
        };
        frame_record(&mut self.buf, lsn, RECORD_BATCH);
        // A rollover writes the checkpoint and the batch into the spare in one call; a
        // batch that fits goes to the active segment's tail. Either segment stays where it
        // is whatever the outcome.
        let (seg, at, bytes) = if rollover {
            self.checkpoint.extend_from_slice(&self.buf);
            (self.spare.as_mut(), FIRST_RECORD, &self.checkpoint[..])
        } else {
            (self.segments.back_mut(), offset, &self.buf[..])
        };
        let seg = seg.ok_or_else(|| missing(if rollover { "spare" } else { "active" }))?;
        let written = RecordWriter {
            io: &*self.io,
            durability: self.options.durability,
            zero_ahead: self.options.zero_ahead,
            counters: &mut self.counters,
            poisoned: &mut self.poisoned,
        }
        .write(seg, at, bytes);
        let (seq, seg_len) = (seg.seq, seg.len());
        if rollover {
            self.checkpoint.truncate(offset - FIRST_RECORD);
        }
        written?;
        let record_loc = location(seq, offset);
        if rollover {
            let seg = self.spare.take().ok_or_else(|| missing("spare"))?;
            self.segments.push_back(seg);
            self.roll_on_next_write = false;
            // The checkpoint went out with the batch, in the same write.
            self.counters.records += 1;
            self.active_entries = 0;
            self.sealing = self.options.durability == Durability::Immediate
                && offset + framed + seal_record_bytes(new_entries) <= seg_len;
        }
        // Committed: now, and only now, the in-memory state moves.
        self.tail = offset + framed;
        self.next_lsn = lsn + 1;
        self.active_entries += new_entries;
        let compacted = self.meta.compacted;
        self.apply(&plan, &ops, record_loc);
        self.recent.apply(&plan, plan.into_values(ops).entries, &self.appended_sizes);
        if self.meta.compacted != compacted || self.reclaim_pending {
            self.reclaim();
        }
        Ok(())
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
        let mut out = LeWriter(&mut seal);
        out.u64(start as u64);
        out.u32(n as u32);
        for offset in offsets {
            out.u32(offset);
        }
        frame_record(&mut seal, lsn, RECORD_SEAL);
        let tail = self.tail;
        let active = self.segments.back_mut().ok_or_else(|| missing("active"))?;
        RecordWriter {
            io: &*self.io,
            durability: self.options.durability,
            zero_ahead: self.options.zero_ahead,
            counters: &mut self.counters,
            poisoned: &mut self.poisoned,
        }
        .write(active, tail, &seal)?;
        self.counters.seals += 1;
        Ok(())
    }

    /// At close ([`WalStorage::close`], or drop): with `Immediate`, when the active
    /// segment's records take at least an eighth of it, seals it and starts the spare with
    /// a checkpoint alone, as a rollover does without a batch. The next `open` then takes
    /// every segment but that one-record one from its seal instead of replaying the active
    /// segment record by record (FORMAT.md, "Seals"). The rest of the sealed segment stays
    /// unused until a trim frees it, so the eighth bounds what a close may leave unused.
    /// Off with [`WalOptions::seal_on_close`](super::WalOptions::seal_on_close).
    pub(super) fn seal_for_close(&mut self) -> StorageResult<()> {
        // No segment: an `open` that failed before the first one was made.
        let Some(active_len) = self.segments.back().map(Segment::len) else { return Ok(()) };
        if !self.options.seal_on_close
            || !self.sealing
            || self.roll_on_next_write
            || self.poisoned.is_some()
            || self.tail - FIRST_RECORD < active_len / 8
        {
            return Ok(());
        }
        let checkpoint = checkpoint_record_bytes(
            self.meta.stopsign.as_ref().map(Vec::len),
            self.meta.snapshot.as_ref().map(Vec::len),
        );
        self.ensure_spare_fits(FIRST_RECORD + checkpoint)?;
        // As in a rollover: once the seal may be on disk, no record may follow it.
        self.roll_on_next_write = true;
        self.write_seal(self.next_lsn)?;
        let lsn = self.next_lsn + 1;
        self.encode_checkpoint(lsn, Some(self.tail));
        let spare = self.spare.as_mut().ok_or_else(|| missing("spare"))?;
        // No zeros ahead: the next `open` scans the rest of this segment's written blocks
        // for records, and the next process writes its own zeros ahead of its records.
        RecordWriter {
            io: &*self.io,
            durability: self.options.durability,
            zero_ahead: false,
            counters: &mut self.counters,
            poisoned: &mut self.poisoned,
        }
        .write(spare, FIRST_RECORD, &self.checkpoint)?;
        let seg = self.spare.take().ok_or_else(|| missing("spare"))?;
        let seg_len = seg.len();
        self.segments.push_back(seg);
        self.roll_on_next_write = false;
        self.tail = FIRST_RECORD + self.checkpoint.len();
        self.next_lsn = lsn + 1;
        self.active_entries = 0;
        self.sealing = self.tail + seal_record_bytes(0) <= seg_len;
        Ok(())
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
        self.appended_sizes.clear();
        for (position, op) in ops.iter().enumerate() {
            if let Some(source) = sources.next_if(|source| source.op == position) {
                let offsets = self.entry_offsets.iter().skip(entries_before + source.entries.start);
                for offset in offsets.take(source.entries.len()) {
                    self.index.push(record_loc + u64::from(*offset));
                    // The entry's `u32` length prefix is at `offset` in the record.
                    let at = *offset as usize;
                    let len = self.buf.get(at..at + 4).map_or(0, |b| u32_at(b, 0));
                    self.appended_sizes.push(len.saturating_add(4));
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

/// The error for a segment the state says exists but does not (a broken invariant).
fn missing(which: &str) -> StorageError {
    StorageError::Backend { backend: "wal", detail: format!("no {which} segment") }
}

/// What writing a record needs besides the segment: the seam, the durability, and where
/// to count records and to note a poisoning sync failure. Borrowed from `WalStorage`'s
/// fields, so the segment written (active or spare) stays where it is.
pub(super) struct RecordWriter<'a> {
    pub(super) io: &'a dyn WalIo,
    pub(super) durability: Durability,
    /// [`WalOptions::zero_ahead`](super::WalOptions::zero_ahead).
    pub(super) zero_ahead: bool,
    pub(super) counters: &'a mut Counters,
    pub(super) poisoned: &'a mut Option<StorageError>,
}

impl RecordWriter<'_> {
    /// Writes `bytes` at `offset` of `seg` and, with `Immediate`, syncs them. On failure
    /// the bytes are zeroed again (best effort) so a later reopen does not find a record
    /// that was refused; a failed sync poisons the instance.
    pub(super) fn write(self, seg: &mut Segment, offset: usize, bytes: &[u8]) -> StorageResult<()> {
        if let Err(e) = self.io.write_at(&seg.file, offset as u64, bytes) {
            let err = io_err("writing to", &seg.path, e);
            self.undo(seg, offset, bytes.len());
            return Err(err);
        }
        if self.durability == Durability::Immediate {
            if self.zero_ahead {
                self.write_zeros_ahead(seg, offset + bytes.len(), bytes.len());
            }
            if let Err(e) = self.io.sync_data(&seg.file) {
                let err = io_err("syncing", &seg.path, e);
                self.undo(seg, offset, bytes.len());
                *self.poisoned = Some(StorageError::poisoned_by(&err));
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
    fn write_zeros_ahead(&self, seg: &mut Segment, end: usize, len: usize) {
        if len >= LARGE_RECORD {
            seg.zeroed_to = seg.zeroed_to.max(end);
        } else if end + ZERO_PREFILL / 2 > seg.zeroed_to {
            seg.zeroed_to = seg.zeroed_to.max(end);
            // A failure leaves `zeroed_to` where the zeros reached; the next record tries
            // again from there.
            let _ = segment::zero_fill(self.io, seg, end + ZERO_PREFILL);
        }
    }

    /// Zeroes a refused record's bytes again, best effort. A write that failed never
    /// completed, so its record cannot be whole even if this fails (recovery then cuts it
    /// as a torn tail); after a failed sync the instance is poisoned anyway.
    fn undo(&self, seg: &Segment, offset: usize, len: usize) {
        let zeros = vec![0u8; len];
        let _ = self.io.write_at(&seg.file, offset as u64, &zeros);
    }
}
