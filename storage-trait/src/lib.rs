//! # paxstore: the storage contract of a Sequence-Paxos replicated log
//!
//! A replica keeps its log and protocol state in a [`Storage`]. The trait has **one
//! mutator**, [`Storage::write_atomically`], which applies a batch of [`StorageOp`]s all
//! or nothing, and getters. ([`Storage::write_atomically_from`] is the same write taking
//! the batch from a vector the caller keeps, left empty, so that a caller writing at every
//! step allocates its batch once; it is provided over `write_atomically`, and a backend
//! that overrides it is held to the same contract by the suite, which writes half of every
//! case's batches through it.) The op set is OmniPaxos 0.2.4's; where OmniPaxos leaves indices,
//! bounds and out-of-range reads loose, this contract fixes them, and the
//! `paxstore-conformance` suite holds every backend to it. The two contracts are not
//! interchangeable as they stand: the `paxstore-omnipaxos` crate runs an OmniPaxos node on
//! any paxstore backend by bridging each difference (its docs list them), and runs the
//! suite on an OmniPaxos storage in an OmniPaxos-contract mode.
//!
//! ## The state
//!
//! Every backend stores exactly this state, and every op and getter is defined on it:
//!
//! | field | initial | meaning |
//! |---|---|---|
//! | `log` | empty | the entries at **absolute** indices `[compacted_idx, compacted_idx + log_len)` |
//! | `compacted_idx` | 0 | the first stored index; entries below it were trimmed or replaced by the snapshot |
//! | `log_len` | 0 | the number of entries stored; `log_end = compacted_idx + log_len` |
//! | `decided_idx` | 0 | entries below it are decided; `decided_idx <= log_end`, or `decided_idx = log_end + 1` while a stop sign is set: **the stop sign is decided** (it takes the slot at `log_end`, as in OmniPaxos) |
//! | `promise` | `None` | the highest ballot promised |
//! | `accepted_round` | `None` | the round of the entries held |
//! | `stopsign` | `None` | the stop sign of this configuration |
//! | `snapshot` | `None` | the snapshot |
//!
//! Indices are absolute: index `i` names the same entry before and after any trim, and a
//! log that was never compacted has `compacted_idx = 0`. No call clamps a bad index; every
//! out-of-bounds index is an error that names the op and the bounds.
//!
//! ## Ops (`write_atomically`)
//!
//! A batch applies its ops in order; each is checked against the state the ops before it
//! left. If one is invalid, the call returns [`StorageError::InvalidOp`] with its position
//! and reason, and **no op of the batch takes effect**. An empty batch succeeds and changes
//! nothing.
//!
//! | op | effect | error ([`InvalidOp`]) when |
//! |---|---|---|
//! | `AppendEntry(e)` | `log` gets `e` at `log_end`; `log_len += 1` | the stop sign is decided (`AppendAfterDecidedStopsign`); `log_end = usize::MAX` (`IndexOverflow`) |
//! | `AppendEntries(es)` | `log` gets `es` at `log_end..`; `log_len += es.len()` | `es` is not empty and the stop sign is decided (`AppendAfterDecidedStopsign`); `log_end + es.len() > usize::MAX` (`IndexOverflow`) |
//! | `AppendOnPrefix(i, es)` | entries at `>= i` are removed, then `es` is written at `i..`; `log_end = i + es.len()` | `i > log_end` (`AppendOnPrefixPastEnd`); `i < compacted_idx` (`AppendOnPrefixBelowCompacted`); `i < decided_idx` (`AppendOnPrefixOverwritesDecided`: decided entries are immutable); `i + es.len() > usize::MAX` (`IndexOverflow`) |
//! | `SetPromise(b)` | `promise = Some(b)` | never |
//! | `SetAcceptedRound(b)` | `accepted_round = Some(b)` | never |
//! | `SetDecidedIndex(i)` | `decided_idx = i` (it may move backwards) | `i > log_end`, except `i = log_end + 1` while a stop sign is set, which decides it (`DecidedPastEnd`) |
//! | `Trim(i)` | entries below `i` are dropped; `compacted_idx = i`; `log_end` unchanged | `i > log_end` (`TrimPastEnd`); `i < compacted_idx` (`TrimBelowCompacted`) |
//! | `SetCompactedIdx(i)` | for `i <= log_end`, exactly `Trim(i)`; for `i > log_end`, every entry is dropped and the empty log starts at `i` (`compacted_idx = log_end = i`): installing a snapshot that covers entries this replica never held | `i < compacted_idx` (`CompactedBackwards`); `i > log_end` while the stop sign is decided (`CompactedPastDecidedStopsign`) |
//! | `SetStopsign(s)` | `stopsign = s` (`Some` replaces a stop sign, decided or not) | `s` is `None` and the stop sign is decided (`ClearDecidedStopsign`) |
//! | `SetSnapshot(s)` | `snapshot = s` | never |
//!
//! Each op is checked against the state the ops before it in the batch left, so
//! `[SetStopsign(Some(s)), SetDecidedIndex(log_end + 1)]` decides a stop sign in one batch,
//! and the reverse order is `DecidedPastEnd`. **While the stop sign is decided** the log
//! is closed: nothing may move `log_end` (appends, `SetCompactedIdx` past the end;
//! `AppendOnPrefix` is already refused as it would overwrite decided entries) or clear
//! the stop sign. `Trim` and `SetCompactedIdx` up to `log_end` stay valid, and moving
//! `decided_idx` back to `log_end` or below opens the log again.
//!
//! **Index limits.** Every index is a `usize`, and so is `log_end`: the last entry a log
//! can hold sits at `usize::MAX - 1`. An append that would end the log past `usize::MAX`
//! is refused (`IndexOverflow`) before anything is written; `SetCompactedIdx(usize::MAX)`
//! is valid and leaves an empty log that takes no more entries. A log that ends at
//! `usize::MAX` has no slot left for a decided stop sign (`decided_idx` would be
//! `usize::MAX + 1`): a stop sign set there stays undecided.
//!
//! `Trim` and `SetCompactedIdx` both move `compacted_idx` and both keep every surviving
//! entry at its absolute index; they differ only past the end of the log, where `Trim` is
//! an error and `SetCompactedIdx` starts an empty log. Neither changes `decided_idx`,
//! `snapshot` or any other field: a replica that compacts into a snapshot puts
//! `SetSnapshot` and `Trim` in the same batch.
//!
//! ## Getters
//!
//! | getter | returns | error when |
//! |---|---|---|
//! | `get_entries(from, to)` | the entries at `[from, to)` | not `compacted_idx <= from <= to <= log_end` ([`StorageError::InvalidRange`]) |
//! | `get_suffix(from)` | the entries at `[from, log_end)` | not `compacted_idx <= from <= log_end` (`InvalidRange`) |
//! | `get_log_len()` | `log_len`, the number of entries stored (**not** `log_end`) | — |
//! | `get_log_end()` (provided) | `compacted_idx + log_len` | — |
//! | `get_decided_idx()` | `decided_idx` | — |
//! | `get_compacted_idx()` | `compacted_idx` | — |
//! | `get_promise()` / `get_accepted_round()` | the ballot, or `None` if never set | — |
//! | `get_stopsign()` / `get_snapshot()` | the value last set | — |
//!
//! Any getter may also fail with an I/O, corruption or codec error of the backend.
//!
//! ## Errors and durability
//!
//! [`StorageError`] is a typed `#[non_exhaustive]` enum: I/O, corruption, codec, invalid
//! op, invalid range, too large, unrecognized data, poisoned, backend-specific. Every
//! persistent backend takes a [`Durability`]: `Immediate` (the default: `Ok` means the
//! batch survives power loss) or `Buffered` (`Ok` means it survives a process crash).
//! After a crash or power loss during `write_atomically`, the batch is wholly present or
//! wholly absent on reopen. [`Storage::flush`] makes every acknowledged batch of a
//! `Buffered` store survive power loss on demand (its default, for stores whose writes
//! are all durable already, does nothing).
//!
//! ## Writing a backend
//!
//! Validate the whole batch with [`LogBounds::validate_batch`] before writing anything:
//! it is the one implementation of every bound in the tables above, and it returns what
//! the batch means, a [`BatchPlan`]: which stored entries it removes, which of its own
//! entries it writes and from which index, and which metadata it sets. Apply the plan,
//! not the ops (a later op of a batch may undo part of an earlier one; the plan has
//! already worked that out), with one engine-level atomic write, and update in-memory
//! caches only after that write succeeded. Hold the result to the contract with
//! `paxstore-conformance`.
//!
//! ```
//! use paxstore::{Entry, LogBounds, NoSnapshot, StorageOp, StorageResult};
//!
//! #[derive(Clone, Debug, PartialEq)]
//! struct Cmd(u32);
//! impl Entry for Cmd {
//!     type Snapshot = NoSnapshot;
//! }
//!
//! /// A log kept in a `Vec`, its first entry at absolute index `compacted_idx`.
//! struct Log {
//!     entries: Vec<Cmd>,
//!     compacted_idx: usize,
//!     decided_idx: usize,
//! }
//!
//! impl Log {
//!     fn write(&mut self, ops: Vec<StorageOp<Cmd>>) -> StorageResult<()> {
//!         let bounds = LogBounds {
//!             compacted_idx: self.compacted_idx,
//!             log_end: self.compacted_idx + self.entries.len(),
//!             decided_idx: self.decided_idx,
//!             has_stopsign: false,
//!         };
//!         let plan = bounds.validate_batch(&ops)?;
//!         let values = plan.into_values(ops);
//!         // Keep the stored entries the plan keeps, then add the batch's own after them.
//!         let kept = plan.kept();
//!         self.entries.truncate(kept.end - self.compacted_idx);
//!         self.entries.drain(..kept.start - self.compacted_idx);
//!         self.entries.extend(values.entries);
//!         self.compacted_idx = plan.after.compacted_idx;
//!         self.decided_idx = plan.after.decided_idx;
//!         Ok(())
//!     }
//! }
//!
//! let mut log = Log { entries: Vec::new(), compacted_idx: 0, decided_idx: 0 };
//! log.write(vec![
//!     StorageOp::AppendEntries(vec![Cmd(1), Cmd(2), Cmd(3)]),
//!     StorageOp::AppendOnPrefix(1, vec![Cmd(4)]),
//!     StorageOp::Trim(1),
//! ])?;
//! assert_eq!((log.compacted_idx, log.entries), (1, vec![Cmd(4)]));
//! # Ok::<(), paxstore::StorageError>(())
//! ```
//!
//! `examples/custom-backend` in the repository is a complete persistent backend written
//! this way.
//!
//! ## Refinements of the design
//!
//! The getters return [`StorageResult`], since reading a disk can fail; `get_promise` and
//! `get_accepted_round` return `Option<Ballot>` (`None` before the first set), as in
//! OmniPaxos 0.2.4.

mod bounds;
mod entry;
mod error;
mod op;
mod plan;
mod storage;
mod types;

pub use bounds::LogBounds;
pub use entry::{Entry, NoSnapshot, Snapshot};
pub use error::{BoxError, InvalidOp, StorageError, StorageResult};
pub use op::StorageOp;
pub use plan::{BatchPlan, BatchValues, EntrySource, EntrySources};
pub use storage::{Durability, ParseDurabilityError, Storage};
pub use types::{Ballot, ClusterConfig, FlexibleQuorum, StopSign};
