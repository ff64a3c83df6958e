//! The index bounds of a stored log, and the one place every bound of the contract is
//! checked.
//!
//! Backends validate a whole batch with [`LogBounds::validate_batch`] before they write
//! anything, so a batch with an invalid op anywhere is refused before any op of it takes
//! effect, and every backend refuses exactly the same batches. What a valid batch does
//! comes back with it, as a [`BatchPlan`].
//!
//! Every index computation is checked: a log end past `usize::MAX` cannot be
//! represented, so an append that would need one is refused
//! ([`InvalidOp::IndexOverflow`]), and no comparison wraps around.

use crate::{BatchPlan, Entry, InvalidOp, StorageError, StorageOp, StorageResult};

/// The indices that decide whether an op or a read is valid, and whether a stop sign is
/// set (which allows `decided_idx = log_end + 1`: the stop sign is decided).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct LogBounds {
    /// The first stored index.
    pub compacted_idx: usize,
    /// One past the last stored index: `compacted_idx + log_len`.
    pub log_end: usize,
    /// The decided index: at most `log_end`, or exactly `log_end + 1` when the stop sign
    /// is decided.
    pub decided_idx: usize,
    /// Whether a stop sign is stored.
    pub has_stopsign: bool,
}

impl LogBounds {
    /// The number of entries stored (0 for bounds that are not
    /// [consistent](LogBounds::is_consistent)).
    pub fn log_len(&self) -> usize {
        self.log_end.saturating_sub(self.compacted_idx)
    }

    /// Whether the stop sign is decided: a stop sign is set and `decided_idx = log_end + 1`
    /// (the stop sign takes the slot at `log_end`). The log is then closed: nothing may
    /// move `log_end` or clear the stop sign until `decided_idx` moves back. A log that
    /// ends at `usize::MAX` has no slot left for a decided stop sign.
    pub fn stopsign_decided(&self) -> bool {
        self.has_stopsign && self.is_slot_after_end(self.decided_idx)
    }

    /// Whether `idx` is `log_end + 1`, the slot a decided stop sign takes.
    fn is_slot_after_end(&self, idx: usize) -> bool {
        self.log_end.checked_add(1) == Some(idx)
    }

    /// The log end after `op` writes `entries` entries from `from`, or
    /// [`InvalidOp::IndexOverflow`] if it would pass `usize::MAX`.
    fn end_after(op: &'static str, from: usize, entries: usize) -> Result<usize, InvalidOp> {
        from.checked_add(entries).ok_or(InvalidOp::IndexOverflow { op, from, entries })
    }

    /// Whether these bounds are a state the contract allows: `compacted_idx <= log_end`,
    /// and `decided_idx <= log_end` or the stop sign is decided. Backends check the bounds
    /// they read back at open with this.
    pub fn is_consistent(&self) -> bool {
        self.compacted_idx <= self.log_end
            && (self.decided_idx <= self.log_end || self.stopsign_decided())
    }

    /// Applies `op` to the bounds, or says why it is invalid (leaving `self` unchanged).
    pub fn apply<T: Entry>(&mut self, op: &StorageOp<T>) -> Result<(), InvalidOp> {
        match op {
            StorageOp::AppendEntry(_) => {
                self.check_log_open("AppendEntry")?;
                self.log_end = Self::end_after("AppendEntry", self.log_end, 1)?;
            }
            StorageOp::AppendEntries(entries) => {
                if !entries.is_empty() {
                    self.check_log_open("AppendEntries")?;
                }
                self.log_end = Self::end_after("AppendEntries", self.log_end, entries.len())?;
            }
            StorageOp::AppendOnPrefix(from_idx, entries) => {
                let from_idx = *from_idx;
                if from_idx > self.log_end {
                    return Err(InvalidOp::AppendOnPrefixPastEnd {
                        from_idx,
                        log_end: self.log_end,
                    });
                }
                if from_idx < self.compacted_idx {
                    return Err(InvalidOp::AppendOnPrefixBelowCompacted {
                        from_idx,
                        compacted_idx: self.compacted_idx,
                    });
                }
                if from_idx < self.decided_idx {
                    return Err(InvalidOp::AppendOnPrefixOverwritesDecided {
                        from_idx,
                        decided_idx: self.decided_idx,
                    });
                }
                self.log_end = Self::end_after("AppendOnPrefix", from_idx, entries.len())?;
            }
            StorageOp::SetDecidedIndex(idx) => {
                let decides_stopsign = self.has_stopsign && self.is_slot_after_end(*idx);
                if *idx > self.log_end && !decides_stopsign {
                    return Err(InvalidOp::DecidedPastEnd { idx: *idx, log_end: self.log_end });
                }
                self.decided_idx = *idx;
            }
            StorageOp::Trim(idx) => {
                if *idx > self.log_end {
                    return Err(InvalidOp::TrimPastEnd { idx: *idx, log_end: self.log_end });
                }
                if *idx < self.compacted_idx {
                    return Err(InvalidOp::TrimBelowCompacted {
                        idx: *idx,
                        compacted_idx: self.compacted_idx,
                    });
                }
                self.compacted_idx = *idx;
            }
            StorageOp::SetCompactedIdx(idx) => {
                if *idx < self.compacted_idx {
                    return Err(InvalidOp::CompactedBackwards {
                        idx: *idx,
                        compacted_idx: self.compacted_idx,
                    });
                }
                if *idx > self.log_end && self.stopsign_decided() {
                    return Err(InvalidOp::CompactedPastDecidedStopsign {
                        idx: *idx,
                        log_end: self.log_end,
                    });
                }
                self.compacted_idx = *idx;
                self.log_end = self.log_end.max(*idx);
            }
            StorageOp::SetStopsign(None) => {
                if self.stopsign_decided() {
                    return Err(InvalidOp::ClearDecidedStopsign {
                        decided_idx: self.decided_idx,
                        log_end: self.log_end,
                    });
                }
                self.has_stopsign = false;
            }
            StorageOp::SetStopsign(Some(_)) => self.has_stopsign = true,
            StorageOp::SetPromise(_)
            | StorageOp::SetAcceptedRound(_)
            | StorageOp::SetSnapshot(_) => {}
        }
        Ok(())
    }

    /// Refuses an append while the decided stop sign closes the log.
    fn check_log_open(&self, op: &'static str) -> Result<(), InvalidOp> {
        if self.stopsign_decided() {
            return Err(InvalidOp::AppendAfterDecidedStopsign { op, log_end: self.log_end });
        }
        Ok(())
    }

    /// Checks the whole batch against these bounds, each op against the state the ops
    /// before it left, and returns what it does: its [`BatchPlan`] (whose `after` are the
    /// bounds after it). Refuses the batch at its first invalid op, with its position.
    pub fn validate_batch<T: Entry>(self, ops: &[StorageOp<T>]) -> StorageResult<BatchPlan> {
        let mut plan = BatchPlan::new(self);
        for (position, op) in ops.iter().enumerate() {
            let before = plan.after;
            plan.after.apply(op).map_err(|reason| StorageError::InvalidOp { position, reason })?;
            plan.add(position, op, before);
        }
        Ok(plan)
    }

    /// Checks a read of `[from, to)` by `getter`: `compacted_idx <= from <= to <= log_end`.
    pub fn check_range(&self, getter: &'static str, from: usize, to: usize) -> StorageResult<()> {
        if self.compacted_idx <= from && from <= to && to <= self.log_end {
            Ok(())
        } else {
            Err(StorageError::InvalidRange {
                getter,
                from,
                to,
                compacted_idx: self.compacted_idx,
                log_end: self.log_end,
            })
        }
    }
}
