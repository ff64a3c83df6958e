//! The conformance suite on an OmniPaxos storage, in **OmniPaxos-contract mode** (feature
//! `conformance`).
//!
//! [`OmniContract`] presents any `omnipaxos::storage::Storage<SuiteEntry>` as a paxstore
//! `Storage<TestEntry>`, and the unchanged `paxstore-conformance` suite and model run on
//! it. The adapter bridges exactly the documented differences between the two contracts
//! and nothing else:
//!
//! | OmniPaxos contract | what the suite sees |
//! |---|---|
//! | a read of a range not wholly stored returns an empty `Vec` | `InvalidRange` with the bounds the storage reports (`get_compacted_idx`, `get_log_len`); a storage that panics or answers anything but `[]` there is recorded, and the case fails with every such read listed when the storage is dropped (at a reopen or at the case's end), so a broken read does not hide what the case finds next |
//! | `Trim` removes entries, `SetCompactedIdx` moves the reported index; OmniPaxos sends both together, past the log end when a follower installs a snapshot | the suite's `Trim(i)` and `SetCompactedIdx(i)` are each sent as `[Trim(i), SetCompactedIdx(i)]`, as OmniPaxos sends them; so the storage cannot tell paxstore's `Trim` past the end (refused) from `SetCompactedIdx` past the end (valid), and the adapter itself refuses the first as `TrimPastEnd`, without calling the storage |
//! | ops are applied "in order" (the trait's docs), with no bounds stated | the bounds are paxstore's, each op checked against the state the ops before it leave |
//! | errors are untyped (`Box<dyn Error>`) | when the storage refuses a batch that the contract also refuses, the refusal is reported as the contract's typed reason (`InvalidOp` at the position the model names); the suite then checks that nothing changed. A batch the contract accepts but the storage refuses is reported with the storage's message |
//!
//! Everything else is held to the model as for any paxstore backend, and reported with the
//! suite's messages: a storage that accepts an op the contract refuses (an unvalidated op:
//! `backend returned Ok(()), model says InvalidOp ...`), a batch left half applied after a
//! refusal or a panic (`backend disagrees with the model: ...` on the next check), and a
//! panic inside the storage, which the adapter catches and reports as
//! `StorageError::Backend { backend: "omnipaxos storage", detail: "panicked in <call>: <message>" }`
//! (from a write or an in-range read at once; from a read outside the log at the end of
//! the case, as above).
//!
//! Why here and not in `paxstore-conformance`: the suite and its model stay one, with no
//! OmniPaxos dependency and no mode switch inside them; the differences live in one
//! adapter next to [`OmniStorage`](crate::OmniStorage), which bridges the same
//! differences in the other direction.

use std::any::Any;
use std::cell::RefCell;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::Path;

use omnipaxos::storage::{
    Entry as OpEntry, Snapshot as OpSnapshot, Storage as OpStorage, StorageOp as OpOp,
};
use paxstore::{
    Ballot, InvalidOp, LogBounds, Snapshot, StopSign, Storage, StorageError, StorageOp,
    StorageResult,
};
use paxstore_conformance::{all_cases, Factory, TestEntry, TestSnapshot};
use serde::{Deserialize, Serialize};

use crate::convert::{
    ballot_to_omnipaxos, ballot_to_paxstore, stopsign_to_omnipaxos, stopsign_to_paxstore,
};

/// The suite's entry as an OmniPaxos entry (serialized exactly as [`TestEntry`]).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct SuiteEntry(pub TestEntry);

/// The suite's snapshot as an OmniPaxos snapshot (serialized exactly as [`TestSnapshot`]).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct SuiteSnapshot(pub TestSnapshot);

impl OpEntry for SuiteEntry {
    type Snapshot = SuiteSnapshot;
}

impl OpSnapshot<SuiteEntry> for SuiteSnapshot {
    fn create(entries: &[SuiteEntry]) -> Self {
        let entries: Vec<TestEntry> = entries.iter().map(|e| e.0.clone()).collect();
        SuiteSnapshot(TestSnapshot::create(&entries))
    }

    fn merge(&mut self, delta: Self) {
        self.0.merge(delta.0);
    }

    fn use_snapshots() -> bool {
        true
    }
}

const BACKEND: &str = "omnipaxos storage";

