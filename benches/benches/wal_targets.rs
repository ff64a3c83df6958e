//! The mmap WAL against its targets (issues 4 and 14), side by side in one run with the
//! disk's raw ceiling, RocksDB (sync writes), redb (reopen) and the memory backend (reads),
//! 128-byte entries.
//!
//! ```text
//! CARGO_TARGET_DIR=$HOME/.cache/paxstore-target cargo bench -p paxstore-benches --bench wal_targets
//! ```
//!
//! Environment: `WAL_TARGETS_DIR` (directory on the disk under test, default `/var/tmp`),
//! `WAL_TARGETS_REPS` (repetitions per cell, default 3), `WAL_TARGETS_REOPEN_ENTRIES`
//! (default 1,000,000), `WAL_TARGETS_ONLY` (comma-separated groups: `ceiling`, `append`,
//! `wear`, `reopen`; default all). Each cell reports the median over the repetitions and the
//! spread (min-max). The timer covers only the storage calls: batches are built before.
//!
//! Entries are the report's [`BenchEntry`] (a 128-byte payload serialized as one byte
//! string), so these figures and the report's measure the same thing. The reopen cells
//! write a fresh log per repetition (`Immediate`, 1,000 entries per batch, as the report
//! does), close it, and time its first reopen and then a second one; a last row times a
//! log written with `Buffered`, which the WAL does not seal (FORMAT.md, "Seals").
//!
//! Issue 14's rows: the WAL's syncs per commit and bytes per sync at 100 entries per batch
//! (from `WalStorage::stats`), the bytes each engine sent to the device per payload byte
//! (`/proc/self/io`), reopen against redb and RocksDB, recent reads against the memory
//! backend, and the cost of the map's guards at open (one `SEEK_DATA`/`SEEK_HOLE` pass
//! per segment).
#![allow(missing_docs, clippy::unwrap_used, clippy::expect_used)]

use std::fs::OpenOptions;
use std::os::unix::fs::FileExt;
use std::os::unix::io::AsRawFd;
use std::path::Path;
use std::time::{Duration, Instant};

use paxstore::{Durability, Storage, StorageOp};
use paxstore_backends::wal::WalStorage;
use paxstore_backends::BackendKind;
use paxstore_benches::BenchEntry;

const ENTRY: usize = 128;

type Store = Box<dyn Storage<BenchEntry>>;

fn make(i: u64) -> BenchEntry {
    BenchEntry::new(i, ENTRY)
}

fn env_usize(name: &str, default: usize) -> usize {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

#[derive(Clone, Copy, PartialEq)]
enum Engine {
    Wal,
    Rocks,
    Redb,
    Memory,
}

impl Engine {
    fn name(self) -> &'static str {
        match self {
            Engine::Wal => "wal",
            Engine::Rocks => "rocksdb",
            Engine::Redb => "redb",
            Engine::Memory => "memory",
        }
    }

    /// Whether this engine is compiled in (RocksDB and redb are features).
    fn built(self) -> bool {
        self.name().parse::<BackendKind>().is_ok()
    }

    fn open(self, dir: &Path, d: Durability) -> Store {
        let kind: BackendKind =
            self.name().parse().expect("cells of engines not built are skipped");
        kind.open(dir, d).unwrap()
    }
}

/// The bytes this process has sent to storage devices so far (`/proc/self/io`).
fn device_write_bytes() -> u64 {
    let io = std::fs::read_to_string("/proc/self/io").unwrap_or_default();
    io.lines()
        .find_map(|l| l.strip_prefix("write_bytes:"))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(0)
}

/// Whether cell group `name` runs: all of them unless `WAL_TARGETS_ONLY` lists some
/// (comma-separated: `ceiling`, `append`, `wear`, `reopen`; reads run with `reopen`).
fn wanted(name: &str) -> bool {
    match std::env::var("WAL_TARGETS_ONLY") {
        Ok(list) => list.split(',').any(|w| w.trim() == name),
        Err(_) => true,
    }
}

