//! The deterministic simulator over the memory backend: many seeds, many steps, crashes
//! (at random, right before a step's write, right after an acknowledgement), partitions,
//! partial connectivity, drops, duplicates, splits and reordering; then progress under
//! partial connectivity and liveness; zero violations. And the simulator failing on each
//! defect the replica once had, re-introduced.
//!
//! `PAXSTORE_SIM_SEED=<seed>` replays one seed; `PAXSTORE_SIM_SEEDS=<n>` runs `n` seeds per
//! setup, starting at `PAXSTORE_SIM_FIRST_SEED` (default 0).

// Tests may unwrap: a failure is the test failing.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use paxstore_backends::MemoryStorage;
use paxstore_paxos::sim::{
    run_seeds, seeds_from_env, stats, summary, OpenStorage, SimConfig, SimEntry, SimOutcome,
    SimValue, TrimEntry,
};
use paxstore_paxos::InjectedBug;

fn memory<T: SimValue>(_seed: u64) -> OpenStorage<MemoryStorage<T>> {
    Box::new(|_pid, old| old.unwrap_or_default())
}

fn seeds(default: u64) -> Vec<u64> {
    seeds_from_env(default).unwrap()
}

fn report(name: &str, outcomes: &[SimOutcome]) {
    println!("{name}: {}\n{}", summary(outcomes), stats(outcomes));
    assert!(outcomes.iter().all(|o| o.violations.is_empty()), "{}", summary(outcomes));
}

fn harsh_5_nodes() -> SimConfig {
    SimConfig {
        nodes: 5,
        drop_rate: 0.15,
        dup_rate: 0.1,
        max_delay: 4,
        crash_rate: 0.01,
        partition_rate: 0.01,
        compact_rate: 0.02,
        batch_size: 3,
        ..SimConfig::default()
    }
}

fn flexible_quorum_slow_network() -> SimConfig {
    SimConfig {
        nodes: 4,
        flexible_quorum: Some((3, 2)),
        drop_rate: 0.25,
        max_delay: 8,
        batch_size: 10,
        partial_connectivity_steps: 1200,
        liveness_steps: 800,
        ..SimConfig::default()
    }
}

#[test]
fn simulator_memory_snapshots_3_nodes() {
    let outcomes = run_seeds::<SimEntry, _>(&SimConfig::default(), seeds(2000), memory);
    report("3 nodes", &outcomes);
}

#[test]
fn simulator_memory_trim_5_nodes_harsh() {
    let outcomes = run_seeds::<TrimEntry, _>(&harsh_5_nodes(), seeds(500), memory);
    report("5 nodes harsh", &outcomes);
}

#[test]
fn simulator_memory_flexible_quorum_and_slow_network() {
    let outcomes = run_seeds::<SimEntry, _>(&flexible_quorum_slow_network(), seeds(500), memory);
    report("flexible quorum", &outcomes);
}

#[test]
fn a_seed_replays_exactly() {
    let cfg = SimConfig::default();
    let run = || run_seeds::<SimEntry, _>(&cfg, [42, 4242], memory);
    let key = |o: &SimOutcome| (o.steps, o.decided, o.delivered, o.crashes, o.partitions);
    let (a, b) = (run(), run());
    assert_eq!(a.iter().map(key).collect::<Vec<_>>(), b.iter().map(key).collect::<Vec<_>>());
}

/// Runs `cfg` with `bug` seed by seed until a violation; returns it and the seeds run.
fn first_violation(cfg: SimConfig, bug: InjectedBug, max_seeds: u64) -> (String, u64) {
    let cfg = SimConfig { bug: Some(bug), ..cfg };
    for seed in 0..max_seeds {
        let outcome = run_seeds::<SimEntry, _>(&cfg, [seed], memory).remove(0);
        if let Some(v) = outcome.violations.into_iter().next() {
            println!("{bug:?}: caught at seed {seed}: {v}");
            return (v, seed + 1);
        }
    }
    panic!("{bug:?}: no violation in {max_seeds} seeds");
}

#[test]
fn the_simulator_catches_duplicate_forwards_decided_twice() {
    let (v, _) = first_violation(SimConfig::default(), InjectedBug::DuplicateForwards, 50);
    assert!(v.contains("already decided at index"), "{v}");
}

#[test]
fn the_simulator_catches_a_promise_written_after_it_is_sent() {
    let (v, seeds) = first_violation(SimConfig::default(), InjectedBug::PromiseAfterSend, 500);
    assert!(v.contains("persist-before-send"), "{v}");
    assert_eq!(seeds, 1, "the first Promise already breaks the invariant");
}

/// A promise never written does damage only if the replica crashes before it promises
/// again and an older leader then gets its vote. The crashes right after a `Promise` make
/// that likely enough for the agreement check alone to catch it within CI's seeds.
#[test]
fn the_simulator_catches_an_unwritten_promise_by_its_consequences() {
    let (v, _) = first_violation(SimConfig::default(), InjectedBug::UnwrittenPromise, 500);
    assert!(v.contains("persist-before-send"), "{v}");
    let blind = SimConfig { check_persist_before_send: false, ..SimConfig::default() };
    let (v, seeds) = first_violation(blind, InjectedBug::UnwrittenPromise, 500);
    assert!(v.contains("was decided there before") || v.contains("already decided"), "{v}");
    println!("agreement broken after {seeds} seeds");
}

#[test]
fn the_simulator_catches_a_zombie_leader_under_partial_connectivity() {
    let (v, _) = first_violation(SimConfig::default(), InjectedBug::ZombieLeader, 500);
    assert!(v.contains("partial connectivity"), "{v}");
}
