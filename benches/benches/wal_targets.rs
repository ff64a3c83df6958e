//! The mmap WAL against its issue-4 targets, side by side in one run with the disk's raw
//! ceiling and RocksDB (sync writes), 128-byte entries.
//!
//! ```text
//! CARGO_TARGET_DIR=$HOME/.cache/paxstore-target cargo bench -p paxstore-benches --bench wal_targets
//! ```
//!
//! Environment: `WAL_TARGETS_DIR` (directory on the disk under test, default `/var/tmp`),
//! `WAL_TARGETS_REPS` (repetitions per cell, default 3), `WAL_TARGETS_REOPEN_ENTRIES`
//! (default 1,000,000). Each cell reports the median over the repetitions and the spread
//! (min-max). The timer covers only the storage calls: batches are built before.
//!
//! Entries are [`Blob`]: 128 bytes serialized with `serialize_bytes` (postcard: a varint
//! length and a `memcpy`). The shared `paxstore_benches::BenchEntry` derives serde for its
//! `Vec<u8>`, which serde treats as a sequence of `u8` (one call per byte); that costs
//! more than the WAL itself, so one extra row shows the buffered cell with it.
#![allow(missing_docs, clippy::unwrap_used, clippy::expect_used)]

use std::fs::OpenOptions;
use std::os::unix::fs::FileExt;
use std::os::unix::io::AsRawFd;
use std::path::Path;
use std::time::{Duration, Instant};

use paxstore::{Durability, Entry, NoSnapshot, Storage, StorageOp};
use paxstore_backends::codec::PersistentEntry;
#[cfg(feature = "rocksdb")]
use paxstore_backends::rocksdb::RocksDbStorage;
use paxstore_backends::wal::WalStorage;
use paxstore_benches::BenchEntry;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

const ENTRY: usize = 128;

/// Without the `rocksdb` feature (e.g. `--no-default-features --features wal`) the
/// RocksDB cells are skipped and show as NaN.
const HAVE_ROCKSDB: bool = cfg!(feature = "rocksdb");

type Store<E> = Box<dyn Storage<E>>;

/// An opaque payload serialized as bytes.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Blob(Vec<u8>);

impl Entry for Blob {
    type Snapshot = NoSnapshot;
}

impl Serialize for Blob {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_bytes(&self.0)
    }
}

impl<'de> Deserialize<'de> for Blob {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Bytes;
        impl serde::de::Visitor<'_> for Bytes {
            type Value = Blob;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("bytes")
            }
            fn visit_bytes<E: serde::de::Error>(self, v: &[u8]) -> Result<Blob, E> {
                Ok(Blob(v.to_vec()))
            }
            fn visit_byte_buf<E: serde::de::Error>(self, v: Vec<u8>) -> Result<Blob, E> {
                Ok(Blob(v))
            }
        }
        d.deserialize_byte_buf(Bytes)
    }
}

/// An entry for absolute index `i`, built outside the timer.
trait Make: PersistentEntry {
    fn make(i: u64) -> Self;
}

impl Make for Blob {
    fn make(i: u64) -> Self {
        Blob(BenchEntry::new(i, ENTRY).payload)
    }
}

impl Make for BenchEntry {
    fn make(i: u64) -> Self {
        BenchEntry::new(i, ENTRY)
    }
}

