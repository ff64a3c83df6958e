//! One segment file: its handle, its read-only memory map, and how segments are made
//! (created zero-filled, or recycled from a trimmed one).

use std::fs::File;
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};

use memmap2::Mmap;
use paxstore::{StorageError, StorageResult};
use rustix::fs::{seek, SeekFrom};
use rustix::io::Errno;

use super::format::{
    read_record, segment_file_name, segment_header, Found, RECORD_CHECKPOINT, RECORD_SEAL,
    SEGMENT_HEADER_BYTES,
};
use super::io::WalIo;

/// Zeros are written in chunks of at most this size.
const ZERO_CHUNK: usize = 1 << 20;

/// A segment file, open for writing (through the seam) and mapped for reading.
#[derive(Debug)]
pub(crate) struct Segment {
    pub(crate) seq: u64,
    pub(crate) path: PathBuf,
    pub(crate) file: File,
    /// Shared with the index's runs, which read sealed segments' seal tables in place.
    map: Arc<Mmap>,
    /// Bytes before this offset are allocated and written (zeros or records), so a synced
    /// write below it needs no journal commit. Only tracked for the segment being written.
    pub(crate) zeroed_to: usize,
    /// Set for a segment recovery took from its seal without reading its records: they
    /// are verified before the first entry is read from it ([`Segment::check_sealed`]).
    pub(crate) sealed: Option<Box<Sealed>>,
    /// The data regions from offset 0 ([`Segment::data_ranges`]), found the first time
    /// [`Segment::readable`] is asked: by recovery, before anything is written to it.
    written: OnceLock<Vec<Range<usize>>>,
}

/// What recovery learned of a sealed segment, and whether its records were verified.
#[derive(Debug)]
pub(crate) struct Sealed {
    /// The LSN of its checkpoint (its first record).
    pub(crate) first_lsn: u64,
    /// The offset and LSN of its seal record.
    pub(crate) seal_at: usize,
    pub(crate) seal_lsn: u64,
    /// The outcome of the one verification, once run: `Err((offset, what is wrong))`.
    pub(crate) verified: OnceLock<Result<(), (usize, String)>>,
}

/// An I/O error while doing `what` to `path`.
pub(crate) fn io_err(what: &str, path: &Path, source: std::io::Error) -> StorageError {
    StorageError::io(format!("{what} {}", path.display()), source)
}

impl Segment {
    /// Maps the `len` bytes of `file` (its length, which is final: segments never shrink or
    /// grow once mapped).
    pub(crate) fn map(seq: u64, path: PathBuf, file: File, len: usize) -> StorageResult<Segment> {
        // SAFETY: memmap2 requires that the mapped file is not truncated or changed
        // behind a live `&[u8]` of the map. (1) Other processes: the WAL directory is held
        // under an exclusive lock (`wal.lock`) for the life of the `WalStorage`, and
        // paxstore never truncates a segment file. (2) This process: bytes of a segment
        // are only changed through the seam by `&mut self` methods of `WalStorage` (or
        // during recovery, before any read), and every slice of the map is taken inside a
        // `&self` or `&mut self` call and dropped before it returns, so no slice is alive
        // while the bytes it covers are written; writes only touch bytes past the last
        // record or bytes no index entry points to. The index's runs hold clones of the
        // map of a sealed segment and read its seal table the same way, inside calls; a
        // sealed segment is never written while a run points into it (it is only
        // recycled or deleted once no live entry is in it, and its run is gone by then).
        let map = unsafe { memmap2::MmapOptions::new().len(len).map(&file) }
            .map_err(|e| io_err("mapping", &path, e))?;
        Ok(Segment {
            seq,
            path,
            file,
            map: Arc::new(map),
            zeroed_to: 0,
            sealed: None,
            written: OnceLock::new(),
        })
    }

    /// For a segment recovery took from its seal: verifies its records once (every record
    /// whole, CRC-valid, LSNs consecutive from the checkpoint up to the seal) and returns
    /// the outcome of that one verification ever after. `Ok` for any other segment.
    pub(crate) fn check_sealed(&self) -> StorageResult<()> {
        let Some(sealed) = &self.sealed else { return Ok(()) };
        let outcome = sealed.verified.get_or_init(|| verify_records(self.bytes(), sealed));
        match outcome {
            Ok(()) => Ok(()),
            Err((offset, detail)) => Err(StorageError::Corruption {
                location: format!("segment {} offset {offset}", self.name()),
                detail: format!("sealed segment fails verification: {detail}"),
            }),
        }
    }

