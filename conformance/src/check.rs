//! Holding a backend to the model: every getter compared, every outcome compared.

use std::fmt::Debug;
use std::path::Path;

use paxstore::{StorageError, StorageOp, StorageResult};
use tempfile::TempDir;

use crate::{Factory, Model, TestEntry};
use paxstore::Storage;

fn same<V: PartialEq + Debug>(what: &str, got: StorageResult<V>, want: V) -> Result<(), String> {
    match got {
        Ok(got) if got == want => Ok(()),
        Ok(got) => Err(format!("{what}: backend returned {got:?}, model says {want:?}")),
        Err(err) => Err(format!("{what}: backend failed with `{err}`, model says {want:?}")),
    }
}

fn range_error<V: Debug>(
    what: &str,
    got: StorageResult<V>,
    getter: &'static str,
    from: usize,
    to: usize,
    model: &Model,
) -> Result<(), String> {
    match got {
        Err(StorageError::InvalidRange { getter: g, from: f, to: t, compacted_idx, log_end })
            if (g, f, t, compacted_idx, log_end)
                == (getter, from, to, model.compacted_idx, model.log_end()) =>
        {
            Ok(())
        }
        other => Err(format!(
            "{what}: expected InvalidRange {{ getter: {getter:?}, from: {from}, to: {to}, \
             compacted_idx: {}, log_end: {} }}, backend returned {other:?}",
            model.compacted_idx,
            model.log_end()
        )),
    }
}

/// Compares every getter of `storage` with `model`, including reads of sub-ranges and
/// the exact errors of out-of-range reads. Returns the first disagreement.
pub fn compare<S: Storage<TestEntry> + ?Sized>(storage: &S, model: &Model) -> Result<(), String> {
    let (c, end) = (model.compacted_idx, model.log_end());
    same("get_log_len()", storage.get_log_len(), model.log.len())?;
    same("get_compacted_idx()", storage.get_compacted_idx(), c)?;
    same("get_log_end()", storage.get_log_end(), end)?;
    same("get_decided_idx()", storage.get_decided_idx(), model.decided_idx)?;
    same("get_promise()", storage.get_promise(), model.promise)?;
    same("get_accepted_round()", storage.get_accepted_round(), model.accepted_round)?;
    same("get_stopsign()", storage.get_stopsign(), model.stopsign.clone())?;
    same("get_snapshot()", storage.get_snapshot(), model.snapshot.clone())?;
    let slice = |from: usize, to: usize| model.log[from - c..to - c].to_vec();
    let mid = c + model.log.len() / 2;
    for (from, to) in [(c, end), (c, c), (end, end), (c, mid), (mid, end)] {
        same(
            &format!("get_entries({from}, {to})"),
            storage.get_entries(from, to),
            slice(from, to),
        )?;
    }
    if end > c {
        same(
            &format!("get_entries({}, {end})", end - 1),
            storage.get_entries(end - 1, end),
            slice(end - 1, end),
        )?;
        let what = format!("get_entries({}, {mid}) (reversed)", mid + 1);
        range_error(&what, storage.get_entries(mid + 1, mid), "get_entries", mid + 1, mid, model)?;
    }
    for from in [c, mid, end] {
        same(&format!("get_suffix({from})"), storage.get_suffix(from), slice(from, end))?;
    }
    // Past the end, unless the log ends at `usize::MAX` (no index lies past it).
    if let Some(past) = end.checked_add(1) {
        let what = format!("get_entries({end}, {past})");
        range_error(&what, storage.get_entries(end, past), "get_entries", end, past, model)?;
        let what = format!("get_suffix({past})");
        range_error(&what, storage.get_suffix(past), "get_suffix", past, end, model)?;
    }
    if c > 0 {
        let what = format!("get_entries({}, {c}) (below compacted)", c - 1);
        range_error(&what, storage.get_entries(c - 1, c), "get_entries", c - 1, c, model)?;
        let what = format!("get_suffix({}) (below compacted)", c - 1);
        range_error(&what, storage.get_suffix(c - 1), "get_suffix", c - 1, end, model)?;
    }
    Ok(())
}

