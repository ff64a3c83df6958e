//! Holding a backend to the model: every getter compared, every outcome compared.

use std::collections::{BTreeSet, HashMap};
use std::fmt::{Debug, Write};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::Path;
use std::sync::Mutex;

use paxstore::{StorageError, StorageOp, StorageResult};
use tempfile::TempDir;

use crate::describe::{self, case_name, panic_message};
use crate::{Factory, Model, TestEntry};
use paxstore::Storage;

/// One disagreement of a getter with the model.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Mismatch {
    /// Which check disagreed, named the same in every state (`get_suffix(log_end + 1)
    /// past the end`), so a systematic difference shows as one check.
    pub check: &'static str,
    /// The call, what the backend returned and what the model says.
    pub detail: String,
}

/// Calls a getter, turning a panic into an `Err` that says so.
fn call<V>(get: impl FnOnce() -> StorageResult<V>) -> Result<StorageResult<V>, String> {
    catch_unwind(AssertUnwindSafe(get)).map_err(|p| panic_message(&*p))
}

struct Checks<'s, S: ?Sized> {
    storage: &'s S,
    found: Vec<Mismatch>,
}

impl<S: Storage<TestEntry> + ?Sized> Checks<'_, S> {
    fn same<V: PartialEq + Debug>(
        &mut self,
        check: &'static str,
        what: &str,
        get: impl FnOnce(&S) -> StorageResult<V>,
        want: V,
    ) {
        let detail = match call(|| get(self.storage)) {
            Ok(Ok(got)) if got == want => return,
            Ok(Ok(got)) => format!("{what}: backend returned {got:?}, model says {want:?}"),
            Ok(Err(err)) => format!("{what}: backend failed with `{err}`, model says {want:?}"),
            Err(panic) => format!("{what}: backend panicked ({panic}), model says {want:?}"),
        };
        self.found.push(Mismatch { check, detail });
    }

    #[allow(clippy::too_many_arguments)]
    fn range_error<V: Debug>(
        &mut self,
        check: &'static str,
        what: &str,
        get: impl FnOnce(&S) -> StorageResult<V>,
        getter: &'static str,
        (from, to): (usize, usize),
        model: &Model,
    ) {
        let want = (getter, from, to, model.compacted_idx, model.log_end());
        let got = match call(|| get(self.storage)) {
            Ok(Err(StorageError::InvalidRange {
                getter: g,
                from: f,
                to: t,
                compacted_idx,
                log_end,
            })) if (g, f, t, compacted_idx, log_end) == want => return,
            Ok(other) => format!("{other:?}"),
            Err(panic) => format!("a panic ({panic})"),
        };
        let detail = format!(
            "{what}: expected InvalidRange {{ getter: {getter:?}, from: {from}, to: {to}, \
             compacted_idx: {}, log_end: {} }}, backend returned {got}",
            model.compacted_idx,
            model.log_end()
        );
        self.found.push(Mismatch { check, detail });
    }
}

