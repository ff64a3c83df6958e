//! The user API: appends, reconfiguration, compaction and reads. Every change is staged
//! and written at the next take, like every other change of the replica.

use std::ops::{Bound, RangeBounds};
use std::sync::Arc;

use paxstore::{ClusterConfig, Entry, Snapshot, StopSign, Storage, StorageResult};

use super::{Replica, Role};
use crate::messages::{Compaction, PaxosMessage};
use crate::{LogEntry, PaxosError, SnapshottedEntry};

impl<T: Entry, S: Storage<T>> Replica<T, S> {
    /// Appends `entry` to the log: proposed by the leader at the next take once a batch is
    /// full (or on the next flush tick), forwarded to the leader from a follower synchronised with it
    /// (elsewhere it waits until this replica is). Appends pipeline: this returns without
    /// waiting for the entry to be decided. An entry can be lost if leadership changes
    /// before it is accepted; watch [`read`](Replica::read). An entry appended once is
    /// decided at most once (see the crate docs).
    pub fn append(&mut self, entry: T) -> Result<(), PaxosError> {
        self.check_running()?;
        self.check_not_ending()?;
        self.step("appending", |r| {
            r.pending.push(entry);
            match &r.role {
                // Proposed at the take, all at once (see `propose_full_batch`).
                Role::Leader(_) => Ok(()),
                Role::Follower(_) => {
                    r.forward_pending();
                    Ok(())
                }
            }
        })
    }

    /// Ends this configuration: proposes a [`StopSign`] naming `new_config`, decided like
    /// an entry after every entry before it. Once it is decided
    /// ([`is_reconfigured`](Replica::is_reconfigured)), the application starts replicas
    /// of `new_config`.
    pub fn reconfigure(
        &mut self,
        new_config: ClusterConfig,
        metadata: Option<Vec<u8>>,
    ) -> Result<(), PaxosError> {
        self.check_running()?;
        self.check_not_ending()?;
        if self.pending_stopsign.is_some() {
            return Err(PaxosError::ConfigurationEnded { decided: false });
        }
        let current = self.config.cluster.configuration_id;
        if new_config.configuration_id <= current {
            return Err(PaxosError::InvalidReconfiguration(format!(
                "the new configuration id {} must be above the current {current}",
                new_config.configuration_id
            )));
        }
        if new_config.nodes.is_empty() {
            return Err(PaxosError::InvalidReconfiguration(
                "the new configuration has no nodes".into(),
            ));
        }
        let ss = StopSign { next_config: new_config, metadata };
        self.step("reconfiguring", |r| {
            r.pending_stopsign = Some(ss);
            r.flush_pending()
        })
    }

    /// Drops the log below `idx`. Only the leader trims, and only what it knows every
    /// replica of the configuration has decided; it tells the others to trim too. With a
    /// snapshotting entry type, trimming folds the entries into the snapshot (it is
    /// [`snapshot(Some(idx), false)`](Replica::snapshot)), so the prefix stays readable.
    pub fn trim(&mut self, idx: usize) -> Result<(), PaxosError> {
        if T::Snapshot::use_snapshots() {
            return self.snapshot(Some(idx), false);
        }
        self.check_running()?;
        self.check_compaction(idx, false)?;
        self.step("trimming", |r| {
            r.store.trim(idx);
            for to in r.peers.clone() {
                r.send(to, PaxosMessage::Compaction(Compaction::Trim(idx)));
            }
            Ok(())
        })
    }

    /// Folds the log below `idx` (default: the decided index) into the snapshot and drops
    /// those entries. `local_only`: only here, up to what this replica decided; otherwise
    /// only on the leader, up to what every replica decided, and every replica does the same.
    pub fn snapshot(&mut self, idx: Option<usize>, local_only: bool) -> Result<(), PaxosError> {
        self.check_running()?;
        if !T::Snapshot::use_snapshots() {
            return Err(PaxosError::SnapshotsNotSupported);
        }
        let idx = idx.unwrap_or(self.state().decided_idx);
        self.check_compaction(idx, local_only)?;
        self.step("snapshotting", |r| {
            r.store.compact_into_snapshot(idx)?;
            if !local_only {
                for to in r.peers.clone() {
                    r.send(to, PaxosMessage::Compaction(Compaction::Snapshot(idx)));
                }
            }
            Ok(())
        })
    }

