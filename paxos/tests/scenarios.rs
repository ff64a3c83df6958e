//! Runs every scenario file in `tests/scenarios/` (see `paxstore_paxos::scenario` for
//! the language) over the memory backend; each file is one story with its expected
//! outcome. Then some of them again with a defect the replica once had put back: each
//! must fail, at the line that tells the story of that defect.

// Tests may unwrap: a failure is the test failing.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::Path;

use paxstore_backends::MemoryStorage;
use paxstore_paxos::scenario::{EntryKind, Scenario, ScenarioError};
use paxstore_paxos::sim::{SimEntry, TrimEntry};
use paxstore_paxos::InjectedBug;

fn load(file: &str) -> Scenario {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/scenarios").join(file);
    let text = std::fs::read_to_string(&path).unwrap();
    Scenario::parse(file, &text).unwrap()
}

fn run_scenario(scenario: &Scenario) -> Result<(), ScenarioError> {
    match scenario.entries {
        EntryKind::Trim => scenario.run::<TrimEntry, _>(|_| MemoryStorage::new()),
        EntryKind::Snapshot => scenario.run::<SimEntry, _>(|_| MemoryStorage::new()),
    }
}

fn run(file: &str) {
    if let Err(e) = run_scenario(&load(file)) {
        panic!("{e}");
    }
}

/// Runs `file` with `bug` put back; it must fail with a message containing `expected`.
fn fails_with_bug(file: &str, bug: InjectedBug, expected: &str) -> ScenarioError {
    let Err(err) = run_scenario(&load(file).with_bug(bug)) else {
        panic!("{file} passed with {bug:?} put back");
    };
    println!("{bug:?}: {err}");
    assert!(err.text.contains(expected), "{err}");
    err
}

macro_rules! scenarios {
    ($($name:ident),* $(,)?) => {
        $(
            #[test]
            fn $name() {
                run(concat!(stringify!($name), ".txt"));
            }
        )*

        #[test]
        fn every_scenario_file_has_a_test() {
            let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/scenarios");
            let mut files: Vec<String> = std::fs::read_dir(dir)
                .unwrap()
                .map(|e| e.unwrap().file_name().into_string().unwrap())
                .collect();
            files.sort();
            let mut named = vec![$(concat!(stringify!($name), ".txt").to_string()),*];
            named.sort();
            assert_eq!(files, named);
        }
    };
}

scenarios!(
    leader_crash_mid_accept,
    follower_missed_many_entries,
    diverged_suffix_truncated,
    reconfiguration_with_appends_in_flight,
    trim_while_follower_lags,
    snapshot_while_follower_lags,
    quorum_loss,
    constrained_election,
    chained_leader_keeps_deciding,
    chained_deposed_leader_steps_down,
    duplicated_forward_decided_once,
    restart_is_quiet,
);

#[test]
fn a_failed_expectation_names_the_line() {
    let text = "cluster 3\nelect\nexpect decided all 1 a\n";
    let err = Scenario::parse("inline", text)
        .unwrap()
        .run::<TrimEntry, _>(|_| MemoryStorage::new())
        .unwrap_err();
    assert_eq!(err.line, 3, "{err}");
}

#[test]
fn duplicated_forwards_are_decided_twice_without_numbering() {
    fails_with_bug(
        "duplicated_forward_decided_once.txt",
        InjectedBug::DuplicateForwards,
        "expect decided all",
    );
}

#[test]
fn a_deposed_leader_that_is_never_told_stays_a_zombie() {
    // The refusal of its accept is what should depose it.
    let err = fails_with_bug(
        "chained_deposed_leader_steps_down.txt",
        InjectedBug::ZombieLeader,
        "expect leaders 1",
    );
    assert!(err.message.contains("[1, 3]"), "{err}");
}

#[test]
fn without_vouching_the_cut_off_replica_starts_a_duel_in_the_chain() {
    fails_with_bug("chained_leader_keeps_deciding.txt", InjectedBug::ZombieLeader, "expect");
}

#[test]
fn a_loud_restart_unseats_the_live_leader() {
    fails_with_bug("restart_is_quiet.txt", InjectedBug::LoudRestart, "expect leaders 2");
}
