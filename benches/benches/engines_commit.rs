//! Durable (`Immediate`) commit rate of the RocksDB, sled and redb backends, side by side
//! in one run: batches of 1 and of 100 entries of 128 bytes, one `write_atomically` per
//! batch, each backend in a fresh directory.
//!
//! Run: `cargo bench -p paxstore-benches --bench engines_commit` (the directory is
//! `PAXSTORE_BENCH_DIR`, default the system temporary directory: put it on the disk you
//! mean to measure). Criterion measures each cell; after it, a plain timed loop
//! (`PAXSTORE_ENGINES_LOOP_SECS` seconds per repetition, default 2, 5 repetitions; 0 skips
//! it) prints batches/s and entries/s per cell with the spread of the repetitions, the
//! figures quoted in reports.
//!
//! Self-contained on purpose: it uses only `paxstore-backends`' `BackendKind`, so it does
//! not depend on the rest of this crate's harness.

use std::hint::black_box;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use criterion::{BenchmarkId, Criterion, Throughput};
use paxstore::{Durability, Entry, NoSnapshot, Storage, StorageOp};
use paxstore_backends::BackendKind;
use serde::{Deserialize, Serialize};

/// Bytes of payload per entry.
const ENTRY_BYTES: usize = 128;
/// Entries per batch, the two cells of each backend.
const BATCH_SIZES: [usize; 2] = [1, 100];
/// Repetitions of the plain loop per cell.
const LOOP_REPETITIONS: usize = 5;

/// An opaque 128-byte entry.
#[derive(Clone, Debug, Serialize, Deserialize)]
struct Payload(Vec<u8>);

impl Entry for Payload {
    type Snapshot = NoSnapshot;
}

/// `n` incompressible entries, starting at absolute index `first`.
fn batch(first: u64, n: usize) -> Vec<StorageOp<Payload>> {
    let entries = (first..first + n as u64)
        .map(|i| {
            let mut x = i.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
            Payload(
                (0..ENTRY_BYTES)
                    .map(|_| {
                        x ^= x << 13;
                        x ^= x >> 7;
                        x ^= x << 17;
                        x as u8
                    })
                    .collect(),
            )
        })
        .collect();
    vec![StorageOp::AppendEntries(entries)]
}

/// The backends this bench compares, as compiled in.
fn engines() -> Vec<BackendKind> {
    BackendKind::compiled_in()
        .into_iter()
        .filter(|k| ["rocksdb", "sled", "redb"].contains(&k.name()))
        .collect()
}

fn bench_dir() -> PathBuf {
    std::env::var_os("PAXSTORE_BENCH_DIR").map_or_else(std::env::temp_dir, PathBuf::from)
}

/// A backend opened in `Immediate` mode in a fresh directory, removed on drop.
struct Store {
    storage: Box<dyn Storage<Payload>>,
    next: u64,
    _dir: tempfile::TempDir,
}

impl Store {
    fn open(kind: BackendKind) -> Store {
        let dir = tempfile::Builder::new()
            .prefix(&format!("engines-commit-{kind}-"))
            .tempdir_in(bench_dir())
            .unwrap_or_else(|e| panic!("cannot create a directory in {:?}: {e}", bench_dir()));
        let storage = kind
            .open::<Payload>(&dir.path().join("store"), Durability::Immediate)
            .unwrap_or_else(|e| panic!("cannot open {kind}: {e}"));
        Store { storage, next: 0, _dir: dir }
    }

    /// Builds `count` batches of `n` entries (untimed), then times their commits.
    fn commit(&mut self, count: u64, n: usize) -> Duration {
        let batches: Vec<_> = (0..count).map(|i| batch(self.next + i * n as u64, n)).collect();
        self.next += count * n as u64;
        let start = Instant::now();
        for ops in batches {
            self.storage.write_atomically(black_box(ops)).unwrap_or_else(|e| panic!("{e}"));
        }
        start.elapsed()
    }
}

fn criterion_cells(c: &mut Criterion) {
    let mut group = c.benchmark_group("engines_commit_immediate");
    group.sample_size(10).warm_up_time(Duration::from_secs(1));
    group.measurement_time(Duration::from_secs(5));
    for n in BATCH_SIZES {
        group.throughput(Throughput::Elements(n as u64));
        for kind in engines() {
            let mut store = Store::open(kind);
            group.bench_function(
                BenchmarkId::new(kind.name(), format!("{n}x{ENTRY_BYTES}B")),
                |b| b.iter_custom(|iters| store.commit(iters, n)),
            );
        }
    }
    group.finish();
}

/// One cell of the plain loop: batches/s of each repetition.
fn loop_cell(kind: BackendKind, n: usize, secs: f64) -> Vec<f64> {
    let mut store = Store::open(kind);
    store.commit(20, n); // warm-up: the engine's first files and caches
    (0..LOOP_REPETITIONS)
        .map(|_| {
            let mut batches = 0u64;
            let mut elapsed = Duration::ZERO;
            let chunk = if n == 1 { 50 } else { 10 };
            while elapsed.as_secs_f64() < secs {
                elapsed += store.commit(chunk, n);
                batches += chunk;
            }
            batches as f64 / elapsed.as_secs_f64()
        })
        .collect()
}

fn plain_loop(secs: f64) {
    println!(
        "\nengines_commit plain loop: Immediate, {ENTRY_BYTES}-byte entries, \
         {LOOP_REPETITIONS} repetitions of {secs} s per cell, dir {}",
        bench_dir().display()
    );
    println!(
        "| backend | entries/batch | batches/s median | batches/s min..max | entries/s median |"
    );
    println!("|---|---:|---:|---:|---:|");
    for n in BATCH_SIZES {
        for kind in engines() {
            let mut rates = loop_cell(kind, n, secs);
            rates.sort_by(f64::total_cmp);
            let median = rates[rates.len() / 2];
            println!(
                "| {kind} | {n} | {median:.0} | {:.0}..{:.0} | {:.0} |",
                rates[0],
                rates[rates.len() - 1],
                median * n as f64
            );
        }
    }
}

fn main() {
    let mut criterion = Criterion::default().configure_from_args();
    criterion_cells(&mut criterion);
    criterion.final_summary();
    // Only when benchmarking (`cargo bench` passes `--bench`), not under `cargo test`.
    if std::env::args().any(|a| a == "--bench") {
        let secs = std::env::var("PAXSTORE_ENGINES_LOOP_SECS")
            .ok()
            .and_then(|s| s.parse::<f64>().ok())
            .unwrap_or(2.0);
        if secs > 0.0 {
            plain_loop(secs);
        }
    }
}
