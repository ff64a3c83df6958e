//! `Careful`: an OmniPaxos storage that keeps OmniPaxos' contract (two compaction indices,
//! `[]` for reads out of range, untyped errors) and has none of the defects the suite finds
//! in OmniPaxos' own `MemoryStorage`: every op is checked in order against the bounds, a
//! batch is applied to a copy that replaces the state only whole, and no index arithmetic
//! can underflow. The suite in OmniPaxos-contract mode passes it, so what it reports on
//! `MemoryStorage` is the storage's doing, not the mode's.
#![allow(dead_code, unreachable_pub)]

use omnipaxos::ballot_leader_election::Ballot;
use omnipaxos::storage::{StopSign, Storage, StorageOp, StorageResult};
use paxstore_omnipaxos::suite::{SuiteEntry, SuiteSnapshot};

#[derive(Clone, Default)]
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
        self.stopsign.is_some() && self.decided == self.end() + 1
    }

    fn apply(&mut self, op: StorageOp<SuiteEntry>) -> Result<(), String> {
        let end = self.end();
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
                if i > end && !(i == end + 1 && self.stopsign.is_some()) {
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

    fn write(&mut self, ops: Vec<StorageOp<SuiteEntry>>) -> StorageResult<()> {
        let mut next = self.clone();
        for op in ops {
            next.apply(op)?;
        }
        *self = next;
        Ok(())
    }
}

impl Storage<SuiteEntry> for Careful {
    fn write_atomically(&mut self, ops: Vec<StorageOp<SuiteEntry>>) -> StorageResult<()> {
        self.write(ops)
    }
    fn append_entry(&mut self, entry: SuiteEntry) -> StorageResult<()> {
        self.write(vec![StorageOp::AppendEntry(entry)])
    }
    fn append_entries(&mut self, entries: Vec<SuiteEntry>) -> StorageResult<()> {
        self.write(vec![StorageOp::AppendEntries(entries)])
    }
    fn append_on_prefix(&mut self, from_idx: usize, entries: Vec<SuiteEntry>) -> StorageResult<()> {
        self.write(vec![StorageOp::AppendOnPrefix(from_idx, entries)])
    }
    fn set_promise(&mut self, n_prom: Ballot) -> StorageResult<()> {
        self.write(vec![StorageOp::SetPromise(n_prom)])
    }
    fn set_decided_idx(&mut self, ld: usize) -> StorageResult<()> {
        self.write(vec![StorageOp::SetDecidedIndex(ld)])
    }
    fn get_decided_idx(&self) -> StorageResult<usize> {
        Ok(self.decided)
    }
    fn set_accepted_round(&mut self, na: Ballot) -> StorageResult<()> {
        self.write(vec![StorageOp::SetAcceptedRound(na)])
    }
    fn get_accepted_round(&self) -> StorageResult<Option<Ballot>> {
        Ok(self.accepted)
    }
    fn get_entries(&self, from: usize, to: usize) -> StorageResult<Vec<SuiteEntry>> {
        Ok(self.range(from, to))
    }
    fn get_log_len(&self) -> StorageResult<usize> {
        Ok(self.log.len())
    }
    fn get_suffix(&self, from: usize) -> StorageResult<Vec<SuiteEntry>> {
        Ok(self.range(from, self.end()))
    }
    fn get_promise(&self) -> StorageResult<Option<Ballot>> {
        Ok(self.promise)
    }
    fn set_stopsign(&mut self, s: Option<StopSign>) -> StorageResult<()> {
        self.write(vec![StorageOp::SetStopsign(s)])
    }
    fn get_stopsign(&self) -> StorageResult<Option<StopSign>> {
        Ok(self.stopsign.clone())
    }
    fn trim(&mut self, idx: usize) -> StorageResult<()> {
        self.write(vec![StorageOp::Trim(idx)])
    }
    fn set_compacted_idx(&mut self, idx: usize) -> StorageResult<()> {
        self.write(vec![StorageOp::SetCompactedIdx(idx)])
    }
    fn get_compacted_idx(&self) -> StorageResult<usize> {
        Ok(self.compacted)
    }
    fn set_snapshot(&mut self, snapshot: Option<SuiteSnapshot>) -> StorageResult<()> {
        self.write(vec![StorageOp::SetSnapshot(snapshot)])
    }
    fn get_snapshot(&self) -> StorageResult<Option<SuiteSnapshot>> {
        Ok(self.snapshot.clone())
    }
}