fn env_usize(name: &str, default: usize) -> usize {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

#[derive(Clone, Copy, PartialEq)]
enum Engine {
    Wal,
    Rocks,
}

impl Engine {
    fn name(self) -> &'static str {
        match self {
            Engine::Wal => "wal",
            Engine::Rocks => "rocksdb",
        }
    }

    fn open<E: Make>(self, dir: &Path, d: Durability) -> Store<E> {
        match self {
            Engine::Wal => Box::new(WalStorage::<E>::open(dir, d).unwrap()),
            #[cfg(feature = "rocksdb")]
            Engine::Rocks => Box::new(RocksDbStorage::<E>::open(dir, d).unwrap()),
            #[cfg(not(feature = "rocksdb"))]
            Engine::Rocks => unreachable!("rocksdb cells are skipped without the feature"),
        }
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

fn batch<E: Make>(first: u64, n: usize) -> Vec<StorageOp<E>> {
    if n == 1 {
        vec![StorageOp::AppendEntry(E::make(first))]
    } else {
        vec![StorageOp::AppendEntries((first..first + n as u64).map(E::make).collect())]
    }
}

/// `batches` batches of `per` entries; returns batches/s of storage time.
fn appends<E: Make>(store: &mut Store<E>, batches: usize, per: usize) -> f64 {
    let mut spent = Duration::ZERO;
    let mut next = store.get_log_end().unwrap() as u64;
    for _ in 0..batches {
        let ops = batch::<E>(next, per);
        next += per as u64;
        let t = Instant::now();
        store.write_atomically(ops).unwrap();
        spent += t.elapsed();
    }
    batches as f64 / spent.as_secs_f64()
}

fn append_cell<E: Make>(
    root: &Path,
    engine: Engine,
    d: Durability,
    batches: usize,
    per: usize,
    reps: usize,
) -> Stat {
    let reps = if engine == Engine::Rocks && !HAVE_ROCKSDB { 0 } else { reps };
    stat(
        (0..reps)
            .map(|_| {
                let dir = tempfile::tempdir_in(root).unwrap();
                let mut s = engine.open::<E>(&dir.path().join(engine.name()), d);
                appends(&mut s, 20, per); // warm up: first segment / memtable / WAL file
                appends(&mut s, batches, per) * per as f64
            })
            .collect(),
    )
}

fn fill(dir: &Path, engine: Engine, n: usize) {
    let mut s = engine.open::<Blob>(dir, Durability::Buffered);
    let per = 1000;
    for b in 0..n / per {
        s.write_atomically(batch::<Blob>((b * per) as u64, per)).unwrap();
    }
    s.write_atomically(vec![StorageOp::SetDecidedIndex(n / 2)]).unwrap();
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

    let cell = |f: &dyn Fn(&Path) -> f64| {
        stat((0..reps).map(|_| f(tempfile::tempdir_in(root).unwrap().path())).collect())
    };
    let ceiling = cell(&|d| ceiling_pwrite(d, 3000, 4096));
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

    let w1 = append_cell::<Blob>(root, Engine::Wal, Durability::Immediate, 3000, 1, reps);
    show("wal immediate, 1 entry/batch", "batches/s", w1);
    let r1 = append_cell::<Blob>(root, Engine::Rocks, Durability::Immediate, 3000, 1, reps);
    show("rocksdb sync, 1 entry/batch", "batches/s", r1);
    let w100 = append_cell::<Blob>(root, Engine::Wal, Durability::Immediate, 1000, 100, reps);
    show("wal immediate, 100 entries/batch", "entries/s", w100);
    let r100 = append_cell::<Blob>(root, Engine::Rocks, Durability::Immediate, 1000, 100, reps);
    show("rocksdb sync, 100 entries/batch", "entries/s", r100);
    let wb = append_cell::<Blob>(root, Engine::Wal, Durability::Buffered, 1000, 1000, reps);
    show("wal buffered, 1000 entries/batch", "entries/s", wb);
    let rb = append_cell::<Blob>(root, Engine::Rocks, Durability::Buffered, 1000, 1000, reps);
    show("rocksdb no-sync, 1000 entries/batch", "entries/s", rb);
    let wbe = append_cell::<BenchEntry>(root, Engine::Wal, Durability::Buffered, 1000, 1000, reps);
    show("  wal buffered, 1000/batch, BenchEntry (serde seq)", "entries/s", wbe);

    // Reopen and recent reads of a 1,000,000-entry log.
    let mut reopen = [Vec::new(), Vec::new()];
    let mut reads = [Vec::new(), Vec::new()];
    for (k, engine) in [Engine::Wal, Engine::Rocks].into_iter().enumerate() {
        if engine == Engine::Rocks && !HAVE_ROCKSDB {
            continue;
        }
        let dir = tempfile::tempdir_in(root).unwrap();
        let path = dir.path().join(engine.name());
        fill(&path, engine, reopen_n);
        for _ in 0..reps {
            let t = Instant::now();
            let s = engine.open::<Blob>(&path, Durability::Immediate);
            let len = s.get_log_len().unwrap();
            reopen[k].push(t.elapsed().as_secs_f64() * 1e3);
            assert_eq!(len, reopen_n);
            let calls = 20_000;
            let t = Instant::now();
            for i in 0..calls {
                let to = len - (i * 7919) % 1000;
                let got = s.get_entries(to - 100, to).unwrap();
                assert_eq!(got.len(), 100);
            }
            reads[k].push(calls as f64 / t.elapsed().as_secs_f64());
        }
    }
    let [wo, ro] = reopen.map(stat);
    let [wr, rr] = reads.map(stat);
    show(&format!("wal reopen of {reopen_n} entries"), "ms", wo);
    show(&format!("rocksdb reopen of {reopen_n} entries"), "ms", ro);
    show("wal get_entries(100 recent)", "calls/s", wr);
    show("rocksdb get_entries(100 recent)", "calls/s", rr);

    println!("\ntargets (medians):");
    let verdict = |ok: bool| if ok { "MET" } else { "MISSED" };
    let r = w1.median / ceiling.median;
    println!("  immediate 1/batch >= 90% of ceiling: {:.0}% -> {}", r * 100.0, verdict(r >= 0.9));
    let r = w100.median / r100.median;
    println!("  immediate 100/batch >= 2x rocksdb: {r:.2}x -> {}", verdict(r >= 2.0));
    println!(
        "  buffered 1000/batch >= 3M entries/s: {:.2}M -> {}",
        wb.median / 1e6,
        verdict(wb.median >= 3e6)
    );
    let r = ro.median / wo.median;
    println!(
        "  reopen <= 1 s and >= 3x faster than rocksdb: {:.0} ms, {r:.1}x -> {}",
        wo.median,
        verdict(wo.median <= 1000.0 && r >= 3.0)
    );
    let r = wr.median / rr.median;
    println!("  get_entries(100 recent) >= 5x rocksdb: {r:.1}x -> {}", verdict(r >= 5.0));
}
