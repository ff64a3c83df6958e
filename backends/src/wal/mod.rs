//! # The memory-mapped write-ahead log (`wal` feature)
//!
//! paxstore's own engine, built for this log's access pattern: append at the tail,
//! truncate the tail (`AppendOnPrefix`), drop the head (`Trim`), read recent ranges.
//! The byte layout, commit protocol, recovery policy and disk assumptions are in
//! `backends/src/wal/FORMAT.md`, next to this file, included at the end of these docs.
//!
//! ## Files
//!
//! | file | job |
//! |---|---|
//! | `mod.rs` | [`WalStorage`]: its state, `open`, accessors, the `Storage` getters |
//! | `options.rs` | [`WalOptions`] and the record-size limits they imply |
//! | `format.rs` | the byte layout: constants, headers, record framing (FORMAT.md's code) |
//! | `record.rs` | a record's ops both ways: the encoder (batch, checkpoint) and the decoder (`Replayed`) |
//! | `writer.rs` | the commit protocol: write and sync a record, seal, apply to memory |
//! | `rotation.rs` | segments over time: the first one, the spare, reclaiming trimmed ones |
//! | `segment.rs` | one segment file: create, recycle, map, zero-fill |
//! | `recovery.rs` | `open`'s replay: finding segments, seals, torn tails, what to refuse |
//! | `index.rs` | where each live entry is: segment and offset |
//! | `reader.rs` | reads through the index and the segments' maps |
//! | `recent.rs` | the most recently written entries, kept for reads of the tail |
//! | `lockfile.rs` | the lock that keeps a second instance out |
//! | `io.rs`, `stats.rs`, `fault.rs` | the I/O seam, its counting wrapper, its fault injector (feature `fault-injection`) |
//!
//! ## Design in one screen
//!
//! - A WAL is a directory of **segment files** (`NNNNNNNNNNNNNNNN.wal`, default 8 MiB),
//!   each made at full length before it is needed; with [`Durability::Immediate`] zeros
//!   are also *written* 2-4 MiB ahead of the tail (so a synced append overwrites
//!   allocated, written blocks and its `fdatasync` needs no journal commit for a size or
//!   extent change; [`WalOptions::zero_ahead`] turns this off, at the measured cost
//!   stated in FORMAT.md). A trimmed segment is **recycled** as the next spare when
//!   there is none, else deleted.
//! - **One `write_atomically` = one record**: `crc32 | len | lsn | type` and the
//!   encoded ops. A batch is all or nothing on a crash because recovery accepts a record
//!   only whole and CRC-valid.
//! - **Metadata lives in the same stream**: every segment starts with a checkpoint
//!   record of the whole metadata, so recovery replays only the live segments, from the
//!   oldest one's checkpoint.
//! - **Seals** (with `Immediate`): when the log rolls over, the full segment gets a last
//!   record listing the offsets of its live entries (4 bytes per entry), synced before
//!   the next segment's checkpoint names it. `open` takes a sealed segment from its seal
//!   without reading its records or its seal's table, so a reopen costs a few small reads
//!   per segment and the active segment's records; a close seals the active segment too
//!   ([`WalOptions::seal_on_close`]), so a reopen after a clean close replays one record.
//!   A sealed segment's records and seal are verified once, before its first entry is
//!   read, or all at once by [`WalStorage::verify`] / [`WalOptions::verify_on_open`].
//! - **Reads** go through a read-only `mmap` of each segment and an in-memory index:
//!   entries of sealed segments are found through the seal's table, read in place in the
//!   map (no memory per entry); every other live entry has one `u64`
//!   (`segment seq << 32 | offset`), i.e. **8 bytes per entry** (a `VecDeque<u64>`, plus
//!   its spare capacity), plus ~100 bytes per segment. The entries written most recently
//!   by this instance are also kept as written, up to [`WalOptions::recent_bytes`] of
//!   their encoded size (4 MiB by default), so reads of the log's tail clone them instead
//!   of decoding them.
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
//! - **On the crash filesystem** (the suite's power and fault cases, 20 cuts each):
//!   `Immediate` lost no acknowledged batch (580 and 573 batches, default and 256 KiB
//!   segments);
//!   `Buffered` opened after every cut with a prefix of whole batches (465 of 547 lost,
//!   as it may). Every failed call of a batch gave `Err` or a completed short write.
//! - All file mutations go through the [`WalIo`] seam; `FaultIo` (feature
//!   `fault-injection`, test tooling, not for production) injects failures, torn writes
//!   and power loss, and `format` exposes the byte layout to tests that forge files.
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

