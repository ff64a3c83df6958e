//! The raft-engine backend (feature `raft-engine`, TiKV's raft-engine 0.4): the log as
//! the entries of **one Raft group** (id 1) of one raft-engine instance per directory,
//! and the metadata as that group's key-values. The log logic is [`KvStorage`]'s; this
//! file says how raft-engine opens, reads and commits, and how the log's operations map
//! onto an engine that is not a sorted key-value store.
//!
//! # Mapping
//!
//! | the log | raft-engine |
//! |---|---|
//! | entry at index `i` | an entry of group 1 at index `i`: a protobuf `BytesValue` holding `i` (8 bytes, big-endian) then the codec's bytes; `LogBatch::add_entries` |
//! | metadata [`MetaKey`] | the group's key [`MetaKey::name`]: `LogBatch::put` / `LogBatch::delete` |
//! | `Trim`, `SetCompactedIdx` | `Command::Compact { index: compacted_idx }` (drops every entry below it) |
//! | `AppendOnPrefix` (truncation) | nothing of its own: raft-engine drops every entry at and after the index the next append starts at; until then the entries past `log_end` stay stored but are never read (the bounds end the log) |
//!
//! An append that would leave a gap after raft-engine's last entry (the log emptied by
//! a truncation, then moved past its end by `SetCompactedIdx`) first compacts every
//! stored entry away, so raft-engine never sees a gap or an overwrite below its first
//! entry (both are panics in raft-engine's memtable, after the write is on disk).
//!
//! # Atomicity
//!
//! A batch is **one** `LogBatch` written with one `Engine::write`: raft-engine writes it
//! to its append log as one record with a checksum, and recovery (the mode chosen here is
//! raft-engine's default, `RecoveryMode::TolerateTailCorruption`) drops a torn last
//! record whole and refuses corruption anywhere else.
//!
//! # Durability
//!
//! | mode | engine call | guarantee |
//! |---|---|---|
//! | [`Durability::Immediate`] | `Engine::write(batch, true)` | raft-engine `fdatasync`s the active log file before `write` returns |
//! | [`Durability::Buffered`] | **the same** `Engine::write(batch, true)` | survives power loss, so also a process crash |
//!
//! raft-engine's docs (`Engine::write`): "If `sync` is true, the write will be followed
//! by a call to `fdatasync` on the log file." Measured with the `commit_syscalls` example
//! under `strace -f -c`: 100 one-entry `Immediate` batches make 100 `fdatasync`s and
//! 100 `pwrite64`s (with `write(batch, false)`, 100 `pwrite64`s and no sync).
//!
//! `Buffered` does not use `write(batch, false)`: after a power cut that wrote back the
//! unsynced pages torn or in any order, a store written that way reopened in a state
//! that was no prefix of its acknowledged batches (a log of 168 entries where every
//! prefix had 7 or fewer at that point; found by the suite's
//! `power_loss_keeps_acknowledged_batches`, 1 run in 20 cuts). The contract requires a
//! whole-batch prefix after power loss in both modes, so `Buffered` costs the same as
//! `Immediate` on this backend, as on redb and fjall.
//!
//! [`flush`](paxstore::Storage::flush) writes one small synced record (the key
//! `paxstore-flush`): raft-engine 0.4's own `Engine::sync` writes an empty batch, which
//! `Engine::write` returns from before it syncs anything.
//!
//! raft-engine **panics** when an `fdatasync` of its log fails (it cannot tell what
//! reached the disk). The panic is caught here and returned as
//! [`StorageError::Backend`]; the store is then poisoned until reopened, as after any
//! failed commit. Under power loss and failed writes: see
//! [the crate docs](crate#under-power-loss-and-failed-writes).
//!
//! # Reads
//!
//! raft-engine 0.4 caches the last block of entries it read in a **thread-local** cache
//! keyed by file number, offset and length only, not by instance: a thread that reads
//! from two instances (two stores, or a store reopened after its files changed) can be
//! served the other instance's bytes (found by the suite's
//! `random_ops_with_reopen_match_model`: `Protobuf Error: unexpected EOF`;
//! `tests/raft_engine.rs` shows it on two bare engines). So each store reads its files,
//! and purges them (purging reads too), on a thread of its own: one channel round trip
//! per `get_entries`.
//!
//! # Space
//!
//! Compacted entries leave raft-engine's files only when a file holds nothing live:
//! after a commit that compacted, `Engine::purge_expired_files` deletes such files and,
//! above `purge_threshold` (256 MiB here; log files are 64 MiB), rewrites what is still
//! live out of the oldest files.
//!
//! # Opening
//!
//! See [`crate::kv`] for the sequence. raft-engine, recovering with
//! `TolerateTailCorruption`, truncates a log file it cannot parse (measured: it rewrote
//! a garbage `*.raftlog` file). So a store is recognised, **before** raft-engine opens
//! anything, by paxstore's marker file `paxstore-raft-engine` (`paxstore-raft-engine/1\n`,
//! synced before raft-engine creates its files) beside them; without it the directory is
//! [`StorageError::Unrecognized`] and untouched. A directory raft-engine cannot recover
//! is [`StorageError::Engine`]; a store
//! another handle holds is [`StorageError::Locked`] (raft-engine's own lock refuses at
//! once, with an error that has no lock kind, so its `LOCK` file is tried here first).
//!
//! [`Durability::Immediate`]: paxstore::Durability::Immediate
//! [`Durability::Buffered`]: paxstore::Durability::Buffered

