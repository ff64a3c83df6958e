//! `Careful`: an OmniPaxos storage that keeps OmniPaxos' contract (two compaction indices,
//! `[]` for reads out of range, untyped errors) and has none of the defects the suite finds
//! in OmniPaxos' own `MemoryStorage`: every op is checked in order against the bounds, a
//! batch is applied to a copy that replaces the state only whole, and no index arithmetic
//! can underflow or overflow (an append that would end the log past `usize::MAX` is
//! refused). The suite in OmniPaxos-contract mode passes it, so what it reports on
//! `MemoryStorage` is the storage's doing, not the mode's.
#![allow(dead_code, unreachable_pub, clippy::expect_used)]

use std::fs::{self, File};
use std::io::{ErrorKind, Write};
use std::path::{Path, PathBuf};

use omnipaxos::ballot_leader_election::Ballot;
use omnipaxos::storage::{StopSign, Storage, StorageOp, StorageResult};
use paxstore_omnipaxos::suite::{SuiteEntry, SuiteSnapshot};
use serde::{Deserialize, Serialize};

#[derive(Clone, Default, Serialize, Deserialize)]
pub struct Careful {
    /// The entries from `trimmed` on.
    log: Vec<SuiteEntry>,
    /// The first stored index (moved by `Trim`).
    trimmed: usize,
    /// The compacted index reported (moved by `SetCompactedIdx`).
    compacted: usize,
    decided: usize,
    promise: Option<Ballot>,
    accepted: Option<Ballot>,
    stopsign: Option<StopSign>,
    snapshot: Option<SuiteSnapshot>,
}

impl Careful {
    fn end(&self) -> usize {
        self.trimmed + self.log.len()
    }

    /// The stop sign is decided: nothing may move the end of the log.
    fn closed(&self) -> bool {
        self.stopsign.is_some() && self.end().checked_add(1) == Some(self.decided)
    }

    fn apply(&mut self, op: StorageOp<SuiteEntry>) -> Result<(), String> {
        let end = self.end();
        let (from, appended) = match &op {
            StorageOp::AppendEntry(_) => (end, 1),
            StorageOp::AppendEntries(es) => (end, es.len()),
            StorageOp::AppendOnPrefix(from, es) => (*from, es.len()),
            _ => (end, 0),
        };
        if from.checked_add(appended).is_none() {
            return Err(format!("{appended} entries at {from} would end the log past usize::MAX"));
        }
        match op {
            StorageOp::AppendEntry(_) | StorageOp::AppendEntries(_) if self.closed() => {
                if !matches!(&op, StorageOp::AppendEntries(es) if es.is_empty()) {
                    return Err(format!("append at {end} after the decided stop sign"));
                }
            }
            StorageOp::AppendEntry(e) => self.log.push(e),
            StorageOp::AppendEntries(es) => self.log.extend(es),
            StorageOp::AppendOnPrefix(from, es) => {
                if from > end || from < self.trimmed || from < self.decided {
                    return Err(format!(
                        "AppendOnPrefix at {from} outside [{}, {end}] or below decided {}",
                        self.trimmed, self.decided
                    ));
                }
                self.log.truncate(from - self.trimmed);
                self.log.extend(es);
            }
            StorageOp::SetPromise(b) => self.promise = Some(b),
            StorageOp::SetAcceptedRound(b) => self.accepted = Some(b),
            StorageOp::SetDecidedIndex(i) => {
                if i > end && !(end.checked_add(1) == Some(i) && self.stopsign.is_some()) {
                    return Err(format!("decided index {i} past the log end {end}"));
                }
                self.decided = i;
            }
            StorageOp::Trim(i) => {
                if i < self.trimmed || i > end && self.closed() {
                    return Err(format!("Trim to {i} below {} or past a closed log", self.trimmed));
                }
                let n = (i - self.trimmed).min(self.log.len());
                self.log.drain(..n);
                self.trimmed = i;
            }
            StorageOp::SetCompactedIdx(i) => {
                if i < self.compacted {
                    return Err(format!("compacted index {i} below {}", self.compacted));
                }
                self.compacted = i;
            }
            StorageOp::SetStopsign(None) if self.closed() => {
                return Err("clearing a decided stop sign".to_owned());
            }
            StorageOp::SetStopsign(s) => self.stopsign = s,
            StorageOp::SetSnapshot(s) => self.snapshot = s,
        }
        Ok(())
    }

    fn range(&self, from: usize, to: usize) -> Vec<SuiteEntry> {
        if from < self.trimmed || from > to || to > self.end() {
            return Vec::new();
        }
        self.log[from - self.trimmed..to - self.trimmed].to_vec()
    }

    /// The state after `ops`, or why one is refused.
    fn after(&self, ops: Vec<StorageOp<SuiteEntry>>) -> Result<Careful, String> {
        let mut next = self.clone();
        for op in ops {
            next.apply(op)?;
        }
        Ok(next)
    }

    fn write(&mut self, ops: Vec<StorageOp<SuiteEntry>>) -> StorageResult<()> {
        *self = self.after(ops)?;
        Ok(())
    }
}

/// [`Careful`] kept in `<dir>/state.bin`: each write is the whole new state written to a
/// temporary file, synced and renamed over the old one, so a batch survives a crash whole
/// or not at all. It runs the suite's reopen and SIGKILL crash cases.
pub struct DurableCareful {
    dir: PathBuf,
    state: Careful,
}