/// Applies `ops` to both the backend and the model and checks they agree on the
/// outcome: both succeed, or both refuse the batch with the same op position and reason.
/// Returns the outcome.
pub fn apply_both<S: Storage<TestEntry> + ?Sized>(
    storage: &mut S,
    model: &mut Model,
    ops: Vec<StorageOp<TestEntry>>,
) -> Result<Result<(), StorageError>, String> {
    let want = model.apply_batch(&ops);
    let got = storage.write_atomically(ops);
    match (&got, want) {
        (Ok(()), Ok(())) => {}
        (Err(StorageError::InvalidOp { position, reason }), Err((p, r)))
            if (*position, *reason) == (p, r) => {}
        (got, want) => {
            return Err(format!(
                "write_atomically: backend returned {got:?}, model says {:?}",
                want.map_err(|(position, reason)| format!("InvalidOp at op #{position}: {reason}"))
            ))
        }
    }
    Ok(got)
}

/// A fresh backend in its own temporary directory, with the model beside it.
pub struct Fixture<'f, F: Factory> {
    factory: &'f F,
    dir: TempDir,
    storage: Option<F::Storage>,
    /// The reference state the backend must match.
    pub model: Model,
    next_id: u64,
}

impl<'f, F: Factory> Fixture<'f, F> {
    /// Opens the backend on an empty temporary directory.
    pub fn new(factory: &'f F) -> Self {
        let dir = match tempfile::Builder::new().prefix("paxstore-conformance-").tempdir() {
            Ok(dir) => dir,
            Err(err) => panic!("cannot create a temporary directory: {err}"),
        };
        let storage = match factory.open(dir.path()) {
            Ok(s) => s,
            Err(err) => panic!("factory failed to open an empty directory: {err}"),
        };
        Fixture { factory, dir, storage: Some(storage), model: Model::default(), next_id: 0 }
    }

    /// The directory the backend keeps its data in.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// The backend under test.
    pub fn storage(&mut self) -> &mut F::Storage {
        match self.storage.as_mut() {
            Some(s) => s,
            None => panic!("the backend was dropped by a failed reopen"),
        }
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
        match self.storage.as_mut() {
            Some(storage) => apply_both(storage, &mut self.model, ops),
            None => Err("the backend was dropped by a failed reopen".to_owned()),
        }
    }

    /// Writes a batch the model accepts, and checks every getter afterwards.
    pub fn write(&mut self, ops: Vec<StorageOp<TestEntry>>) {
        let names: Vec<_> = ops.iter().map(|op| op.name()).collect();
        match self.apply(ops) {
            Ok(Ok(())) => {}
            Ok(Err(err)) => panic!("batch {names:?} was refused by backend and model alike: {err}"),
            Err(msg) => panic!("batch {names:?}: {msg}"),
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
        let names: Vec<_> = ops.iter().map(|op| op.name()).collect();
        let before = self.model.clone();
        match self.apply(ops) {
            Ok(Err(StorageError::InvalidOp { position: p, reason: r }))
                if (p, r) == (position, reason) => {}
            Ok(other) => panic!(
                "batch {names:?}: expected InvalidOp at #{position} ({reason}), got {other:?}"
            ),
            Err(msg) => panic!("batch {names:?}: {msg}"),
        }
        assert_eq!(self.model, before, "the model changed on a refused batch");
        self.check();
    }

    /// Checks every getter against the model; panics naming the first disagreement.
    pub fn check(&mut self) {
        let model = self.model.clone();
        if let Err(msg) = compare(self.storage(), &model) {
            panic!("backend disagrees with the model: {msg}");
        }
    }

    /// Drops the backend, opens the same directory again, and checks every getter.
    pub fn reopen(&mut self) {
        drop(self.storage.take());
        match self.factory.open(self.dir.path()) {
            Ok(s) => self.storage = Some(s),
            Err(err) => panic!("reopen failed: {err}"),
        }
        self.check();
    }
}
