//! `storage_suite!` and the macros behind it: one table of the cases, by group, turned
//! into one named `#[test]` each (run, or `#[ignore]` with the reason) or into the list
//! [`all_cases`](crate::all_cases) returns.
//!
//! The options after `open` are read one at a time (`__storage_suite_options!`) into a
//! state `{ kind durability (open) [failed-writes reason] [power-loss reason] [skip]
//! [only] }` that every group receives. A group is skipped when `skip` names it or an
//! `only` list leaves it out; a case that needs a persistent backend is ignored on a
//! volatile one whatever the lists say.

/// Expands to one `#[test]` per conformance case for the backend `open` opens.
///
/// `storage_suite!(persistent, open)` runs every case, the power-loss case for
/// `Immediate`; `storage_suite!(persistent, buffered, open)` runs the power-loss case for
/// `Buffered`; `storage_suite!(volatile, open)` marks the cases that need a persistent
/// backend (groups `reopen`, `crash`, `power_loss`, `failed_writes`, and the cases of
/// `stopsign`, `limits`, `flush`, `random` that reopen or crash a store) `#[ignore]` with
/// the reason. `open` is a
/// closure or function `Fn(&Path) -> StorageResult<S>` where `S: Storage<TestEntry>`; a
/// volatile backend can give `new = || ...` instead, a `Fn() -> StorageResult<S>` that
/// makes a fresh store (`storage_suite!(volatile, new = || Ok(MemoryStorage::new()))`).
///
/// Options follow `open`, comma-separated, in any order, each at most once:
///
/// - `failed_writes_ignored = "reason"` marks the `failed_writes` group `#[ignore]` with
///   that reason (an engine that cannot survive an I/O error);
/// - `power_loss_ignored = "reason"` marks `power_loss_keeps_acknowledged_batches`
///   `#[ignore]` with that reason (an engine defect that case found);
/// - `skip = [group, ...]` marks every case of those groups `#[ignore = "skipped by the
///   suite's caller: ..."]`;
/// - `only = [group, ...]` marks every case of the *other* groups so.
///
/// A skipped case is still compiled and listed by `cargo test`, reported *ignored* with
/// the reason, and `cargo test -- --include-ignored` runs it. An unknown group or option
/// is a compile error that lists the valid ones.
///
/// The groups, with the cases each holds (the tests' names):
///
/// | group | cases |
/// |---|---|
/// | `ops` | every op and getter, alone and in mixed batches (24), and the 4 behaviours once pinned only by random sequences (`set_compacted_idx_to_itself_is_a_no_op`, `snapshot_survives_append_on_prefix`, `lower_promise_replaces_a_higher_one`, `trims_apply_in_batch_order`) |
/// | `errors` | every documented error and its typed reason (`error_*`, `reads_out_of_range_return_invalid_range`) |
/// | `atomicity` | `atomic_*`, `store_usable_after_refused_batch` |
/// | `stopsign` | the decided stop sign (8), and `reopen_after_decided_stopsign` |
/// | `sizes` | `empty_entries`, `one_mib_entries`, `hundred_thousand_entry_log` |
/// | `limits` | the `usize::MAX` index cases (`*_usize_max`, with `reopen_at_usize_max`) |
/// | `flush` | `flush_changes_nothing`, `reopen_after_flush`, `crash_sigkill_after_flush_keeps_acknowledged_batches` |
/// | `random` | `random_ops_match_model`, `random_long_op_sequences`, `random_ops_with_reopen_match_model` |
/// | `reopen` | `reopen_*` after every kind of write, and `reopen_full_width_values` |
/// | `crash` | `crash_sigkill_keeps_acknowledged_batches` |
/// | `power_loss` | `power_loss_keeps_acknowledged_batches` (FUSE) |
/// | `failed_writes` | `failed_write_changes_nothing`, `kill_at_each_io_call_leaves_the_batch_whole_or_absent` (FUSE) |
///
/// ```no_run
/// # use paxstore_conformance::storage_suite;
/// storage_suite!(
///     volatile,
///     new = || Ok(paxstore_backends::MemoryStorage::new()),
///     skip = [random, sizes]
/// );
/// # fn main() {}
/// ```
///
/// A group name that does not exist does not compile:
///
/// ```compile_fail
/// # use paxstore_conformance::storage_suite;
/// storage_suite!(volatile, new = || Ok(paxstore_backends::MemoryStorage::new()), skip = [randoms]);
/// # fn main() {}
/// ```
#[macro_export]
macro_rules! storage_suite {
    (volatile, new = $new:expr $(, $($option:tt)*)?) => {
        $crate::storage_suite!(volatile, |_dir: &::std::path::Path| ($new)() $(, $($option)*)?);
    };
    (volatile, $open:expr $(, $($option:tt)*)?) => {
        $crate::__storage_suite_options!(volatile Immediate ($open) [] [] [] [*]; $($($option)*)?);
    };
    (persistent, buffered, $open:expr $(, $($option:tt)*)?) => {
        $crate::__storage_suite_options!(persistent Buffered ($open) [] [] [] [*]; $($($option)*)?);
    };
    (persistent, $open:expr $(, $($option:tt)*)?) => {
        $crate::__storage_suite_options!(persistent Immediate ($open) [] [] [] [*]; $($($option)*)?);
    };
}

