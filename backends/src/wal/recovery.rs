//! Opening a WAL directory: find the segments, replay the records from the oldest live
//! segment's checkpoint, cut a torn tail, and refuse (with a typed error) anything that
//! is not a torn tail. The policy is written out in FORMAT.md, "Recovery".

use std::collections::VecDeque;
use std::ops::Range;
use std::path::{Path, PathBuf};

use paxstore::{StorageError, StorageResult};

use super::format::{
    checkpoint_prev_seal, expect_lsn, find_next_record, parse_seal_fixed, parse_segment_file_name,
    parse_segment_header, read_record, read_record_header, segment_header_len,
    segment_header_version, Found, FORMAT_VERSION, MAX_SEGMENT_BYTES, MIN_SEGMENT_BYTES,
    RECORD_ALIGN, RECORD_CHECKPOINT, RECORD_HEADER_BYTES, RECORD_SEAL, SEAL_FIXED_BYTES,
};
use super::io::WalIo;
use super::record::Replayed;
use super::segment::{io_err, Sealed, Segment, FIRST_RECORD};
use super::{location, LOCK_FILE};

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

/// What a WAL directory holds: its segments' sequence numbers (sorted) and the
/// leftover `.tmp` files of segments being made. Changes nothing; anything that is not
/// ours is [`StorageError::Unrecognized`], so `open` refuses a foreign directory before
/// it locks, deletes or creates anything in it.
pub(crate) fn list(dir: &Path) -> StorageResult<(Vec<u64>, Vec<PathBuf>)> {
    let mut seqs = Vec::new();
    let mut tmps = Vec::new();
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
            tmps.push(entry.path());
        } else {
            return Err(StorageError::Unrecognized {
                path: dir.to_path_buf(),
                backend: "wal",
                detail: format!("unexpected file {name:?} (a WAL directory holds only NNNNNNNNNNNNNNNN.wal segments and {LOCK_FILE})"),
            });
        }
    }
    seqs.sort_unstable();
    Ok((seqs, tmps))
}

/// Deletes the leftover `.tmp` files of segments being made, and syncs the directory.
fn remove_tmps(dir: &Path, io: &dyn WalIo, tmps: &[PathBuf]) -> StorageResult<()> {
    for tmp in tmps {
        io.remove_file(tmp).map_err(|e| io_err("removing", tmp, e))?;
    }
    if !tmps.is_empty() {
        io.sync_dir(dir).map_err(|e| io_err("syncing directory", dir, e))?;
    }
    Ok(())
}

/// Bytes read from the start of each segment with one `pread` at `open`: the header and,
/// unless it holds a large stop sign or snapshot, the whole checkpoint. `open` then reads
/// a sealed segment's map only where its seal starts: a page fault on a map costs more
/// than a small read (issue 14's reopen profile: faults were a fifth of a reopen).
const HEAD_BYTES: usize = 4096;

/// Opens and maps segment `seq`, checks its header, and returns it with its first
/// [`HEAD_BYTES`] (fewer if the file is shorter).
fn open_segment(dir: &Path, io: &dyn WalIo, seq: u64) -> StorageResult<(Segment, Vec<u8>)> {
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
    let mut head = vec![0u8; HEAD_BYTES.min(len as usize)];
    // A hole reads as zeros; a file cut shorter since `metadata` is an error.
    std::os::unix::fs::FileExt::read_exact_at(&file, &mut head, 0)
        .map_err(|e| io_err("reading", &path, e))?;
    let seg = Segment::map(seq, path.clone(), file, len as usize)?;
    match parse_segment_header(&head) {
        Ok(s) if s != seq => Err(corruption(&seg, 0, format!("header names segment {s}"))),
        Ok(_) => match segment_header_len(&head) {
            Some(made) if made != len => Err(corruption(&seg, 0, format!("segment is {len} bytes but was made {made} bytes long: another program cut or extended it"))),
            _ => Ok((seg, head)),
        },
        Err(detail) => Err(corruption(&seg, 0, detail)),
    }
}

/// A segment's first record, read from its `head` unless it runs past it.
fn first_record(seg: &Segment, head: &[u8]) -> Found {
    match read_record(head, FIRST_RECORD, None) {
        Found::Invalid { .. } if head.len() < seg.len() => {
            read_record(seg.readable(FIRST_RECORD), FIRST_RECORD, None)
        }
        found => found,
    }
}

/// The bytes `range` of a segment: from its `head` if they lie in it, else from its map.
fn bytes_at<'a>(seg: &'a Segment, head: &'a [u8], range: &Range<usize>) -> &'a [u8] {
    head.get(range.clone()).unwrap_or_else(|| &seg.bytes()[range.clone()])
}

