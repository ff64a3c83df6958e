//! The cells of `wal_targets`: engines, stores, timing and the disk's ceiling, so the
//! bench's `main` reads as the list of rows it prints.

use paxstore::{Durability, Storage, StorageOp};
use paxstore_backends::wal::{WalOptions, WalStorage};
use paxstore_backends::BackendKind;
use paxstore_benches::report::DeviceWrites;
use paxstore_benches::runner::Device;
use paxstore_benches::BenchEntry;
use std::fs::OpenOptions;
use std::os::unix::fs::FileExt;
use std::os::unix::io::AsRawFd;
use std::path::Path;
use std::time::{Duration, Instant};

pub(crate) const ENTRY: usize = 128;

pub(crate) type Store = Box<dyn Storage<BenchEntry>>;

pub(crate) fn make(i: u64) -> BenchEntry {
    BenchEntry::new(i, ENTRY)
}

pub(crate) fn env_usize(name: &str, default: usize) -> usize {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

#[derive(Clone, Copy, PartialEq)]
pub(crate) enum Engine {
    Wal,
    /// The WAL opened with `WalOptions::zero_ahead(false)`.
    WalNoZeros,
    Rocks,
    Redb,
    Memory,
}

impl Engine {
    pub(crate) fn name(self) -> &'static str {
        match self {
            Engine::Wal => "wal",
            Engine::WalNoZeros => "wal (no zeros ahead)",
            Engine::Rocks => "rocksdb",
            Engine::Redb => "redb",
            Engine::Memory => "memory",
        }
    }

    /// Whether this engine is compiled in (RocksDB and redb are features).
    pub(crate) fn built(self) -> bool {
        let name = if self == Engine::WalNoZeros { "wal" } else { self.name() };
        name.parse::<BackendKind>().is_ok()
    }

    pub(crate) fn open(self, dir: &Path, d: Durability) -> Store {
        if self == Engine::WalNoZeros {
            let options = WalOptions::new(d).zero_ahead(false);
            return Box::new(WalStorage::<BenchEntry>::open_with_options(dir, options).unwrap());
        }
        let kind: BackendKind =
            self.name().parse().expect("cells of engines not built are skipped");
        kind.open(dir, d).unwrap()
    }
}

/// Whether cell group `name` runs: all of them unless `WAL_TARGETS_ONLY` lists some
/// (comma-separated: `ceiling`, `append`, `wear`, `reopen`; reads run with `reopen`).
pub(crate) fn wanted(name: &str) -> bool {
    match std::env::var("WAL_TARGETS_ONLY") {
        Ok(list) => list.split(',').any(|w| w.trim() == name),
        Err(_) => true,
    }
}

/// Median, min and max of a few repetitions.
#[derive(Clone, Copy)]
pub(crate) struct Stat {
    pub(crate) median: f64,
    pub(crate) min: f64,
    pub(crate) max: f64,
}

pub(crate) fn stat(mut v: Vec<f64>) -> Stat {
    if v.is_empty() {
        return Stat { median: f64::NAN, min: f64::NAN, max: f64::NAN };
    }
    v.sort_by(|a, b| a.total_cmp(b));
    Stat { median: v[v.len() / 2], min: v[0], max: v[v.len() - 1] }
}

/// [`show`] with `decimals` decimals.
pub(crate) fn show_f(label: &str, unit: &str, s: Stat, decimals: usize) {
    println!(
        "{label:<52} {:>12.decimals$} {unit:<10} (spread {:.decimals$}-{:.decimals$})",
        s.median, s.min, s.max
    );
}

/// One cell's median and spread; figures below 10 (milliseconds of a reopen) with three
/// decimals.
pub(crate) fn show(label: &str, unit: &str, s: Stat) {
    let d = if s.median.abs() < 10.0 { 3 } else { 0 };
    println!(
        "{label:<52} {:>12.d$} {unit:<10} (spread {:.d$}-{:.d$}, {:+.0}%/{:+.0}%)",
        s.median,
        s.min,
        s.max,
        (s.min / s.median - 1.0) * 100.0,
        (s.max / s.median - 1.0) * 100.0
    );
}