/// Reads the options after `open`, one at a time, then expands the table.
#[doc(hidden)]
#[macro_export]
macro_rules! __storage_suite_options {
    ($kind:ident $dur:ident $open:tt $fw:tt $pl:tt $skip:tt $only:tt; $(,)?) => {
        $crate::__storage_suite_table!(emit { $kind $dur $open $fw $pl $skip $only });
    };
    ($kind:ident $dur:ident $open:tt [] $pl:tt $skip:tt $only:tt;
        failed_writes_ignored = $why:literal $(, $($rest:tt)*)?) => {
        $crate::__storage_suite_options!($kind $dur $open [$why] $pl $skip $only; $($($rest)*)?);
    };
    ($kind:ident $dur:ident $open:tt $fw:tt [] $skip:tt $only:tt;
        power_loss_ignored = $why:literal $(, $($rest:tt)*)?) => {
        $crate::__storage_suite_options!($kind $dur $open $fw [$why] $skip $only; $($($rest)*)?);
    };
    ($kind:ident $dur:ident $open:tt $fw:tt $pl:tt [] $only:tt;
        skip = [$($group:ident),* $(,)?] $(, $($rest:tt)*)?) => {
        $($crate::__storage_suite_group_name!($group);)*
        $crate::__storage_suite_options!(
            $kind $dur $open $fw $pl [$($group),*] $only; $($($rest)*)?
        );
    };
    ($kind:ident $dur:ident $open:tt $fw:tt $pl:tt $skip:tt [*];
        only = [$($group:ident),* $(,)?] $(, $($rest:tt)*)?) => {
        $($crate::__storage_suite_group_name!($group);)*
        $crate::__storage_suite_options!(
            $kind $dur $open $fw $pl $skip [$($group),*]; $($($rest)*)?
        );
    };
    ($kind:ident $dur:ident $open:tt $fw:tt $pl:tt $skip:tt $only:tt; $($other:tt)*) => {
        ::core::compile_error!(concat!(
            "storage_suite!: cannot read `", stringify!($($other)*), "`; after `open` come, \
             comma-separated, in any order, each at most once: \
             failed_writes_ignored = \"reason\", power_loss_ignored = \"reason\", \
             skip = [groups], only = [groups]"
        ));
    };
}

/// Nothing for a group name, a compile error naming the groups for anything else.
#[doc(hidden)]
#[macro_export]
macro_rules! __storage_suite_group_name {
    (ops) => {};
    (errors) => {};
    (atomicity) => {};
    (stopsign) => {};
    (sizes) => {};
    (limits) => {};
    (flush) => {};
    (random) => {};
    (reopen) => {};
    (crash) => {};
    (power_loss) => {};
    (failed_writes) => {};
    ($other:ident) => {
        ::core::compile_error!(concat!(
            "storage_suite!: no group `",
            stringify!($other),
            "`; the groups are ops, errors, \
             atomicity, stopsign, sizes, limits, flush, random, reopen, crash, power_loss, \
             failed_writes"
        ));
    };
}

