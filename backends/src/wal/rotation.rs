//! Segments over time: the first segment, the spare made ahead of need (recycled or
//! created), and reclaiming the segments a trim freed.

use paxstore::{Durability, StorageError, StorageResult};

use super::format::seal_record_bytes;
use super::segment::{self, io_err, Segment, FIRST_RECORD};
use super::writer::RecordWriter;
use super::WalStorage;
use crate::codec::PersistentEntry;

impl<T: PersistentEntry> WalStorage<T> {
    /// A new WAL: segment 1 with the checkpoint of the empty state.
    pub(super) fn start_first_segment(&mut self) -> StorageResult<()> {
        let mut seg = self.new_segment()?;
        self.encode_checkpoint(1, None);
        RecordWriter {
            io: &*self.io,
            durability: self.options.durability,
            zero_ahead: self.options.zero_ahead,
            counters: &mut self.counters,
            poisoned: &mut self.poisoned,
        }
        .write(&mut seg, FIRST_RECORD, &self.checkpoint)?;
        if self.options.durability == Durability::Buffered {
            // The first checkpoint is what makes the directory a WAL: sync it anyway.
            self.io.sync_data(&seg.file).map_err(|e| io_err("syncing", &seg.path, e))?;
        }
        self.tail = FIRST_RECORD + self.checkpoint.len();
        self.next_lsn = 2;
        self.sealing = self.options.durability == Durability::Immediate
            && self.tail + seal_record_bytes(0) <= seg.len();
        self.segments.push_back(seg);
        Ok(())
    }

    /// A fresh segment numbered `next_seq`, of the normal size.
    pub(super) fn new_segment(&mut self) -> StorageResult<Segment> {
        self.new_segment_of(self.options.segment_bytes)
    }

    /// A fresh segment numbered `next_seq`, of `size` bytes.
    pub(super) fn new_segment_of(&mut self, size: u64) -> StorageResult<Segment> {
        let seq = self.next_seq;
        if seq > u64::from(u32::MAX) {
            return Err(StorageError::Backend {
                backend: "wal",
                detail: "segment numbers exhausted".to_owned(),
            });
        }
        let seg = segment::create(&*self.io, &self.dir, seq, size)?;
        self.next_seq += 1;
        self.counters.segments_created += 1;
        Ok(seg)
    }

    /// Prepares the spare segment: recycled if a trimmed one is waiting, else created.
    pub(super) fn ensure_spare(&mut self) -> StorageResult<()> {
        if self.spare.is_none() {
            self.spare = Some(self.new_segment()?);
        }
        Ok(())
    }

    /// Prepares a spare segment of at least `bytes` (a checkpoint and a batch larger than
    /// a normal segment get one of their own size, up to `max_segment_bytes`, with room
    /// for a seal when it fits). A spare that is too small is replaced under its number.
    pub(super) fn ensure_spare_fits(&mut self, bytes: usize) -> StorageResult<()> {
        self.ensure_spare()?;
        let Some(spare) = self.spare.take_if(|s| s.len() < bytes) else { return Ok(()) };
        if let Err(e) = self.io.remove_file(&spare.path) {
            let err = io_err("removing", &spare.path, e);
            self.spare = Some(spare);
            return Err(err);
        }
        // The spare is always the last segment made: its number is free again.
        self.next_seq = spare.seq;
        drop(spare);
        self.io.sync_dir(&self.dir).map_err(|e| io_err("syncing directory", &self.dir, e))?;
        let size = (bytes as u64)
            .next_multiple_of(4096)
            .clamp(self.options.segment_bytes, self.options.max_segment_bytes);
        self.spare = Some(self.new_segment_of(size)?);
        Ok(())
    }

    /// Frees segments no live entry points to: the first becomes the spare (if there is
    /// none), the rest are deleted. Runs after a commit, so a failure is not the batch's:
    /// it is remembered and retried after the next write.
    pub(super) fn reclaim(&mut self) {
        let keep_from = match self.index.front() {
            Some(loc) => loc >> 32,
            None => self.active().seq,
        };
        if self.segments.len() < 2 || self.segments[0].seq >= keep_from {
            self.reclaim_pending = false;
            return;
        }
        if self.options.durability == Durability::Buffered {
            // The trim that freed these segments must be durable before they go, or a power
            // loss would leave entries the log still holds without their segment.
            let active = self.active();
            if self.io.sync_data(&active.file).is_err() {
                self.reclaim_pending = true;
                return;
            }
        }
        let mut failed = false;
        let mut removed = false;
        while self.segments.len() > 1 && self.segments[0].seq < keep_from && !failed {
            let Some(seg) = self.segments.pop_front() else { break };
            if self.spare.is_none()
                && seg.len() as u64 == self.options.segment_bytes
                && self.next_seq <= u64::from(u32::MAX)
            {
                match segment::recycle(&*self.io, &self.dir, seg, self.next_seq) {
                    Ok(spare) => {
                        self.next_seq += 1;
                        self.counters.segments_recycled += 1;
                        self.spare = Some(spare);
                    }
                    Err(back) => {
                        if let Some(seg) = back {
                            self.segments.push_front(seg);
                        }
                        failed = true;
                    }
                }
            } else {
                let path = seg.path.clone();
                drop(seg);
                if self.io.remove_file(&path).is_err() {
                    // Still on disk under its name; recovery copes with extra old segments.
                    failed = true;
                } else {
                    removed = true;
                }
            }
        }
        if removed && self.io.sync_dir(&self.dir).is_err() {
            failed = true;
        }
        self.reclaim_pending = failed;
    }
}
