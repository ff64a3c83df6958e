//! The on-disk byte layout: constants, segment headers, record framing and the op
//! encoding of record payloads. `FORMAT.md` (next to this file) is the prose version;
//! `tests/wal_format.rs` holds these constants to it.
//!
//! Every integer is fixed-width little-endian. Nothing here does I/O.

use std::ops::Range;

/// The first 8 bytes of every segment file.
pub const SEGMENT_MAGIC: [u8; 8] = *b"PXSTWAL\0";
/// The format version written in every segment header. Versions 1 and 2 are still read:
/// version 1 is version 2 without seal records, and version 2 is version 3 without a
/// decided stop sign (a decided index of `log_end + 1`, see FORMAT.md).
pub const FORMAT_VERSION: u32 = 3;
/// Bytes of the segment header; the first record starts right after it.
pub const SEGMENT_HEADER_BYTES: usize = 32;
/// Bytes of a record header: `crc u32, len u32, lsn u64, type u8, 7 reserved zero bytes`.
pub const RECORD_HEADER_BYTES: usize = 24;
/// Records start at offsets that are multiples of this; the gap after a payload is zero.
pub const RECORD_ALIGN: usize = 8;
/// Record type: one `write_atomically` batch.
pub const RECORD_BATCH: u8 = 1;
/// Record type: the whole metadata state, first record of every segment.
pub const RECORD_CHECKPOINT: u8 = 2;
/// Record type: a segment's seal, the table of the live entries it holds (see
/// [`seal_record_bytes`]); written as its last record when the log rolls over to the next
/// segment, whose checkpoint then names the seal's offset ([`OP_PREV_SEAL`]).
pub const RECORD_SEAL: u8 = 3;

/// Op tag: entries appended at the end of the log (`AppendEntry`, `AppendEntries`).
pub const OP_APPEND: u8 = 1;
/// Op tag: `AppendOnPrefix(from, entries)`.
pub const OP_APPEND_ON_PREFIX: u8 = 2;
/// Op tag: `SetPromise(ballot)`.
pub const OP_SET_PROMISE: u8 = 3;
/// Op tag: `SetDecidedIndex(idx)`.
pub const OP_SET_DECIDED: u8 = 4;
/// Op tag: `SetAcceptedRound(ballot)`.
pub const OP_SET_ACCEPTED: u8 = 5;
/// Op tag: `SetCompactedIdx(idx)`.
pub const OP_SET_COMPACTED: u8 = 6;
/// Op tag: `Trim(idx)`.
pub const OP_TRIM: u8 = 7;
/// Op tag: `SetStopsign(option)`.
pub const OP_SET_STOPSIGN: u8 = 8;
/// Op tag: `SetSnapshot(option)`.
pub const OP_SET_SNAPSHOT: u8 = 9;
/// Op tag (checkpoints only): `compacted_idx u64, log_end u64`; entries below `log_end`
/// live in earlier segments.
pub const OP_BASE: u8 = 10;
/// Op tag (checkpoints only, right after [`OP_BASE`]): `offset u32` of the previous
/// segment's seal record, present only if that seal was synced before this checkpoint was
/// written.
pub const OP_PREV_SEAL: u8 = 11;

/// Bytes of the fixed part of a seal payload: `start u64, count u32`.
pub const SEAL_FIXED_BYTES: usize = 12;

/// The framed size of a seal record listing `entries` entries: the record header, `start
/// u64` (the absolute index of the first entry listed), `count u32`, then one `u32` per
/// entry (the segment offset of its length prefix), padded to [`RECORD_ALIGN`].
pub fn seal_record_bytes(entries: usize) -> usize {
    align(RECORD_HEADER_BYTES + SEAL_FIXED_BYTES + 4 * entries)
}

/// The segment size used unless the options say otherwise. The active segment is the one
/// `open` replays record by record, so this bounds the cost of a reopen.
pub const DEFAULT_SEGMENT_BYTES: u64 = 8 << 20;
/// The smallest segment size accepted.
pub const MIN_SEGMENT_BYTES: u64 = 4096;
/// The largest segment size accepted: in-segment offsets are stored as `u32`.
pub const MAX_SEGMENT_BYTES: u64 = 1 << 31;