/// Every disagreement of `storage`'s getters with `model`, including reads of sub-ranges
/// and the exact errors of out-of-range reads: each getter is called whatever the others
/// answered, and a panicking getter is a disagreement.
pub fn mismatches<S: Storage<TestEntry> + ?Sized>(storage: &S, model: &Model) -> Vec<Mismatch> {
    let (c, end) = (model.compacted_idx, model.log_end());
    let mut k = Checks { storage, found: Vec::new() };
    k.same("get_log_len()", "get_log_len()", |s| s.get_log_len(), model.log.len());
    k.same("get_compacted_idx()", "get_compacted_idx()", |s| s.get_compacted_idx(), c);
    k.same("get_log_end()", "get_log_end()", |s| s.get_log_end(), end);
    k.same("get_decided_idx()", "get_decided_idx()", |s| s.get_decided_idx(), model.decided_idx);
    k.same("get_promise()", "get_promise()", |s| s.get_promise(), model.promise);
    let accepted = model.accepted_round;
    k.same("get_accepted_round()", "get_accepted_round()", |s| s.get_accepted_round(), accepted);
    k.same("get_stopsign()", "get_stopsign()", |s| s.get_stopsign(), model.stopsign.clone());
    k.same("get_snapshot()", "get_snapshot()", |s| s.get_snapshot(), model.snapshot.clone());
    let slice = |from: usize, to: usize| model.log[from - c..to - c].to_vec();
    let mid = c + model.log.len() / 2;
    for (from, to) in [(c, end), (c, c), (end, end), (c, mid), (mid, end)] {
        let what = format!("get_entries({from}, {to})");
        k.same("get_entries within the log", &what, |s| s.get_entries(from, to), slice(from, to));
    }
    if end > c {
        let what = format!("get_entries({}, {end})", end - 1);
        let last = slice(end - 1, end);
        k.same("get_entries within the log", &what, |s| s.get_entries(end - 1, end), last);
        let what = format!("get_entries({}, {mid}) (reversed)", mid + 1);
        let get = |s: &S| s.get_entries(mid + 1, mid);
        k.range_error("get_entries reversed", &what, get, "get_entries", (mid + 1, mid), model);
    }
    for from in [c, mid, end] {
        let what = format!("get_suffix({from})");
        k.same("get_suffix within the log", &what, |s| s.get_suffix(from), slice(from, end));
    }
    // Past the end, unless the log ends at `usize::MAX` (no index lies past it).
    if let Some(past) = end.checked_add(1) {
        let what = format!("get_entries({end}, {past})");
        let get = |s: &S| s.get_entries(end, past);
        k.range_error(
            "get_entries past the log end",
            &what,
            get,
            "get_entries",
            (end, past),
            model,
        );
        let what = format!("get_suffix({past})");
        let get = |s: &S| s.get_suffix(past);
        k.range_error("get_suffix past the log end", &what, get, "get_suffix", (past, end), model);
    }
    if c > 0 {
        let what = format!("get_entries({}, {c}) (below compacted)", c - 1);
        let get = |s: &S| s.get_entries(c - 1, c);
        let check = "get_entries below the compacted index";
        k.range_error(check, &what, get, "get_entries", (c - 1, c), model);
        let what = format!("get_suffix({}) (below compacted)", c - 1);
        let get = |s: &S| s.get_suffix(c - 1);
        let check = "get_suffix below the compacted index";
        k.range_error(check, &what, get, "get_suffix", (c - 1, end), model);
    }
    k.found
}

/// Compares every getter of `storage` with `model` ([`mismatches`]); `Err` lists every
/// disagreement, one per line.
pub fn compare<S: Storage<TestEntry> + ?Sized>(storage: &S, model: &Model) -> Result<(), String> {
    let found = mismatches(storage, model);
    if found.is_empty() {
        return Ok(());
    }
    let lines: Vec<String> = found.into_iter().map(|m| m.detail).collect();
    Err(lines.join("; "))
}

thread_local! {
    /// Batches [`apply_both`] has written on this thread (each case runs on a thread of
    /// its own, so the count starts at zero with every case).
    static BATCHES: std::cell::Cell<u64> = const { std::cell::Cell::new(0) };
}

/// Writes `ops` through [`Storage::write_atomically_from`] if `from`, else through
/// [`Storage::write_atomically`] (taking them either way): the two ways into a backend
/// that the suite and the crash harness alternate between.
pub(crate) fn write_by<S: Storage<TestEntry> + ?Sized>(
    storage: &mut S,
    ops: &mut Vec<StorageOp<TestEntry>>,
    from: bool,
) -> StorageResult<()> {
    if from {
        storage.write_atomically_from(ops)
    } else {
        storage.write_atomically(std::mem::take(ops))
    }
}

/// Applies `ops` to both the backend and the model and checks they agree on the
/// outcome: both succeed, or both refuse the batch with the same op position and reason.
/// Returns the outcome.
///
/// A case's batches alternate between the two ways in: the first, third, ... through
/// [`Storage::write_atomically`], the second, fourth, ... through
/// [`Storage::write_atomically_from`], which must also leave the caller's vector empty.
/// So every case holds both to the model, and the random case does so over thousands of
/// batches.
pub fn apply_both<S: Storage<TestEntry> + ?Sized>(
    storage: &mut S,
    model: &mut Model,
    ops: Vec<StorageOp<TestEntry>>,
) -> Result<Result<(), StorageError>, String> {
    let want = model.apply_batch(&ops);
    let from = BATCHES.with(|n| {
        n.set(n.get() + 1);
        n.get() % 2 == 0
    });
    let mut ops = ops;
    let call = if from { "write_atomically_from" } else { "write_atomically" };
    let got = match catch_unwind(AssertUnwindSafe(|| write_by(storage, &mut ops, from))) {
        Ok(got) => got,
        Err(panic) => {
            return Err(format!(
                "{call}: the backend panicked ({}), model says {:?}",
                panic_message(&*panic),
                want.map_err(|(position, reason)| format!("InvalidOp at op #{position}: {reason}"))
            ))
        }
    };
    if !ops.is_empty() {
        return Err(format!(
            "{call}: returned {got:?} and left {} ops in the caller's vector",
            ops.len()
        ));
    }
    match (&got, want) {
        (Ok(()), Ok(())) => {}
        (Err(StorageError::InvalidOp { position, reason }), Err((p, r)))
            if (*position, *reason) == (p, r) => {}
        (got, want) => {
            return Err(format!(
                "{call}: backend returned {got:?}, model says {:?}",
                want.map_err(|(position, reason)| format!("InvalidOp at op #{position}: {reason}"))
            ))
        }
    }
    Ok(got)
}