fn panic_message(payload: &(dyn Any + Send)) -> String {
    if let Some(s) = payload.downcast_ref::<&str>() {
        (*s).to_owned()
    } else if let Some(s) = payload.downcast_ref::<String>() {
        s.clone()
    } else {
        "(non-string panic payload)".to_owned()
    }
}

fn backend_error(detail: String) -> StorageError {
    StorageError::Backend { backend: BACKEND, detail }
}

/// Runs one call of the OmniPaxos storage; a panic is a [`StorageError::Backend`] naming
/// the call, an error is one with the storage's message.
fn call<V>(
    what: impl FnOnce() -> String,
    f: impl FnOnce() -> omnipaxos::storage::StorageResult<V>,
) -> StorageResult<V> {
    match catch_unwind(AssertUnwindSafe(f)) {
        Ok(Ok(value)) => Ok(value),
        Ok(Err(err)) => Err(backend_error(format!("{} failed: {err}", what()))),
        Err(payload) => {
            Err(backend_error(format!("panicked in {}: {}", what(), panic_message(&*payload))))
        }
    }
}

/// An OmniPaxos storage seen through the paxstore contract, with the documented
/// differences bridged (see the [module docs](self)).
///
/// A read outside the stored log that breaks OmniPaxos' own read contract (a panic, or an
/// answer other than `[]`) is recorded and answered with the `InvalidRange` the suite
/// expects, so the case goes on to what the storage does with its writes; the record
/// fails the case when the adapter is dropped (at a reopen or at the end of the case),
/// with every such read listed.
pub struct OmniContract<O> {
    inner: O,
    /// Reads outside the stored log that broke OmniPaxos' read contract.
    read_findings: RefCell<Vec<String>>,
}

impl<O> Drop for OmniContract<O> {
    fn drop(&mut self) {
        let findings = self.read_findings.get_mut();
        if findings.is_empty() || std::thread::panicking() {
            return;
        }
        let shown = findings.iter().take(3).cloned().collect::<Vec<_>>().join("; ");
        let more = findings.len().saturating_sub(3);
        panic!(
            "the OmniPaxos storage broke its read contract (a read outside the stored log \
             must return an empty Vec) {} time(s): {shown}{}",
            findings.len(),
            if more > 0 { format!("; and {more} more") } else { String::new() }
        );
    }
}

impl<O: OpStorage<SuiteEntry>> OmniContract<O> {
    /// Wraps an OmniPaxos storage.
    pub fn new(inner: O) -> Self {
        OmniContract { inner, read_findings: RefCell::new(Vec::new()) }
    }

    /// The bounds the storage reports.
    fn bounds(&self) -> StorageResult<LogBounds> {
        let compacted_idx = self.get_compacted_idx()?;
        Ok(LogBounds {
            compacted_idx,
            log_end: compacted_idx + self.get_log_len()?,
            decided_idx: self.get_decided_idx()?,
            has_stopsign: self.get_stopsign()?.is_some(),
        })
    }

    /// A read of `[from, to)` by `getter`. Within the stored log: the storage's answer, a
    /// panic or error being an error. Outside it: `InvalidRange`, after recording a
    /// storage that did not answer `[]`.
    fn read(
        &self,
        getter: &'static str,
        from: usize,
        to: usize,
        read: impl FnOnce(&O) -> omnipaxos::storage::StorageResult<Vec<SuiteEntry>>,
    ) -> StorageResult<Vec<TestEntry>> {
        let bounds = self.bounds()?;
        let what = || match getter {
            "get_suffix" => format!("get_suffix({from})"),
            _ => format!("{getter}({from}, {to})"),
        };
        let outcome = call(what, || read(&self.inner));
        let Err(range_error) = bounds.check_range(getter, from, to) else {
            return outcome.map(|entries| entries.into_iter().map(|e| e.0).collect());
        };
        let stored = format!("[{}, {})", bounds.compacted_idx, bounds.log_end);
        let finding = match outcome {
            Ok(entries) if entries.is_empty() => None,
            Ok(entries) => Some(format!(
                "{} outside the stored log {stored} returned {} entries",
                what(),
                entries.len()
            )),
            Err(err) => Some(format!("{} outside the stored log {stored}: {err}", what())),
        };
        if let Some(finding) = finding {
            self.read_findings.borrow_mut().push(finding);
        }
        Err(range_error)
    }
}

