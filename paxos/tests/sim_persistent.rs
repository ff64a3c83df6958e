//! The simulator over every persistent backend compiled into `paxstore-backends` (enable
//! them with e.g. `--features paxstore-backends/wal,paxstore-backends/sled`, or
//! `paxstore-backends/all`): replicas crash and restart by dropping their storage and
//! reopening its files.
//!
//! `PAXSTORE_SIM_SEEDS=<n>` runs `n` seeds per backend (see `sim::seeds_from_env`).

// Tests may unwrap: a failure is the test failing.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use paxstore::{Durability, Storage};
use paxstore_backends::BackendKind;
use paxstore_paxos::sim::{run_seeds, stats, summary, OpenStorage, SimConfig, SimEntry};

#[test]
fn simulator_over_every_persistent_backend() {
    let kinds: Vec<BackendKind> =
        BackendKind::compiled_in().into_iter().filter(|k| k.is_persistent()).collect();
    if kinds.is_empty() {
        println!(
            "sim: no persistent backend compiled in; enable e.g. \
             `--features paxstore-backends/wal,paxstore-backends/sled`"
        );
        return;
    }
    let seeds = paxstore_paxos::sim::seeds_from_env(5).unwrap();
    let cfg = SimConfig { crash_rate: 0.01, restart_rate: 0.05, ..SimConfig::default() };
    let mut all = Vec::new();
    for kind in kinds {
        let started = std::time::Instant::now();
        let base = tempfile::tempdir().unwrap();
        let root = base.path().to_path_buf();
        let outcomes =
            run_seeds::<SimEntry, Box<dyn Storage<SimEntry>>>(&cfg, seeds.clone(), |seed| {
                let dir = root.join(format!("seed-{seed}"));
                let open: OpenStorage<Box<dyn Storage<SimEntry>>> = Box::new(move |pid, old| {
                    drop(old); // a crash: the process's handles are gone; reopen the files
                    kind.open::<SimEntry>(&dir.join(format!("replica-{pid}")), Durability::Buffered)
                        .unwrap_or_else(|e| panic!("{kind}: cannot open replica {pid}: {e}"))
                });
                open
            });
        let crashes: usize = outcomes.iter().map(|o| o.crashes).sum();
        println!("{kind}: {} crashes={crashes} in {:?}", summary(&outcomes), started.elapsed());
        all.extend(outcomes);
    }
    println!("{}\n{}", summary(&all), stats(&all));
    assert!(all.iter().all(|o| o.violations.is_empty()), "{}", summary(&all));
}
