//! # paxstore-conformance: the shared suite every paxstore backend passes
//!
//! One line runs the whole suite against a backend, one named `#[test]` per case:
//!
//! ```ignore
//! // tests/conformance.rs of your crate
//! paxstore_conformance::storage_suite!(persistent, |dir: &std::path::Path| MyStore::open(dir));
//! ```
//!
//! The closure opens the store kept in `dir` (creating it when `dir` is empty) and
//! returns `StorageResult<S>` for some `S: Storage<TestEntry>`. Write `volatile` instead of
//! `persistent` for a backend that keeps nothing across a reopen: its reopen and crash
//! cases are then reported as *ignored*, by name, never as passing. A volatile backend
//! needs no directory: `storage_suite!(volatile, new = || Ok(MyStore::new()))`.
//!
//! ## What it checks
//!
//! Every case holds the backend to [`Model`], a few dozen obvious lines implementing the
//! contract of the `paxstore` crate, and compares **every getter** (including the exact
//! `InvalidRange` errors of reads past each bound) after every write:
//!
//! - every op and getter, alone and in mixed batches;
//! - every documented error, with its exact typed reason, changing nothing;
//! - every op at the `usize::MAX` index limits: applied and read back exactly, or refused
//!   as `IndexOverflow` with nothing changed (no index wraps around);
//! - the decided stop sign (`decided_idx = log_end + 1`): deciding it, what it closes,
//!   what stays valid, and its reopen;
//! - atomicity: a batch whose first, middle, last or dependent op is invalid leaves no
//!   trace;
//! - empty batches, empty entries, 1 MiB entries, a 100,000-entry log;
//! - property-based random op sequences, valid and invalid, shrunk to a 1-minimal failing
//!   sequence printed as the concrete calls it made (`PAXSTORE_PROPTEST_CASES`, default
//!   256 sequences per property; `PAXSTORE_PROPTEST_SEED`, printed, replays a run);
//! - `flush`: changes nothing a getter shows; what it flushed survives a reopen and a
//!   SIGKILL (a power-loss check waits for the crash filesystem);
//! - persistent backends: reopen after every kind of write, random sequences with
//!   reopens, and a SIGKILL crash harness ([`crash`], `PAXSTORE_CRASH_ITERATIONS`,
//!   default 30 iterations of two kills each; `PAXSTORE_CRASH_SEED`, printed, replays a
//!   run), whose batches include big ones (100 to 2,000 entries, up to 8 MiB, with
//!   metadata), half its kills aimed at them;
//! - persistent backends, on the crash filesystem ([`power`], `paxstore-crashfs`):
//!   real power cuts under a writer (`power_loss_keeps_acknowledged_batches`,
//!   `PAXSTORE_POWER_CUTS`, default 4; `PAXSTORE_POWER_SEED` replays a run), `EIO`/`ENOSPC`
//!   at each I/O call of a batch (`failed_write_changes_nothing`, [`faults`]) and a kill
//!   at each I/O call of a big batch
//!   (`kill_at_each_io_call_leaves_the_batch_whole_or_absent`, [`kill`]). They need FUSE (Linux, root, `/dev/fuse`); where
//!   it cannot be mounted they print `SKIPPED <case>: <reason>` and fail, unless
//!   `PAXSTORE_ALLOW_NO_FUSE=1` is set (then they print the line and return).
//!
//! ## Durability and known limits
//!
//! `storage_suite!(persistent, open)` holds the backend to `Durability::Immediate`: after
//! a power cut, every acknowledged batch is there. `storage_suite!(persistent, buffered,
//! open)` holds it to `Buffered`: a prefix of whole batches, and the store opens. Append
//! `, failed_writes_ignored = "reason"` to report `failed_write_changes_nothing` and
//! `kill_at_each_io_call_leaves_the_batch_whole_or_absent` (whose kill fails every call
//! after it with `EIO`) as ignored, by name, with the reason (for an engine that cannot
//! survive an I/O error; paxstore's sled backend is one).
//!
//! ## How a failure reads
//!
//! A case does not stop at the first getter that disagrees: each disagreeing check (a
//! getter, or a read past one bound) is listed once, with the batch written before it,
//! and the case goes on, so one systematic difference does not hide the others. A check
//! that another case of the same suite already described in full is named with that
//! case. A panic in the backend is reported with the case and the batch. Every random
//! run prints its seed, and its failure names the variable that replays it.
//!
//! The cases are public functions in [`cases`], generic over [`Factory`], for a suite
//! that wants to call some of them itself; [`all_cases`] lists them by name.

