//! # The memory-mapped write-ahead log (`wal` feature)
//!
//! paxstore's own engine, built for this log's access pattern: append at the tail,
//! truncate the tail (`AppendOnPrefix`), drop the head (`Trim`), read recent ranges.
//! The byte layout, commit protocol, recovery policy and disk assumptions are in
//! `backends/src/wal/FORMAT.md`, next to this file, included at the end of these docs.
//!
//! ## Design in one screen
//!
//! - A WAL is a directory of **segment files** (`NNNNNNNNNNNNNNNN.wal`, default 8 MiB),
//!   each made at full length before it is needed; with [`Durability::Immediate`] zeros
//!   are also *written* 2-4 MiB ahead of the tail (so a synced append overwrites
//!   allocated, written blocks and its `fdatasync` needs no journal commit for a size or
//!   extent change). A trimmed segment is **recycled** as the next spare when there is
//!   none, else deleted.
//! - **One `write_atomically` = one record**: `crc32 | len | lsn | type` and the
//!   encoded ops. A batch is all or nothing on a crash because recovery accepts a record
//!   only whole and CRC-valid.
//! - **Metadata lives in the same stream**: every segment starts with a checkpoint
//!   record of the whole metadata, so recovery replays only the live segments, from the
//!   oldest one's checkpoint.
//! - **Seals** (with `Immediate`): when the log rolls over, the full segment gets a last
//!   record listing the offsets of its live entries (4 bytes per entry), synced before
//!   the next segment's checkpoint names it. `open` takes a sealed segment from its seal
//!   without reading its records, so a reopen costs the seals, the active segment's
//!   records and little else (1,000,000 entries: 1–2 ms here). A sealed segment's
//!   records are verified once, before its first entry is read, or all at once by
//!   [`WalStorage::verify`] / [`WalOptions::verify_on_open`].
//! - **Reads** go through a read-only `mmap` of each segment and an in-memory index:
//!   entries of sealed segments are found through the seal's table, read in place in the
//!   map (no memory per entry); every other live entry has one `u64`
//!   (`segment seq << 32 | offset`), i.e. **8 bytes per entry** (a `VecDeque<u64>`, plus
//!   its spare capacity), plus ~100 bytes per segment.
//! - **Durability**: `Immediate` writes the record with `pwrite` and then `fdatasync`s
//!   the segment before returning; `msync(MS_SYNC)` of the mapped range measured
//!   ~2.5x slower on this kind of machine (see the `wal_targets` bench, which measures
//!   both), so the map is read-only. `Buffered` only `pwrite`s (the page cache survives
//!   a process crash). Creating, renaming and deleting segments is followed by a
//!   directory `fsync`.
//! - **Failures**: a failed write leaves the state unchanged (its bytes are zeroed
//!   again, best effort) and the WAL usable, e.g. after `ENOSPC`
//!   ([`StorageError::Io`] with [`std::io::ErrorKind::StorageFull`]). A failed
//!   `fdatasync` **poisons** the instance: Linux may have dropped the dirty pages and a
//!   later sync would report success for data that is gone, so every later write returns
//!   [`StorageError::Poisoned`]; reads keep answering from the acknowledged state; reopen
//!   to recover from what the disk holds.
//! - All file mutations go through the [`WalIo`] seam; [`FaultIo`] injects failures,
//!   torn writes and power loss for tests.
//!
//! ## Limits
//!
//! Segments are 8 MiB unless [`WalOptions::segment_bytes`] says otherwise; a batch or
//! checkpoint that does not fit one gets a segment of its own size, up to
//! [`WalOptions::max_segment_bytes`] (default 2 GiB). A batch record may use at most 3/4
//! of that and a checkpoint (stop sign and snapshot) at most 1/4, so the two always fit a
//! fresh segment together; larger input is refused with [`StorageError::TooLarge`]
//! before anything is written.
//!
#![doc = include_str!("FORMAT.md")]

mod fault;
pub mod format;
mod index;
mod io;
mod recovery;
mod segment;
mod stats;

use std::collections::VecDeque;
use std::fs::{File, OpenOptions};
use std::marker::PhantomData;
use std::mem;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use paxstore::{
    Ballot, Durability, LogBounds, StopSign, Storage, StorageError, StorageOp, StorageResult,
};

pub use fault::{Fault, FaultIo, WriteEvent};
pub use io::{StdIo, WalIo};
pub use stats::WalStats;