/// Median, min and max of a few repetitions.
#[derive(Clone, Copy)]
struct Stat {
    median: f64,
    min: f64,
    max: f64,
}

fn stat(mut v: Vec<f64>) -> Stat {
    if v.is_empty() {
        return Stat { median: f64::NAN, min: f64::NAN, max: f64::NAN };
    }
    v.sort_by(|a, b| a.total_cmp(b));
    Stat { median: v[v.len() / 2], min: v[0], max: v[v.len() - 1] }
}

/// [`show`] with `decimals` decimals.
fn show_f(label: &str, unit: &str, s: Stat, decimals: usize) {
    println!(
        "{label:<52} {:>12.decimals$} {unit:<10} (spread {:.decimals$}-{:.decimals$})",
        s.median, s.min, s.max
    );
}

fn show(label: &str, unit: &str, s: Stat) {
    println!(
        "{label:<52} {:>12.0} {unit:<10} (spread {:.0}-{:.0}, {:+.0}%/{:+.0}%)",
        s.median,
        s.min,
        s.max,
        (s.min / s.median - 1.0) * 100.0,
        (s.max / s.median - 1.0) * 100.0
    );
}

/// A file of `bytes` bytes, written with non-zero bytes and synced.
fn prewritten(dir: &Path, bytes: usize) -> std::fs::File {
    let f = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(true)
        .open(dir.join("ceiling.dat"))
        .unwrap();
    let chunk = vec![0xA5u8; 1 << 20];
    for at in (0..bytes).step_by(chunk.len()) {
        f.write_all_at(&chunk, at as u64).unwrap();
    }
    f.sync_all().unwrap();
    f
}

/// Raw ceiling: sequential 4 KiB pwrite + fdatasync over a pre-written file. Ops/s.
fn ceiling_pwrite(dir: &Path, ops: usize, size: usize) -> f64 {
    let f = prewritten(dir, 64 << 20);
    let buf = vec![0x5Au8; size];
    let start = Instant::now();
    for i in 0..ops {
        f.write_all_at(&buf, ((i * size) % (64 << 20)) as u64).unwrap();
        f.sync_data().unwrap();
    }
    ops as f64 / start.elapsed().as_secs_f64()
}

/// The same through a shared mapping: copy 4 KiB (or 128 B) into the map, msync(MS_SYNC)
/// the page(s) it touched. Ops/s.
fn ceiling_msync(dir: &Path, ops: usize, size: usize) -> f64 {
    let len = 64usize << 20;
    let f = prewritten(dir, len);
    // SAFETY: a fresh shared read-write mapping of a file this function created and keeps
    // open; nothing else maps or truncates it; it is unmapped before returning.
    let ptr = unsafe {
        libc::mmap(
            std::ptr::null_mut(),
            len,
            libc::PROT_READ | libc::PROT_WRITE,
            libc::MAP_SHARED,
            f.as_raw_fd(),
            0,
        )
    };
    assert_ne!(ptr, libc::MAP_FAILED);
    let base = ptr.cast::<u8>();
    let buf = vec![0x5Au8; size];
    let start = Instant::now();
    for i in 0..ops {
        let at = (i * size) % len;
        let page = at & !4095;
        let end = (at + size + 4095) & !4095;
        // SAFETY: `at + size <= len` (sizes divide 64 MiB), inside the live mapping;
        // `page..end` is page-aligned and inside it.
        unsafe {
            std::ptr::copy_nonoverlapping(buf.as_ptr(), base.add(at), size);
            assert_eq!(libc::msync(base.add(page).cast(), end - page, libc::MS_SYNC), 0);
        }
    }
    let rate = ops as f64 / start.elapsed().as_secs_f64();
    // SAFETY: unmapping exactly the mapping made above; no reference into it remains.
    unsafe { libc::munmap(ptr, len) };
    rate
}

fn batch(first: u64, n: usize) -> Vec<StorageOp<BenchEntry>> {
    if n == 1 {
        vec![StorageOp::AppendEntry(make(first))]
    } else {
        vec![StorageOp::AppendEntries((first..first + n as u64).map(make).collect())]
    }
}