/// What a segment's checkpoint says of the seal of the segment before it.
#[derive(Clone, Copy, Debug)]
struct SealPointer {
    /// The seal's offset in the segment before.
    at: usize,
    /// The checkpoint's LSN: the seal's is the one before.
    next_lsn: u64,
}

/// The seal pointer that a segment's first record (`first`, read with any LSN, its
/// payload `payload`) holds for the segment before it.
fn prev_seal(first: &Found, payload: &[u8]) -> Option<SealPointer> {
    match first {
        Found::Record { record_type: RECORD_CHECKPOINT, lsn, .. } => {
            Some(SealPointer { at: checkpoint_prev_seal(payload)? as usize, next_lsn: *lsn })
        }
        _ => None,
    }
}

/// A checkpoint record found: where the next record starts, and its payload.
type RecordEnd = (usize, Range<usize>);

/// A seal taken at `open`: where the next record starts, where its table is, and what the
/// table lists (`count` entries from absolute index `start`).
struct SealEnd {
    next: usize,
    table_at: usize,
    start: u64,
    count: usize,
}

/// Checks that `seg` can be taken from its seal: its checkpoint (`first`, its first
/// record read with any LSN) is the record expected next, and the seal the next segment's
/// checkpoint names (`ptr`) is a seal record with the LSN right before that checkpoint's.
/// The seal's checksum is not checked here: it is checked with the segment's records,
/// before the first entry is read from it ([`Segment::check_sealed`]). What `open` takes
/// from it is checked otherwise: the length of its list by the record's length, and
/// where the list ends by the next checkpoint (its checksum checked), which replay
/// refuses unless it records the same log end.
/// `None` means: replay the segment's records.
fn take_sealed(
    seg: &Segment,
    first: &Found,
    expected: Option<u64>,
    ptr: SealPointer,
) -> Option<(RecordEnd, SealEnd, Sealed)> {
    let Found::Record { record_type: RECORD_CHECKPOINT, lsn: first_lsn, payload, next } =
        expect_lsn(first.clone(), expected)
    else {
        return None;
    };
    let seal_lsn = ptr.next_lsn.checked_sub(1).filter(|&l| l > first_lsn)?;
    let seal_at = ptr.at;
    if seal_at < next || !seal_at.is_multiple_of(RECORD_ALIGN) {
        return None;
    }
    let mut h = [0u8; RECORD_HEADER_BYTES + SEAL_FIXED_BYTES];
    std::os::unix::fs::FileExt::read_exact_at(&seg.file, &mut h, seal_at as u64).ok()?;
    let Found::Record { record_type: RECORD_SEAL, payload: seal, next: end, .. } =
        read_record_header(&h, seal_at, seg.len(), Some(seal_lsn))
    else {
        return None;
    };
    let (start, count) = parse_seal_fixed(&h[RECORD_HEADER_BYTES..], seal.len())?;
    let info = Sealed { first_lsn, seal_at, seal_lsn, verified: std::sync::OnceLock::new() };
    Some((
        (next, payload),
        SealEnd { next: end, table_at: seal.start + SEAL_FIXED_BYTES, start, count },
        info,
    ))
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

/// Zeroes the torn bytes `ranges` of `seg` and syncs them.
fn zero(io: &dyn WalIo, seg: &Segment, ranges: &[Range<usize>]) -> StorageResult<()> {
    for r in ranges.iter().filter(|r| !r.is_empty()) {
        let zeros = vec![0u8; r.len()];
        io.write_at(&seg.file, r.start as u64, &zeros)
            .map_err(|e| io_err("zeroing torn tail of", &seg.path, e))?;
    }
    io.sync_data(&seg.file).map_err(|e| io_err("syncing", &seg.path, e))
}

/// The first valid record after `from` with an LSN of at least `min_lsn`: evidence that
/// what lies before it was not a torn tail but lost or corrupt records. Only the file's
/// data regions are scanned, and the scan stops at a valid record with a lower LSN: that
/// is from an earlier life of a recycled segment, and everything the current life wrote
/// lies before it (a segment is written from its start, with no gaps).
fn later_record(seg: &Segment, from: usize, min_lsn: u64) -> Option<(usize, u64)> {
    for range in seg.data_ranges(from) {
        match find_next_record(&seg.bytes()[..range.end], range.start.max(from), range.end) {
            Some((at, lsn)) if lsn >= min_lsn => return Some((at, lsn)),
            Some(_) => return None,
            None => {}
        }
    }
    None
}

/// Checks the bytes at a clean or torn end of the records (`stop` found at `pos`), and
/// returns the byte ranges of a torn record, to be zeroed. Refuses anything that is not a
/// torn tail, unless `accept_lost_tail` (a `Buffered` log): then the records after a hole
/// in the tail segment are an unsynced tail that reached the disk out of order, and are
/// cut off with the hole (FORMAT.md, "Recovery", step 6).
fn check_end(
    seg: &Segment,
    pos: usize,
    stop: &Found,
    expected: u64,
    accept_lost_tail: bool,
) -> StorageResult<Vec<Range<usize>>> {
    let later = |from| later_record(seg, from, expected);
    match stop {
        Found::End | Found::Stale | Found::Invalid { .. }
            if accept_lost_tail && later(pos).is_some() =>
        {
            Ok(seg.data_ranges(pos).into_iter().map(|r| r.start.max(pos)..r.end).collect())
        }
        Found::End | Found::Stale => match later(pos) {
            Some((at, lsn)) => Err(corruption(seg, pos, format!("the records end here but a valid record with LSN {lsn} (expected at most {expected}) follows at offset {at}: records in between are lost"))),
            None => Ok(Vec::new()),
        },
        Found::Invalid { why, claimed_end } => match later(pos + RECORD_ALIGN) {
            Some((at, lsn)) => Err(corruption(seg, pos, format!("{why}; not a torn tail: a valid record with LSN {lsn} follows at offset {at}"))),
            None => Ok(std::iter::once(pos..super::format::align(*claimed_end).min(seg.len())).collect()),
        },
        Found::Ahead(lsn) => Err(corruption(seg, pos, format!("record has LSN {lsn} but {expected} was expected: records are missing"))),
        Found::Record { .. } => Ok(Vec::new()),
    }
}

/// Zeroes every record slot of a segment after the end of a `Buffered` log's records:
/// there, records with later LSNs are an unsynced tail that reached the disk past a hole
/// the power cut left at the end of an earlier segment (FORMAT.md, "Recovery", step 6).
/// They must go: the segment is reused, and its new records would end before them.
/// Returns the ranges to zero.
fn cut_lost_tail(seg: &Segment) -> Vec<Range<usize>> {
    seg.data_ranges(FIRST_RECORD).into_iter().map(|r| r.start.max(FIRST_RECORD)..r.end).collect()
}

/// A spare segment whose first record (`claimed_end`: where it claims to end) is
/// invalid: a rollover write that did not finish. That one `pwrite` held the checkpoint
/// (LSN `expected`) and the first batch (LSN `expected + 1`); a power cut may land the
/// batch's sectors and not all of the checkpoint's (FORMAT.md assumes no order within a
/// write), so a valid record with LSN `expected + 1` right after is that batch, never
/// acknowledged, and is cut with the checkpoint. Any other valid record is corruption.
/// Returns where the torn write ends.
fn torn_rollover_end(seg: &Segment, claimed_end: usize, expected: u64) -> StorageResult<usize> {
    let mut end = super::format::align(claimed_end).min(seg.len());
    let mut from = FIRST_RECORD + RECORD_ALIGN;
    let mut batch_seen = false;
    while let Some((at, lsn)) = later_record(seg, from, expected) {
        let batch_end = match read_record(seg.readable(at), at, Some(lsn)) {
            Found::Record { next, .. } if lsn == expected + 1 && !batch_seen => next,
            _ => {
                return Err(corruption(
                    seg,
                    at,
                    format!(
                        "valid record with LSN {lsn} in a segment after the end of the records"
                    ),
                ))
            }
        };
        batch_seen = true;
        end = end.max(batch_end);
        from = batch_end;
    }
    Ok(end)
}

/// Opens the segments in `dir` and replays them (see FORMAT.md, "Recovery"). Returns
/// `Ok(None)` if the directory holds no records at all (a new WAL).
/// `accept_lost_tail`: see [`check_end`].
pub(crate) fn recover(
    dir: &Path,
    io: &dyn WalIo,
    accept_lost_tail: bool,
) -> StorageResult<Option<Recovered>> {
    // Leftover `.tmp` files are deleted once the directory is found to be a WAL that opens.
    let (seqs, tmps) = list(dir)?;
    if seqs.is_empty() {
        remove_tmps(dir, io, &tmps)?;
        return Ok(None);
    }
    // Segments below a gap in the numbering are leftovers of a reclamation whose
    // deletes were not all durable: the live run is the last contiguous one. (If a live
    // segment were lost instead, replay finds its entries missing and says so.)
    let run_start = (1..seqs.len()).rev().find(|&i| seqs[i] != seqs[i - 1] + 1).unwrap_or(0);
    let mut segs = VecDeque::new();
    let mut heads = Vec::with_capacity(seqs.len());
    for &seq in &seqs {
        let (seg, head) = open_segment(dir, io, seq)?;
        segs.push_back(seg);
        heads.push(head);
    }
    let stale: Vec<Segment> = segs.drain(..run_start).collect();
    let heads = heads.split_off(run_start);

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
        segs.iter().zip(&heads).map(|(seg, head)| first_record(seg, head)).collect();
    let first_payload = |i: usize| match &firsts[i] {
        Found::Record { payload, .. } => bytes_at(&segs[i], &heads[i], payload),
        _ => &[],
    };
    let seal_ptrs: Vec<Option<SealPointer>> = (0..segs.len())
        .map(|i| firsts.get(i + 1).and_then(|next| prev_seal(next, first_payload(i + 1))))
        .collect();
    let mut sealed = Vec::new();
    for (i, seg) in segs.iter().enumerate() {
        let taken = seal_ptrs[i].and_then(|ptr| take_sealed(seg, &firsts[i], expected, ptr));
        if let Some(taken) = taken {
            if let Some(empty) = first_empty {
                return Err(corruption(
                    &segs[empty],
                    FIRST_RECORD,
                    format!("segment holds no records but the later segment {} does", seg.name()),
                ));
            }
            let (checkpoint, seal, info) = taken;
            state
                .apply(
                    bytes_at(seg, &heads[i], &checkpoint.1),
                    location(seg.seq, checkpoint.1.start),
                    RECORD_CHECKPOINT,
                )
                .and_then(|()| state.apply_seal(seg, seal.table_at, seal.start, seal.count))
                .map_err(|detail| corruption(seg, info.seal_at, detail))?;
            expected = Some(info.seal_lsn + 1);
            last_data = Some(i);
            stops.push((seal.next, Found::End));
            sealed.push((i, info));
            continue;
        }
        let mut pos = FIRST_RECORD;
        let stop = loop {
            let found = if pos == FIRST_RECORD {
                expect_lsn(firsts[i].clone(), expected)
            } else {
                read_record(seg.readable(pos), pos, expected)
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
                            bytes_at(
                                seg,
                                if pos == FIRST_RECORD { &heads[i] } else { &[] },
                                &payload,
                            ),
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
        remove_tmps(dir, io, &tmps)?;
        remove_all(dir, io, stale.into_iter().chain(segs))?;
        return Ok(None);
    };
    let expected = expected.unwrap_or(1);
    // What the checks below find to zero (torn records, an unsynced tail) is zeroed only
    // once every check has passed: a refused directory is left as it was.
    let mut to_zero: Vec<(usize, Vec<Range<usize>>)> = Vec::new();
    for (i, (pos, stop)) in stops.iter().enumerate() {
        let seg = &segs[i];
        match (i.cmp(&last), stop) {
            // The next segment holds records, so the replay above accepted its checkpoint
            // with exactly the LSN after this segment's last record read: the log rolled
            // over right after that record, and no record of this segment's current life
            // follows it. Whatever lies there, zeros or an invalid record, is a recycled
            // segment's earlier life (after a rollover without a seal) or a write that was
            // refused; a damaged record instead breaks the LSN chain, and the next
            // segment's checkpoint is refused (FORMAT.md, "Recovery", step 6).
            (std::cmp::Ordering::Less, Found::End | Found::Stale | Found::Invalid { .. }) => {}
            (std::cmp::Ordering::Less, _) => {
                return Err(corruption(seg, *pos, "records are missing"))
            }
            (std::cmp::Ordering::Equal, stop) => {
                to_zero.push((i, check_end(seg, *pos, stop, expected, accept_lost_tail)?))
            }
            // Spare segments: only their first record slot is checked (see FORMAT.md).
            (std::cmp::Ordering::Greater, Found::Invalid { claimed_end, .. }) => {
                match torn_rollover_end(seg, *claimed_end, expected) {
                    Ok(cut_to) => {
                        to_zero.push((i, std::iter::once(FIRST_RECORD..cut_to).collect()))
                    }
                    Err(_) if accept_lost_tail => to_zero.push((i, cut_lost_tail(seg))),
                    Err(e) => return Err(e),
                }
            }
            (std::cmp::Ordering::Greater, Found::Ahead(_)) if accept_lost_tail => {
                to_zero.push((i, cut_lost_tail(seg)))
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
    if state.index_start != state.meta.compacted {
        return Err(StorageError::Corruption {
            location: format!("segment {}", segs[0].name()),
            detail: format!(
                "entries [{}, {}) are live but no remaining segment holds them",
                state.meta.compacted, state.index_start
            ),
        });
    }
    for (i, ranges) in to_zero.iter().filter(|(_, ranges)| !ranges.is_empty()) {
        zero(io, &segs[*i], ranges)?;
    }
    remove_tmps(dir, io, &tmps)?;
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
        Some(seg) if segment_header_version(&heads[last + 1]) < FORMAT_VERSION => (None, Some(seg)),
        spare => (spare, None),
    };
    remove_all(dir, io, stale.into_iter().chain(spares).chain(older_spare))?;
    let older_active = segment_header_version(&heads[last]) < FORMAT_VERSION;
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