use crate::codec::{ballot_to_bytes, decode, encode_into, PersistentEntry};
use format::{
    align, seal_record, seal_record_bytes, u32_at, Out, DEFAULT_SEGMENT_BYTES, MAX_SEGMENT_BYTES,
    MIN_SEGMENT_BYTES, OP_APPEND, OP_APPEND_ON_PREFIX, OP_BASE, OP_PREV_SEAL, OP_SET_ACCEPTED,
    OP_SET_COMPACTED, OP_SET_DECIDED, OP_SET_PROMISE, OP_SET_SNAPSHOT, OP_SET_STOPSIGN, OP_TRIM,
    RECORD_ALIGN, RECORD_BATCH, RECORD_CHECKPOINT, RECORD_HEADER_BYTES, RECORD_SEAL,
    SEGMENT_HEADER_BYTES,
};
use index::Index;
use segment::{io_err, Segment, FIRST_RECORD};
use stats::CountingIo;

/// With `Immediate`, how far ahead of the tail zeros are written (see FORMAT.md).
const ZERO_PREFILL: usize = 4 << 20;

/// With `Immediate`, records at least this large get no zeros written ahead of them.
const LARGE_RECORD: usize = 256 << 10;

/// The lock file that keeps a second process (or instance) out of a WAL directory.
pub const LOCK_FILE: &str = "wal.lock";

/// The index location of byte `offset` of segment `seq`.
fn location(seq: u64, offset: usize) -> u64 {
    (seq << 32) | offset as u64
}

/// How a [`WalStorage`] is opened.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct WalOptions {
    /// When a successful write is durable.
    pub durability: Durability,
    /// The size of new segment files, a multiple of 8 in
    /// \[[`format::MIN_SEGMENT_BYTES`], `max_segment_bytes`\]. Existing segments keep their
    /// size. The active segment is the one `open` replays record by record, so this bounds
    /// the cost of a reopen (FORMAT.md, "Seals").
    pub segment_bytes: u64,
    /// The largest segment the WAL makes, for a batch or checkpoint that does not fit a
    /// segment of `segment_bytes` (it then gets a segment of its own size); a multiple of
    /// 8 in \[`segment_bytes`, [`format::MAX_SEGMENT_BYTES`]\]. A batch record may take
    /// 3/4 of it, a checkpoint (stop sign and snapshot) 1/4; larger input is refused with
    /// [`StorageError::TooLarge`].
    pub max_segment_bytes: u64,
    /// Whether `open` also verifies every record of the sealed segments (see FORMAT.md,
    /// "Seals"), instead of each one before its first entry is read. Default `false`.
    pub verify_on_open: bool,
}

impl WalOptions {
    /// Default options with the given durability.
    pub fn new(durability: Durability) -> Self {
        WalOptions {
            durability,
            segment_bytes: DEFAULT_SEGMENT_BYTES,
            max_segment_bytes: MAX_SEGMENT_BYTES,
            verify_on_open: false,
        }
    }

    /// Sets the size of new segment files.
    pub fn segment_bytes(mut self, bytes: u64) -> Self {
        self.segment_bytes = bytes;
        self
    }

    /// Sets the largest segment the WAL makes (and so the record size limits).
    pub fn max_segment_bytes(mut self, bytes: u64) -> Self {
        self.max_segment_bytes = bytes;
        self
    }

    /// Sets whether `open` verifies every record of the sealed segments up front.
    pub fn verify_on_open(mut self, verify: bool) -> Self {
        self.verify_on_open = verify;
        self
    }

    fn validate(&self) -> StorageResult<()> {
        let (b, max) = (self.segment_bytes, self.max_segment_bytes);
        let aligned = |n: u64| n.is_multiple_of(RECORD_ALIGN as u64);
        if !(MIN_SEGMENT_BYTES..=max).contains(&b)
            || max > MAX_SEGMENT_BYTES
            || !aligned(b)
            || !aligned(max)
        {
            return Err(StorageError::Backend {
                backend: "wal",
                detail: format!(
                    "segment size {b} and largest segment size {max} must be multiples of {RECORD_ALIGN} with {MIN_SEGMENT_BYTES} <= {b} <= {max} <= {MAX_SEGMENT_BYTES}"
                ),
            });
        }
        Ok(())
    }

    /// The most bytes a batch record may take: 3/4 of the largest segment's record space.
    pub fn max_batch_record_bytes(&self) -> u64 {
        (self.max_segment_bytes - SEGMENT_HEADER_BYTES as u64) / 4 * 3
    }