/// `batches` batches of `per` entries; returns batches/s of storage time.
fn appends(store: &mut Store, batches: usize, per: usize) -> f64 {
    let mut spent = Duration::ZERO;
    let mut next = store.get_log_end().unwrap() as u64;
    for _ in 0..batches {
        let ops = batch(next, per);
        next += per as u64;
        let t = Instant::now();
        store.write_atomically(ops).unwrap();
        spent += t.elapsed();
    }
    batches as f64 / spent.as_secs_f64()
}

fn append_cell(
    root: &Path,
    engine: Engine,
    d: Durability,
    batches: usize,
    per: usize,
    reps: usize,
) -> Stat {
    // Engines not compiled in are skipped: their cells show as NaN.
    let reps = if engine.built() { reps } else { 0 };
    stat(
        (0..reps)
            .map(|_| {
                let dir = tempfile::tempdir_in(root).unwrap();
                let mut s = engine.open(&dir.path().join(engine.name()), d);
                appends(&mut s, 20, per); // warm up: first segment / memtable / WAL file
                appends(&mut s, batches, per) * per as f64
            })
            .collect(),
    )
}

/// Writes a log of `n` entries (1,000 per batch) with durability `d`, and closes it.
fn fill(dir: &Path, engine: Engine, n: usize, d: Durability) {
    let mut s = engine.open(dir, d);
    let per = 1000;
    for b in 0..n / per {
        s.write_atomically(batch((b * per) as u64, per)).unwrap();
    }
    s.write_atomically(vec![StorageOp::SetDecidedIndex(n / 2)]).unwrap();
}

/// Writes, with `Immediate` and 1,000 entries per batch, a WAL of at least `min` entries
/// whose active segment (the one `open` replays record by record) is nearly full: the
/// slowest log of about that size to reopen. Returns its entry count.
fn fill_wal_active_full(dir: &Path, min: usize) -> usize {
    let mut s = WalStorage::<BenchEntry>::open(dir, Durability::Immediate).unwrap();
    let per = 1000;
    let mut n = 0;
    let mut segments = s.segment_paths().0.len();
    let mut rolled_at = Vec::new();
    // Write until two rollovers happened past `min` entries, measuring how many
    // batches a segment holds, then fill the active one up to one batch short.
    while rolled_at.len() < 2 || n < min {
        s.write_atomically(batch(n as u64, per)).unwrap();
        n += per;
        let now = s.segment_paths().0.len();
        if now != segments {
            segments = now;
            rolled_at.push(n);
        }
    }
    let k = rolled_at.len();
    let per_segment = (rolled_at[k - 1] - rolled_at[k - 2]) / per;
    let in_active = (n - rolled_at[k - 1]) / per + 1;
    for _ in in_active..per_segment.saturating_sub(1) {
        s.write_atomically(batch(n as u64, per)).unwrap();
        n += per;
    }
    assert_eq!(s.segment_paths().0.len(), segments, "filled past a rollover");
    n
}

/// Milliseconds from the start of `open` until `get_log_len` answered.
fn reopen_ms(path: &Path, engine: Engine, n: usize) -> (f64, Store) {
    let t = Instant::now();
    let s = engine.open(path, Durability::Immediate);
    let len = s.get_log_len().unwrap();
    let ms = t.elapsed().as_secs_f64() * 1e3;
    assert_eq!(len, n);
    (ms, s)
}

/// Entries/s of `get_entries` of 100 entries ending within the last 1,000.
fn recent_reads(s: &Store, len: usize) -> f64 {
    let calls = 20_000;
    let t = Instant::now();
    for i in 0..calls {
        let to = len - (i * 7919) % 1000;
        let got = s.get_entries(to - 100, to).unwrap();
        assert_eq!(got.len(), 100);
        assert_eq!(got[0].index(), Some((to - 100) as u64));
    }
    (calls * 100) as f64 / t.elapsed().as_secs_f64()
}

