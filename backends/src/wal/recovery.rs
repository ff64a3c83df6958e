//! Opening a WAL directory: find the segments, replay the records from the oldest live
//! segment's checkpoint, cut a torn tail, and refuse (with a typed error) anything that
//! is not a torn tail. The policy is written out in FORMAT.md, "Recovery".

use std::collections::VecDeque;
use std::path::Path;

use paxstore::{Ballot, StorageError, StorageResult};

use super::format::{
    checkpoint_prev_seal, expect_lsn, find_next_record, parse_seal, parse_segment_file_name,
    parse_segment_header, read_record, segment_header_version, Found, In, FORMAT_VERSION,
    MAX_SEGMENT_BYTES, MIN_SEGMENT_BYTES, OP_APPEND, OP_APPEND_ON_PREFIX, OP_BASE, OP_PREV_SEAL,
    OP_SET_ACCEPTED, OP_SET_COMPACTED, OP_SET_DECIDED, OP_SET_PROMISE, OP_SET_SNAPSHOT,
    OP_SET_STOPSIGN, OP_TRIM, RECORD_ALIGN, RECORD_CHECKPOINT, RECORD_SEAL, SEAL_FIXED_BYTES,
};
use super::index::{Index, Run};
use super::io::WalIo;
use super::segment::{io_err, Sealed, Segment, FIRST_RECORD};
use super::{location, LOCK_FILE};
use crate::codec::ballot_from_bytes;

/// The state replay builds: the metadata, and the locations of the entries at absolute
/// indices `[index_start, index_start + index.len())`. Replay starts from a checkpoint,
/// which knows the log's bounds but not where entries below `log_end` live (earlier,
/// deleted segments); by the end, `index_start` must have come down to
/// `compacted_idx`, or live entries are missing.
#[derive(Debug, Default)]
pub(crate) struct Replayed {
    pub(crate) compacted: usize,
    pub(crate) decided: usize,
    pub(crate) promise: Option<Ballot>,
    pub(crate) accepted: Option<Ballot>,
    pub(crate) stopsign: Option<Vec<u8>>,
    pub(crate) snapshot: Option<Vec<u8>>,
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
    fn log_end(&self) -> usize {
        self.index_start + self.index.len()
    }

    fn compact_to(&mut self, idx: usize) -> Result<(), String> {
        if idx < self.compacted {
            return Err(format!("compaction to {idx} below {}", self.compacted));
        }
        self.compacted = idx;
        if idx > self.index_start {
            let n = (idx - self.index_start).min(self.index.len());
            self.index.drain_front(n);
            self.index_start = idx;
        }
        Ok(())
    }