pub mod cases;
pub mod check;
pub mod crash;
pub mod describe;
mod entry;
mod factory;
pub mod faults;
pub mod kill;
mod model;
pub mod power;

pub use check::{compare, mismatches, Fixture, Mismatch};
pub use entry::{TestEntry, TestSnapshot};
pub use factory::{from_fn, Factory, FnFactory};
pub use model::Model;

/// The soak multiplier, `PAXSTORE_SOAK` (default 1): every randomised case runs this many
/// times its CI-sized default (random sequences per property, crash iterations), unless
/// its own variable (`PAXSTORE_PROPTEST_CASES`, `PAXSTORE_CRASH_ITERATIONS`) is set.
/// `PAXSTORE_SOAK=10 scripts/test.sh` is the nightly-scale run.
pub fn soak_factor() -> u32 {
    std::env::var("PAXSTORE_SOAK").ok().and_then(|v| v.parse::<u32>().ok()).unwrap_or(1).max(1)
}

/// Expands to one `#[test]` per conformance case for the backend `open` opens.
///
/// `storage_suite!(persistent, open)` runs every case, the power-loss case for
/// `Immediate`; `storage_suite!(persistent, buffered, open)` runs the power-loss case for
/// `Buffered`; `storage_suite!(volatile, open)` marks the reopen, crash, power and fault
/// cases `#[ignore]` with the reason. A trailing `, failed_writes_ignored = "reason"`
/// (after a persistent `open`) marks `failed_write_changes_nothing` and
/// `kill_at_each_io_call_leaves_the_batch_whole_or_absent` `#[ignore]` with that reason;
/// a further `, power_loss_ignored = "reason"` marks `power_loss_keeps_acknowledged_batches`
/// `#[ignore]` too (an engine defect found by that case; `--include-ignored` still runs it). `open` is a closure or function `Fn(&Path) -> StorageResult<S>` where
/// `S: Storage<TestEntry>`; a volatile backend can give `new = || ...` instead, a
/// `Fn() -> StorageResult<S>` that makes a fresh store
/// (`storage_suite!(volatile, new = || Ok(MemoryStorage::new()))`).
#[macro_export]
macro_rules! storage_suite {
    (persistent, buffered, $open:expr, failed_writes_ignored = $why:literal, power_loss_ignored = $power_why:literal) => {
        $crate::__storage_suite_cases!(run; $open);
        $crate::__storage_suite_persistent_cases!(run; $open);
        $crate::__storage_suite_power_cases!(run(Buffered), $why, $power_why; $open);
    };
    (persistent, $open:expr, failed_writes_ignored = $why:literal, power_loss_ignored = $power_why:literal) => {
        $crate::__storage_suite_cases!(run; $open);
        $crate::__storage_suite_persistent_cases!(run; $open);
        $crate::__storage_suite_power_cases!(run(Immediate), $why, $power_why; $open);
    };
    (persistent, buffered, $open:expr, failed_writes_ignored = $why:literal) => {
        $crate::__storage_suite_cases!(run; $open);
        $crate::__storage_suite_persistent_cases!(run; $open);
        $crate::__storage_suite_power_cases!(run(Buffered), $why; $open);
    };
    (persistent, $open:expr, failed_writes_ignored = $why:literal) => {
        $crate::__storage_suite_cases!(run; $open);
        $crate::__storage_suite_persistent_cases!(run; $open);
        $crate::__storage_suite_power_cases!(run(Immediate), $why; $open);
    };
    (persistent, buffered, $open:expr) => {
        $crate::__storage_suite_cases!(run; $open);
        $crate::__storage_suite_persistent_cases!(run; $open);
        $crate::__storage_suite_power_cases!(run(Buffered); $open);
    };
    (persistent, $open:expr) => {
        $crate::__storage_suite_cases!(run; $open);
        $crate::__storage_suite_persistent_cases!(run; $open);
        $crate::__storage_suite_power_cases!(run(Immediate); $open);
    };
    (volatile, new = $new:expr) => {
        $crate::storage_suite!(volatile, |_dir: &::std::path::Path| ($new)());
    };
    (volatile, $open:expr) => {
        $crate::__storage_suite_cases!(run; $open);
        $crate::__storage_suite_persistent_cases!(ignore; $open);
        $crate::__storage_suite_power_cases!(ignore; $open);
    };
}

#[doc(hidden)]
pub use paxstore::Durability as __Durability;