/// `{ $yes }` when `$group` is in the list, `{ $no }` otherwise.
#[doc(hidden)]
#[macro_export]
macro_rules! __storage_suite_in {
    ($group:ident [] { $($yes:tt)* } { $($no:tt)* }) => { $($no)* };
    (ops [ops $(, $rest:ident)*] { $($yes:tt)* } $no:tt) => { $($yes)* };
    (errors [errors $(, $rest:ident)*] { $($yes:tt)* } $no:tt) => { $($yes)* };
    (atomicity [atomicity $(, $rest:ident)*] { $($yes:tt)* } $no:tt) => { $($yes)* };
    (stopsign [stopsign $(, $rest:ident)*] { $($yes:tt)* } $no:tt) => { $($yes)* };
    (sizes [sizes $(, $rest:ident)*] { $($yes:tt)* } $no:tt) => { $($yes)* };
    (limits [limits $(, $rest:ident)*] { $($yes:tt)* } $no:tt) => { $($yes)* };
    (flush [flush $(, $rest:ident)*] { $($yes:tt)* } $no:tt) => { $($yes)* };
    (random [random $(, $rest:ident)*] { $($yes:tt)* } $no:tt) => { $($yes)* };
    (reopen [reopen $(, $rest:ident)*] { $($yes:tt)* } $no:tt) => { $($yes)* };
    (crash [crash $(, $rest:ident)*] { $($yes:tt)* } $no:tt) => { $($yes)* };
    (power_loss [power_loss $(, $rest:ident)*] { $($yes:tt)* } $no:tt) => { $($yes)* };
    (failed_writes [failed_writes $(, $rest:ident)*] { $($yes:tt)* } $no:tt) => { $($yes)* };
    ($group:ident [$first:ident $(, $rest:ident)*] $yes:tt $no:tt) => {
        $crate::__storage_suite_in!($group [$($rest),*] $yes $no);
    };
}