    fn entries(&mut self, inp: &mut In<'_>, payload_loc: u64) -> Result<(), String> {
        let n = inp.u32()?;
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
        let mut inp = In::new(payload);
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
                        if (compacted, log_end) != (self.compacted, self.log_end()) {
                            return Err(format!(
                                "checkpoint says the log is [{compacted}, {log_end}) but replay has [{}, {})",
                                self.compacted,
                                self.log_end()
                            ));
                        }
                    } else {
                        // The first checkpoint replayed: entries below `log_end` are in
                        // earlier segments, which are gone.
                        *self = Replayed {
                            compacted,
                            index_start: log_end,
                            started: true,
                            ..Replayed::default()
                        };
                    }
                }
                OP_APPEND => self.entries(&mut inp, payload_loc)?,
                OP_APPEND_ON_PREFIX => {
                    let from = index(inp.u64()?)?;
                    if from < self.compacted || from > self.log_end() {
                        return Err(format!(
                            "AppendOnPrefix at {from} outside [{}, {}]",
                            self.compacted,
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
                OP_SET_PROMISE => self.promise = Some(ballot(&mut inp)?),
                OP_SET_ACCEPTED => self.accepted = Some(ballot(&mut inp)?),
                OP_SET_DECIDED => self.decided = index(inp.u64()?)?,
                OP_SET_COMPACTED | OP_TRIM => {
                    let idx = index(inp.u64()?)?;
                    self.compact_to(idx)?;
                }
                OP_PREV_SEAL if record_type == RECORD_CHECKPOINT => {
                    inp.u32()?;
                }
                OP_SET_STOPSIGN => self.stopsign = inp.opt_bytes()?.map(<[u8]>::to_vec),
                OP_SET_SNAPSHOT => self.snapshot = inp.opt_bytes()?.map(<[u8]>::to_vec),
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
    /// seal's table (at `payload_at` in `seg`, CRC-checked) is read in place, not copied.
    fn apply_seal(
        &mut self,
        seg: &Segment,
        payload_at: usize,
        payload: &[u8],
    ) -> Result<(), String> {
        if !self.started {
            return Err("seal before any checkpoint".to_owned());
        }
        let (start, table) = parse_seal(payload)?;
        let start = index(start)?;
        if start < self.compacted {
            return Err(format!(
                "seal starts at {start}, below the compacted index {}",
                self.compacted
            ));
        }
        if start >= self.index_start && start <= self.log_end() {
            self.index.truncate(start - self.index_start);
        } else {
            self.index.clear();
            self.index_start = start;
        }
        let table_at = payload_at + SEAL_FIXED_BYTES;
        self.index.push_run(Run::new(seg.seq, seg.shared_map(), table_at, table.len() / 4));
        self.after_seal = true;
        Ok(())
    }
}

fn ballot(inp: &mut In<'_>) -> Result<Ballot, String> {
    ballot_from_bytes(inp.take(crate::codec::BALLOT_BYTES)?).map_err(|e| e.to_string())
}

/// What recovery hands to `WalStorage`.
#[derive(Debug)]
pub(crate) struct Recovered {
    pub(crate) segments: VecDeque<Segment>,
    pub(crate) spare: Option<Segment>,
    pub(crate) tail: usize,
    pub(crate) next_lsn: u64,
    pub(crate) next_seq: u64,
    /// The active segment has an older format version: the next write rolls over.
    pub(crate) older_active: bool,
    pub(crate) state: Replayed,
}

fn corruption(seg: &Segment, offset: usize, detail: impl Into<String>) -> StorageError {
    StorageError::Corruption {
        location: format!("segment {} offset {offset}", seg.name()),
        detail: detail.into(),
    }
}

/// Lists the directory: segment sequence numbers (sorted), after deleting leftover
/// `.tmp` files. Anything else is not ours.
fn list(dir: &Path, io: &dyn WalIo) -> StorageResult<Vec<u64>> {
    let mut seqs = Vec::new();
    let mut removed = false;
    let entries = std::fs::read_dir(dir).map_err(|e| io_err("listing", dir, e))?;
    for entry in entries {
        let entry = entry.map_err(|e| io_err("listing", dir, e))?;
        let name = entry.file_name();
        let name = name.to_string_lossy();
        if name == LOCK_FILE {
            continue;
        }
        if let Some(seq) = parse_segment_file_name(&name) {
            seqs.push(seq);
        } else if name.strip_suffix(".tmp").and_then(parse_segment_file_name).is_some() {
            io.remove_file(&entry.path()).map_err(|e| io_err("removing", &entry.path(), e))?;
            removed = true;
        } else {
            return Err(StorageError::Unrecognized {
                path: dir.to_path_buf(),
                backend: "wal",
                detail: format!("unexpected file {name:?} (a WAL directory holds only NNNNNNNNNNNNNNNN.wal segments and {LOCK_FILE})"),
            });
        }
    }
    if removed {
        io.sync_dir(dir).map_err(|e| io_err("syncing directory", dir, e))?;
    }
    seqs.sort_unstable();
    Ok(seqs)
}

fn open_segment(dir: &Path, io: &dyn WalIo, seq: u64) -> StorageResult<Segment> {
    let path = dir.join(super::format::segment_file_name(seq));
    let file = io.open(&path).map_err(|e| io_err("opening", &path, e))?;
    let len = file.metadata().map_err(|e| io_err("reading metadata of", &path, e))?.len();
    let location = || path.display().to_string();
    if !(MIN_SEGMENT_BYTES..=MAX_SEGMENT_BYTES).contains(&len)
        || !len.is_multiple_of(RECORD_ALIGN as u64)
    {
        return Err(StorageError::Corruption {
            location: location(),
            detail: format!("segment length {len} is not a valid segment size"),
        });
    }
    let seg = Segment::map(seq, path.clone(), file)?;
    match parse_segment_header(seg.bytes()) {
        Ok(s) if s == seq => Ok(seg),
        Ok(s) => Err(corruption(&seg, 0, format!("header names segment {s}"))),
        Err(detail) => Err(corruption(&seg, 0, detail)),
    }
}

/// The seal offset and checkpoint LSN that a segment's first record (`first`, read with
/// any LSN) names for the segment before it.
fn prev_seal(seg: &Segment, first: &Found) -> Option<(usize, u64)> {
    match first {
        Found::Record { record_type: RECORD_CHECKPOINT, lsn, payload, .. } => {
            checkpoint_prev_seal(&seg.bytes()[payload.clone()]).map(|off| (off as usize, *lsn))
        }
        _ => None,
    }
}

/// A checkpoint or seal record found: where the next record starts, and its payload.
type Taken = (usize, std::ops::Range<usize>);

/// Checks that `seg` can be taken from its seal: its checkpoint (`first`, its first
/// record read with any LSN) is the record expected next, and the seal the next segment's
/// checkpoint (LSN `next_lsn`) names is a valid seal record with the LSN right before it.
/// `None` means: replay the segment's records.
fn take_sealed(
    seg: &Segment,
    first: &Found,
    expected: Option<u64>,
    (seal_at, next_lsn): (usize, u64),
) -> Option<(Taken, Taken, Sealed)> {
    let bytes = seg.bytes();
    let Found::Record { record_type: RECORD_CHECKPOINT, lsn: first_lsn, payload, next } =
        expect_lsn(first.clone(), expected)
    else {
        return None;
    };
    let seal_lsn = next_lsn.checked_sub(1).filter(|&l| l > first_lsn)?;
    if seal_at < next || !seal_at.is_multiple_of(RECORD_ALIGN) {
        return None;
    }
    let Found::Record { record_type: RECORD_SEAL, payload: seal, next: end, .. } =
        read_record(bytes, seal_at, Some(seal_lsn))
    else {
        return None;
    };
    let info = Sealed { first_lsn, seal_at, seal_lsn, verified: std::sync::OnceLock::new() };
    Some(((next, payload), (end, seal), info))
}

/// Removes segments (oldest first) and syncs the directory.
fn remove_all(
    dir: &Path,
    io: &dyn WalIo,
    segs: impl IntoIterator<Item = Segment>,
) -> StorageResult<()> {
    let mut any = false;
    for seg in segs {
        let path = seg.path.clone();
        drop(seg);
        io.remove_file(&path).map_err(|e| io_err("removing", &path, e))?;
        any = true;
    }
    if any {
        io.sync_dir(dir).map_err(|e| io_err("syncing directory", dir, e))?;
    }
    Ok(())
}

/// Zeroes the torn bytes `[from, to)` of `seg` and syncs them.
fn zero(io: &dyn WalIo, seg: &Segment, from: usize, to: usize) -> StorageResult<()> {
    let zeros = vec![0u8; to.saturating_sub(from)];
    io.write_at(&seg.file, from as u64, &zeros)
        .map_err(|e| io_err("zeroing torn tail of", &seg.path, e))?;
    io.sync_data(&seg.file).map_err(|e| io_err("syncing", &seg.path, e))
}

/// The first valid record after `from` with an LSN of at least `min_lsn`: evidence that
/// what lies before it was not a torn tail but lost or corrupt records. Only the file's
/// data regions are scanned, and the scan stops at a valid record with a lower LSN: that
/// is from an earlier life of a recycled segment, and everything the current life wrote
/// lies before it (a segment is written from its start, with no gaps).
fn later_record(seg: &Segment, from: usize, min_lsn: u64) -> Option<(usize, u64)> {
    for range in seg.data_ranges(from) {
        match find_next_record(seg.bytes(), range.start.max(from), range.end) {
            Some((at, lsn)) if lsn >= min_lsn => return Some((at, lsn)),
            Some(_) => return None,
            None => {}
        }
    }
    None
}

/// Checks the bytes at a clean or torn end of the records (`stop` found at `pos`), and
/// zeroes a torn record. Refuses anything that is not a torn tail.
fn check_end(
    io: &dyn WalIo,
    seg: &Segment,
    pos: usize,
    stop: &Found,
    expected: u64,
) -> StorageResult<()> {
    let later = |from| later_record(seg, from, expected);
    match stop {
        Found::End | Found::Stale => match later(pos) {
            Some((at, lsn)) => Err(corruption(seg, pos, format!("the records end here but a valid record with LSN {lsn} (expected at most {expected}) follows at offset {at}: records in between are lost"))),
            None => Ok(()),
        },
        Found::Invalid { why, claimed_end } => match later(pos + RECORD_ALIGN) {
            Some((at, lsn)) => Err(corruption(seg, pos, format!("{why}; not a torn tail: a valid record with LSN {lsn} follows at offset {at}"))),
            None => zero(io, seg, pos, super::format::align(*claimed_end).min(seg.len())),
        },
        Found::Ahead(lsn) => Err(corruption(seg, pos, format!("record has LSN {lsn} but {expected} was expected: records are missing"))),
        Found::Record { .. } => Ok(()),
    }
}

/// Opens the segments in `dir` and replays them (see FORMAT.md, "Recovery"). Returns
/// `Ok(None)` if the directory holds no records at all (a new WAL).
pub(crate) fn recover(dir: &Path, io: &dyn WalIo) -> StorageResult<Option<Recovered>> {
    let seqs = list(dir, io)?;
    if seqs.is_empty() {
        return Ok(None);
    }
    // Segments below a gap in the numbering are leftovers of a reclamation whose
    // deletes were not all durable: the live run is the last contiguous one. (If a live
    // segment were lost instead, replay finds its entries missing and says so.)
    let run_start = (1..seqs.len()).rev().find(|&i| seqs[i] != seqs[i - 1] + 1).unwrap_or(0);
    let mut segs = VecDeque::new();
    for &seq in &seqs {
        segs.push_back(open_segment(dir, io, seq)?);
    }
    let stale: Vec<Segment> = segs.drain(..run_start).collect();

    let mut state = Replayed::default();
    let mut expected: Option<u64> = None;
    let mut last_data: Option<usize> = None;
    let mut first_empty: Option<usize> = None;
    let mut stops = Vec::with_capacity(segs.len());
    // Segment `i` is sealed if segment `i + 1`'s checkpoint names its seal: then its
    // entries come from the seal's table and its records are verified later, on first
    // read (FORMAT.md, "Seals").
    // Each segment's first record is read (and its CRC checked) once, here.
    let firsts: Vec<Found> =
        segs.iter().map(|seg| read_record(seg.bytes(), FIRST_RECORD, None)).collect();
    let seal_ptrs: Vec<Option<(usize, u64)>> = (0..segs.len())
        .map(|i| segs.get(i + 1).and_then(|next| prev_seal(next, &firsts[i + 1])))
        .collect();
    let mut sealed = Vec::new();
    for (i, seg) in segs.iter().enumerate() {
        let bytes = seg.bytes();
        let taken = seal_ptrs[i].and_then(|ptr| take_sealed(seg, &firsts[i], expected, ptr));
        if let Some(taken) = taken {
            if let Some(empty) = first_empty {
                return Err(corruption(
                    &segs[empty],
                    FIRST_RECORD,
                    format!("segment holds no records but the later segment {} does", seg.name()),
                ));
            }
            let (ckpt, seal, info) = taken;
            state
                .apply(&bytes[ckpt.1.clone()], location(seg.seq, ckpt.1.start), RECORD_CHECKPOINT)
                .and_then(|()| state.apply_seal(seg, seal.1.start, &bytes[seal.1.clone()]))
                .map_err(|detail| corruption(seg, info.seal_at, detail))?;
            expected = Some(info.seal_lsn + 1);
            last_data = Some(i);
            stops.push((seal.0, Found::End));
            sealed.push((i, info));
            continue;
        }
        let mut pos = FIRST_RECORD;
        let stop = loop {
            let found = if pos == FIRST_RECORD {
                expect_lsn(firsts[i].clone(), expected)
            } else {
                read_record(bytes, pos, expected)
            };
            match found {
                Found::Record { record_type, lsn, payload, next } => {
                    if (pos == FIRST_RECORD) != (record_type == RECORD_CHECKPOINT) {
                        return Err(corruption(
                            seg,
                            pos,
                            "checkpoint records are exactly the first record of each segment",
                        ));
                    }
                    if let Some(empty) = first_empty {
                        return Err(corruption(
                            &segs[empty],
                            FIRST_RECORD,
                            format!(
                                "segment holds no records but the later segment {} does",
                                seg.name()
                            ),
                        ));
                    }
                    state
                        .apply(
                            &bytes[payload.clone()],
                            location(seg.seq, payload.start),
                            record_type,
                        )
                        .map_err(|detail| corruption(seg, pos, detail))?;
                    expected = Some(lsn + 1);
                    pos = next;
                }
                other => break other,
            }
        };
        if pos != FIRST_RECORD {
            last_data = Some(i);
        } else if first_empty.is_none() {
            first_empty = Some(i);
        }
        stops.push((pos, stop));
    }

    let Some(last) = last_data else {
        // No records anywhere: a WAL that never finished creating its first segment. It
        // must not hold a valid record anywhere, or data would be silently dropped.
        for seg in &segs {
            if let Some((at, lsn)) = later_record(seg, FIRST_RECORD, 1) {
                return Err(corruption(seg, FIRST_RECORD, format!("no valid first checkpoint, but a valid record with LSN {lsn} is at offset {at}")));
            }
        }
        remove_all(dir, io, stale.into_iter().chain(segs))?;
        return Ok(None);
    };
    let expected = expected.unwrap_or(1);
    for (i, (pos, stop)) in stops.iter().enumerate() {
        let seg = &segs[i];
        match (i.cmp(&last), stop) {
            (std::cmp::Ordering::Less, Found::End | Found::Stale) => {}
            (std::cmp::Ordering::Less, Found::Invalid { why, .. }) => {
                return Err(corruption(
                    seg,
                    *pos,
                    format!("{why}; not a torn tail: later segments hold records"),
                ));
            }
            (std::cmp::Ordering::Less, _) => {
                return Err(corruption(seg, *pos, "records are missing"))
            }
            (std::cmp::Ordering::Equal, stop) => check_end(io, seg, *pos, stop, expected)?,
            // Spare segments: only their first record slot is checked (see FORMAT.md).
            (std::cmp::Ordering::Greater, Found::Invalid { claimed_end, .. }) => {
                if let Some((at, lsn)) = later_record(seg, FIRST_RECORD + RECORD_ALIGN, expected) {
                    return Err(corruption(
                        seg,
                        at,
                        format!(
                            "valid record with LSN {lsn} in a segment after the end of the records"
                        ),
                    ));
                }
                zero(io, seg, FIRST_RECORD, super::format::align(*claimed_end).min(seg.len()))?;
            }
            (std::cmp::Ordering::Greater, Found::Ahead(lsn)) => {
                return Err(corruption(
                    seg,
                    *pos,
                    format!("record has LSN {lsn} but {expected} was expected"),
                ));
            }
            (std::cmp::Ordering::Greater, _) => {}
        }
    }
    if state.index_start != state.compacted {
        return Err(StorageError::Corruption {
            location: format!("segment {}", segs[0].name()),
            detail: format!(
                "entries [{}, {}) are live but no remaining segment holds them",
                state.compacted, state.index_start
            ),
        });
    }
    for (i, info) in sealed {
        segs[i].sealed = Some(Box::new(info));
    }
    let tail = stops[last].0;
    let mut spares: VecDeque<Segment> = segs.split_off(last + 1);
    // Every record written from now on goes to a segment of this format version (see
    // FORMAT.md, "Versions"): a spare of an older version is deleted (its number is
    // reused), and an active segment of an older version is rolled over on the next write.
    let spare = spares.pop_front();
    let (spare, older_spare) = match spare {
        Some(seg) if segment_header_version(seg.bytes()) < FORMAT_VERSION => (None, Some(seg)),
        spare => (spare, None),
    };
    remove_all(dir, io, stale.into_iter().chain(spares).chain(older_spare))?;
    let older_active = segment_header_version(segs[segs.len() - 1].bytes()) < FORMAT_VERSION;
    // Segment numbers stay consecutive (reads index the live segments by number).
    let next_seq = spare.as_ref().unwrap_or(&segs[segs.len() - 1]).seq + 1;
    Ok(Some(Recovered {
        segments: segs,
        spare,
        tail,
        next_lsn: expected,
        next_seq,
        older_active,
        state,
    }))
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
        assert_eq!((r.compacted, r.index_start, r.log_end()), (5, 9, 9));
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
        assert_eq!((r.compacted, r.index_start), (7, 7));
    }
}
