//! The ops of a record, both ways. The encoder: a batch into one record (`buf`, with the
//! entry offsets and stop sign / snapshot ranges `apply` needs), the metadata into a
//! checkpoint record (`checkpoint`), and the size limits a batch is refused by before anything
//! is written. The decoder: [`Replayed`], the state recovery builds by applying each
//! record's ops (and each seal) in order.

use paxstore::{Ballot, StorageError, StorageOp, StorageResult};

use super::format::{
    align, frame_record, parse_seal, LeReader, LeWriter, OP_APPEND, OP_APPEND_ON_PREFIX, OP_BASE,
    OP_PREV_SEAL, OP_SET_ACCEPTED, OP_SET_COMPACTED, OP_SET_DECIDED, OP_SET_PROMISE,
    OP_SET_SNAPSHOT, OP_SET_STOPSIGN, OP_TRIM, RECORD_CHECKPOINT, RECORD_HEADER_BYTES, RECORD_SEAL,
};
use super::index::{Index, Run};
use super::segment::Segment;
use super::{Meta, WalStorage};
use crate::codec::{ballot_from_bytes, ballot_to_bytes, encode_into, PersistentEntry};

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
    /// Builds the checkpoint record of the current metadata in `self.checkpoint`; `prev_seal` is
    /// the offset of the previous segment's (synced) seal.
    pub(super) fn encode_checkpoint(&mut self, lsn: u64, prev_seal: Option<usize>) {
        let m = &self.meta;
        self.checkpoint.clear();
        self.checkpoint.resize(RECORD_HEADER_BYTES, 0);
        let mut out = LeWriter(&mut self.checkpoint);
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
        frame_record(&mut self.checkpoint, lsn, RECORD_CHECKPOINT);
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
        LeWriter(&mut self.buf).u32(n);
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
            LeWriter(&mut self.buf).u8(0);
            return Ok(None);
        };
        LeWriter(&mut self.buf).u8(1);
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
                    let mut out = LeWriter(&mut self.buf);
                    out.u8(OP_APPEND);
                    out.u32(1);
                    self.encode_entry(e)?;
                }
                StorageOp::AppendEntries(es) => {
                    LeWriter(&mut self.buf).u8(OP_APPEND);
                    self.encode_entries(es)?;
                }
                StorageOp::AppendOnPrefix(from, es) => {
                    let mut out = LeWriter(&mut self.buf);
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
                    let mut out = LeWriter(&mut self.buf);
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
                    let mut out = LeWriter(&mut self.buf);
                    out.u8(tag);
                    out.u64(*i as u64);
                }
                StorageOp::SetStopsign(s) => {
                    LeWriter(&mut self.buf).u8(OP_SET_STOPSIGN);
                    stopsign_len = self.encode_opt("stop sign", s.as_ref())?;
                }
                StorageOp::SetSnapshot(s) => {
                    LeWriter(&mut self.buf).u8(OP_SET_SNAPSHOT);
                    snapshot_len = self.encode_opt("snapshot", s.as_ref())?;
                }
            }
        }
        let record = align(self.buf.len()) as u64;
        let limit = self.options.max_batch_record_bytes();
        if record > limit {
            return Err(too_large("batch record", record, limit));
        }
        let checkpoint = checkpoint_record_bytes(stopsign_len, snapshot_len) as u64;
        let limit = self.options.max_checkpoint_record_bytes();
        if checkpoint > limit {
            return Err(too_large("checkpoint record (stop sign and snapshot)", checkpoint, limit));
        }
        Ok(())
    }
}

/// The state replay builds: the metadata, and the locations of the entries at absolute
/// indices `[index_start, index_start + index.len())`. Replay starts from a checkpoint,
/// which knows the log's bounds but not where entries below `log_end` live (earlier,
/// deleted segments); by the end, `index_start` must have come down to
/// `compacted_idx`, or live entries are missing.
#[derive(Debug, Default)]
pub(crate) struct Replayed {
    /// The metadata, as `WalStorage` keeps it.
    pub(crate) meta: Meta,
    pub(crate) index_start: usize,
    pub(crate) index: Index,
    /// Set by the first checkpoint replayed.
    started: bool,
    /// Set by a seal taken in place of its segment's records: the next checkpoint may
    /// carry trims those records made.
    after_seal: bool,
}