/// Every case, by group: `name kind call`, where `kind` is `any` or `persistent` (ignored
/// on a volatile backend) and `call` how the test calls it (see
/// `__storage_suite_test!`). The one list of the suite's cases.
#[doc(hidden)]
#[macro_export]
macro_rules! __storage_suite_table {
    ($mode:ident $args:tt) => {
        $crate::__storage_suite_groups!($mode $args;
            ops: [
                fresh_store_matches_the_empty_model any plain,
                append_entry any plain,
                append_entries any plain,
                append_no_entries any plain,
                provided_setters_equal_one_op_batches any plain,
                append_on_prefix_truncates any plain,
                append_on_prefix_at_the_bounds any plain,
                append_on_prefix_after_trim any plain,
                append_on_prefix_at_decided_idx any plain,
                set_promise_and_accepted_round any plain,
                set_decided_idx any plain,
                trim_keeps_absolute_indices any plain,
                trim_to_log_end any plain,
                trim_to_compacted_idx_is_a_no_op any plain,
                log_len_after_trim_counts_stored_entries any plain,
                set_compacted_idx_within_log any plain,
                set_compacted_idx_past_end any plain,
                snapshot_install_batch any plain,
                set_stopsign any plain,
                set_snapshot any plain,
                get_entries_every_range any plain,
                mixed_batch_applies_in_order any plain,
                append_decide_trim_cycles any plain,
                empty_batch_changes_nothing any plain,
                set_compacted_idx_to_itself_is_a_no_op any plain,
                snapshot_survives_append_on_prefix any plain,
                lower_promise_replaces_a_higher_one any plain,
                trims_apply_in_batch_order any plain
            ];
            errors: [
                error_append_on_prefix_past_end any plain,
                error_append_on_prefix_below_compacted any plain,
                error_append_on_prefix_overwrites_decided any plain,
                error_trim_past_end any plain,
                error_trim_below_compacted any plain,
                error_decided_past_end any plain,
                error_compacted_backwards any plain,
                reads_out_of_range_return_invalid_range any plain
            ];
            atomicity: [
                atomic_invalid_first_op any plain,
                atomic_invalid_middle_op any plain,
                atomic_invalid_last_op any plain,
                atomic_op_invalid_after_earlier_op any plain,
                store_usable_after_refused_batch any plain
            ];
            stopsign: [
                decide_stopsign any plain,
                decided_stopsign_allows_trim_and_replacement any plain,
                undecided_stopsign_opens_the_log any plain,
                decide_stopsign_with_snapshot_install any plain,
                error_decided_past_end_with_stopsign any plain,
                error_append_after_decided_stopsign any plain,
                error_compacted_past_decided_stopsign any plain,
                error_clear_decided_stopsign any plain,
                reopen_after_decided_stopsign persistent plain
            ];
            sizes: [
                empty_entries any plain,
                one_mib_entries any plain,
                hundred_thousand_entry_log any plain
            ];
            limits: [
                compacted_idx_at_usize_max any plain,
                appends_up_to_usize_max any plain,
                decided_stopsign_at_usize_max any plain,
                reopen_at_usize_max persistent plain
            ];
            flush: [
                flush_changes_nothing any plain,
                reopen_after_flush persistent plain,
                crash_sigkill_after_flush_keeps_acknowledged_batches persistent path
            ];
            random: [
                random_ops_match_model any plain,
                random_long_op_sequences any plain,
                random_ops_with_reopen_match_model persistent plain
            ];
            reopen: [
                reopen_empty persistent plain,
                reopen_after_append persistent plain,
                reopen_after_append_on_prefix persistent plain,
                reopen_after_metadata persistent plain,
                reopen_after_trim persistent plain,
                reopen_after_compacted_past_end persistent plain,
                reopen_after_stopsign_and_snapshot persistent plain,
                reopen_after_refused_batch persistent plain,
                reopen_large_and_empty_entries persistent plain,
                reopen_after_many_writes persistent plain,
                reopen_full_width_values persistent plain
            ];
            crash: [
                crash_sigkill_keeps_acknowledged_batches persistent path
            ];
            power_loss: [
                power_loss_keeps_acknowledged_batches persistent path_durability
            ];
            failed_writes: [
                failed_write_changes_nothing persistent durability,
                kill_at_each_io_call_leaves_the_batch_whole_or_absent persistent durability
            ];
        );
    };
}

/// Hands each group of the table to the mode's macro.
#[doc(hidden)]
#[macro_export]
macro_rules! __storage_suite_groups {
    (emit $state:tt; $($group:ident: [$($case:ident $kind:ident $call:ident),*];)*) => {
        $($crate::__storage_suite_group!($group $state; $($case $kind $call),*);)*
    };
    (list ($cases:ident, $persistent:ident); $($group:ident: [$($case:ident $kind:ident $call:ident),*];)*) => {
        $($($crate::__storage_suite_list!($cases $persistent; $case $kind $call);)*)*
    };
}