    /// The most bytes a checkpoint record (mostly stop sign and snapshot) may take: 1/4 of
    /// the largest segment's record space.
    pub fn max_checkpoint_record_bytes(&self) -> u64 {
        (self.max_segment_bytes - SEGMENT_HEADER_BYTES as u64) / 4
    }
}

impl Default for WalOptions {
    fn default() -> Self {
        WalOptions::new(Durability::Immediate)
    }
}

/// The metadata part of the state. Stop sign and snapshot are kept encoded (as on disk):
/// checkpoints copy them, getters decode them.
#[derive(Clone, Debug, Default)]
struct Meta {
    compacted: usize,
    decided: usize,
    promise: Option<Ballot>,
    accepted: Option<Ballot>,
    stopsign: Option<Vec<u8>>,
    snapshot: Option<Vec<u8>>,
}

/// The fixed part of a checkpoint payload: base, previous seal, decided, promise,
/// accepted, and the tags, flags and lengths of stop sign and snapshot.
const CHECKPOINT_FIXED: usize = (1 + 16) + (1 + 4) + (1 + 8) + 2 * (1 + 20) + 2 * (1 + 1 + 4);

fn checkpoint_record_bytes(stopsign: Option<usize>, snapshot: Option<usize>) -> usize {
    align(RECORD_HEADER_BYTES + CHECKPOINT_FIXED + stopsign.unwrap_or(0) + snapshot.unwrap_or(0))
}

/// paxstore's memory-mapped write-ahead log. See the [module docs](self).
#[derive(Debug)]
pub struct WalStorage<T: PersistentEntry> {
    dir: PathBuf,
    options: WalOptions,
    io: Arc<dyn WalIo>,
    /// `io`, counting what goes through it.
    counted: Arc<CountingIo>,
    /// Held (locked) for the life of the storage.
    _lock: File,
    /// The live segments, oldest first; the last one is the active one.
    segments: VecDeque<Segment>,
    /// The next segment, prepared ahead of need.
    spare: Option<Segment>,
    /// Where the next record goes in the active segment.
    tail: usize,
    /// Whether the active segment keeps room for its seal, written when the log rolls
    /// over (only with `Immediate`: a seal is trusted because everything before it was
    /// synced).
    sealing: bool,
    /// At least the number of live entries the active segment holds: what its seal lists.
    active_entries: usize,
    next_lsn: u64,
    next_seq: u64,
    meta: Meta,
    /// Locations of the entries at absolute indices `[compacted, log_end)`.
    index: Index,
    /// Scratch: the record being built, the checkpoint being built, entry offsets in it,
    /// and the ranges of encoded stop signs / snapshots in it.
    buf: Vec<u8>,
    ckpt: Vec<u8>,
    entry_offsets: Vec<u32>,
    meta_ranges: Vec<(usize, usize)>,
    /// Set when a rollover failed once its seal may have been written: the next write rolls
    /// over again (rewriting the same seal and checkpoint), so no record ever follows a
    /// seal that a leftover checkpoint in the spare may name. Also set at open when the
    /// active segment has an older format version, so no record is added to it.
    must_roll: bool,
    /// Set when a sync failed: what is durable is unknown until a reopen.
    poisoned: Option<String>,
    /// Trimmed segments not yet deleted or recycled (a previous attempt failed).
    reclaim_pending: bool,
    _entries: PhantomData<fn() -> T>,
}

impl<T: PersistentEntry> WalStorage<T> {
    /// Opens (creating if needed) the WAL in directory `path` with default options.
    pub fn open(path: &Path, durability: Durability) -> StorageResult<Self> {
        Self::open_with_options(path, WalOptions::new(durability))
    }

    /// Opens (creating if needed) the WAL in directory `path`.
    pub fn open_with_options(path: &Path, options: WalOptions) -> StorageResult<Self> {
        Self::open_with(path, options, Arc::new(StdIo))
    }