use std::fs::File;
use std::panic::{self, AssertUnwindSafe};
use std::path::Path;
use std::sync::{mpsc, Arc};
use std::thread;
use std::time::Duration;

use paxstore::{StorageError, StorageResult};
use protobuf::well_known_types::BytesValue;
use raft_engine::{Command, Config, Engine, LogBatch, MessageExt, ReadableSize, RecoveryMode};

use crate::codec;
use crate::kv::{self, DirState, EntryVisitor, KvBatch, KvEngine, KvOp, KvStorage, MetaKey};

/// A [`paxstore::Storage`] in a raft-engine instance. See the [module docs](self) for
/// the mapping and the durability each mode gives.
pub type RaftEngineStorage<T> = KvStorage<RaftEngineEngine, T>;

/// The one Raft group a store keeps its log in.
const GROUP: u64 = 1;
/// The key [`KvEngine::flush`] writes a synced record under.
const FLUSH_KEY: &[u8] = b"paxstore-flush";
/// raft-engine's files: the lock, and the suffix of its append and rewrite logs.
const LOCK_FILE: &str = "LOCK";
const LOG_SUFFIXES: [&str; 3] = [".raftlog", ".rewrite", ".reserved"];
/// paxstore's marker file, written and synced before raft-engine creates anything.
const MARKER_FILE: &str = "paxstore-raft-engine";
const MARKER_CONTENT: &[u8] = b"paxstore-raft-engine/1\n";

/// Stores an entry as a protobuf `BytesValue`: its index (big-endian `u64`), then the
/// codec's bytes. raft-engine reads the index back through [`MessageExt::index`].
struct IndexedEntry;

impl MessageExt for IndexedEntry {
    type Entry = BytesValue;

    fn index(entry: &BytesValue) -> u64 {
        // Every stored value starts with its 8-byte index (`entry_value`); a shorter one
        // cannot be written, and 0 then fails the index check of `scan_entries`.
        entry.value.get(..8).and_then(|b| b.try_into().ok()).map_or(0, u64::from_be_bytes)
    }
}

fn entry_value(idx: u64, bytes: &[u8]) -> BytesValue {
    let mut value = Vec::with_capacity(8 + bytes.len());
    value.extend_from_slice(&idx.to_be_bytes());
    value.extend_from_slice(bytes);
    BytesValue { value, ..BytesValue::default() }
}

/// A job for the [`Reader`] thread, run with the instance's engine.
type Job = Box<dyn FnOnce(&Engine) + Send>;

/// The thread that reads this instance's log files (see *Reads* in the module docs).
struct Reader {
    jobs: Option<mpsc::Sender<Job>>,
    thread: Option<thread::JoinHandle<()>>,
}

impl Drop for Reader {
    fn drop(&mut self) {
        self.jobs.take();
        if let Some(thread) = self.thread.take() {
            // Each job catches its own panic, so the thread ends normally.
            let _ = thread.join();
        }
    }
}

/// The raft-engine instance under a [`RaftEngineStorage`], and the log's bounds as the
/// last commit left them (entries past `log_end` may still be stored: see the mapping).
pub struct RaftEngineEngine {
    engine: Arc<Engine>,
    reader: Reader,
    compacted: u64,
    log_end: u64,
}

fn engine_error(context: &str, err: raft_engine::Error) -> StorageError {
    match err {
        raft_engine::Error::Io(source) => StorageError::io(context, source),
        other => StorageError::engine(RaftEngineEngine::NAME, context, other),
    }
}

/// Runs `call`, returning a panic of raft-engine as [`StorageError::Backend`].
fn catch_panic<R>(what: &str, call: impl FnOnce() -> R) -> StorageResult<R> {
    panic::catch_unwind(AssertUnwindSafe(call)).map_err(|_| StorageError::Backend {
        backend: RaftEngineEngine::NAME,
        detail: format!(
            "raft-engine panicked while {what} (a failed fdatasync or write of its log)"
        ),
    })
}