#[doc(hidden)]
#[macro_export]
macro_rules! __storage_suite_power_cases {
    (run($durability:ident), $why:literal, $power_why:literal; $open:expr) => {
        #[test]
        #[ignore = $power_why]
        fn power_loss_keeps_acknowledged_batches() {
            $crate::cases::power_loss_keeps_acknowledged_batches(
                &$crate::from_fn($open),
                concat!(module_path!(), "::power_loss_keeps_acknowledged_batches"),
                $crate::__Durability::$durability,
            );
        }
        $crate::__storage_suite_power_cases!(@faults_ignored $durability, $why; $open);
    };
    (run($durability:ident), $why:literal; $open:expr) => {
        $crate::__storage_suite_power_cases!(@power $durability; $open);
        $crate::__storage_suite_power_cases!(@faults_ignored $durability, $why; $open);
    };
    (@faults_ignored $durability:ident, $why:literal; $open:expr) => {
        #[test]
        #[ignore = $why]
        fn failed_write_changes_nothing() {
            $crate::cases::failed_write_changes_nothing(
                &$crate::from_fn($open),
                $crate::__Durability::$durability,
            );
        }
        #[test]
        #[ignore = $why]
        fn kill_at_each_io_call_leaves_the_batch_whole_or_absent() {
            $crate::cases::kill_at_each_io_call_leaves_the_batch_whole_or_absent(
                &$crate::from_fn($open),
                $crate::__Durability::$durability,
            );
        }
    };
    (@power $durability:ident; $open:expr) => {
        #[test]
        fn power_loss_keeps_acknowledged_batches() {
            $crate::cases::power_loss_keeps_acknowledged_batches(
                &$crate::from_fn($open),
                concat!(module_path!(), "::power_loss_keeps_acknowledged_batches"),
                $crate::__Durability::$durability,
            );
        }
    };
    (run($durability:ident); $open:expr) => {
        $crate::__storage_suite_power_cases!(@power $durability; $open);
        #[test]
        fn failed_write_changes_nothing() {
            $crate::cases::failed_write_changes_nothing(
                &$crate::from_fn($open),
                $crate::__Durability::$durability,
            );
        }
        #[test]
        fn kill_at_each_io_call_leaves_the_batch_whole_or_absent() {
            $crate::cases::kill_at_each_io_call_leaves_the_batch_whole_or_absent(
                &$crate::from_fn($open),
                $crate::__Durability::$durability,
            );
        }
    };
    (ignore; $open:expr) => {
        #[test]
        #[ignore = "volatile backend: nothing survives a power cut or a reopen"]
        fn power_loss_keeps_acknowledged_batches() {}
        #[test]
        #[ignore = "volatile backend: nothing survives a power cut or a reopen"]
        fn failed_write_changes_nothing() {}
        #[test]
        #[ignore = "volatile backend: nothing survives a power cut or a reopen"]
        fn kill_at_each_io_call_leaves_the_batch_whole_or_absent() {}
    };
}

/// One case of the suite, by name, for a runner that calls the cases itself.
pub struct Case<F> {
    /// The case's name, as `storage_suite!` names its test.
    pub name: &'static str,
    /// The case.
    pub run: fn(&F),
}

/// Every case of the suite in the order `storage_suite!` lists them, as `(cases,
/// persistent_cases)`: the second need a backend that keeps its data across a reopen.
/// The SIGKILL crash case is not listed: it re-runs its own test binary, so it runs only
/// as the test `storage_suite!` generates.
pub fn all_cases<F: Factory>() -> (Vec<Case<F>>, Vec<Case<F>>) {
    let mut cases = Vec::new();
    crate::__storage_suite_cases!(list; cases);
    let mut persistent = Vec::new();
    crate::__storage_suite_persistent_cases!(list; persistent);
    (cases, persistent)
}

#[doc(hidden)]
#[macro_export]
macro_rules! __storage_suite_tests {
    (run; $open:expr; $($case:ident),* $(,)?) => {
        $(
            #[test]
            fn $case() {
                $crate::cases::$case(&$crate::from_fn($open));
            }
        )*
    };
    (ignore; $open:expr; $($case:ident),* $(,)?) => {
        $(
            #[test]
            #[ignore = "volatile backend: nothing survives a reopen or a crash"]
            fn $case() {
                $crate::cases::$case(&$crate::from_fn($open));
            }
        )*
    };
    (list; $cases:expr; $($case:ident),* $(,)?) => {
        $cases.extend([$($crate::Case { name: stringify!($case), run: $crate::cases::$case }),*]);
    };
}