/// The tests of one group, with the `#[ignore]` the options give it: the engine's reason
/// for `failed_writes` or `power_loss`, else the caller's skip, else none.
#[doc(hidden)]
#[macro_export]
macro_rules! __storage_suite_group {
    (failed_writes { $kind:ident $dur:ident $open:tt [$why:literal] $pl:tt $skip:tt $only:tt };
        $($case:ident $ckind:ident $call:ident),*) => {
        $($crate::__storage_suite_case!([#[ignore = $why]] $kind $dur $open; $case $ckind $call);)*
    };
    (power_loss { $kind:ident $dur:ident $open:tt $fw:tt [$why:literal] $skip:tt $only:tt };
        $($case:ident $ckind:ident $call:ident),*) => {
        $($crate::__storage_suite_case!([#[ignore = $why]] $kind $dur $open; $case $ckind $call);)*
    };
    ($group:ident { $kind:ident $dur:ident $open:tt $fw:tt $pl:tt $skip:tt [*] };
        $($case:ident $ckind:ident $call:ident),*) => {
        $crate::__storage_suite_in!($group $skip {
            $($crate::__storage_suite_case!(
                [#[ignore = "skipped by the suite's caller: its group is in `skip = [..]`"]]
                $kind $dur $open; $case $ckind $call
            );)*
        } {
            $($crate::__storage_suite_case!([] $kind $dur $open; $case $ckind $call);)*
        });
    };
    ($group:ident { $kind:ident $dur:ident $open:tt $fw:tt $pl:tt $skip:tt $only:tt };
        $($case:ident $ckind:ident $call:ident),*) => {
        $crate::__storage_suite_in!($group $only {
            $crate::__storage_suite_group!(
                $group { $kind $dur $open $fw $pl $skip [*] }; $($case $ckind $call),*
            );
        } {
            $($crate::__storage_suite_case!(
                [#[ignore = "skipped by the suite's caller: its group is not in `only = [..]`"]]
                $kind $dur $open; $case $ckind $call
            );)*
        });
    };
}

/// One case: ignored on a volatile backend if it needs a persistent one, else with the
/// group's attributes.
#[doc(hidden)]
#[macro_export]
macro_rules! __storage_suite_case {
    ($attrs:tt volatile $dur:ident $open:tt; $case:ident persistent $call:ident) => {
        $crate::__storage_suite_test!(
            [#[ignore = "volatile backend: nothing survives a reopen, a crash or a power cut"]]
            $dur $open; $case $call
        );
    };
    ($attrs:tt $kind:ident $dur:ident $open:tt; $case:ident $ckind:ident $call:ident) => {
        $crate::__storage_suite_test!($attrs $dur $open; $case $call);
    };
}

/// The `#[test]` of one case. `plain` cases take the factory; `path` ones also the test's
/// path (the crash harness re-runs the test binary on it as the child); `path_durability`
/// and `durability` ones the durability the suite holds the backend to.
#[doc(hidden)]
#[macro_export]
macro_rules! __storage_suite_test {
    ([$($attr:tt)*] $dur:ident ($open:expr); $case:ident plain) => {
        #[test]
        $($attr)*
        fn $case() {
            $crate::cases::$case(&$crate::from_fn($open));
        }
    };
    ([$($attr:tt)*] $dur:ident ($open:expr); $case:ident path) => {
        #[test]
        $($attr)*
        fn $case() {
            $crate::cases::$case(
                &$crate::from_fn($open),
                concat!(module_path!(), "::", stringify!($case)),
            );
        }
    };
    ([$($attr:tt)*] $dur:ident ($open:expr); $case:ident path_durability) => {
        #[test]
        $($attr)*
        fn $case() {
            $crate::cases::$case(
                &$crate::from_fn($open),
                concat!(module_path!(), "::", stringify!($case)),
                $crate::__Durability::$dur,
            );
        }
    };
    ([$($attr:tt)*] $dur:ident ($open:expr); $case:ident durability) => {
        #[test]
        $($attr)*
        fn $case() {
            $crate::cases::$case(&$crate::from_fn($open), $crate::__Durability::$dur);
        }
    };
}

/// One entry of [`all_cases`](crate::all_cases): the cases that take only the factory.
#[doc(hidden)]
#[macro_export]
macro_rules! __storage_suite_list {
    ($cases:ident $persistent:ident; $case:ident any plain) => {
        $cases.push($crate::Case { name: stringify!($case), run: $crate::cases::$case });
    };
    ($cases:ident $persistent:ident; $case:ident persistent plain) => {
        $persistent.push($crate::Case { name: stringify!($case), run: $crate::cases::$case });
    };
    ($cases:ident $persistent:ident; $case:ident $kind:ident $call:ident) => {};
}
