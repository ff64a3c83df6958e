//! Log synchronisation, both ways: building the suffix of this replica's log another
//! replica lacks ([`LogSync`]), and applying one to this replica's log.

use paxstore::{Entry, Snapshot, Storage, StorageResult};

use super::Replica;
use crate::messages::LogSync;

impl<T: Entry, S: Storage<T>> Replica<T, S> {
    /// This replica's log from `idx` on (with its stop sign). If `idx` is compacted, the
    /// snapshot and the entries after it; `None` if it was trimmed without a snapshot, or
    /// `idx` is past the end of the log.
    pub(super) fn log_sync_from(&self, idx: usize) -> StorageResult<Option<LogSync<T>>> {
        let state = self.state();
        if idx > state.log_end {
            return Ok(None);
        }
        let stopsign = state.stopsign.clone();
        if idx >= state.compacted_idx {
            let entries = self.store.entries(idx, state.log_end)?;
            return Ok(Some(LogSync { snapshot: None, suffix_start: idx, entries, stopsign }));
        }
        let Some(snapshot) = self.store.snapshot()? else { return Ok(None) };
        let start = state.compacted_idx;
        let entries = self.store.entries(start, state.log_end)?;
        Ok(Some(LogSync {
            snapshot: Some((snapshot, start)),
            suffix_start: start,
            entries,
            stopsign,
        }))
    }

    /// Makes this replica's log the one `sync` describes, staging the storage ops.
    /// Entries below the decided index are never rewritten (they are the same by
    /// safety). With `extend_only`, entries held are never cut either: only what lies
    /// past the end of the log is added. Returns `false`, staging nothing, if `sync` does
    /// not fit this log (a gap, or a log shorter than what is decided here).
    pub(super) fn apply_sync(&mut self, sync: LogSync<T>, extend_only: bool) -> bool {
        let LogSync { snapshot, suffix_start, mut entries, stopsign } = sync;
        let state = self.state();
        let (decided, compacted, log_end) = (state.decided_idx, state.compacted_idx, state.log_end);
        let install = snapshot
            .filter(|(_, idx)| *idx > decided.max(compacted) && T::Snapshot::use_snapshots());
        let (decided, compacted, log_end) = match &install {
            Some((_, idx)) => (*idx, *idx, log_end.max(*idx)),
            None => (decided, compacted, log_end),
        };
        let sync_end = suffix_start.saturating_add(entries.len());
        if suffix_start > log_end || sync_end < decided {
            return false;
        }
        if self.state().stopsign_decided
            && (sync_end != log_end || stopsign != self.state().stopsign)
        {
            return false;
        }
        let (start, keep) = if extend_only {
            (log_end, log_end.max(suffix_start) - suffix_start)
        } else {
            let start = suffix_start.max(decided);
            (start, start - suffix_start)
        };
        if start < compacted {
            return false;
        }
        if let Some((snapshot, idx)) = install {
            self.store.install_snapshot(snapshot, idx);
        }
        if extend_only {
            if sync_end > log_end && self.state().stopsign.is_none() {
                entries.drain(..keep);
                self.store.append(&mut entries);
            }
            if stopsign.is_some()
                && self.state().stopsign.is_none()
                && self.state().log_end == sync_end
            {
                self.store.set_stopsign(stopsign);
            }
        } else {
            entries.drain(..keep);
            self.store.append_on_prefix(start, &mut entries);
            self.store.set_stopsign(stopsign);
        }
        true
    }
}
