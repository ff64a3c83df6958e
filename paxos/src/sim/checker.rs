//! The invariants the simulator checks after every step.

use paxstore::Storage;

use super::SimValue;
use crate::{LogEntry, Replica};

/// What every replica has decided so far, and the checks against it:
/// at most one value per index (so every decided prefix agrees), and a replica's decided
/// index never goes back (nothing decided is lost, across restarts too).
#[derive(Debug, Default)]
pub struct Checker {
    /// The value decided at each index, as far as any replica told.
    chosen: Vec<Option<u64>>,
    /// Per replica: decided entries below this index were checked.
    checked: Vec<usize>,
    /// Per replica: the highest decided index seen.
    max_decided: Vec<usize>,
}

impl Checker {
    /// A checker for `n` replicas (indexed from 0).
    pub fn new(n: usize) -> Self {
        Checker { chosen: Vec::new(), checked: vec![0; n], max_decided: vec![0; n] }
    }

    /// The value decided at `idx`, if known.
    pub fn chosen(&self, idx: usize) -> Option<u64> {
        self.chosen.get(idx).copied().flatten()
    }

    /// The number of leading indices whose decided value is known.
    pub fn chosen_prefix(&self) -> usize {
        self.chosen.iter().take_while(|v| v.is_some()).count()
    }

    /// The index at which `value` was decided, if it was.
    pub fn index_of(&self, value: u64) -> Option<usize> {
        self.chosen.iter().position(|v| *v == Some(value))
    }

    /// A replica restarted: check its whole decided log again.
    pub fn restarted(&mut self, slot: usize) {
        self.checked[slot] = 0;
    }

    /// Checks replica `slot`'s decided log against what others decided.
    pub fn check<T: SimValue, S: Storage<T>>(
        &mut self,
        slot: usize,
        replica: &Replica<T, S>,
    ) -> Result<(), String> {
        let pid = replica.pid();
        if let Some(err) = replica.error() {
            return Err(format!("replica {pid} stopped: {err}"));
        }
        let decided = replica.decided_idx();
        if decided < self.max_decided[slot] {
            return Err(format!(
                "replica {pid}: decided index went back from {} to {decided}",
                self.max_decided[slot]
            ));
        }
        self.max_decided[slot] = decided;
        let compacted = replica.compacted_idx();
        if compacted > decided {
            return Err(format!("replica {pid}: compacted {compacted} past decided {decided}"));
        }
        if self.checked[slot] < compacted {
            self.check_compacted(replica, compacted)?;
            self.checked[slot] = compacted;
        }
        let from = self.checked[slot];
        if from >= decided {
            return Ok(());
        }
        let read = replica.read_entries(from..decided).map_err(|e| format!("replica {pid}: {e}"))?;
        let entries = read.ok_or_else(|| format!("replica {pid}: cannot read {from}..{decided}"))?;
        if entries.len() != decided - from {
            return Err(format!("replica {pid}: read {} entries of {from}..{decided}", entries.len()));
        }
        for (idx, entry) in (from..).zip(entries) {
            let LogEntry::Decided(e) = entry else {
                return Err(format!("replica {pid}: index {idx} below decided reads as {entry:?}"));
            };
            self.record(pid, idx, e.value())?;
        }
        self.checked[slot] = decided;
        Ok(())
    }

    fn record(&mut self, pid: u64, idx: usize, value: u64) -> Result<(), String> {
        if self.chosen.len() <= idx {
            self.chosen.resize(idx + 1, None);
        }
        match self.chosen[idx] {
            Some(v) if v != value => Err(format!(
                "index {idx}: replica {pid} decided {value} but {v} was decided there before"
            )),
            _ => {
                self.chosen[idx] = Some(value);
                Ok(())
            }
        }
    }

    /// The snapshot standing for `[0, compacted)` must match the decided values there.
    fn check_compacted<T: SimValue, S: Storage<T>>(
        &self,
        replica: &Replica<T, S>,
        compacted: usize,
    ) -> Result<(), String> {
        let pid = replica.pid();
        let Some(LogEntry::Snapshotted(s)) = replica.read(0).map_err(|e| e.to_string())? else {
            return Ok(());
        };
        let Some((len, digest)) = T::snapshot_digest(&s.snapshot) else { return Ok(()) };
        if len != compacted as u64 {
            return Err(format!("replica {pid}: snapshot covers {len} entries, compacted at {compacted}"));
        }
        if self.chosen_prefix() >= compacted {
            let values = self.chosen[..compacted].iter().map(|v| v.unwrap_or_default());
            let expected = super::DigestSnapshot::of_values(values);
            if expected.digest != digest {
                return Err(format!("replica {pid}: snapshot of [0, {compacted}) differs from the decided values"));
            }
        }
        Ok(())
    }
}