/// Bounds in a message: `[compacted, log_end) decided d, stop sign: yes`.
fn show(b: &LogBounds) -> String {
    let ss = if b.has_stopsign { "a stop sign" } else { "no stop sign" };
    format!("[{}, {}) decided {}, {ss}", b.compacted_idx, b.log_end, b.decided_idx)
}

/// The suite's op as the OmniPaxos ops that mean it.
fn to_omnipaxos(op: StorageOp<TestEntry>) -> StorageResult<Vec<OpOp<SuiteEntry>>> {
    let entries = |es: Vec<TestEntry>| es.into_iter().map(SuiteEntry).collect();
    let stopsign = |s: StopSign| {
        stopsign_to_omnipaxos(s).map_err(|err| backend_error(format!("converting: {err}")))
    };
    Ok(match op {
        StorageOp::AppendEntry(e) => vec![OpOp::AppendEntry(SuiteEntry(e))],
        StorageOp::AppendEntries(es) => vec![OpOp::AppendEntries(entries(es))],
        StorageOp::AppendOnPrefix(from, es) => vec![OpOp::AppendOnPrefix(from, entries(es))],
        StorageOp::SetPromise(b) => vec![OpOp::SetPromise(ballot_to_omnipaxos(b))],
        StorageOp::SetDecidedIndex(i) => vec![OpOp::SetDecidedIndex(i)],
        StorageOp::SetAcceptedRound(b) => vec![OpOp::SetAcceptedRound(ballot_to_omnipaxos(b))],
        // OmniPaxos moves its two indices together, in this order.
        StorageOp::Trim(i) | StorageOp::SetCompactedIdx(i) => {
            vec![OpOp::Trim(i), OpOp::SetCompactedIdx(i)]
        }
        StorageOp::SetStopsign(s) => vec![OpOp::SetStopsign(s.map(stopsign).transpose()?)],
        StorageOp::SetSnapshot(s) => vec![OpOp::SetSnapshot(s.map(SuiteSnapshot))],
    })
}

impl<O: OpStorage<SuiteEntry>> Storage<TestEntry> for OmniContract<O> {
    fn write_atomically(&mut self, ops: Vec<StorageOp<TestEntry>>) -> StorageResult<()> {
        // What the contract says of the batch, on the bounds the storage reports.
        let before = self.bounds()?;
        let verdict: Result<LogBounds, (usize, InvalidOp)> = match before.validate_batch(&ops) {
            Ok(plan) => Ok(plan.after),
            Err(StorageError::InvalidOp { position, reason }) => Err((position, reason)),
            Err(other) => return Err(other),
        };
        // paxstore's `Trim` past the log end has no OmniPaxos counterpart (both of
        // paxstore's compaction ops are OmniPaxos' pair, which may pass the end: a snapshot
        // install), so the storage cannot tell it from a valid `SetCompactedIdx`: the
        // adapter refuses it as the contract does, without calling the storage.
        if let Err((position, reason @ InvalidOp::TrimPastEnd { .. })) = verdict {
            return Err(StorageError::InvalidOp { position, reason });
        }
        let mut batch = Vec::with_capacity(ops.len());
        for op in ops {
            batch.extend(to_omnipaxos(op)?);
        }
        let outcome = catch_unwind(AssertUnwindSafe(|| self.inner.write_atomically(batch)));
        match (outcome, verdict) {
            (Ok(Ok(())), _) => Ok(()),
            // The contract refuses the batch too: the refusal, with the contract's reason.
            (Ok(Err(_)), Err((position, reason))) => {
                Err(StorageError::InvalidOp { position, reason })
            }
            (Ok(Err(err)), Ok(_)) => {
                Err(backend_error(format!("write_atomically refused a valid batch: {err}")))
            }
            (Err(payload), _) => {
                let mut detail =
                    format!("panicked in write_atomically: {}", panic_message(&*payload));
                match self.bounds() {
                    Ok(after) if after != before => detail.push_str(&format!(
                        ", leaving the batch half applied: the bounds went from {} to {}",
                        show(&before),
                        show(&after)
                    )),
                    _ => {}
                }
                Err(backend_error(detail))
            }
        }
    }

    fn get_entries(&self, from: usize, to: usize) -> StorageResult<Vec<TestEntry>> {
        self.read("get_entries", from, to, |o| o.get_entries(from, to))
    }