#[cfg(feature = "fault-injection")]
mod fault;
#[cfg(feature = "fault-injection")]
pub mod format;
// Without the test tooling the layout is internal; its helpers for forging files are
// then unused.
#[cfg(not(feature = "fault-injection"))]
#[allow(unreachable_pub, dead_code)]
mod format;
mod index;
mod io;
mod lockfile;
mod options;
mod reader;
mod recent;
mod record;
mod recovery;
mod rotation;
mod segment;
mod stats;
mod writer;

use std::collections::VecDeque;
use std::fs::File;
use std::marker::PhantomData;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use paxstore::{
    Ballot, Durability, LogBounds, StopSign, Storage, StorageError, StorageOp, StorageResult,
};

#[cfg(feature = "fault-injection")]
#[cfg_attr(docsrs, doc(cfg(feature = "fault-injection")))]
pub use fault::{Fault, FaultIo, WriteEvent};
pub use format::{MAX_SEGMENT_BYTES, MIN_SEGMENT_BYTES};
pub use io::{StdIo, WalIo};
pub use lockfile::LOCK_FILE;
pub use options::WalOptions;
pub use stats::WalStats;

use crate::codec::{decode, PersistentEntry};
use format::seal_record_bytes;
use index::Index;
use lockfile::lock_dir;
use segment::{io_err, Segment, FIRST_RECORD};
use stats::{Counters, CountingIo};

/// The index location of byte `offset` of segment `seq`.
fn location(seq: u64, offset: usize) -> u64 {
    (seq << 32) | offset as u64
}

impl<T: PersistentEntry> Drop for WalStorage<T> {
    fn drop(&mut self) {
        if !self.closed && !std::thread::panicking() {
            // Best effort: a failure leaves a log that reopens by replaying its records.
            let _ = self.seal_for_close();
        }
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

/// paxstore's memory-mapped write-ahead log. See the [module docs](self).
#[derive(Debug)]
pub struct WalStorage<T: PersistentEntry> {
    dir: PathBuf,
    options: WalOptions,
    io: Arc<dyn WalIo>,
    /// `io`, counting what goes through it.
    counted: Arc<CountingIo>,
    /// What the WAL counts itself (records, segments, seals) for [`WalStorage::stats`].
    counters: Counters,
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
    /// The most recently written entries, for reads of the tail.
    recent: recent::Recent<T>,
    /// Scratch: the encoded sizes of the entries the last batch appended.
    appended_sizes: Vec<u32>,
    /// Scratch: the record being built, the checkpoint being built, entry offsets in it,
    /// and the ranges of encoded stop signs / snapshots in it.
    buf: Vec<u8>,
    checkpoint: Vec<u8>,
    entry_offsets: Vec<u32>,
    meta_ranges: Vec<(usize, usize)>,
    /// Set when a rollover failed once its seal may have been written: the next write rolls
    /// over again (rewriting the same seal and checkpoint), so no record ever follows a
    /// seal that a leftover checkpoint in the spare may name. Also set at open when the
    /// active segment has an older format version, so no record is added to it.
    roll_on_next_write: bool,
    /// Set when a sync failed: what is durable is unknown until a reopen.
    poisoned: Option<StorageError>,
    /// Trimmed segments not yet deleted or recycled (a previous attempt failed).
    reclaim_pending: bool,
    /// Set by [`WalStorage::close`], so drop does not close again.
    closed: bool,
    /// With `Buffered`: the live segments from this sequence number on may hold records
    /// not yet synced; `flush` syncs them. 0 at open (an earlier process may have left
    /// unsynced pages).
    unflushed_from: u64,
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
            // Refuse a foreign directory before anything in it changes (the lock file, the
            // leftover `.tmp` files recovery deletes).
            Ok(_) => {
                recovery::list(&dir)?;
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                io.create_dir_all(&dir).map_err(|e| io_err("creating directory", &dir, e))?;
                if let Some(parent) = dir.parent().filter(|p| !p.as_os_str().is_empty()) {
                    io.sync_dir(parent).map_err(|e| io_err("syncing directory", parent, e))?;
                }
            }
            Err(e) => return Err(io_err("inspecting", &dir, e)),
        }
        let lock = lock_dir(&dir)?;
        // A `Buffered` log accepts the loss of an unsynced tail that reached the disk out of
        // order (FORMAT.md, "Recovery").
        let buffered = options.durability == Durability::Buffered;
        let recovered = recovery::recover(&dir, &*io, buffered)?;
        let mut wal = WalStorage {
            dir,
            options,
            io,
            counted,
            counters: Counters::default(),
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
            recent: recent::Recent::new(0, options.recent_bytes),
            appended_sizes: Vec::new(),
            buf: Vec::new(),
            checkpoint: Vec::new(),
            entry_offsets: Vec::new(),
            meta_ranges: Vec::new(),
            roll_on_next_write: false,
            poisoned: None,
            reclaim_pending: true,
            unflushed_from: 0,
            closed: false,
            _entries: PhantomData,
        };
        match recovered {
            Some(r) => {
                wal.segments = r.segments;
                wal.spare = r.spare;
                wal.tail = r.tail;
                wal.next_lsn = r.next_lsn;
                wal.next_seq = r.next_seq;
                wal.roll_on_next_write = r.older_active;
                wal.meta = r.state.meta;
                wal.index = r.state.index;
                let seq = wal.active().seq;
                wal.active_entries = wal.index.last_in_segment(seq).count();
                wal.sealing = wal.options.durability == Durability::Immediate
                    && wal.tail + seal_record_bytes(wal.active_entries) <= wal.active().len();
            }
            None => wal.start_first_segment()?,
        }
        wal.recent = recent::Recent::new(wal.bounds().log_end, wal.options.recent_bytes);
        if options.verify_on_open {
            if let Err(e) = wal.verify() {
                // A refused open changes nothing: no seal at close either.
                wal.closed = true;
                return Err(e);
            }
        }
        Ok(wal)
    }

