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
    /// The decided stop sign: its index and the configuration it names.
    stopsign: Option<(usize, u32)>,
}

impl Checker {
    /// A checker for `n` replicas (indexed from 0).
    pub fn new(n: usize) -> Self {
        Checker { chosen: Vec::new(), checked: vec![0; n], max_decided: vec![0; n], stopsign: None }
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

    /// Whether some replica decided a stop sign.
    pub fn stopsign_decided(&self) -> bool {
        self.stopsign.is_some()
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
        self.check_stopsign(replica)?;
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
        let read =
            replica.read_entries(from..decided).map_err(|e| format!("replica {pid}: {e}"))?;
        let entries =
            read.ok_or_else(|| format!("replica {pid}: cannot read {from}..{decided}"))?;
        if entries.len() != decided - from {
            return Err(format!(
                "replica {pid}: read {} entries of {from}..{decided}",
                entries.len()
            ));
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

    /// At most one stop sign is decided, at one index, and nothing is decided after it.
    fn check_stopsign<T: SimValue, S: Storage<T>>(
        &mut self,
        replica: &Replica<T, S>,
    ) -> Result<(), String> {
        let pid = replica.pid();
        if let Some((idx, _)) = self.stopsign {
            if replica.decided_idx() > idx {
                return Err(format!(
                    "replica {pid} decided index {} past the stop sign at {idx}",
                    replica.decided_idx()
                ));
            }
        }
        let Some(ss) = replica.is_reconfigured() else { return Ok(()) };
        let this = (replica.log_end(), ss.next_config.configuration_id);
        if replica.decided_idx() != this.0 {
            return Err(format!(
                "replica {pid}: stop sign decided at {} but entries decided to {}",
                this.0,
                replica.decided_idx()
            ));
        }
        if self.chosen.len() > this.0 {
            if let Some(i) = self.chosen[this.0..].iter().position(|v| v.is_some()) {
                return Err(format!(
                    "replica {pid}: stop sign decided at {} but index {} is decided",
                    this.0,
                    this.0 + i
                ));
            }
        }
        match self.stopsign {
            Some(known) if known != this => Err(format!(
                "replica {pid} decided the stop sign {this:?}, another decided {known:?}"
            )),
            _ => {
                self.stopsign = Some(this);
                Ok(())
            }
        }
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
            return Err(format!(
                "replica {pid}: snapshot covers {len} entries, compacted at {compacted}"
            ));
        }
        if self.chosen_prefix() >= compacted {
            let values = self.chosen[..compacted].iter().map(|v| v.unwrap_or_default());
            let expected = super::DigestSnapshot::of_values(values);
            if expected.digest != digest {
                return Err(format!(
                    "replica {pid}: snapshot of [0, {compacted}) differs from the decided values"
                ));
            }
        }
        Ok(())
    }
}