/// `not measured` if `measured` is NaN (its cells did not run), else `MET` or `MISSED`.
fn verdict(measured: f64, met: bool) -> &'static str {
    if measured.is_nan() {
        "not measured"
    } else if met {
        "MET"
    } else {
        "MISSED"
    }
}

fn ratio_line(label: &str, r: f64, target: f64) {
    println!("  {label}: {r:.2}x (target {target}x) -> {}", verdict(r, r >= target));
}

fn main() {
    if std::env::args().any(|a| a == "--list") {
        println!("wal_targets: bench");
        return;
    }
    let root = std::env::var("WAL_TARGETS_DIR").unwrap_or_else(|_| "/var/tmp".to_owned());
    let root = Path::new(&root);
    let reps = env_usize("WAL_TARGETS_REPS", 3);
    let reopen_n = env_usize("WAL_TARGETS_REOPEN_ENTRIES", 1_000_000);
    println!("wal_targets: {reps} repetitions per cell, in {}, 128-byte entries", root.display());
    println!("{:<52} {:>12} {:<10}", "cell", "median", "unit");
    let none = stat(Vec::new());

    let cell = |f: &dyn Fn(&Path) -> f64| {
        stat((0..reps).map(|_| f(tempfile::tempdir_in(root).unwrap().path())).collect())
    };
    let mut ceiling = none;
    if wanted("ceiling") {
        ceiling = cell(&|d| ceiling_pwrite(d, 3000, 4096));
        show("ceiling: 4 KiB pwrite + fdatasync (pre-written)", "ops/s", ceiling);
        show(
            "  pwrite 128 B + fdatasync (pre-written)",
            "ops/s",
            cell(&|d| ceiling_pwrite(d, 3000, 128)),
        );
        show(
            "  4 KiB memcpy into mmap + msync(MS_SYNC)",
            "ops/s",
            cell(&|d| ceiling_msync(d, 1500, 4096)),
        );
        show(
            "  128 B memcpy into mmap + msync(MS_SYNC)",
            "ops/s",
            cell(&|d| ceiling_msync(d, 1500, 128)),
        );
    }

    let (mut w1, mut w100, mut r100, mut wb) = (none, none, none, none);
    if wanted("append") {
        w1 = append_cell(root, Engine::Wal, Durability::Immediate, 3000, 1, reps);
        show("wal immediate, 1 entry/batch", "batches/s", w1);
        let r1 = append_cell(root, Engine::Rocks, Durability::Immediate, 3000, 1, reps);
        show("rocksdb sync, 1 entry/batch", "batches/s", r1);
        w100 = append_cell(root, Engine::Wal, Durability::Immediate, 1000, 100, reps);
        show("wal immediate, 100 entries/batch", "entries/s", w100);
        r100 = append_cell(root, Engine::Rocks, Durability::Immediate, 1000, 100, reps);
        show("rocksdb sync, 100 entries/batch", "entries/s", r100);
        wb = append_cell(root, Engine::Wal, Durability::Buffered, 1000, 1000, reps);
        show("wal buffered, 1000 entries/batch", "entries/s", wb);
        let rb = append_cell(root, Engine::Rocks, Durability::Buffered, 1000, 1000, reps);
        show("rocksdb no-sync, 1000 entries/batch", "entries/s", rb);
    }

    // Issue 14: where a durable 100-entry commit's syncs and bytes go, and what each
    // engine sends to the device per payload byte.
    let (mut syncs_per_commit, mut bytes_per_sync) = (none, none);
    let mut wear = Vec::new();
    if wanted("wear") {
        let (mut syncs, mut bytes) = (Vec::new(), Vec::new());
        for _ in 0..reps {
            let dir = tempfile::tempdir_in(root).unwrap();
            let mut w =
                WalStorage::<BenchEntry>::open(&dir.path().join("wal"), Durability::Immediate)
                    .unwrap();
            let before = w.stats();
            for b in 0..1000 {
                w.write_atomically(batch(b * 100, 100)).unwrap();
            }
            let after = w.stats();
            let n = (after.syncs - before.syncs) as f64;
            syncs.push(n / 1000.0);
            bytes.push((after.bytes_written - before.bytes_written) as f64 / n);
        }
        syncs_per_commit = stat(syncs);
        bytes_per_sync = stat(bytes);
        show_f("wal immediate 100/batch: syncs per commit", "syncs", syncs_per_commit, 3);
        show("wal immediate 100/batch: bytes written per sync", "bytes", bytes_per_sync);
        for engine in [Engine::Wal, Engine::Rocks, Engine::Redb] {
            if !engine.built() {
                continue;
            }
            let amp = stat((0..reps).map(|_| device_bytes_per_payload(root, engine)).collect());
            show_f(
                &format!("{} immediate 100/batch: device B / payload B", engine.name()),
                "",
                amp,
                2,
            );
            wear.push((engine, amp));
        }
    }

    // Reopen and recent reads of a 1,000,000-entry log, written afresh for every
    // repetition; the engines alternate within a repetition.
    let engines = [Engine::Wal, Engine::Rocks, Engine::Redb];
    let (mut first, mut again, mut reads) =
        ([vec![], vec![], vec![]], [vec![], vec![], vec![]], [vec![], vec![], vec![]]);
    let (mut memory_reads, mut guard_us, mut segments) = (Vec::new(), Vec::new(), 0);
    let (mut full_wal, mut full_n) = (Vec::new(), 0);
    if wanted("reopen") {
        for _ in 0..reps {
            for (k, engine) in engines.into_iter().enumerate() {
                if !engine.built() {
                    continue;
                }
                let dir = tempfile::tempdir_in(root).unwrap();
                let path = dir.path().join(engine.name());
                fill(&path, engine, reopen_n, Durability::Immediate);
                let (ms, s) = reopen_ms(&path, engine, reopen_n);
                first[k].push(ms);
                drop(s);
                let (ms, s) = reopen_ms(&path, engine, reopen_n);
                again[k].push(ms);
                reads[k].push(recent_reads(&s, reopen_n));
                if engine == Engine::Wal {
                    drop(s);
                    let (us, n) = guard_pass_us(&path);
                    guard_us.push(us);
                    segments = n;
                }
            }
            // The worst case: the active segment (replayed record by record) nearly full.
            let dir = tempfile::tempdir_in(root).unwrap();
            let path = dir.path().join("wal-full");
            full_n = fill_wal_active_full(&path, reopen_n);
            drop(reopen_ms(&path, Engine::Wal, full_n));
            full_wal.push(reopen_ms(&path, Engine::Wal, full_n).0);
            let dir = tempfile::tempdir_in(root).unwrap();
            let mut memory = Engine::Memory.open(dir.path(), Durability::Immediate);
            for b in 0..reopen_n / 1000 {
                memory.write_atomically(batch((b * 1000) as u64, 1000)).unwrap();
            }
            memory_reads.push(recent_reads(&memory, reopen_n));
        }
        for (k, engine) in engines.into_iter().enumerate() {
            show(
                &format!("{} first reopen of {reopen_n} entries", engine.name()),
                "ms",
                stat(first[k].clone()),
            );
            show(&format!("{} second reopen", engine.name()), "ms", stat(again[k].clone()));
        }
        show(
            &format!("wal second reopen, {full_n} entries, active segment full"),
            "ms",
            stat(full_wal.clone()),
        );
        show(
            &format!("wal open's hole guard: SEEK_DATA/SEEK_HOLE over {segments} segments"),
            "us",
            stat(guard_us.clone()),
        );
        for (k, engine) in engines.into_iter().enumerate() {
            show(
                &format!("{} get_entries(100 recent)", engine.name()),
                "entries/s",
                stat(reads[k].clone()),
            );
        }
        show("memory get_entries(100 recent)", "entries/s", stat(memory_reads.clone()));
    }
    let [wf, rf, df] = first.map(stat);
    let [wa, ra, da] = again.map(stat);
    let [wr, rr, _] = reads.map(stat);
    let mr = stat(memory_reads);

    println!("\ntargets (medians):");
    let r = w1.median / ceiling.median;
    println!(
        "  immediate 1/batch >= 90% of ceiling: {:.0}% -> {}",
        r * 100.0,
        verdict(r, r >= 0.9)
    );
    ratio_line("immediate 100/batch vs rocksdb, entries/s", w100.median / r100.median, 2.5);
    println!(
        "    at the disk's ceiling: {:.3} syncs per commit, {:.0} bytes per sync, ceiling {:.0} syncs/s -> at most {:.0} entries/s",
        syncs_per_commit.median,
        bytes_per_sync.median,
        ceiling.median,
        ceiling.median / syncs_per_commit.median * 100.0
    );
    println!(
        "  buffered 1000/batch >= 3M entries/s: {:.2}M -> {}",
        wb.median / 1e6,
        verdict(wb.median, wb.median >= 3e6)
    );
    let best_other = |w: Stat, others: [Stat; 2]| {
        others.iter().map(|s| s.median).fold(f64::INFINITY, f64::min) / w.median
    };
    ratio_line(
        "first reopen: fastest of redb/rocksdb ms / wal ms (wal first)",
        best_other(wf, [rf, df]),
        1.0,
    );
    ratio_line(
        "second reopen: fastest of redb/rocksdb ms / wal ms (wal first)",
        best_other(wa, [ra, da]),
        1.0,
    );
    ratio_line(
        "worst case (active segment full): fastest other second reopen / wal ms",
        best_other(stat(full_wal), [ra, da]),
        1.0,
    );
    ratio_line("get_entries(100 recent) vs rocksdb, entries/s", wr.median / rr.median, 5.0);
    ratio_line("get_entries(100 recent) vs memory, entries/s", wr.median / mr.median, 0.9);
    let wal_wear = wear.iter().find(|(e, _)| *e == Engine::Wal).map_or(f64::NAN, |(_, s)| s.median);
    let lowest = wear.iter().all(|(_, s)| s.median >= wal_wear);
    println!(
        "  device bytes per payload byte, 100/batch: wal {wal_wear:.2}, lowest of the durable engines -> {}",
        verdict(wal_wear, lowest)
    );
}