/// A file of `bytes` bytes, written with non-zero bytes and synced.
pub(crate) fn prewritten(dir: &Path, bytes: usize) -> std::fs::File {
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
pub(crate) fn ceiling_pwrite(dir: &Path, ops: usize, size: usize) -> f64 {
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
pub(crate) fn ceiling_msync(dir: &Path, ops: usize, size: usize) -> f64 {
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

pub(crate) fn batch(first: u64, n: usize) -> Vec<StorageOp<BenchEntry>> {
    if n == 1 {
        vec![StorageOp::AppendEntry(make(first))]
    } else {
        vec![StorageOp::AppendEntries((first..first + n as u64).map(make).collect())]
    }
}

/// `batches` batches of `per` entries; returns batches/s of storage time.
pub(crate) fn appends(store: &mut Store, batches: usize, per: usize) -> f64 {
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

pub(crate) fn append_cell(
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
pub(crate) fn fill(dir: &Path, engine: Engine, n: usize, d: Durability) {
    let mut s = engine.open(dir, d);
    let per = 1000;
    for b in 0..n / per {
        s.write_atomically(batch((b * per) as u64, per)).unwrap();
    }
    s.write_atomically(vec![StorageOp::SetDecidedIndex(n / 2)]).unwrap();
}

/// The WAL's options for a log left as a crash leaves it: no seal at close.
pub(crate) fn crashed_wal() -> WalOptions {
    WalOptions::new(Durability::Immediate).seal_on_close(false)
}

/// Writes, with `Immediate` and 1,000 entries per batch, a WAL of at least `min` entries
/// whose active segment (the one `open` replays record by record) is nearly full, and
/// leaves it as a crash would (no seal at close): the slowest log of about that size to
/// reopen. Returns its entry count.
pub(crate) fn fill_wal_active_full(dir: &Path, min: usize) -> usize {
    let mut s = WalStorage::<BenchEntry>::open_with_options(dir, crashed_wal()).unwrap();
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
pub(crate) fn reopen_ms(path: &Path, engine: Engine, n: usize) -> (f64, Store) {
    let t = Instant::now();
    let s = engine.open(path, Durability::Immediate);
    let len = s.get_log_len().unwrap();
    let ms = t.elapsed().as_secs_f64() * 1e3;
    assert_eq!(len, n);
    (ms, s)
}

/// [`reopen_ms`] of a WAL opened and closed with [`crashed_wal`]'s options, so every
/// reopen replays the same active segment.
pub(crate) fn reopen_crashed_wal_ms(path: &Path, n: usize) -> f64 {
    let t = Instant::now();
    let s = WalStorage::<BenchEntry>::open_with_options(path, crashed_wal()).unwrap();
    let len = s.get_log_len().unwrap();
    let ms = t.elapsed().as_secs_f64() * 1e3;
    assert_eq!(len, n);
    ms
}

/// Entries/s of `get_entries` of 100 entries ending within the last 1,000.
pub(crate) fn recent_reads(s: &Store, len: usize) -> f64 {
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
pub(crate) fn verdict(measured: f64, met: bool) -> &'static str {
    if measured.is_nan() {
        "not measured"
    } else if met {
        "MET"
    } else {
        "MISSED"
    }
}

pub(crate) fn ratio_line(label: &str, r: f64, target: f64) {
    println!("  {label}: {r:.2}x (target {target}x) -> {}", verdict(r, r >= target));
}

/// One write-amplification cell: an engine (the WAL with or without zeros ahead of the
/// tail), its log left to grow or trimmed as it grows (so the WAL recycles segments).
#[derive(Clone, Copy)]
pub(crate) struct Wear {
    pub(crate) engine: Engine,
    /// The WAL's `WalOptions::zero_ahead` (other engines ignore it).
    pub(crate) zero_ahead: bool,
    /// Every 100 commits, trim to the last [`TRIM_KEEP`] entries.
    pub(crate) trimmed: bool,
}

/// Entries a trimmed wear cell keeps.
pub(crate) const TRIM_KEEP: usize = 20_000;

impl Wear {
    pub(crate) fn label(self) -> String {
        let zeros = match (self.engine, self.zero_ahead) {
            (Engine::Wal, true) => " (zeros ahead)",
            (Engine::Wal, false) => " (no zeros ahead)",
            _ => "",
        };
        let trimmed = if self.trimmed { ", trimmed as it grows" } else { "" };
        format!("{}{zeros}{trimmed}", self.engine.name())
    }
}

/// What `commits` durable commits of 100 entries (after 20 warm-up commits, counted in
/// the payload) sent to the block device: its sectors-written counter read after a
/// `syncfs` around the cell (every process's writes: an upper bound), the idle baseline
/// sampled before it ([`Device::measure`]), and the WAL's own `bytes_written`.
pub(crate) fn wear_cell(device: &Device, root: &Path, wear: Wear, commits: usize) -> DeviceWrites {
    let dir = tempfile::tempdir_in(root).unwrap();
    let path = dir.path().join(wear.engine.name());
    let run = |s: &mut dyn Storage<BenchEntry>| {
        let mut next = 0u64;
        for c in 0..20 + commits {
            s.write_atomically(batch(next, 100)).unwrap();
            next += 100;
            if wear.trimmed && c % 100 == 99 && next as usize > TRIM_KEEP {
                s.write_atomically(vec![StorageOp::Trim(next as usize - TRIM_KEEP)]).unwrap();
            }
        }
        next * ENTRY as u64
    };
    let cell = || {
        Ok(match wear.engine {
            Engine::Wal => {
                let options = WalOptions::new(Durability::Immediate).zero_ahead(wear.zero_ahead);
                let mut w = WalStorage::<BenchEntry>::open_with_options(&path, options).unwrap();
                let payload = run(&mut w);
                let own = w.stats().bytes_written;
                (((Box::new(w) as Store), Some(own)), payload)
            }
            engine => {
                let mut s = engine.open(&path, Durability::Immediate);
                let payload = run(&mut *s);
                ((s, None), payload)
            }
        })
    };
    device.measure(cell, |(_, own)| *own).unwrap().1
}

/// The hole guard `open` adds: one `SEEK_DATA`/`SEEK_HOLE` pass over each segment of the
/// WAL in `dir` (what `Segment::readable` asks once per segment). Microseconds for all
/// segments, and their number.
pub(crate) fn guard_pass_us(dir: &Path) -> (f64, usize) {
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
