//! The op encoder: a batch into one record (`buf`, with the entry offsets and stop sign /
//! snapshot ranges `apply` needs), the metadata into a checkpoint record (`ckpt`), and
//! the size limits a batch is refused by before anything is written. The decoder is
//! in `recovery.rs`.

use paxstore::{StorageError, StorageOp, StorageResult};

use super::format::{
    align, seal_record, Out, OP_APPEND, OP_APPEND_ON_PREFIX, OP_BASE, OP_PREV_SEAL,
    OP_SET_ACCEPTED, OP_SET_COMPACTED, OP_SET_DECIDED, OP_SET_PROMISE, OP_SET_SNAPSHOT,
    OP_SET_STOPSIGN, OP_TRIM, RECORD_CHECKPOINT, RECORD_HEADER_BYTES,
};
use super::WalStorage;
use crate::codec::{ballot_to_bytes, encode_into, PersistentEntry};

/// The fixed part of a checkpoint payload: base, previous seal, decided, promise,
/// accepted, and the tags, flags and lengths of stop sign and snapshot.
const CHECKPOINT_FIXED: usize = (1 + 16) + (1 + 4) + (1 + 8) + 2 * (1 + 20) + 2 * (1 + 1 + 4);

pub(super) fn checkpoint_record_bytes(stopsign: Option<usize>, snapshot: Option<usize>) -> usize {
    align(RECORD_HEADER_BYTES + CHECKPOINT_FIXED + stopsign.unwrap_or(0) + snapshot.unwrap_or(0))
}

pub(super) fn too_large(what: &'static str, bytes: u64, limit: u64) -> StorageError {
    StorageError::TooLarge { what, bytes, limit }
}

impl<T: PersistentEntry> WalStorage<T> {
    /// Builds the checkpoint record of the current metadata in `self.ckpt`; `prev_seal` is
    /// the offset of the previous segment's (synced) seal.
    pub(super) fn encode_checkpoint(&mut self, lsn: u64, prev_seal: Option<usize>) {
        let m = &self.meta;
        self.ckpt.clear();
        self.ckpt.resize(RECORD_HEADER_BYTES, 0);
        let mut out = Out(&mut self.ckpt);
        out.u8(OP_BASE);
        out.u64(m.compacted as u64);
        out.u64((m.compacted + self.index.len()) as u64);
        if let Some(offset) = prev_seal {
            out.u8(OP_PREV_SEAL);
            out.u32(offset as u32);
        }
        out.u8(OP_SET_DECIDED);
        out.u64(m.decided as u64);
        if let Some(b) = &m.promise {
            out.u8(OP_SET_PROMISE);
            out.bytes(&ballot_to_bytes(b));
        }
        if let Some(b) = &m.accepted {
            out.u8(OP_SET_ACCEPTED);
            out.bytes(&ballot_to_bytes(b));
        }
        out.u8(OP_SET_STOPSIGN);
        out.opt_bytes(m.stopsign.as_deref());
        out.u8(OP_SET_SNAPSHOT);
        out.opt_bytes(m.snapshot.as_deref());
        seal_record(&mut self.ckpt, lsn, RECORD_CHECKPOINT);
    }

    /// Appends one entry, `u32` length first, to the record; remembers its offset.
    pub(super) fn encode_entry(&mut self, entry: &T) -> StorageResult<()> {
        let at = self.buf.len();
        self.entry_offsets.push(at as u32);
        self.buf.extend_from_slice(&[0; 4]);
        encode_into("entry", entry, &mut self.buf)?;
        let len = self.buf.len() - at - 4;
        let len =
            u32::try_from(len).map_err(|_| too_large("entry", len as u64, u64::from(u32::MAX)))?;
        self.buf[at..at + 4].copy_from_slice(&len.to_le_bytes());
        Ok(())
    }

    pub(super) fn encode_entries(&mut self, entries: &[T]) -> StorageResult<()> {
        let n = u32::try_from(entries.len()).map_err(|_| {
            too_large("batch entry count", entries.len() as u64, u64::from(u32::MAX))
        })?;
        Out(&mut self.buf).u32(n);
        for e in entries {
            self.encode_entry(e)?;
        }
        Ok(())
    }