impl RaftEngineEngine {
    /// The index stored under metadata `key` (absent = 0).
    fn stored_index(engine: &Engine, key: MetaKey) -> StorageResult<u64> {
        match engine.get(GROUP, key.name().as_bytes()) {
            None => Ok(0),
            Some(bytes) => codec::u64_from_le("stored index", &bytes),
        }
    }

    /// raft-engine's first and last stored entry of the group.
    fn stored_span(&self) -> Option<(u64, u64)> {
        self.engine.first_index(GROUP).zip(self.engine.last_index(GROUP))
    }

    /// Runs `job` on this instance's reader thread and waits for its result.
    fn on_reader<R: Send + 'static>(
        &self,
        what: &str,
        job: impl FnOnce(&Engine) -> R + Send + 'static,
    ) -> StorageResult<R> {
        let gone = || StorageError::Backend {
            backend: Self::NAME,
            detail: format!("the reader thread is gone (while {what})"),
        };
        let (done, result) = mpsc::sync_channel(1);
        let job: Job = Box::new(move |engine| {
            let _ = done.send(panic::catch_unwind(AssertUnwindSafe(|| job(engine))));
        });
        self.reader.jobs.as_ref().ok_or_else(gone)?.send(job).map_err(|_| gone())?;
        result.recv().map_err(|_| gone())?.map_err(|_| StorageError::Backend {
            backend: Self::NAME,
            detail: format!("raft-engine panicked while {what}"),
        })
    }

    fn write(&mut self, batch: &mut LogBatch, sync: bool) -> StorageResult<()> {
        let written = catch_panic("writing a batch", || self.engine.write(batch, sync))?;
        written.map(drop).map_err(|e| engine_error("writing a batch", e))
    }
}

/// The new value of `key` if `batch` writes it.
fn written_index(batch: &KvBatch, key: MetaKey) -> StorageResult<Option<u64>> {
    let value = batch.ops().iter().rev().find_map(|op| match op {
        KvOp::PutMeta { key: k, value } if *k == key => Some(value),
        _ => None,
    });
    value.map(|v| codec::u64_from_le("stored index", v)).transpose()
}

impl KvEngine for RaftEngineEngine {
    const NAME: &'static str = "raft-engine";

    fn inspect(path: &Path) -> StorageResult<DirState> {
        let Some(names) = kv::store_dir_names(path, Self::NAME)? else {
            return Ok(DirState::Fresh);
        };
        if !names.iter().any(|n| n == MARKER_FILE) {
            let missing = format!("the {MARKER_FILE} marker file");
            return Err(kv::foreign_dir(path, Self::NAME, &missing, names));
        }
        kv::check_marker_file(path, Self::NAME, MARKER_FILE, MARKER_CONTENT)?;
        let is_log = |n: &String| LOG_SUFFIXES.iter().any(|s| n.ends_with(s));
        // Without a log file: a creation that crashed before raft-engine wrote one.
        Ok(if names.iter().any(is_log) { DirState::Existing } else { DirState::Fresh })
    }

    fn open(path: &Path, state: DirState) -> StorageResult<Self> {
        let dir = path.to_str().ok_or_else(|| StorageError::InvalidConfig {
            backend: Self::NAME,
            detail: format!("raft-engine takes a UTF-8 directory path, not {}", path.display()),
        })?;
        if state == DirState::Fresh {
            kv::write_marker_file(path, MARKER_FILE, MARKER_CONTENT)?;
        }
        let lock = path.join(LOCK_FILE);
        if let Ok(file) = File::open(&lock) {
            let locked = crate::lock::lock_within(file, Duration::ZERO)
                .map_err(|e| StorageError::io(format!("locking {}", lock.display()), e))?;
            if locked.is_none() {
                return Err(StorageError::Locked { path: path.to_owned(), backend: Self::NAME });
            }
        }
        let config = Config {
            dir: dir.to_owned(),
            recovery_mode: RecoveryMode::TolerateTailCorruption,
            target_file_size: ReadableSize::mb(64),
            purge_threshold: ReadableSize::mb(256),
            ..Config::default()
        };
        let opened = catch_panic(&format!("opening {dir}"), || Engine::open(config))?;
        let engine = Arc::new(opened.map_err(|e| engine_error(&format!("opening {dir}"), e))?);
        let compacted = Self::stored_index(&engine, MetaKey::Compacted)?;
        let log_end = Self::stored_index(&engine, MetaKey::LogEnd)?;
        let (jobs, queue) = mpsc::channel::<Job>();
        let shared = Arc::clone(&engine);
        let thread = thread::Builder::new()
            .name("paxstore-raft-engine-reader".to_owned())
            .spawn(move || queue.into_iter().for_each(|job| job(&shared)))
            .map_err(|e| StorageError::io("starting the raft-engine reader thread", e))?;
        let reader = Reader { jobs: Some(jobs), thread: Some(thread) };
        Ok(RaftEngineEngine { engine, reader, compacted, log_end })
    }

