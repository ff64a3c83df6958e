//! The deterministic simulator over the memory backend: many seeds, many steps, crashes,
//! partitions, drops, duplicates and reordering; zero violations.
//!
//! `PAXSTORE_SIM_SEED=<seed>` replays one seed; `PAXSTORE_SIM_SEEDS=<n>` runs more seeds,
//! starting at `PAXSTORE_SIM_FIRST_SEED` (default 0).

// Tests may unwrap: a failure is the test failing.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use paxstore_backends::MemoryStorage;
use paxstore_paxos::sim::{
    run_seeds, stats, summary, OpenStorage, SimConfig, SimEntry, SimValue, TrimEntry,
};

fn memory<T: SimValue>(_seed: u64) -> OpenStorage<MemoryStorage<T>> {
    Box::new(|_pid, old| old.unwrap_or_default())
}

fn seeds(default: u64) -> Vec<u64> {
    if let Ok(seed) = std::env::var("PAXSTORE_SIM_SEED") {
        return vec![seed.parse().expect("PAXSTORE_SIM_SEED is a number")];
    }
    let var = |name: &str| std::env::var(name).ok().and_then(|s| s.parse::<u64>().ok());
    let n = var("PAXSTORE_SIM_SEEDS").unwrap_or(default);
    let first = var("PAXSTORE_SIM_FIRST_SEED").unwrap_or(0);
    (first..first + n).collect()
}

#[test]
fn simulator_memory_snapshots_3_nodes() {
    let cfg = SimConfig::default();
    let outcomes = run_seeds::<SimEntry, _>(&cfg, seeds(500), memory);
    println!("{}\n{}", summary(&outcomes), stats(&outcomes));
    assert!(outcomes.iter().all(|o| o.violations.is_empty()), "{}", summary(&outcomes));
}

#[test]
fn simulator_memory_trim_5_nodes_harsh() {
    let cfg = SimConfig {
        nodes: 5,
        drop_rate: 0.15,
        dup_rate: 0.1,
        max_delay: 4,
        crash_rate: 0.01,
        partition_rate: 0.01,
        compact_rate: 0.02,
        batch_size: 3,
        ..SimConfig::default()
    };
    let outcomes = run_seeds::<TrimEntry, _>(&cfg, seeds(100), memory);
    println!("{}\n{}", summary(&outcomes), stats(&outcomes));
    assert!(outcomes.iter().all(|o| o.violations.is_empty()), "{}", summary(&outcomes));
}

#[test]
fn simulator_memory_flexible_quorum_and_slow_network() {
    let cfg = SimConfig {
        nodes: 4,
        flexible_quorum: Some((3, 2)),
        drop_rate: 0.25,
        max_delay: 8,
        batch_size: 10,
        liveness_steps: 800,
        ..SimConfig::default()
    };
    let outcomes = run_seeds::<SimEntry, _>(&cfg, seeds(100), memory);
    println!("{}\n{}", summary(&outcomes), stats(&outcomes));
    assert!(outcomes.iter().all(|o| o.violations.is_empty()), "{}", summary(&outcomes));
}

#[test]
fn a_seed_replays_exactly() {
    let cfg = SimConfig::default();
    let run = || run_seeds::<SimEntry, _>(&cfg, [42, 4242], memory);
    let key = |o: &paxstore_paxos::sim::SimOutcome| {
        (o.steps, o.decided, o.delivered, o.crashes, o.partitions)
    };
    let (a, b) = (run(), run());
    assert_eq!(a.iter().map(key).collect::<Vec<_>>(), b.iter().map(key).collect::<Vec<_>>());
}