fn index(v: u64) -> Result<usize, String> {
    usize::try_from(v).map_err(|_| format!("index {v} does not fit in usize"))
}

impl Replayed {
    pub(crate) fn log_end(&self) -> usize {
        self.index_start + self.index.len()
    }

    fn compact_to(&mut self, idx: usize) -> Result<(), String> {
        if idx < self.meta.compacted {
            return Err(format!("compaction to {idx} below {}", self.meta.compacted));
        }
        self.meta.compacted = idx;
        if idx > self.index_start {
            let n = (idx - self.index_start).min(self.index.len());
            self.index.drain_front(n);
            self.index_start = idx;
        }
        Ok(())
    }

    fn entries(&mut self, inp: &mut LeReader<'_>, payload_loc: u64) -> Result<(), String> {
        let n = inp.u32()?;
        if self.log_end().checked_add(n as usize).is_none() {
            return Err(format!(
                "{n} entries at {} would end the log past usize::MAX",
                self.log_end()
            ));
        }
        for _ in 0..n {
            let at = inp.pos() as u64;
            let len = inp.u32()? as usize;
            inp.take(len)?;
            self.index.push(payload_loc + at);
        }
        Ok(())
    }

    /// Applies one record's payload. `payload_loc` is the location (as stored in the
    /// index) of the payload's first byte.
    pub(crate) fn apply(
        &mut self,
        payload: &[u8],
        payload_loc: u64,
        record_type: u8,
    ) -> Result<(), String> {
        if record_type == RECORD_SEAL {
            // A seal only summarises the records before it; replaying them built the same.
            return parse_seal(payload).map(|_| ());
        }
        let mut inp = LeReader::new(payload);
        let mut first = true;
        while !inp.is_empty() {
            let tag = inp.u8()?;
            if (tag == OP_BASE) != (first && record_type == RECORD_CHECKPOINT) {
                return Err(format!(
                    "op {tag} where a checkpoint base {} expected",
                    if first { "was" } else { "was not" }
                ));
            }
            first = false;
            match tag {
                OP_BASE => {
                    let compacted = index(inp.u64()?)?;
                    let log_end = index(inp.u64()?)?;
                    if log_end < compacted {
                        return Err(format!(
                            "checkpoint log end {log_end} below compacted index {compacted}"
                        ));
                    }
                    if self.started {
                        // A later segment's checkpoint repeats the state replay already
                        // has (with the entries' locations): it must agree. After a seal
                        // (the segment's records were not replayed) it also brings the
                        // trims those records made.
                        if self.after_seal {
                            self.after_seal = false;
                            self.compact_to(compacted)?;
                        }
                        if (compacted, log_end) != (self.meta.compacted, self.log_end()) {
                            return Err(format!(
                                "checkpoint says the log is [{compacted}, {log_end}) but replay has [{}, {})",
                                self.meta.compacted,
                                self.log_end()
                            ));
                        }
                    } else {
                        // The first checkpoint replayed: entries below `log_end` are in
                        // earlier segments, which are gone.
                        *self = Replayed {
                            meta: Meta { compacted, ..Meta::default() },
                            index_start: log_end,
                            started: true,
                            ..Replayed::default()
                        };
                    }
                }
                OP_APPEND => self.entries(&mut inp, payload_loc)?,
                OP_APPEND_ON_PREFIX => {
                    let from = index(inp.u64()?)?;
                    if from < self.meta.compacted || from > self.log_end() {
                        return Err(format!(
                            "AppendOnPrefix at {from} outside [{}, {}]",
                            self.meta.compacted,
                            self.log_end()
                        ));
                    }
                    if from >= self.index_start {
                        self.index.truncate(from - self.index_start);
                    } else {
                        self.index.clear();
                        self.index_start = from;
                    }
                    self.entries(&mut inp, payload_loc)?;
                }
                OP_SET_PROMISE => self.meta.promise = Some(ballot(&mut inp)?),
                OP_SET_ACCEPTED => self.meta.accepted = Some(ballot(&mut inp)?),
                OP_SET_DECIDED => self.meta.decided = index(inp.u64()?)?,
                OP_SET_COMPACTED | OP_TRIM => {
                    let idx = index(inp.u64()?)?;
                    self.compact_to(idx)?;
                }
                OP_PREV_SEAL if record_type == RECORD_CHECKPOINT => {
                    inp.u32()?;
                }
                OP_SET_STOPSIGN => self.meta.stopsign = inp.opt_bytes()?.map(<[u8]>::to_vec),
                OP_SET_SNAPSHOT => self.meta.snapshot = inp.opt_bytes()?.map(<[u8]>::to_vec),
                other => return Err(format!("unknown op tag {other}")),
            }
        }
        if first {
            return Err("empty record".to_owned());
        }
        Ok(())
    }
}