    fn get_suffix(&self, from: usize) -> StorageResult<Vec<TestEntry>> {
        let log_end = self.get_log_end()?;
        self.read("get_suffix", from, log_end, |o| o.get_suffix(from))
    }

    fn get_log_len(&self) -> StorageResult<usize> {
        call(|| "get_log_len()".to_owned(), || self.inner.get_log_len())
    }

    fn get_decided_idx(&self) -> StorageResult<usize> {
        call(|| "get_decided_idx()".to_owned(), || self.inner.get_decided_idx())
    }

    fn get_promise(&self) -> StorageResult<Option<Ballot>> {
        let b = call(|| "get_promise()".to_owned(), || self.inner.get_promise())?;
        Ok(b.map(ballot_to_paxstore))
    }

    fn get_accepted_round(&self) -> StorageResult<Option<Ballot>> {
        let b = call(|| "get_accepted_round()".to_owned(), || self.inner.get_accepted_round())?;
        Ok(b.map(ballot_to_paxstore))
    }

    fn get_compacted_idx(&self) -> StorageResult<usize> {
        call(|| "get_compacted_idx()".to_owned(), || self.inner.get_compacted_idx())
    }

    fn get_stopsign(&self) -> StorageResult<Option<StopSign>> {
        let s = call(|| "get_stopsign()".to_owned(), || self.inner.get_stopsign())?;
        s.map(stopsign_to_paxstore)
            .transpose()
            .map_err(|err| backend_error(format!("get_stopsign(): {err}")))
    }

    fn get_snapshot(&self) -> StorageResult<Option<TestSnapshot>> {
        let s = call(|| "get_snapshot()".to_owned(), || self.inner.get_snapshot())?;
        Ok(s.map(|s| s.0))
    }
}

/// What one case found.
#[derive(Clone, Debug)]
pub struct CaseOutcome {
    /// The case's name.
    pub name: &'static str,
    /// `None` if it passed; the failure message (the panic of the case) if it failed.
    pub failure: Option<String>,
}

/// Runs every case of the suite (the persistent ones too if `persistent`, except the
/// SIGKILL crash case, which runs only as the test `omnipaxos_storage_suite!`
/// generates) against the storage `open` opens, and returns each outcome, in order.
pub fn run_cases<O, F>(open: F, persistent: bool) -> Vec<CaseOutcome>
where
    O: OpStorage<SuiteEntry>,
    F: Fn(&Path) -> O,
{
    let factory = paxstore_conformance::from_fn(move |dir: &Path| Ok(OmniContract::new(open(dir))));
    run_factory_cases(&factory, persistent)
}

fn run_factory_cases<F: Factory>(factory: &F, persistent: bool) -> Vec<CaseOutcome> {
    let (cases, persistent_cases) = all_cases::<F>();
    let chosen = cases.into_iter().chain(persistent_cases.into_iter().filter(|_| persistent));
    chosen
        .map(|case| {
            let failure = catch_unwind(AssertUnwindSafe(|| (case.run)(factory)))
                .err()
                .map(|payload| panic_message(&*payload));
            CaseOutcome { name: case.name, failure }
        })
        .collect()
}

/// Expands to one `#[test]` per conformance case, run in OmniPaxos-contract mode on the
/// OmniPaxos storage `open` opens.
///
/// `open` is `Fn(&Path) -> O` where `O: omnipaxos::storage::Storage<SuiteEntry>`: it opens
/// the store kept in the directory (creating it when empty). Write `volatile` for a
/// storage that keeps nothing across a reopen (its reopen and crash cases are reported
/// as ignored, by name), `persistent` otherwise.
///
/// ```ignore
/// // tests/conformance.rs of your crate
/// use paxstore_omnipaxos::suite::SuiteEntry;
/// paxstore_omnipaxos::omnipaxos_storage_suite!(volatile, |_dir: &std::path::Path| {
///     MyOmniPaxosStorage::<SuiteEntry>::new()
/// });
/// ```
#[macro_export]
macro_rules! omnipaxos_storage_suite {
    ($mode:ident, $open:expr) => {
        $crate::suite::__conformance::storage_suite!($mode, |dir: &::std::path::Path| {
            ::std::result::Result::Ok($crate::suite::OmniContract::new(($open)(dir)))
        });
    };
}

#[doc(hidden)]
pub use paxstore_conformance as __conformance;
