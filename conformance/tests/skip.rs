//! `storage_suite!`'s `skip = [..]` and `only = [..]`: a case of a skipped group is still
//! listed by the test harness and reported *ignored* with the reason, never run, never
//! passed. Checked from outside, the way a user meets it: this test binary runs itself
//! (`--list`, `--exact <case>`) and reads what libtest prints.

use std::process::Command;

use paxstore_backends::MemoryStorage;

/// The memory backend's suite with two groups skipped.
mod skipped {
    paxstore_conformance::storage_suite!(
        volatile,
        new = || Ok(super::MemoryStorage::new()),
        skip = [ops, random, sizes, stopsign, limits, flush, errors]
    );
}

/// The memory backend's suite with one group selected.
mod selected {
    paxstore_conformance::storage_suite!(
        volatile,
        new = || Ok(super::MemoryStorage::new()),
        only = [errors]
    );
}

/// This test binary, run with `args`: what it printed.
fn harness(args: &[&str]) -> String {
    let exe = std::env::current_exe().unwrap_or_else(|err| panic!("current_exe: {err}"));
    let output = Command::new(exe)
        .args(args)
        .output()
        .unwrap_or_else(|err| panic!("running the test binary with {args:?}: {err}"));
    String::from_utf8_lossy(&output.stdout).into_owned()
}

/// The tests `--list` prints, with `--ignored` only the ignored ones.
fn listed(ignored: bool) -> Vec<String> {
    let args: &[&str] = if ignored { &["--list", "--ignored"] } else { &["--list"] };
    let out = harness(args);
    out.lines().filter_map(|l| l.strip_suffix(": test")).map(str::to_owned).collect()
}

/// The reason `test` is reported ignored with when run on its own, or what it reported
/// instead (`ok`, `FAILED`, or the missing line).
fn ignored_reason(test: &str) -> Result<String, String> {
    let out = harness(&["--exact", test]);
    let prefix = format!("test {test} ... ");
    let Some(line) = out.lines().find_map(|l| l.strip_prefix(&prefix)) else {
        return Err(format!("no line for {test} in:\n{out}"));
    };
    match line.strip_prefix("ignored, ") {
        Some(reason) if out.contains("0 passed; 0 failed; 1 ignored") => Ok(reason.to_owned()),
        _ => Err(format!("{test}: {line}")),
    }
}

/// `test` is listed, listed as ignored, and run alone reports ignored with a reason that
/// starts `reason`.
fn assert_skipped(test: &str, reason: &str) {
    assert!(listed(false).iter().any(|t| t == test), "{test} is not listed");
    assert!(listed(true).iter().any(|t| t == test), "{test} is not listed as ignored");
    match ignored_reason(test) {
        Ok(got) => assert!(got.starts_with(reason), "{test}: ignored with {got:?}"),
        Err(got) => panic!("{test} is not reported ignored: {got}"),
    }
}

#[test]
fn cases_of_skipped_groups_are_listed_and_reported_ignored_with_the_reason() {
    for test in [
        "skipped::random_ops_match_model",
        "skipped::random_long_op_sequences",
        "skipped::one_mib_entries",
        "skipped::append_entry",
        "skipped::decide_stopsign",
        "skipped::appends_up_to_usize_max",
        "skipped::flush_changes_nothing",
        "skipped::error_trim_past_end",
    ] {
        assert_skipped(test, "skipped by the suite's caller: its group is in `skip = [..]`");
    }
}

#[test]
fn cases_outside_only_are_listed_and_reported_ignored_with_the_reason() {
    for test in ["selected::append_entry", "selected::random_ops_match_model"] {
        assert_skipped(test, "skipped by the suite's caller: its group is not in `only = [..]`");
    }
}

#[test]
fn a_case_that_needs_a_persistent_backend_keeps_the_volatile_reason() {
    for test in ["skipped::random_ops_with_reopen_match_model", "selected::reopen_empty"] {
        assert_skipped(test, "volatile backend:");
    }
}

/// The groups left in run (the broken variant of a skip: a case the caller did not
/// skip): they run and pass, and the check above fails on them.
#[test]
fn cases_not_skipped_run_and_the_check_catches_them() {
    for test in ["skipped::atomic_invalid_first_op", "selected::error_trim_past_end"] {
        assert!(!listed(true).iter().any(|t| t == test), "{test} is listed as ignored");
        assert_eq!(ignored_reason(test), Err(format!("{test}: ok")));
        let check = std::panic::catch_unwind(|| assert_skipped(test, "skipped"));
        assert!(check.is_err(), "the check passed {test}, which ran");
    }
}