impl Replayed {
    /// Takes a sealed segment's live entries from its seal instead of its records: the
    /// seal lists the log's entries `[start, start + n)` at the time it was written, all in
    /// this segment; entries from `start` on that earlier segments held were cut. The
    /// seal's table (`count` offsets at `table_at` in `seg`) is read in place, not copied;
    /// its checksum is checked before the first entry of the segment is read.
    pub(crate) fn apply_seal(
        &mut self,
        seg: &Segment,
        table_at: usize,
        start: u64,
        count: usize,
    ) -> Result<(), String> {
        if !self.started {
            return Err("seal before any checkpoint".to_owned());
        }
        let start = index(start)?;
        if start.checked_add(count).is_none() {
            return Err(format!("seal lists entries from {start} past usize::MAX"));
        }
        if table_at.checked_add(4 * count).is_none_or(|end| end > seg.len()) {
            return Err(format!("seal table of {count} entries runs past the end of the segment"));
        }
        if start < self.meta.compacted {
            return Err(format!(
                "seal starts at {start}, below the compacted index {}",
                self.meta.compacted
            ));
        }
        if start >= self.index_start && start <= self.log_end() {
            self.index.truncate(start - self.index_start);
        } else {
            self.index.clear();
            self.index_start = start;
        }
        self.index.push_run(Run::new(seg.seq, seg.shared_map(), table_at, count));
        self.after_seal = true;
        Ok(())
    }
}

fn ballot(inp: &mut LeReader<'_>) -> Result<Ballot, String> {
    ballot_from_bytes(inp.take(crate::codec::BALLOT_BYTES)?).map_err(|e| e.to_string())
}

/// The payload offset of an index location, for tests of this module.
#[cfg(test)]
fn offset_of(loc: u64) -> u64 {
    loc & u64::from(u32::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replay_tracks_missing_prefix() {
        let mut r = Replayed::default();
        let mut p = vec![OP_BASE];
        p.extend_from_slice(&5u64.to_le_bytes());
        p.extend_from_slice(&9u64.to_le_bytes());
        r.apply(&p, 0, RECORD_CHECKPOINT).unwrap();
        assert_eq!((r.meta.compacted, r.index_start, r.log_end()), (5, 9, 9));
        let mut p = vec![OP_APPEND_ON_PREFIX];
        p.extend_from_slice(&7u64.to_le_bytes());
        p.extend_from_slice(&1u32.to_le_bytes());
        p.extend_from_slice(&2u32.to_le_bytes());
        p.extend_from_slice(b"ab");
        r.apply(&p, 100, super::super::format::RECORD_BATCH).unwrap();
        assert_eq!((r.index_start, r.log_end()), (7, 8));
        assert_eq!(r.index.front().map(offset_of), Some(100 + 13));
        let mut p = vec![OP_TRIM];
        p.extend_from_slice(&7u64.to_le_bytes());
        r.apply(&p, 0, super::super::format::RECORD_BATCH).unwrap();
        assert_eq!((r.meta.compacted, r.index_start), (7, 7));
    }
}