/// Device bytes (`/proc/self/io`) per payload byte over 1,000 durable commits of 100
/// entries, after 20 warm-up commits.
fn device_bytes_per_payload(root: &Path, engine: Engine) -> f64 {
    let dir = tempfile::tempdir_in(root).unwrap();
    let mut s = engine.open(&dir.path().join(engine.name()), Durability::Immediate);
    appends(&mut s, 20, 100);
    let before = device_write_bytes();
    appends(&mut s, 1000, 100);
    (device_write_bytes() - before) as f64 / (1000 * 100 * ENTRY) as f64
}

/// The hole guard `open` adds: one `SEEK_DATA`/`SEEK_HOLE` pass over each segment of the
/// WAL in `dir` (what `Segment::readable` asks once per segment). Microseconds for all
/// segments, and their number.
fn guard_pass_us(dir: &Path) -> (f64, usize) {
    let files: Vec<std::fs::File> = std::fs::read_dir(dir)
        .unwrap()
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "wal"))
        .map(|p| std::fs::File::open(p).unwrap())
        .collect();
    let t = Instant::now();
    for f in &files {
        let len = f.metadata().unwrap().len() as i64;
        let mut at = 0;
        while at < len {
            // SAFETY: lseek on an open descriptor owned by `f`; no memory is passed.
            let data = unsafe { libc::lseek(f.as_raw_fd(), at, libc::SEEK_DATA) };
            if data < 0 {
                break;
            }
            // SAFETY: as above.
            at = unsafe { libc::lseek(f.as_raw_fd(), data, libc::SEEK_HOLE) }.max(data + 1);
        }
    }
    (t.elapsed().as_secs_f64() * 1e6, files.len())
}