    /// Appends an optional serde value (stop sign, snapshot) to the record; returns its
    /// encoded length.
    pub(super) fn encode_opt<V: serde::Serialize>(
        &mut self,
        what: &'static str,
        v: Option<&V>,
    ) -> StorageResult<Option<usize>> {
        let Some(v) = v else {
            Out(&mut self.buf).u8(0);
            return Ok(None);
        };
        Out(&mut self.buf).u8(1);
        let at = self.buf.len();
        self.buf.extend_from_slice(&[0; 4]);
        encode_into(what, v, &mut self.buf)?;
        let len = self.buf.len() - at - 4;
        let len32 =
            u32::try_from(len).map_err(|_| too_large(what, len as u64, u64::from(u32::MAX)))?;
        self.buf[at..at + 4].copy_from_slice(&len32.to_le_bytes());
        self.meta_ranges.push((at + 4, at + 4 + len));
        Ok(Some(len))
    }

    /// Encodes the batch as a record payload in `self.buf` (after a reserved header) and
    /// checks its size and the size of the checkpoint it would leave.
    pub(super) fn encode_batch(&mut self, ops: &[StorageOp<T>]) -> StorageResult<()> {
        self.buf.clear();
        self.buf.resize(RECORD_HEADER_BYTES, 0);
        self.entry_offsets.clear();
        self.meta_ranges.clear();
        let mut stopsign_len = self.meta.stopsign.as_ref().map(Vec::len);
        let mut snapshot_len = self.meta.snapshot.as_ref().map(Vec::len);
        for op in ops {
            match op {
                StorageOp::AppendEntry(e) => {
                    let mut out = Out(&mut self.buf);
                    out.u8(OP_APPEND);
                    out.u32(1);
                    self.encode_entry(e)?;
                }
                StorageOp::AppendEntries(es) => {
                    Out(&mut self.buf).u8(OP_APPEND);
                    self.encode_entries(es)?;
                }
                StorageOp::AppendOnPrefix(from, es) => {
                    let mut out = Out(&mut self.buf);
                    out.u8(OP_APPEND_ON_PREFIX);
                    out.u64(*from as u64);
                    self.encode_entries(es)?;
                }
                StorageOp::SetPromise(b) | StorageOp::SetAcceptedRound(b) => {
                    let tag = if matches!(op, StorageOp::SetPromise(_)) {
                        OP_SET_PROMISE
                    } else {
                        OP_SET_ACCEPTED
                    };
                    let mut out = Out(&mut self.buf);
                    out.u8(tag);
                    out.bytes(&ballot_to_bytes(b));
                }
                StorageOp::SetDecidedIndex(i)
                | StorageOp::SetCompactedIdx(i)
                | StorageOp::Trim(i) => {
                    let tag = match op {
                        StorageOp::SetDecidedIndex(_) => OP_SET_DECIDED,
                        StorageOp::SetCompactedIdx(_) => OP_SET_COMPACTED,
                        _ => OP_TRIM,
                    };
                    let mut out = Out(&mut self.buf);
                    out.u8(tag);
                    out.u64(*i as u64);
                }
                StorageOp::SetStopsign(s) => {
                    Out(&mut self.buf).u8(OP_SET_STOPSIGN);
                    stopsign_len = self.encode_opt("stop sign", s.as_ref())?;
                }
                StorageOp::SetSnapshot(s) => {
                    Out(&mut self.buf).u8(OP_SET_SNAPSHOT);
                    snapshot_len = self.encode_opt("snapshot", s.as_ref())?;
                }
            }
        }
        let record = align(self.buf.len()) as u64;
        let limit = self.options.max_batch_record_bytes();
        if record > limit {
            return Err(too_large("batch record", record, limit));
        }
        let ckpt = checkpoint_record_bytes(stopsign_len, snapshot_len) as u64;
        let limit = self.options.max_checkpoint_record_bytes();
        if ckpt > limit {
            return Err(too_large("checkpoint record (stop sign and snapshot)", ckpt, limit));
        }
        Ok(())
    }
}