/// The file name of segment `seq`: 16 lower-case hex digits and `.wal`.
pub fn segment_file_name(seq: u64) -> String {
    format!("{seq:016x}.wal")
}

/// The sequence number a segment file name encodes, if it is one.
pub fn parse_segment_file_name(name: &str) -> Option<u64> {
    let hex = name.strip_suffix(".wal")?;
    if hex.len() != 16 || !hex.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b)) {
        return None;
    }
    u64::from_str_radix(hex, 16).ok()
}

/// `n` rounded up to a multiple of [`RECORD_ALIGN`].
pub fn align(n: usize) -> usize {
    n.div_ceil(RECORD_ALIGN) * RECORD_ALIGN
}

/// The segment header for segment `seq`, made `len` bytes long (a multiple of
/// [`RECORD_ALIGN`], at most [`MAX_SEGMENT_BYTES`]): bytes 24..28 hold `len / 8`, so
/// `open` can tell a segment another program cut or extended ([`segment_header_len`]).
pub fn segment_header(seq: u64, len: u64) -> [u8; SEGMENT_HEADER_BYTES] {
    let mut h = [0u8; SEGMENT_HEADER_BYTES];
    h[0..8].copy_from_slice(&SEGMENT_MAGIC);
    h[8..12].copy_from_slice(&FORMAT_VERSION.to_le_bytes());
    h[12..16].copy_from_slice(&(SEGMENT_HEADER_BYTES as u32).to_le_bytes());
    h[16..24].copy_from_slice(&seq.to_le_bytes());
    let units = u32::try_from(len / RECORD_ALIGN as u64).unwrap_or(0);
    h[24..28].copy_from_slice(&units.to_le_bytes());
    let crc = crc32fast::hash(&h[0..28]);
    h[28..32].copy_from_slice(&crc.to_le_bytes());
    h
}

/// The length a segment header that [`parse_segment_header`] accepted says its file was
/// made with; `None` for segments written before lengths were recorded (the field is 0).
pub fn segment_header_len(header: &[u8]) -> Option<u64> {
    Some(u64::from(u32_at(header, 24)) * RECORD_ALIGN as u64).filter(|&l| l > 0)
}

/// Checks a segment header; returns its sequence number or what is wrong.
pub fn parse_segment_header(bytes: &[u8]) -> Result<u64, String> {
    let h = bytes.get(..SEGMENT_HEADER_BYTES).ok_or("file shorter than a segment header")?;
    if h[0..8] != SEGMENT_MAGIC {
        return Err(format!("bad magic {:02x?}", &h[0..8]));
    }
    let crc = u32_at(h, 28);
    if crc != crc32fast::hash(&h[0..28]) {
        return Err("segment header checksum mismatch".to_owned());
    }
    let version = u32_at(h, 8);
    if !(1..=FORMAT_VERSION).contains(&version) {
        return Err(format!("unsupported format version {version}"));
    }
    if u32_at(h, 12) as usize != SEGMENT_HEADER_BYTES {
        return Err(format!("unexpected header size {}", u32_at(h, 12)));
    }
    Ok(u64_at(h, 16))
}

/// The format version of a segment header that [`parse_segment_header`] accepted.
pub fn segment_header_version(header: &[u8]) -> u32 {
    u32_at(header, 8)
}

/// Reads a little-endian `u32` at `at`; the caller has checked the bounds.
pub fn u32_at(b: &[u8], at: usize) -> u32 {
    let mut a = [0u8; 4];
    a.copy_from_slice(&b[at..at + 4]);
    u32::from_le_bytes(a)
}

/// Reads a little-endian `u64` at `at`; the caller has checked the bounds.
pub fn u64_at(b: &[u8], at: usize) -> u64 {
    let mut a = [0u8; 8];
    a.copy_from_slice(&b[at..at + 8]);
    u64::from_le_bytes(a)
}