impl DurableCareful {
    /// Opens the store in `dir`, empty if `dir` holds none. Panics if it cannot, as an
    /// OmniPaxos storage's constructor does.
    pub fn open(dir: &Path) -> Self {
        if !dir.exists() {
            // A new store: its directory, durable in its parent (the power-loss case).
            fs::create_dir_all(dir).unwrap_or_else(|e| panic!("creating {}: {e}", dir.display()));
            if let Some(parent) = dir.parent().filter(|p| !p.as_os_str().is_empty()) {
                File::open(parent)
                    .and_then(|f| f.sync_all())
                    .unwrap_or_else(|e| panic!("syncing {}: {e}", parent.display()));
            }
        }
        let state = match fs::read(dir.join("state.bin")) {
            Ok(bytes) => postcard::from_bytes(&bytes).expect("a state this store wrote"),
            Err(err) if err.kind() == ErrorKind::NotFound => Careful::default(),
            Err(err) => panic!("reading {}: {err}", dir.display()),
        };
        DurableCareful { dir: dir.to_owned(), state }
    }

    fn write(&mut self, ops: Vec<StorageOp<SuiteEntry>>) -> StorageResult<()> {
        let next = self.state.after(ops)?;
        let bytes = postcard::to_stdvec(&next)?;
        let temp = self.dir.join("state.bin.tmp");
        let mut file = File::create(&temp)?;
        file.write_all(&bytes)?;
        file.sync_all()?;
        fs::rename(&temp, self.dir.join("state.bin"))?;
        File::open(&self.dir)?.sync_all()?;
        self.state = next;
        Ok(())
    }
}

/// The OmniPaxos `Storage` methods of a type with `write(ops)` and a `Careful` to read.
macro_rules! storage_impl {
    ($t:ty, $state:ident) => {
        impl Storage<SuiteEntry> for $t {
            fn write_atomically(&mut self, ops: Vec<StorageOp<SuiteEntry>>) -> StorageResult<()> {
                self.write(ops)
            }
            fn append_entry(&mut self, entry: SuiteEntry) -> StorageResult<()> {
                self.write(vec![StorageOp::AppendEntry(entry)])
            }
            fn append_entries(&mut self, entries: Vec<SuiteEntry>) -> StorageResult<()> {
                self.write(vec![StorageOp::AppendEntries(entries)])
            }
            fn append_on_prefix(
                &mut self,
                from_idx: usize,
                entries: Vec<SuiteEntry>,
            ) -> StorageResult<()> {
                self.write(vec![StorageOp::AppendOnPrefix(from_idx, entries)])
            }
            fn set_promise(&mut self, n_prom: Ballot) -> StorageResult<()> {
                self.write(vec![StorageOp::SetPromise(n_prom)])
            }
            fn set_decided_idx(&mut self, ld: usize) -> StorageResult<()> {
                self.write(vec![StorageOp::SetDecidedIndex(ld)])
            }
            fn get_decided_idx(&self) -> StorageResult<usize> {
                Ok(self.$state().decided)
            }
            fn set_accepted_round(&mut self, na: Ballot) -> StorageResult<()> {
                self.write(vec![StorageOp::SetAcceptedRound(na)])
            }
            fn get_accepted_round(&self) -> StorageResult<Option<Ballot>> {
                Ok(self.$state().accepted)
            }
            fn get_entries(&self, from: usize, to: usize) -> StorageResult<Vec<SuiteEntry>> {
                Ok(self.$state().range(from, to))
            }
            fn get_log_len(&self) -> StorageResult<usize> {
                Ok(self.$state().log.len())
            }
            fn get_suffix(&self, from: usize) -> StorageResult<Vec<SuiteEntry>> {
                Ok(self.$state().range(from, self.$state().end()))
            }
            fn get_promise(&self) -> StorageResult<Option<Ballot>> {
                Ok(self.$state().promise)
            }
            fn set_stopsign(&mut self, s: Option<StopSign>) -> StorageResult<()> {
                self.write(vec![StorageOp::SetStopsign(s)])
            }
            fn get_stopsign(&self) -> StorageResult<Option<StopSign>> {
                Ok(self.$state().stopsign.clone())
            }
            fn trim(&mut self, idx: usize) -> StorageResult<()> {
                self.write(vec![StorageOp::Trim(idx)])
            }
            fn set_compacted_idx(&mut self, idx: usize) -> StorageResult<()> {
                self.write(vec![StorageOp::SetCompactedIdx(idx)])
            }
            fn get_compacted_idx(&self) -> StorageResult<usize> {
                Ok(self.$state().compacted)
            }
            fn set_snapshot(&mut self, snapshot: Option<SuiteSnapshot>) -> StorageResult<()> {
                self.write(vec![StorageOp::SetSnapshot(snapshot)])
            }
            fn get_snapshot(&self) -> StorageResult<Option<SuiteSnapshot>> {
                Ok(self.$state().snapshot.clone())
            }
        }
    };
}

impl Careful {
    fn state(&self) -> &Careful {
        self
    }
}

impl DurableCareful {
    fn state(&self) -> &Careful {
        &self.state
    }
}

storage_impl!(Careful, state);
storage_impl!(DurableCareful, state);