/// The checks whose disagreement a case has already described in full, by suite (the
/// module `storage_suite!` expanded in: the case's test path without its name), and
/// which case did: a later case of the same suite names it instead of repeating it.
static DESCRIBED: Mutex<Option<HashMap<(String, &'static str), String>>> = Mutex::new(None);

/// Which case of this suite first described `check`, if another case did; records this
/// case as its describer otherwise.
fn described_by_another_case(check: &'static str) -> Option<String> {
    let case = case_name();
    let suite = case.rsplit_once("::").map_or("", |(suite, _)| suite).to_owned();
    let mut described = DESCRIBED.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
    let by = described.get_or_insert_with(HashMap::new).entry((suite, check));
    Some(by.or_insert_with(|| case.clone()).clone()).filter(|by| *by != case)
}

/// `<check>: <line>`, or, if another case of the same suite described `check` already,
/// a line naming that case.
pub(crate) fn described_once(check: &'static str, line: &str) -> String {
    match described_by_another_case(check) {
        Some(by) => format!("{check}: disagrees with the model, as in {by} (described there)"),
        None => format!("{check}: {line}"),
    }
}

/// A fresh backend in its own temporary directory, with the model beside it.
///
/// [`Fixture::check`] does not stop at a disagreement: it notes each check that disagrees
/// once, with the batch before it, and the case goes on (the model stays the reference),
/// so a case shows every distinct defect it meets. When the fixture is dropped, the case
/// fails listing them; a check already described in full by another case of the same
/// process is named with that case, so a systematic difference reads once.
pub struct Fixture<'f, F: Factory> {
    factory: &'f F,
    dir: TempDir,
    storage: Option<F::Storage>,
    /// The reference state the backend must match.
    pub model: Model,
    next_id: u64,
    /// The last batch written, concrete, for the findings.
    last_batch: String,
    /// The checks that disagreed, each once.
    seen: BTreeSet<&'static str>,
    /// What they found, in order.
    findings: Vec<(&'static str, String)>,
}

impl<'f, F: Factory> Fixture<'f, F> {
    /// Opens the backend on an empty temporary directory.
    pub fn new(factory: &'f F) -> Self {
        let dir = match tempfile::Builder::new().prefix("paxstore-conformance-").tempdir() {
            Ok(dir) => dir,
            Err(err) => panic!("cannot create a temporary directory: {err}"),
        };
        let storage = match catch_unwind(AssertUnwindSafe(|| factory.open(dir.path()))) {
            Ok(Ok(s)) => s,
            Ok(Err(err)) => panic!("factory failed to open an empty directory: {err}"),
            Err(p) => {
                panic!("the factory panicked opening an empty directory: {}", panic_message(&*p))
            }
        };
        Fixture {
            factory,
            dir,
            storage: Some(storage),
            model: Model::default(),
            next_id: 0,
            last_batch: "none (the fresh store)".to_owned(),
            seen: BTreeSet::new(),
            findings: Vec::new(),
        }
    }

    /// The directory the backend keeps its data in.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// The backend under test.
    pub fn storage(&mut self) -> &mut F::Storage {
        if self.storage.is_none() {
            self.fail("the backend was dropped by a failed reopen");
        }
        match self.storage.as_mut() {
            Some(s) => s,
            None => unreachable!("checked just above"),
        }
    }

    /// Says what the case did to the backend directly (through [`Fixture::storage`]), for
    /// the findings that follow.
    pub fn note(&mut self, what: impl Into<String>) {
        self.last_batch = what.into();
    }

    /// `n` entries with fresh ids and `len`-byte payloads.
    pub fn entries(&mut self, n: usize, len: usize) -> Vec<TestEntry> {
        (0..n).map(|_| self.entry(len)).collect()
    }

    /// One entry with a fresh id and a `len`-byte payload.
    pub fn entry(&mut self, len: usize) -> TestEntry {
        self.next_id += 1;
        TestEntry::new(self.next_id, len)
    }

    /// Applies `ops` to backend and model alike; see [`apply_both`].
    pub fn apply(
        &mut self,
        ops: Vec<StorageOp<TestEntry>>,
    ) -> Result<Result<(), StorageError>, String> {
        self.last_batch = describe::batch(&ops);
        match self.storage.as_mut() {
            Some(storage) => apply_both(storage, &mut self.model, ops),
            None => Err("the backend was dropped by a failed reopen".to_owned()),
        }
    }

    /// Writes a batch the model accepts, and checks every getter afterwards.
    pub fn write(&mut self, ops: Vec<StorageOp<TestEntry>>) {
        match self.apply(ops) {
            Ok(Ok(())) => {}
            Ok(Err(err)) => {
                let msg = format!("the batch was refused by backend and model alike: {err}");
                self.fail_on_batch(&msg)
            }
            Err(msg) => self.fail_on_batch(&msg),
        }
        self.check();
    }

    /// Writes a batch that must be refused with `InvalidOp` at `position` for `reason`,
    /// and checks that nothing changed.
    pub fn write_invalid(
        &mut self,
        ops: Vec<StorageOp<TestEntry>>,
        position: usize,
        reason: paxstore::InvalidOp,
    ) {
        let before = self.model.clone();
        match self.apply(ops) {
            Ok(Err(StorageError::InvalidOp { position: p, reason: r }))
                if (p, r) == (position, reason) => {}
            Ok(other) => {
                let msg = format!("expected InvalidOp at #{position} ({reason}), got {other:?}");
                self.fail_on_batch(&msg)
            }
            Err(msg) => self.fail_on_batch(&msg),
        }
        if self.model != before {
            self.fail("the model changed on a refused batch");
        }
        self.check();
    }

    /// Checks every getter against the model, noting each check that disagrees once (see
    /// the type's docs); the case fails when the fixture is dropped.
    pub fn check(&mut self) {
        let found = match self.storage.as_ref() {
            Some(storage) => mismatches(storage, &self.model),
            None => self.fail("the backend was dropped by a failed reopen"),
        };
        for m in found {
            if self.seen.insert(m.check) {
                let line = format!("{} (after the batch {})", m.detail, self.last_batch);
                self.findings.push((m.check, line));
            }
        }
    }

    /// Drops the backend, opens the same directory again, and checks every getter.
    pub fn reopen(&mut self) {
        drop(self.storage.take());
        match catch_unwind(AssertUnwindSafe(|| self.factory.open(self.dir.path()))) {
            Ok(Ok(s)) => self.storage = Some(s),
            Ok(Err(err)) => self.fail(&format!("reopen failed: {err}")),
            Err(p) => self.fail(&format!("the reopen panicked: {}", panic_message(&*p))),
        }
        self.last_batch = format!("{} and a reopen", self.last_batch);
        self.check();
    }

    /// Fails the case on the last batch, with `msg` and what it found before.
    fn fail_on_batch(&mut self, msg: &str) -> ! {
        let msg = format!("batch {}: {msg}", self.last_batch);
        self.fail(&msg)
    }

    /// Fails the case with `msg` and what it found before.
    fn fail(&mut self, msg: &str) -> ! {
        let earlier = self.report();
        panic!("{}: {msg}{earlier}", case_name())
    }

    /// The findings, one per line, taken (so the drop does not report them again).
    fn report(&mut self) -> String {
        let mut out = String::new();
        for (n, (check, line)) in std::mem::take(&mut self.findings).into_iter().enumerate() {
            let _ = write!(out, "\n  {}. {}", n + 1, described_once(check, &line));
        }
        out
    }
}

impl<F: Factory> Drop for Fixture<'_, F> {
    /// Fails the case if a check disagreed, listing each disagreeing check once.
    fn drop(&mut self) {
        if self.findings.is_empty() {
            return;
        }
        let n = self.findings.len();
        let report = self.report();
        if std::thread::panicking() {
            eprintln!("{}: also found:{report}", case_name());
        } else {
            panic!(
                "{}: the backend disagrees with the model on {n} check(s):{report}",
                case_name()
            );
        }
    }
}