/// Fills in the header of the record in `buf[..]` (whose first
/// [`RECORD_HEADER_BYTES`] were reserved and whose payload follows), pads `buf` with
/// zeros to [`RECORD_ALIGN`], and returns the framed length.
pub fn frame_record(buf: &mut Vec<u8>, lsn: u64, record_type: u8) -> usize {
    let payload_len = buf.len() - RECORD_HEADER_BYTES;
    buf[4..8].copy_from_slice(&(payload_len as u32).to_le_bytes());
    buf[8..16].copy_from_slice(&lsn.to_le_bytes());
    buf[16] = record_type;
    buf[17..24].fill(0);
    let crc = crc32fast::hash(&buf[4..]);
    buf[0..4].copy_from_slice(&crc.to_le_bytes());
    let framed = align(buf.len());
    buf.resize(framed, 0);
    framed
}

/// What lies at a position of a segment.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Found {
    /// A valid record with the expected LSN.
    Record {
        /// Its type.
        record_type: u8,
        /// Its LSN.
        lsn: u64,
        /// Its payload's byte range in the segment.
        payload: Range<usize>,
        /// Where the next record starts.
        next: usize,
    },
    /// An all-zero header, or no room for one: the clean end of the records.
    End,
    /// A valid record from before the segment was recycled (LSN below the expected
    /// one): also the clean end.
    Stale,
    /// A valid record whose LSN is past the expected one: records are missing.
    Ahead(u64),
    /// Bytes that are not a valid record (torn or corrupt); `claimed_end` is where the
    /// record would end if its length field is believed (clamped to the segment).
    Invalid {
        /// Why it is invalid.
        why: &'static str,
        /// The end of the bytes the record claims.
        claimed_end: usize,
    },
}

fn is_record_type(t: u8) -> bool {
    matches!(t, RECORD_BATCH | RECORD_CHECKPOINT | RECORD_SEAL)
}

/// Reads the record at `pos` of `seg`. `expected` is the LSN the next record must have
/// (`None` for the first record of the log, which may have any LSN).
pub fn read_record(seg: &[u8], pos: usize, expected: Option<u64>) -> Found {
    let Some(h) = seg.get(pos..pos + RECORD_HEADER_BYTES) else {
        return Found::End;
    };
    let found = read_record_header(h, pos, seg.len(), None);
    if let Found::Record { payload, .. } = &found {
        let mut hasher = crc32fast::Hasher::new();
        hasher.update(&h[4..]);
        hasher.update(&seg[payload.clone()]);
        if hasher.finalize() != u32_at(h, 0) {
            return Found::Invalid { why: "checksum mismatch", claimed_end: payload.end };
        }
    }
    expect_lsn(found, expected)
}

/// What the record header `h` (at least [`RECORD_HEADER_BYTES`], read at `pos` of a
/// segment of `seg_len` bytes) says, checked but for the checksum: the type, the reserved
/// bytes, a length that stays inside the segment, the LSN. For a seal, read at `open`
/// without its table, whose checksum is checked before the first entry of its segment is
/// read (FORMAT.md, "Seals"); [`read_record`] checks the checksum too.
pub fn read_record_header(h: &[u8], pos: usize, seg_len: usize, expected: Option<u64>) -> Found {
    let Some(h) = h.get(..RECORD_HEADER_BYTES) else {
        return Found::End;
    };
    if h.iter().all(|&b| b == 0) {
        return Found::End;
    }
    let len = u32_at(h, 4) as usize;
    let lsn = u64_at(h, 8);
    let record_type = h[16];
    let start = pos + RECORD_HEADER_BYTES;
    let claimed_end = start.saturating_add(len).min(seg_len).max(start);
    let invalid = |why| Found::Invalid { why, claimed_end };
    if !is_record_type(record_type) {
        return invalid("unknown record type");
    }
    if h[17..24].iter().any(|&b| b != 0) {
        return invalid("reserved header bytes are not zero");
    }
    if len == 0 || lsn == 0 {
        return invalid("zero length or LSN");
    }
    if start.checked_add(len).is_none_or(|end| end > seg_len) {
        return invalid("record runs past the end of the segment");
    }
    let record = Found::Record {
        record_type,
        lsn,
        payload: start..start + len,
        next: pos + align(RECORD_HEADER_BYTES + len),
    };
    expect_lsn(record, expected)
}