    /// The map, shared (for the index's runs).
    pub(crate) fn shared_map(&self) -> Arc<Mmap> {
        Arc::clone(&self.map)
    }

    /// The whole segment, as mapped.
    pub(crate) fn bytes(&self) -> &[u8] {
        &self.map
    }

    /// The segment's bytes up to the end of the data region holding `at` (up to `at` if
    /// `at` is in a hole): what recovery may read there. A read of a hole through the map
    /// would fault in a page; on a full tmpfs that fault is a SIGBUS (FORMAT.md, "What an
    /// mmap reader cannot defend against").
    pub(crate) fn readable(&self, at: usize) -> &[u8] {
        let ranges = self.written.get_or_init(|| self.data_ranges(0));
        let end = ranges.iter().find(|r| r.contains(&at)).map_or(at.min(self.len()), |r| r.end);
        &self.bytes()[..end]
    }

    /// The segment's length in bytes.
    pub(crate) fn len(&self) -> usize {
        self.map.len()
    }

    /// The byte ranges at or after `from` that may hold anything but zeros: the file's data
    /// regions (`SEEK_DATA`/`SEEK_HOLE`), so scans skip the never-written holes of a
    /// segment created at full size. Where the filesystem cannot tell, the whole rest.
    pub(crate) fn data_ranges(&self, from: usize) -> Vec<Range<usize>> {
        let len = self.len() as u64;
        let mut out = Vec::new();
        let mut at = from as u64;
        while at < len {
            let data = match seek(&self.file, SeekFrom::Data(at)) {
                Ok(d) => d,
                Err(e) if e == Errno::NXIO => break,
                Err(_) => at,
            };
            if data >= len {
                break;
            }
            let hole = seek(&self.file, SeekFrom::Hole(data)).map_or(len, |h| h.min(len));
            if hole <= data {
                out.push(data as usize..len as usize);
                break;
            }
            out.push(data as usize..hole as usize);
            at = hole;
        }
        out
    }

    /// The file name, for error messages.
    pub(crate) fn name(&self) -> String {
        segment_file_name(self.seq)
    }
}

/// Walks the records of a sealed segment from its checkpoint to its seal.
fn verify_records(bytes: &[u8], sealed: &Sealed) -> Result<(), (usize, String)> {
    let mut pos = FIRST_RECORD;
    let mut expected = sealed.first_lsn;
    loop {
        match read_record(bytes, pos, Some(expected)) {
            Found::Record { record_type, next, .. } => {
                if (pos == FIRST_RECORD) != (record_type == RECORD_CHECKPOINT) {
                    return Err((pos, "checkpoint records are exactly the first record".into()));
                }
                if pos == sealed.seal_at {
                    return if record_type == RECORD_SEAL && expected == sealed.seal_lsn {
                        Ok(())
                    } else {
                        Err((pos, format!("no seal with LSN {} here", sealed.seal_lsn)))
                    };
                }
                if pos > sealed.seal_at {
                    return Err((pos, "records run past the seal's offset".into()));
                }
                pos = next;
                expected += 1;
            }
            Found::Invalid { why, .. } => return Err((pos, why.to_owned())),
            Found::Ahead(lsn) => {
                return Err((pos, format!("LSN {lsn} where {expected} was expected")))
            }
            Found::End | Found::Stale => {
                return Err((pos, format!("records end before the seal at {}", sealed.seal_at)))
            }
        }
    }
}

/// The name a segment has while it is being made; recovery deletes such files.
pub(crate) fn tmp_path(dir: &Path, seq: u64) -> PathBuf {
    dir.join(format!("{}.tmp", segment_file_name(seq)))
}

