//! Runs one replica cell long enough to profile it (e.g. under `valgrind --tool=callgrind`):
//! `cargo run --release -p paxstore-benches --example replica_profile -- paxstore|omnipaxos|floor|floor-memory
//! upfront|stream BATCH ENTRIES`.

use std::time::Duration;

use paxstore_backends::BackendKind;
use paxstore_benches::floor::{self, FloorCluster};
use paxstore_benches::replica::{Mode, PaxstoreCluster};
use paxstore_benches::{omni, BenchError};

fn main() -> Result<(), BenchError> {
    let args: Vec<String> = std::env::args().collect();
    let arg = |i: usize, default: &str| args.get(i).cloned().unwrap_or_else(|| default.to_owned());
    let bad = |detail: String| BenchError::Cluster { backend: "memory".to_owned(), detail };
    let which = arg(1, "paxstore");
    let mode: Mode = arg(2, "stream").parse().map_err(bad)?;
    let number = |i: usize, default: &str| {
        let text = arg(i, default);
        text.parse::<usize>().map_err(|e| bad(format!("argument {i}: {text:?}: {e}")))
    };
    let (batch, entries) = (number(3, "1")?, number(4, "200000")?);
    let entries = entries.max(batch);
    let dir = tempfile::tempdir().map_err(|e| bad(e.to_string()))?;
    let run = match which.as_str() {
        "paxstore" => {
            let mut c = PaxstoreCluster::new(BackendKind::Memory, None, dir.path(), batch)?;
            c.rounds.run(mode, entries, Duration::ZERO)?
        }
        "omnipaxos" => omni::memory_cluster(batch)?.run(mode, entries, Duration::ZERO)?,
        "floor" => floor::bare_cluster(batch)?.run(mode, entries, Duration::ZERO)?,
        "floor-memory" => {
            let mut c = FloorCluster::new(BackendKind::Memory, None, dir.path(), batch)?;
            c.rounds.run(mode, entries, Duration::ZERO)?
        }
        other => return Err(bad(format!("unknown replica {other:?}"))),
    };
    let name = mode.name();
    println!("{which} {name} b{batch}: {} decided, {:.0}/s", run.decided, run.decided_per_s());
    Ok(())
}