/// What [`read_record`] with `expected` says of a record read with `None`: a valid record
/// with a lower LSN is [`Found::Stale`], with a higher one [`Found::Ahead`].
pub fn expect_lsn(found: Found, expected: Option<u64>) -> Found {
    match (found, expected) {
        (Found::Record { lsn, .. }, Some(e)) if lsn < e => Found::Stale,
        (Found::Record { lsn, .. }, Some(e)) if lsn > e => Found::Ahead(lsn),
        (found, _) => found,
    }
}

/// The first valid record (of any LSN) at or after `from` and ending by `to`, on the
/// record alignment, as `(offset, lsn)`.
pub fn find_next_record(seg: &[u8], from: usize, to: usize) -> Option<(usize, u64)> {
    let mut pos = align(from);
    let to = to.min(seg.len());
    while pos + RECORD_HEADER_BYTES <= to {
        // A record at `pos` has a non-zero type byte at `pos + 16`: if the 64 bytes from
        // there are zero, no record starts at any of the next 8 aligned offsets.
        if let Some(probe) = seg.get(pos + 16..pos + 16 + 64) {
            if probe.iter().fold(0u8, |acc, &b| acc | b) == 0 {
                pos += 64;
                continue;
            }
        }
        let h = &seg[pos..pos + RECORD_HEADER_BYTES];
        // Cheap filters first: type and reserved bytes, then the checksum.
        if is_record_type(h[16]) && h[17..24].iter().all(|&b| b == 0) && u64_at(h, 8) != 0 {
            if let Found::Record { lsn, .. } = read_record(seg, pos, None) {
                return Some((pos, lsn));
            }
        }
        pos += RECORD_ALIGN;
    }
    None
}

/// The seal offset a checkpoint payload names ([`OP_PREV_SEAL`] right after its
/// [`OP_BASE`]), if any.
pub fn checkpoint_prev_seal(payload: &[u8]) -> Option<u32> {
    let mut inp = LeReader::new(payload);
    if inp.u8().ok()? != OP_BASE {
        return None;
    }
    inp.take(16).ok()?;
    if inp.u8().ok()? != OP_PREV_SEAL {
        return None;
    }
    inp.u32().ok()
}

/// The fixed part of a seal payload (its first [`SEAL_FIXED_BYTES`]) of a payload of
/// `payload_len` bytes: the absolute index of the first entry it lists and how many it
/// lists, if the table fills the rest of the payload exactly.
pub fn parse_seal_fixed(fixed: &[u8], payload_len: usize) -> Option<(u64, usize)> {
    let mut inp = LeReader::new(fixed);
    let start = inp.u64().ok()?;
    let count = inp.u32().ok()? as usize;
    let table = count.checked_mul(4)?;
    (SEAL_FIXED_BYTES.checked_add(table)? == payload_len).then_some((start, count))
}

/// A seal payload: the absolute index of the first entry it lists, and its table: one
/// little-endian `u32` per listed entry, the segment offset of the entry's length prefix.
pub fn parse_seal(payload: &[u8]) -> Result<(u64, &[u8]), String> {
    let mut inp = LeReader::new(payload);
    let start = inp.u64()?;
    let count = inp.u32()? as usize;
    let table = inp.take(count.checked_mul(4).ok_or("seal entry count overflows")?)?;
    if !inp.is_empty() {
        return Err(format!(
            "seal payload has {} bytes after its table",
            payload.len() - inp.pos()
        ));
    }
    Ok((start, table))
}

/// A little-endian writer over a `Vec<u8>`.
pub struct LeWriter<'a>(pub &'a mut Vec<u8>);

impl LeWriter<'_> {
    /// Appends a byte.
    pub fn u8(&mut self, v: u8) {
        self.0.push(v);
    }
    /// Appends a `u32`.
    pub fn u32(&mut self, v: u32) {
        self.0.extend_from_slice(&v.to_le_bytes());
    }
    /// Appends a `u64`.
    pub fn u64(&mut self, v: u64) {
        self.0.extend_from_slice(&v.to_le_bytes());
    }
    /// Appends raw bytes.
    pub fn bytes(&mut self, v: &[u8]) {
        self.0.extend_from_slice(v);
    }
    /// Appends an optional length-prefixed value: `0`, or `1, len u32, bytes`.
    pub fn opt_bytes(&mut self, v: Option<&[u8]>) {
        match v {
            None => self.u8(0),
            Some(b) => {
                self.u8(1);
                self.u32(b.len() as u32);
                self.bytes(b);
            }
        }
    }
}