    /// Closes the WAL, reporting what drop would ignore: with `Immediate` and
    /// [`WalOptions::seal_on_close`], when the active segment's records take at least an
    /// eighth of it, it is sealed and a new segment started with a checkpoint, so the next
    /// `open` replays one record instead of the active segment's (FORMAT.md, "Seals").
    /// Dropping the WAL does the same, best effort (not while a panic unwinds). Nothing
    /// acknowledged depends on it: a close that fails or never runs (a crash) only leaves
    /// the next `open` more records to replay.
    pub fn close(mut self) -> StorageResult<()> {
        self.closed = true;
        self.seal_for_close()
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

    /// What this instance did to the disk since it was opened: syncs, bytes written,
    /// records, segments created and recycled, seals (counted by the WAL itself, so bytes
    /// and syncs per operation can be read without `/proc`).
    pub fn stats(&self) -> WalStats {
        self.counted.stats(self.counters)
    }

    /// `Some(reason)` if an earlier sync failure poisoned this instance.
    pub fn poisoned(&self) -> Option<&StorageError> {
        self.poisoned.as_ref()
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
}

impl<T: PersistentEntry> Storage<T> for WalStorage<T> {
    fn write_atomically(&mut self, ops: Vec<StorageOp<T>>) -> StorageResult<()> {
        self.commit(ops)
    }

    /// With `Buffered`, fdatasyncs every live segment written since the last `flush` (the
    /// active one, and any that a rollover left behind unsynced); with `Immediate` every
    /// record is synced already. A failed sync poisons the instance, as in a write.
    fn flush(&mut self) -> StorageResult<()> {
        if let Some(poisoned) = &self.poisoned {
            return Err(StorageError::poisoned_by(poisoned));
        }
        if self.options.durability == Durability::Immediate {
            return Ok(());
        }
        for seg in self.segments.iter().filter(|s| s.seq >= self.unflushed_from) {
            if let Err(e) = self.io.sync_data(&seg.file) {
                let err = io_err("syncing", &seg.path, e);
                self.poisoned = Some(StorageError::poisoned_by(&err));
                return Err(err);
            }
        }
        self.unflushed_from = self.active().seq;
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