/// Creates segment `seq` of `size` bytes at its final length (sparse; the WAL writes
/// zeros ahead of the tail later, see [`Segment::zeroed_to`]), headed, synced, renamed
/// into place, directory synced.
pub(crate) fn create(io: &dyn WalIo, dir: &Path, seq: u64, size: u64) -> StorageResult<Segment> {
    let tmp = tmp_path(dir, seq);
    let made = (|| {
        let file = io.create_new(&tmp).map_err(|e| io_err("creating", &tmp, e))?;
        io.set_len(&file, size).map_err(|e| io_err("sizing", &tmp, e))?;
        io.write_at(&file, 0, &segment_header(seq, size))
            .map_err(|e| io_err("writing header of", &tmp, e))?;
        io.sync_data(&file).map_err(|e| io_err("syncing", &tmp, e))?;
        Ok::<File, StorageError>(file)
    })();
    let file = match made {
        Ok(file) => file,
        Err(err) => {
            // Best effort: recovery deletes leftover `.tmp` files anyway.
            let _ = io.remove_file(&tmp);
            return Err(err);
        }
    };
    install(io, dir, seq, &tmp, (file, size as usize), SEGMENT_HEADER_BYTES)
}

/// Writes zeros over `[seg.zeroed_to, to)` (clamped to the segment), unsynced: the next
/// record's `fdatasync` makes them durable together with it.
pub(crate) fn zero_fill(io: &dyn WalIo, seg: &mut Segment, to: usize) -> StorageResult<()> {
    let to = to.min(seg.len());
    if seg.zeroed_to >= to {
        return Ok(());
    }
    let zeros = vec![0u8; ZERO_CHUNK];
    let mut at = seg.zeroed_to;
    while at < to {
        let n = (to - at).min(ZERO_CHUNK);
        io.write_at(&seg.file, at as u64, &zeros[..n])
            .map_err(|e| io_err("zero-filling", &seg.path, e))?;
        at += n;
        seg.zeroed_to = at;
    }
    Ok(())
}

/// Renames a fully written and synced `tmp` into place as segment `seq` and maps it.
fn install(
    io: &dyn WalIo,
    dir: &Path,
    seq: u64,
    tmp: &Path,
    (file, len): (File, usize),
    zeroed_to: usize,
) -> StorageResult<Segment> {
    let path = dir.join(segment_file_name(seq));
    if let Err(e) = io.rename(tmp, &path) {
        let _ = io.remove_file(tmp);
        return Err(io_err("renaming", tmp, e));
    }
    io.sync_dir(dir).map_err(|e| io_err("syncing directory", dir, e))?;
    let mut seg = Segment::map(seq, path, file, len)?;
    seg.zeroed_to = zeroed_to;
    Ok(seg)
}

/// Turns `old` (a segment no live entry points to) into segment `seq`, keeping its
/// allocated, written blocks. The old records stay in the body. Where the new records
/// end, the old bytes are an old record (its LSN is below every new record's: the end of
/// the records) or the middle of one (an invalid record, which recovery tells from
/// corruption by the next segment's checkpoint, or as a torn tail in the tail segment;
/// FORMAT.md, "Recovery").
/// On failure (the caller retries later) the segment is either back under its old name
/// (returned) or gone (a leftover `.tmp` that recovery deletes).
pub(crate) fn recycle(
    io: &dyn WalIo,
    dir: &Path,
    old: Segment,
    seq: u64,
) -> Result<Segment, Option<Segment>> {
    let tmp = tmp_path(dir, seq);
    if io.rename(&old.path, &tmp).is_err() {
        return Err(Some(old));
    }
    let Segment { file, map, .. } = old;
    let len = map.len();
    let redone = (|| {
        // The old name must be gone for good before the header says it is another segment.
        io.sync_dir(dir).map_err(|e| io_err("syncing directory", dir, e))?;
        io.write_at(&file, 0, &segment_header(seq, len as u64))
            .map_err(|e| io_err("writing header of", &tmp, e))?;
        io.sync_data(&file).map_err(|e| io_err("syncing", &tmp, e))
    })();
    if redone.is_err() {
        let _ = io.remove_file(&tmp);
        return Err(None);
    }
    drop(map);
    // A recycled segment's blocks are all allocated and written already.
    install(io, dir, seq, &tmp, (file, len), len).map_err(|_| None)
}

/// The offset of the first record of every segment.
pub(crate) const FIRST_RECORD: usize = SEGMENT_HEADER_BYTES;
