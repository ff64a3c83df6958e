//! Reads of 100 recent entries (the report's `read_recent` cell: 128-byte entries, ranges
//! ending in the last 1,000 entries of a freshly written log), to profile or time them.
//!
//! - `read_profile count wal|memory [ENTRIES] [READS]`: fills one backend, then makes
//!   `READS` reads; run it under `valgrind --tool=callgrind --toggle-collect='*get_entries*'`
//!   to count the instructions of the reads alone.
//! - `read_profile time [ENTRIES] [REPS] [READS]`: fills both, then `REPS` interleaved
//!   repetitions of `READS` reads each; prints each backend's entries/s per repetition and
//!   the median of the per-repetition ratio WAL / memory.
//!
//! `cargo run --release -p paxstore-benches --no-default-features --features wal --example read_profile -- time`

use std::time::Instant;

use paxstore_backends::BackendKind;
use paxstore_benches::workload::{read_durability, BenchStore, Rng};
use paxstore_benches::BenchError;

/// The report's entry size and read size.
const ENTRY_BYTES: usize = 128;
const BATCH: usize = 100;

fn main() -> Result<(), BenchError> {
    let args: Vec<String> = std::env::args().collect();
    let arg = |i: usize, default: &str| args.get(i).cloned().unwrap_or_else(|| default.to_owned());
    let bad = |detail: String| BenchError::WrongAnswer { backend: "read_profile".into(), detail };
    let number = |i: usize, default: &str| {
        let text = arg(i, default);
        text.parse::<usize>().map_err(|e| bad(format!("argument {i}: {text:?}: {e}")))
    };
    let parent = tempfile::tempdir().map_err(|e| bad(e.to_string()))?;
    let open = |kind: BackendKind, n: usize| -> Result<BenchStore, BenchError> {
        let mut store = BenchStore::create_in(kind, read_durability(kind), parent.path())?;
        store.fill(n, ENTRY_BYTES)?;
        Ok(store)
    };
    match arg(1, "time").as_str() {
        "count" => {
            let kind = match arg(2, "wal").as_str() {
                "wal" => BackendKind::Wal,
                "memory" => BackendKind::Memory,
                other => return Err(bad(format!("unknown backend {other:?}"))),
            };
            let (n, reads) = (number(3, "1000000")?, number(4, "1000")?);
            let mut store = open(kind, n)?;
            let read = reads_of(&mut store, n, reads, 1)?;
            println!("{} {reads} reads of {BATCH}: {read} entries", kind.name());
        }
        "time" => {
            let (n, reps, reads) = (number(2, "1000000")?, number(3, "21")?, number(4, "20000")?);
            let mut wal = open(BackendKind::Wal, n)?;
            let mut memory = open(BackendKind::Memory, n)?;
            let mut ratios = Vec::with_capacity(reps);
            for rep in 0..reps {
                // Alternate which backend goes first, so drift favours neither.
                let (w, m) = if rep % 2 == 0 {
                    let w = timed(&mut wal, n, reads, rep)?;
                    (w, timed(&mut memory, n, reads, rep)?)
                } else {
                    let m = timed(&mut memory, n, reads, rep)?;
                    (timed(&mut wal, n, reads, rep)?, m)
                };
                println!("rep {rep}: wal {w:.0} entries/s, memory {m:.0}, ratio {:.3}", w / m);
                ratios.push(w / m);
            }
            ratios.sort_by(f64::total_cmp);
            let median = ratios[ratios.len() / 2];
            let (lo, hi) = (ratios[0], ratios[ratios.len() - 1]);
            println!(
                "median wal/memory over {reps} repetitions: {median:.3} (range {lo:.3}-{hi:.3})"
            );
        }
        other => return Err(bad(format!("unknown mode {other:?}"))),
    }
    Ok(())
}

/// Entries per second of `reads` reads (seeded by `seed`).
fn timed(store: &mut BenchStore, n: usize, reads: usize, seed: usize) -> Result<f64, BenchError> {
    let started = Instant::now();
    let read = reads_of(store, n, reads, seed as u64)?;
    Ok(read as f64 / started.elapsed().as_secs_f64())
}

/// Makes `reads` reads of `BATCH` entries ending in the last 1,000 of the `n` entries, as
/// the report's `read_recent` does; returns the entries read.
fn reads_of(
    store: &mut BenchStore,
    n: usize,
    reads: usize,
    seed: u64,
) -> Result<usize, BenchError> {
    let name = store.kind().name();
    let mut rng = Rng::new(seed + 1);
    let mut read = 0;
    for _ in 0..reads {
        let from = n - BATCH - rng.below((n - BATCH).min(1_000));
        let got =
            store.storage().get_entries(from, from + BATCH).map_err(BenchError::storage(name))?;
        if got.len() != BATCH || got[0].index() != Some(from as u64) {
            return Err(BenchError::WrongAnswer {
                backend: name.to_owned(),
                detail: format!("get_entries({from}, {}) gave a wrong answer", from + BATCH),
            });
        }
        read += got.len();
    }
    Ok(read)
}