    fn get_meta(&self, key: MetaKey) -> StorageResult<Option<Vec<u8>>> {
        Ok(self.engine.get(GROUP, key.name().as_bytes()))
    }

    /// raft-engine's first entry, and its last one below `log_end` (a truncated tail is
    /// still stored until the next append replaces it).
    fn entry_span(&self) -> StorageResult<Option<(u64, u64)>> {
        Ok(self.stored_span().and_then(|(first, last)| {
            let last = last.min(self.log_end.checked_sub(1)?);
            (first <= last).then_some((first, last))
        }))
    }

    fn scan_entries(&self, from: u64, to: u64, visit: EntryVisitor<'_>) -> StorageResult<()> {
        let what = format!("reading entries [{from}, {to})");
        let entries = self.on_reader(&what, move |engine| {
            let mut entries = Vec::new();
            engine.fetch_entries_to::<IndexedEntry>(GROUP, from, to, None, &mut entries)?;
            Ok::<_, raft_engine::Error>(entries)
        })?;
        let entries = entries.map_err(|e| engine_error(&what, e))?;
        for entry in &entries {
            visit(IndexedEntry::index(entry), entry.value.get(8..).unwrap_or_default())?;
        }
        Ok(())
    }

    fn commit(&mut self, batch: &KvBatch, _sync: bool) -> StorageResult<()> {
        let mut write = LogBatch::default();
        // raft-engine's entries as this batch leaves them, to keep its appends contiguous.
        let mut span = self.stored_span();
        let ops = batch.ops();
        let mut i = 0;
        while i < ops.len() {
            match &ops[i] {
                KvOp::PutEntry { idx: start, .. } => {
                    let mut run = Vec::new();
                    while let Some(KvOp::PutEntry { idx, value }) = ops.get(i) {
                        if *idx != start + run.len() as u64 {
                            break;
                        }
                        run.push(entry_value(*idx, value));
                        i += 1;
                    }
                    let first = match span {
                        Some((first, last)) if *start <= last + 1 => {
                            if *start < first {
                                return Err(StorageError::Backend {
                                    backend: Self::NAME,
                                    detail: format!(
                                        "append at {start} below raft-engine's first entry {first}"
                                    ),
                                });
                            }
                            first
                        }
                        Some((_, _)) => {
                            write.add_command(GROUP, Command::Compact { index: *start });
                            *start
                        }
                        None => *start,
                    };
                    write
                        .add_entries::<IndexedEntry>(GROUP, &run)
                        .map_err(|e| engine_error("adding entries", e))?;
                    span = Some((first, start + run.len() as u64 - 1));
                    continue;
                }
                // The bounds written with the batch end the log; see the mapping.
                KvOp::DeleteEntries { .. } => {}
                KvOp::PutMeta { key, value } => write
                    .put(GROUP, key.name().as_bytes().to_vec(), value.clone())
                    .map_err(|e| engine_error(&format!("writing {key:?}"), e))?,
                KvOp::DeleteMeta(key) => write.delete(GROUP, key.name().as_bytes().to_vec()),
            }
            i += 1;
        }
        let compacted = written_index(batch, MetaKey::Compacted)?.unwrap_or(self.compacted);
        let log_end = written_index(batch, MetaKey::LogEnd)?.unwrap_or(self.log_end);
        let compacts = span.is_some_and(|(first, _)| compacted > first);
        if compacts {
            write.add_command(GROUP, Command::Compact { index: compacted });
        }
        // `Buffered` also syncs: see the module docs.
        self.write(&mut write, true)?;
        (self.compacted, self.log_end) = (compacted, log_end);
        if compacts {
            let purged = self.on_reader("purging log files", |e| e.purge_expired_files())?;
            purged.map_err(|e| engine_error("purging log files", e))?;
        }
        Ok(())
    }

    fn flush(&mut self) -> StorageResult<()> {
        let mut write = LogBatch::default();
        write
            .put(GROUP, FLUSH_KEY.to_vec(), Vec::new())
            .map_err(|e| engine_error("flushing", e))?;
        self.write(&mut write, true)
    }
}