    /// Compacts as the leader asked, never past what this replica has decided.
    pub(super) fn handle_compaction(&mut self, c: Compaction) -> StorageResult<()> {
        let (compacted, decided) = (self.state().compacted_idx, self.state().decided_idx);
        match c {
            Compaction::Trim(idx) if !T::Snapshot::use_snapshots() => {
                let idx = idx.min(decided);
                if idx > compacted {
                    self.store.trim(idx);
                }
            }
            Compaction::Snapshot(idx) if T::Snapshot::use_snapshots() => {
                let idx = idx.min(decided);
                if idx > compacted {
                    self.store.compact_into_snapshot(idx)?;
                }
            }
            _ => {}
        }
        Ok(())
    }

    fn check_compaction(&self, idx: usize, local_only: bool) -> Result<(), PaxosError> {
        let state = self.state();
        if idx <= state.compacted_idx {
            return Err(PaxosError::AlreadyCompacted { idx, compacted_idx: state.compacted_idx });
        }
        if local_only {
            if idx > state.decided_idx {
                return Err(PaxosError::NotDecided {
                    idx,
                    decided: state.decided_idx,
                    scope: "here",
                });
            }
            return Ok(());
        }
        let Role::Leader(l) = &self.role else {
            return Err(PaxosError::NotLeader { leader: self.leader() });
        };
        let everywhere =
            self.peers.iter().map(|p| l.decided_of(*p)).fold(state.decided_idx, usize::min);
        if idx > everywhere {
            return Err(PaxosError::NotDecided {
                idx,
                decided: everywhere,
                scope: "on every replica",
            });
        }
        Ok(())
    }

    fn check_not_ending(&self) -> Result<(), PaxosError> {
        let state = self.state();
        if state.stopsign.is_some() {
            return Err(PaxosError::ConfigurationEnded { decided: state.stopsign_decided });
        }
        Ok(())
    }

    /// What index `idx` of the log reads as, or `None` past the end.
    pub fn read(&self, idx: usize) -> Result<Option<LogEntry<T>>, PaxosError> {
        Ok(self.read_range(idx, idx + 1)?.and_then(|mut v| v.pop()))
    }

    /// The log at `range`, or `None` if the range reaches past the end of the log (the
    /// stop sign counts as the last index). A range that starts below the compacted
    /// prefix reads it as one [`LogEntry::Trimmed`] or [`LogEntry::Snapshotted`], followed
    /// by the entries after it.
    pub fn read_entries(
        &self,
        range: impl RangeBounds<usize>,
    ) -> Result<Option<Vec<LogEntry<T>>>, PaxosError> {
        let from = match range.start_bound() {
            Bound::Included(&i) => i,
            Bound::Excluded(&i) => i + 1,
            Bound::Unbounded => 0,
        };
        let to = match range.end_bound() {
            Bound::Included(&i) => i + 1,
            Bound::Excluded(&i) => i,
            Bound::Unbounded => self.state().logical_end(),
        };
        self.read_range(from, to)
    }

    /// The decided log from `from` on, or `None` if nothing from `from` on is decided.
    pub fn read_decided_suffix(&self, from: usize) -> Result<Option<Vec<LogEntry<T>>>, PaxosError> {
        let decided = self.state().logical_decided();
        if from >= decided {
            return Ok(None);
        }
        self.read_range(from, decided)
    }

    fn read_range(&self, from: usize, to: usize) -> Result<Option<Vec<LogEntry<T>>>, PaxosError> {
        self.check_running()?;
        let state = self.state();
        if from >= to || to > state.logical_end() {
            return Ok(None);
        }
        let read_err =
            |source| PaxosError::Storage { context: "reading the log", source: Arc::new(source) };
        let mut out = Vec::new();
        if from < state.compacted_idx {
            out.push(match self.store.snapshot().map_err(read_err)? {
                Some(snapshot) => LogEntry::Snapshotted(SnapshottedEntry {
                    trimmed_idx: state.compacted_idx,
                    snapshot,
                }),
                None => LogEntry::Trimmed(state.compacted_idx),
            });
        }
        let (start, end) = (from.max(state.compacted_idx), to.min(state.log_end));
        if start < end {
            let entries = self.store.entries(start, end).map_err(read_err)?;
            out.extend(entries.into_iter().zip(start..).map(|(e, i)| {
                if i < state.decided_idx {
                    LogEntry::Decided(e)
                } else {
                    LogEntry::Undecided(e)
                }
            }));
        }
        if to > state.log_end {
            if let Some(ss) = &state.stopsign {
                out.push(LogEntry::StopSign(ss.clone(), state.stopsign_decided));
            }
        }
        Ok(Some(out))
    }
}
