//! Runs one replica cell long enough to profile it (e.g. under `valgrind --tool=callgrind`):
//! `cargo run --release -p paxstore-benches --example replica_profile -- paxstore|omnipaxos|floor|floor-memory
//! upfront|stream BATCH ENTRIES`.

use std::time::Duration;

use paxstore_backends::BackendKind;
use paxstore_benches::replica::{self, Mode, PaxstoreCluster};
use paxstore_benches::{omni, BenchError};

fn main() -> Result<(), BenchError> {
    let args: Vec<String> = std::env::args().collect();
    let arg = |i: usize, default: &str| args.get(i).cloned().unwrap_or_else(|| default.to_owned());
    let which = arg(1, "paxstore");
    let mode: Mode = arg(2, "stream")
        .parse()
        .map_err(|e| BenchError::Cluster { backend: "memory".to_owned(), detail: e })?;
    let batch: usize = arg(3, "1").parse().unwrap_or(1);
    let entries: usize = arg(4, "200000").parse().unwrap_or(200_000);
    let dir = tempfile::tempdir()
        .map_err(|e| BenchError::Cluster { backend: "memory".to_owned(), detail: e.to_string() })?;
    let run = match which.as_str() {
        "floor" => {
            let mut rounds = paxstore_benches::floor::bare_cluster(batch)?;
            rounds.run(mode, entries.max(batch), Duration::ZERO)?
        }
        "floor-memory" => {
            let mut c = paxstore_benches::floor::FloorCluster::new(
                BackendKind::Memory,
                None,
                dir.path(),
                batch,
            )?;
            c.rounds.run(mode, entries.max(batch), Duration::ZERO)?
        }
        "omnipaxos" => {
            let mut rounds = omni::memory_cluster(batch)?;
            rounds.run(mode, entries.max(batch), Duration::ZERO)?
        }
        _ => {
            let mut c = PaxstoreCluster::new(BackendKind::Memory, None, dir.path(), batch)?;
            c.rounds.run(mode, entries.max(batch), Duration::ZERO)?
        }
    };
    let _ = replica::REPLICAS;
    println!(
        "{which} {} b{batch}: {} decided, {:.0}/s",
        mode.name(),
        run.decided,
        run.decided_per_s()
    );
    Ok(())
}