/// A little-endian reader over a payload; every read is bounds-checked.
pub struct LeReader<'a> {
    bytes: &'a [u8],
    pos: usize,
}

impl<'a> LeReader<'a> {
    /// Reads `bytes` from the start.
    pub fn new(bytes: &'a [u8]) -> Self {
        LeReader { bytes, pos: 0 }
    }
    /// The offset of the next read.
    pub fn pos(&self) -> usize {
        self.pos
    }
    /// `true` when every byte was read.
    pub fn is_empty(&self) -> bool {
        self.pos == self.bytes.len()
    }
    /// The next `n` bytes.
    pub fn take(&mut self, n: usize) -> Result<&'a [u8], String> {
        let end = self.pos.checked_add(n).filter(|&e| e <= self.bytes.len());
        let end = end.ok_or_else(|| {
            format!(
                "payload ends at {} but {n} more bytes were needed at {}",
                self.bytes.len(),
                self.pos
            )
        })?;
        let out = &self.bytes[self.pos..end];
        self.pos = end;
        Ok(out)
    }
    /// The next byte.
    pub fn u8(&mut self) -> Result<u8, String> {
        Ok(self.take(1)?[0])
    }
    /// The next `u32`.
    pub fn u32(&mut self) -> Result<u32, String> {
        Ok(u32_at(self.take(4)?, 0))
    }
    /// The next `u64`.
    pub fn u64(&mut self) -> Result<u64, String> {
        Ok(u64_at(self.take(8)?, 0))
    }
    /// The next optional length-prefixed value written by [`LeWriter::opt_bytes`].
    pub fn opt_bytes(&mut self) -> Result<Option<&'a [u8]>, String> {
        match self.u8()? {
            0 => Ok(None),
            1 => {
                let n = self.u32()? as usize;
                Ok(Some(self.take(n)?))
            }
            other => Err(format!("bad option tag {other}")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn segment_names_round_trip() {
        assert_eq!(segment_file_name(0x1f), "000000000000001f.wal");
        assert_eq!(parse_segment_file_name("000000000000001f.wal"), Some(0x1f));
        assert_eq!(parse_segment_file_name("000000000000001F.wal"), None);
        assert_eq!(parse_segment_file_name("1f.wal"), None);
    }

    #[test]
    fn records_round_trip_and_detect_damage() {
        let mut buf = vec![0u8; RECORD_HEADER_BYTES];
        buf.extend_from_slice(b"hello");
        let n = frame_record(&mut buf, 7, RECORD_BATCH);
        assert_eq!(n % RECORD_ALIGN, 0);
        let mut seg = vec![0u8; 64];
        seg[8..8 + n].copy_from_slice(&buf);
        assert!(matches!(read_record(&seg, 8, Some(7)), Found::Record { lsn: 7, .. }));
        assert_eq!(read_record(&seg, 8, Some(8)), Found::Stale);
        assert_eq!(read_record(&seg, 8, Some(6)), Found::Ahead(7));
        assert_eq!(find_next_record(&seg, 0, 64), Some((8, 7)));
        seg[8 + RECORD_HEADER_BYTES] ^= 1;
        assert!(matches!(read_record(&seg, 8, Some(7)), Found::Invalid { .. }));
        assert_eq!(find_next_record(&seg, 0, 64), None);
        assert_eq!(read_record(&seg, 40, Some(7)), Found::End);
    }

    #[test]
    fn segment_headers_round_trip() {
        let h = segment_header(42, 4096);
        assert_eq!(parse_segment_header(&h), Ok(42));
        let mut bad = h;
        bad[20] ^= 1;
        assert!(parse_segment_header(&bad).is_err());
    }
}
