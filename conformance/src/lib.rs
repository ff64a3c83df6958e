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
//! ## Skipping or selecting groups of cases
//!
//! The cases come in groups, named in [`storage_suite!`]'s docs with what each holds:
//! `ops`, `errors`, `atomicity`, `stopsign`, `sizes`, `limits`, `flush`, `random`,
//! `reopen`, `crash`, `power_loss`, `failed_writes`. A trailing `, skip = [power_loss,
//! random]` skips those groups, `, only = [reopen, crash]` every other group. A skipped
//! case is still a test: `cargo test` lists it and reports it *ignored* with the reason
//! (`skipped by the suite's caller: its group is in `skip = [..]``), never as passing,
//! and `cargo test -- --include-ignored` runs it. An unknown group name is a compile error
//! that lists the groups. paxstore's own backends run the whole suite in their main
//! configuration and `only` the groups an option changes in the others (a `Buffered`
//! store, the WAL's small segments).
//!
//! ## Replaying a failure
//!
//! Every random input has a seed, printed with the run's result, and a failure names the
//! variable that replays it: `PAXSTORE_PROPTEST_SEED` for the random op sequences (the `n`th
//! sequence of a seed is the same whatever `PAXSTORE_PROPTEST_CASES` is, as long as it is
//! at least `n`), `PAXSTORE_CRASH_SEED` for the SIGKILL
//! harness, `PAXSTORE_POWER_SEED` for the power cuts; the failed-write and kill cases are
//! deterministic. A random-sequence failure names the sequence that failed (`number 3
//! of 256, 41 steps`) and prints its 1-minimal shrink as concrete calls; the
//! same seed prints the same failure, word for word (`conformance/tests/replay.rs` checks
//! it). proptest's own failure-persistence file is off: the suite shrinks with its own
//! [`cases::minimize`], and the seed replays a whole run, so there is no file to commit
//! — put the seed in the test's environment instead.
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
mod suite;

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

#[doc(hidden)]
pub use paxstore::Durability as __Durability;

/// One case of the suite, by name, for a runner that calls the cases itself.
pub struct Case<F> {
    /// The case's name, as `storage_suite!` names its test.
    pub name: &'static str,
    /// The case.
    pub run: fn(&F),
}

/// Every case of the suite in the order `storage_suite!` lists them, as `(cases,
/// persistent_cases)`: the second need a backend that keeps its data across a reopen.
/// The cases that take more than the factory are not listed: the SIGKILL crash cases
/// re-run their own test binary, and the power-loss and failed-write cases take the
/// durability too, so they run only as the tests `storage_suite!` generates.
pub fn all_cases<F: Factory>() -> (Vec<Case<F>>, Vec<Case<F>>) {
    let (mut cases, mut persistent) = (Vec::new(), Vec::new());
    crate::__storage_suite_table!(list(cases, persistent));
    (cases, persistent)
}
