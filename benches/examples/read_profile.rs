//! Reads of 100 recent entries (the report's `read_recent` cell: 128-byte entries, ranges
//! ending in the last 1,000 entries of a freshly written log), to profile or time them.
//!
//! - `read_profile count wal|memory [ENTRIES] [READS]`: fills one backend, then makes
//!   `READS` reads as the report does; run it under
//!   `valgrind --tool=callgrind --toggle-collect='*get_entries*'` to count the
//!   instructions of the reads alone.
//! - `read_profile time [ENTRIES] [REPS] [READS]`: fills both, then `REPS` interleaved
//!   repetitions of `READS` reads each, timed as the report times them (`read_run`);
//!   prints each backend's entries/s per repetition and the median of the per-repetition
//!   ratio WAL / memory.
//!
//! `cargo run --release -p paxstore-benches --no-default-features --features wal --example read_profile -- time`

use std::time::Duration;

use paxstore_backends::BackendKind;
use paxstore_benches::workload::{read_durability, BenchStore, Budget, ReadRange, Rng};
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
            let rate = timed(&mut store, reads, 0)?;
            println!("{} {reads} reads of {BATCH}: {rate:.0} entries/s", kind.name());
        }
        "time" => {
            let (n, reps, reads) = (number(2, "1000000")?, number(3, "21")?, number(4, "20000")?);
            let mut wal = open(BackendKind::Wal, n)?;
            let mut memory = open(BackendKind::Memory, n)?;
            let mut ratios = Vec::with_capacity(reps);
            for rep in 0..reps {
                // Alternate which backend goes first, so drift favours neither.
                let (w, m) = if rep % 2 == 0 {
                    let w = timed(&mut wal, reads, rep)?;
                    (w, timed(&mut memory, reads, rep)?)
                } else {
                    let m = timed(&mut memory, reads, rep)?;
                    (timed(&mut wal, reads, rep)?, m)
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

/// Entries per second of `reads` reads (seeded by `seed`), timed as the report times them:
/// [`BenchStore::read_run`], one `get_entries` call at a time (dropping the entries read
/// is not timed).
fn timed(store: &mut BenchStore, reads: usize, seed: usize) -> Result<f64, BenchError> {
    let mut rng = Rng::new(seed as u64 + 1);
    let samples = store.read_run(ReadRange::Recent, BATCH, &mut rng, Budget::calls(reads))?;
    let took: Duration = samples.latencies.iter().sum();
    Ok((samples.latencies.len() * BATCH) as f64 / took.as_secs_f64())
}