#[doc(hidden)]
#[macro_export]
macro_rules! __storage_suite_cases {
    ($mode:ident; $open:expr) => {
        $crate::__storage_suite_tests!($mode; $open;
            fresh_store_matches_the_empty_model,
            append_entry,
            append_entries,
            append_no_entries,
            provided_setters_equal_one_op_batches,
            append_on_prefix_truncates,
            append_on_prefix_at_the_bounds,
            append_on_prefix_after_trim,
            append_on_prefix_at_decided_idx,
            set_promise_and_accepted_round,
            set_decided_idx,
            trim_keeps_absolute_indices,
            trim_to_log_end,
            trim_to_compacted_idx_is_a_no_op,
            log_len_after_trim_counts_stored_entries,
            set_compacted_idx_within_log,
            set_compacted_idx_past_end,
            snapshot_install_batch,
            set_stopsign,
            set_snapshot,
            get_entries_every_range,
            mixed_batch_applies_in_order,
            append_decide_trim_cycles,
            empty_batch_changes_nothing,
            error_append_on_prefix_past_end,
            error_append_on_prefix_below_compacted,
            error_append_on_prefix_overwrites_decided,
            error_trim_past_end,
            error_trim_below_compacted,
            error_decided_past_end,
            error_compacted_backwards,
            reads_out_of_range_return_invalid_range,
            decide_stopsign,
            decided_stopsign_allows_trim_and_replacement,
            undecided_stopsign_opens_the_log,
            decide_stopsign_with_snapshot_install,
            error_decided_past_end_with_stopsign,
            error_append_after_decided_stopsign,
            error_compacted_past_decided_stopsign,
            error_clear_decided_stopsign,
            atomic_invalid_first_op,
            atomic_invalid_middle_op,
            atomic_invalid_last_op,
            atomic_op_invalid_after_earlier_op,
            store_usable_after_refused_batch,
            set_compacted_idx_to_itself_is_a_no_op,
            snapshot_survives_append_on_prefix,
            lower_promise_replaces_a_higher_one,
            trims_apply_in_batch_order,
            flush_changes_nothing,
            empty_entries,
            one_mib_entries,
            hundred_thousand_entry_log,
            random_ops_match_model,
            random_long_op_sequences,
            compacted_idx_at_usize_max,
            appends_up_to_usize_max,
            decided_stopsign_at_usize_max,
        );
    };
}

#[doc(hidden)]
#[macro_export]
macro_rules! __storage_suite_persistent_cases {
    ($mode:ident; $open:expr) => {
        $crate::__storage_suite_tests!($mode; $open;
            reopen_empty,
            reopen_after_append,
            reopen_after_append_on_prefix,
            reopen_after_metadata,
            reopen_after_trim,
            reopen_after_compacted_past_end,
            reopen_after_stopsign_and_snapshot,
            reopen_after_decided_stopsign,
            reopen_after_refused_batch,
            reopen_large_and_empty_entries,
            reopen_after_many_writes,
            reopen_full_width_values,
            reopen_at_usize_max,
            random_ops_with_reopen_match_model,
            reopen_after_flush,
        );
        $crate::__storage_suite_crash_case!($mode; $open);
    };
}

#[doc(hidden)]
#[macro_export]
macro_rules! __storage_suite_crash_case {
    (run; $open:expr) => {
        #[test]
        fn crash_sigkill_keeps_acknowledged_batches() {
            $crate::cases::crash_sigkill_keeps_acknowledged_batches(
                &$crate::from_fn($open),
                concat!(module_path!(), "::crash_sigkill_keeps_acknowledged_batches"),
            );
        }
        #[test]
        fn crash_sigkill_after_flush_keeps_acknowledged_batches() {
            $crate::cases::crash_sigkill_after_flush_keeps_acknowledged_batches(
                &$crate::from_fn($open),
                concat!(module_path!(), "::crash_sigkill_after_flush_keeps_acknowledged_batches"),
            );
        }
    };
    (ignore; $open:expr) => {
        #[test]
        #[ignore = "volatile backend: nothing survives a reopen or a crash"]
        fn crash_sigkill_keeps_acknowledged_batches() {}
        #[test]
        #[ignore = "volatile backend: nothing survives a reopen or a crash"]
        fn crash_sigkill_after_flush_keeps_acknowledged_batches() {}
    };
    (list; $cases:expr) => {};
}
