//! Runs every scenario file in `tests/scenarios/` (see `paxstore_paxos::scenario` for
//! the language) over the memory backend; each file is one story with its expected
//! outcome.

// Tests may unwrap: a failure is the test failing.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::Path;

use paxstore_backends::MemoryStorage;
use paxstore_paxos::scenario::{EntryKind, Scenario};
use paxstore_paxos::sim::{SimEntry, TrimEntry};

fn run(file: &str) {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/scenarios").join(file);
    let text = std::fs::read_to_string(&path).unwrap();
    let scenario = Scenario::parse(file, &text).unwrap();
    let result = match scenario.entries {
        EntryKind::Trim => scenario.run::<TrimEntry, _>(|_| MemoryStorage::new()),
        EntryKind::Snapshot => scenario.run::<SimEntry, _>(|_| MemoryStorage::new()),
    };
    if let Err(e) = result {
        panic!("{e}");
    }
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
