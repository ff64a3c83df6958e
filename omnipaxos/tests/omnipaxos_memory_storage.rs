//! What the conformance suite, in OmniPaxos-contract mode, finds in OmniPaxos 0.2.4's own
//! `omnipaxos_storage::memory_storage::MemoryStorage`: the expected findings by case name,
//! each with its reason. The test fails if a finding disappears or a new one appears.
//!
//! The same run on `Careful` (an OmniPaxos storage that keeps OmniPaxos' contract but
//! validates, applies batches whole and never underflows) finds nothing, so each finding
//! below is the storage's, not the mode's.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod careful;

use std::collections::BTreeMap;

use omnipaxos_storage::memory_storage::MemoryStorage;
use paxstore_omnipaxos::suite::{run_cases, SuiteEntry};

/// A read below the trimmed index underflows a `usize` (`from - self.trimmed_idx`) and
/// panics, where OmniPaxos' own contract says to return `[]`.
const READ_BELOW_TRIMMED: (&str, &str) = (
    "broke its read contract",
    "get_entries/get_suffix below the trimmed index panic (usize underflow) instead of returning []",
);
/// Any op is applied without a bound check, including ops that corrupt the log.
const UNVALIDATED: (&str, &str) = (
    "backend returned Ok(()), model says Err",
    "accepts an op that corrupts the log (no bounds are checked)",
);
/// A write below the trimmed index underflows a `usize` and panics.
const WRITE_BELOW_TRIMMED: (&str, &str) = (
    "panicked in write_atomically: attempt to subtract with overflow\" }), model says",
    "a Trim, SetCompactedIdx or AppendOnPrefix below the trimmed index panics (usize underflow)",
);
/// A panic in the middle of a batch leaves the ops before it applied.
const TORN: (&str, &str) = (
    "leaving the batch half applied",
    "an op that panics leaves the ops before it in the batch applied (not atomic)",
);
/// An append that would end the log past `usize::MAX` is accepted, as every op is.
const PAST_MAX: (&str, &str) = (
    "would end the log past the largest index",
    "accepts an append that would end the log past usize::MAX (no index is checked)",
);
/// Random sequences hit one of the defects above; which one depends on the sequence.
const RANDOM: (&str, &str) = (
    "on a random sequence",
    "random op sequences hit the defects above (the first one found is reported)",
);

/// What the suite finds, by case: `(case, (evidence in the failure message, reason))`.
const EXPECTED: &[(&str, (&str, &str))] = &[
    ("append_decide_trim_cycles", READ_BELOW_TRIMMED),
    ("append_on_prefix_after_trim", READ_BELOW_TRIMMED),
    ("appends_up_to_usize_max", PAST_MAX),
    ("atomic_invalid_first_op", READ_BELOW_TRIMMED),
    ("atomic_invalid_last_op", TORN),
    ("atomic_invalid_middle_op", UNVALIDATED),
    ("atomic_op_invalid_after_earlier_op", READ_BELOW_TRIMMED),
    ("compacted_idx_at_usize_max", PAST_MAX),
    ("decide_stopsign_with_snapshot_install", READ_BELOW_TRIMMED),
    ("decided_stopsign_at_usize_max", UNVALIDATED),
    ("decided_stopsign_allows_trim_and_replacement", READ_BELOW_TRIMMED),
    ("error_append_after_decided_stopsign", UNVALIDATED),
    ("error_append_on_prefix_below_compacted", WRITE_BELOW_TRIMMED),
    ("error_append_on_prefix_overwrites_decided", UNVALIDATED),
    ("error_append_on_prefix_past_end", UNVALIDATED),
    ("error_clear_decided_stopsign", UNVALIDATED),
    ("error_compacted_backwards", WRITE_BELOW_TRIMMED),
    ("error_compacted_past_decided_stopsign", UNVALIDATED),
    ("error_decided_past_end", UNVALIDATED),
    ("error_decided_past_end_with_stopsign", UNVALIDATED),
    ("reads_out_of_range_return_invalid_range", READ_BELOW_TRIMMED),
    ("error_trim_below_compacted", WRITE_BELOW_TRIMMED),
    ("error_trim_past_end", READ_BELOW_TRIMMED),
    ("flush_changes_nothing", READ_BELOW_TRIMMED),
    ("get_entries_every_range", READ_BELOW_TRIMMED),
    ("hundred_thousand_entry_log", READ_BELOW_TRIMMED),
    ("log_len_after_trim_counts_stored_entries", READ_BELOW_TRIMMED),
    ("mixed_batch_applies_in_order", READ_BELOW_TRIMMED),
    ("one_mib_entries", READ_BELOW_TRIMMED),
    ("provided_setters_equal_one_op_batches", READ_BELOW_TRIMMED),
    ("random_long_op_sequences", RANDOM),
    ("random_ops_match_model", RANDOM),
    ("set_compacted_idx_past_end", READ_BELOW_TRIMMED),
    ("set_compacted_idx_to_itself_is_a_no_op", READ_BELOW_TRIMMED),
    ("set_compacted_idx_within_log", READ_BELOW_TRIMMED),
    ("set_snapshot", READ_BELOW_TRIMMED),
    ("snapshot_install_batch", READ_BELOW_TRIMMED),
    ("store_usable_after_refused_batch", UNVALIDATED),
    ("trim_keeps_absolute_indices", READ_BELOW_TRIMMED),
    ("trim_to_compacted_idx_is_a_no_op", READ_BELOW_TRIMMED),
    ("trim_to_log_end", READ_BELOW_TRIMMED),
    ("trims_apply_in_batch_order", TORN),
    ("undecided_stopsign_opens_the_log", READ_BELOW_TRIMMED),
];

#[test]
fn the_suite_finds_these_defects_in_omnipaxos_memory_storage() {
    let outcomes = run_cases(|_| MemoryStorage::<SuiteEntry>::default(), false);
    assert_eq!(outcomes.len(), 58, "every case but the reopen, crash and power cases ran");
    let found: BTreeMap<&str, String> =
        outcomes.iter().filter_map(|o| o.failure.clone().map(|f| (o.name, f))).collect();
    let expected: BTreeMap<&str, (&str, &str)> = EXPECTED.iter().copied().collect();
    let new: Vec<_> = found.iter().filter(|(n, _)| !expected.contains_key(*n)).collect();
    let gone: Vec<_> = expected.keys().filter(|n| !found.contains_key(*n)).collect();
    assert!(
        new.is_empty() && gone.is_empty(),
        "the findings changed.\nnew: {new:#?}\ndisappeared: {gone:?}"
    );
    for (name, (evidence, reason)) in &expected {
        let failure = &found[name];
        assert!(
            failure.contains(evidence),
            "{name} was expected to fail because it {reason}, but failed with: {failure}"
        );
    }
    let passed: Vec<_> = outcomes.iter().filter(|o| o.failure.is_none()).map(|o| o.name).collect();
    eprintln!("{} cases pass: {passed:?}", passed.len());
}

#[test]
fn a_careful_omnipaxos_storage_passes_every_case() {
    let outcomes = run_cases(|_| careful::Careful::default(), false);
    let failed: Vec<_> = outcomes.iter().filter(|o| o.failure.is_some()).collect();
    assert!(failed.is_empty(), "{failed:#?}");
}