    /// Opens (creating if needed) the WAL in directory `path`, doing every file mutation
    /// through `io` (e.g. a [`FaultIo`]).
    pub fn open_with(path: &Path, options: WalOptions, io: Arc<dyn WalIo>) -> StorageResult<Self> {
        options.validate()?;
        let counted = Arc::new(CountingIo::new(io));
        let io: Arc<dyn WalIo> = counted.clone();
        let dir = path.to_path_buf();
        match std::fs::metadata(&dir) {
            Ok(m) if !m.is_dir() => {
                return Err(StorageError::Unrecognized {
                    path: dir,
                    backend: "wal",
                    detail: "a file, not a directory".to_owned(),
                })
            }
            Ok(_) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                io.create_dir_all(&dir).map_err(|e| io_err("creating directory", &dir, e))?;
                if let Some(parent) = dir.parent().filter(|p| !p.as_os_str().is_empty()) {
                    io.sync_dir(parent).map_err(|e| io_err("syncing directory", parent, e))?;
                }
            }
            Err(e) => return Err(io_err("inspecting", &dir, e)),
        }
        let lock = lock_dir(&dir)?;
        let recovered = recovery::recover(&dir, &*io)?;
        let mut wal = WalStorage {
            dir,
            options,
            io,
            counted,
            _lock: lock,
            segments: VecDeque::new(),
            spare: None,
            tail: FIRST_RECORD,
            sealing: false,
            active_entries: 0,
            next_lsn: 1,
            next_seq: 1,
            meta: Meta::default(),
            index: Index::default(),
            buf: Vec::new(),
            ckpt: Vec::new(),
            entry_offsets: Vec::new(),
            meta_ranges: Vec::new(),
            must_roll: false,
            poisoned: None,
            reclaim_pending: true,
            _entries: PhantomData,
        };
        match recovered {
            Some(r) => {
                wal.segments = r.segments;
                wal.spare = r.spare;
                wal.tail = r.tail;
                wal.next_lsn = r.next_lsn;
                wal.next_seq = r.next_seq;
                wal.must_roll = r.older_active;
                let s = r.state;
                wal.meta = Meta {
                    compacted: s.compacted,
                    decided: s.decided,
                    promise: s.promise,
                    accepted: s.accepted,
                    stopsign: s.stopsign,
                    snapshot: s.snapshot,
                };
                wal.index = s.index;
                let seq = wal.active().seq;
                wal.active_entries = wal.index.last_in_segment(seq).count();
                wal.sealing = wal.options.durability == Durability::Immediate
                    && wal.tail + seal_record_bytes(wal.active_entries) <= wal.active().len();
            }
            None => wal.start_first_segment()?,
        }
        if options.verify_on_open {
            wal.verify()?;
        }
        Ok(wal)
    }

    /// Verifies now every record of the sealed segments recovery took from their seals
    /// (each is otherwise verified before its first entry is read): every record whole,
    /// CRC-valid, with consecutive LSNs up to the seal. A failure is a
    /// [`StorageError::Corruption`] naming the segment and offset, and every later read
    /// of that segment returns it too.
    pub fn verify(&self) -> StorageResult<()> {
        self.segments.iter().try_for_each(Segment::check_sealed)
    }

    /// The directory this WAL lives in.
    pub fn path(&self) -> &Path {
        &self.dir
    }

    /// The options it was opened with.
    pub fn options(&self) -> WalOptions {
        self.options
    }

    /// The number of segment files in use (live segments plus the spare).
    pub fn segment_count(&self) -> usize {
        self.segments.len() + usize::from(self.spare.is_some())
    }

    /// The bytes of segment files in use (live segments plus the spare).
    pub fn disk_bytes(&self) -> u64 {
        self.segments.iter().chain(&self.spare).map(|s| s.len() as u64).sum()
    }

    /// The files of the live segments (oldest first; the last is the one written to) and
    /// of the spare segment.
    pub fn segment_paths(&self) -> (Vec<PathBuf>, Option<PathBuf>) {
        (
            self.segments.iter().map(|s| s.path.clone()).collect(),
            self.spare.as_ref().map(|s| s.path.clone()),
        )
    }

    /// How many live segments `open` took from their seals whose records have not been
    /// verified yet (see [`WalStorage::verify`]).
    pub fn unverified_segments(&self) -> usize {
        self.segments
            .iter()
            .filter(|s| s.sealed.as_ref().is_some_and(|x| x.verified.get().is_none()))
            .count()
    }

    /// What this instance did to the disk since it was opened: its syncs and bytes
    /// written, counted by the WAL itself.
    pub fn stats(&self) -> WalStats {
        self.counted.stats()
    }

    /// `Some(reason)` if an earlier sync failure poisoned this instance.
    pub fn poisoned(&self) -> Option<&str> {
        self.poisoned.as_deref()
    }

    fn bounds(&self) -> LogBounds {
        LogBounds {
            compacted_idx: self.meta.compacted,
            log_end: self.meta.compacted + self.index.len(),
            decided_idx: self.meta.decided,
            has_stopsign: self.meta.stopsign.is_some(),
        }
    }

    fn active(&self) -> &Segment {
        // `segments` is never empty after `open` returned: the active segment is never
        // reclaimed.
        &self.segments[self.segments.len() - 1]
    }

    /// A new WAL: segment 1 with the checkpoint of the empty state.
    fn start_first_segment(&mut self) -> StorageResult<()> {
        let mut seg = self.new_segment()?;
        self.encode_checkpoint(1, None);
        let ckpt = mem::take(&mut self.ckpt);
        let written = self.write_record(&mut seg, FIRST_RECORD, &ckpt);
        self.ckpt = ckpt;
        written?;
        if self.options.durability == Durability::Buffered {
            // The first checkpoint is what makes the directory a WAL: sync it anyway.
            self.io.sync_data(&seg.file).map_err(|e| io_err("syncing", &seg.path, e))?;
        }
        self.tail = FIRST_RECORD + self.ckpt.len();
        self.next_lsn = 2;
        self.sealing = self.options.durability == Durability::Immediate
            && self.tail + seal_record_bytes(0) <= seg.len();
        self.segments.push_back(seg);
        Ok(())
    }

    /// A fresh segment numbered `next_seq`, of the normal size.
    fn new_segment(&mut self) -> StorageResult<Segment> {
        self.new_segment_of(self.options.segment_bytes)
    }

    /// A fresh segment numbered `next_seq`, of `size` bytes.
    fn new_segment_of(&mut self, size: u64) -> StorageResult<Segment> {
        let seq = self.next_seq;
        if seq > u64::from(u32::MAX) {
            return Err(StorageError::Backend {
                backend: "wal",
                detail: "segment numbers exhausted".to_owned(),
            });
        }
        let seg = segment::create(&*self.io, &self.dir, seq, size)?;
        self.next_seq += 1;
        Ok(seg)
    }

    /// Builds the checkpoint record of the current metadata in `self.ckpt`; `prev_seal` is
    /// the offset of the previous segment's (synced) seal.
    fn encode_checkpoint(&mut self, lsn: u64, prev_seal: Option<usize>) {
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
    fn encode_entry(&mut self, entry: &T) -> StorageResult<()> {
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

    fn encode_entries(&mut self, entries: &[T]) -> StorageResult<()> {
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
    fn encode_opt<V: serde::Serialize>(
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
    fn encode_batch(&mut self, ops: &[StorageOp<T>]) -> StorageResult<()> {
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

    /// Writes `bytes` at `offset` of `seg` and, with `Immediate`, syncs them. On failure
    /// the bytes are zeroed again (best effort) so a later reopen does not find a batch
    /// that was refused; a failed sync, or a failed clean-up, poisons the instance.
    fn write_record(
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
                self.poisoned = Some(err.to_string());
                return Err(err);
            }
        }
        Ok(())
    }

    /// Zeroes a refused record's bytes again, best effort. A write that failed never
    /// completed, so its record cannot be whole even if this fails (recovery then cuts it
    /// as a torn tail); after a failed sync the instance is poisoned anyway.
    fn undo_write(&mut self, seg: &Segment, offset: usize, len: usize) {
        let zeros = vec![0u8; len];
        let _ = self.io.write_at(&seg.file, offset as u64, &zeros);
    }

    /// Writes and syncs, at the tail of the active segment, its seal with LSN `lsn`: the
    /// offsets of the live entries it holds (a suffix of the log).
    fn write_seal(&mut self, lsn: u64) -> StorageResult<()> {
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

    /// Prepares the spare segment: recycled if a trimmed one is waiting, else created.
    fn ensure_spare(&mut self) -> StorageResult<()> {
        if self.spare.is_none() {
            self.spare = Some(self.new_segment()?);
        }
        Ok(())
    }

    /// Prepares a spare segment of at least `bytes` (a checkpoint and a batch larger than
    /// a normal segment get one of their own size, up to `max_segment_bytes`, with room
    /// for a seal when it fits). A spare that is too small is replaced under its number.
    fn ensure_spare_fits(&mut self, bytes: usize) -> StorageResult<()> {
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
    fn reclaim(&mut self) {
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

    /// Applies a written batch to the in-memory state; `record_loc` is the location of
    /// its record's first byte.
    fn apply(&mut self, ops: Vec<StorageOp<T>>, record_loc: u64) {
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

    /// The entries at absolute indices `[from, to)`, which the caller checked are in the
    /// log. The segment is looked up once per run of entries it holds, and a segment taken
    /// from its seal is verified before its first entry is returned.
    fn read_range(&self, from: usize, to: usize) -> StorageResult<Vec<T>> {
        let mut out = Vec::with_capacity(to - from);
        let first = self.segments[0].seq;
        let mut current: Option<&Segment> = None;
        let locs = self.index.range(from - self.meta.compacted, to - self.meta.compacted);
        for (i, loc) in (from..).zip(locs) {
            let seq = loc >> 32;
            let seg = match current {
                Some(seg) if seg.seq == seq => seg,
                _ => {
                    let seg = seq
                        .checked_sub(first)
                        .and_then(|k| self.segments.get(k as usize))
                        .ok_or_else(|| StorageError::Corruption {
                            location: format!("entry {i}"),
                            detail: format!("indexed in segment {seq}, which is not live"),
                        })?;
                    seg.check_sealed()?;
                    current = Some(seg);
                    seg
                }
            };
            let offset = (loc & u64::from(u32::MAX)) as usize;
            let bytes = seg.bytes();
            let entry = bytes
                .get(offset..offset + 4)
                .map(|b| u32_at(b, 0) as usize)
                .and_then(|len| bytes.get(offset + 4..offset + 4 + len))
                .ok_or_else(|| StorageError::Corruption {
                    location: format!("segment {} offset {offset}", seg.name()),
                    detail: format!("entry {i} runs past the end of the segment"),
                })?;
            out.push(decode("entry", entry)?);
        }
        Ok(out)
    }
}

fn too_large(what: &'static str, bytes: u64, limit: u64) -> StorageError {
    StorageError::TooLarge { what, bytes, limit }
}

fn lock_dir(dir: &Path) -> StorageResult<File> {
    let path = dir.join(LOCK_FILE);
    let file = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(&path)
        .map_err(|e| io_err("opening", &path, e))?;
    // A lock can outlive its holder for an instant: a `fork` in another thread (e.g. a
    // test harness spawning a child) shares the descriptor until the child's `exec`.
    // So "locked" is only reported after it persisted for a second.
    for _ in 0..50 {
        match file.try_lock() {
            Ok(()) => return Ok(file),
            Err(std::fs::TryLockError::WouldBlock) => {
                std::thread::sleep(std::time::Duration::from_millis(20))
            }
            Err(std::fs::TryLockError::Error(e)) => return Err(io_err("locking", &path, e)),
        }
    }
    Err(StorageError::Backend {
        backend: "wal",
        detail: format!("{} is open in another WalStorage (locked)", dir.display()),
    })
}

impl<T: PersistentEntry> Storage<T> for WalStorage<T> {
    fn write_atomically(&mut self, ops: Vec<StorageOp<T>>) -> StorageResult<()> {
        if let Some(reason) = &self.poisoned {
            return Err(StorageError::Poisoned { reason: reason.clone() });
        }
        if ops.is_empty() {
            return Ok(());
        }
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

    fn get_entries(&self, from: usize, to: usize) -> StorageResult<Vec<T>> {
        self.bounds().check_range("get_entries", from, to)?;
        self.read_range(from, to)
    }

    fn get_suffix(&self, from: usize) -> StorageResult<Vec<T>> {
        let bounds = self.bounds();
        bounds.check_range("get_suffix", from, bounds.log_end)?;
        self.read_range(from, bounds.log_end)
    }

    fn get_log_len(&self) -> StorageResult<usize> {
        Ok(self.index.len())
    }

    fn get_decided_idx(&self) -> StorageResult<usize> {
        Ok(self.meta.decided)
    }

    fn get_promise(&self) -> StorageResult<Option<Ballot>> {
        Ok(self.meta.promise)
    }

    fn get_accepted_round(&self) -> StorageResult<Option<Ballot>> {
        Ok(self.meta.accepted)
    }

    fn get_compacted_idx(&self) -> StorageResult<usize> {
        Ok(self.meta.compacted)
    }

    fn get_stopsign(&self) -> StorageResult<Option<StopSign>> {
        self.meta.stopsign.as_deref().map(|b| decode("stop sign", b)).transpose()
    }

    fn get_snapshot(&self) -> StorageResult<Option<T::Snapshot>> {
        self.meta.snapshot.as_deref().map(|b| decode("snapshot", b)).transpose()
    }
}
