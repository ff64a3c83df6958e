//! The reference model: the contract's state and ops in the fewest obvious lines.
//!
//! It is written independently of `paxstore::LogBounds`, so a mistake there is caught
//! here rather than copied.

use paxstore::{Ballot, InvalidOp, StopSign, StorageOp};

use crate::{TestEntry, TestSnapshot};

/// The state of the contract, and what every backend must agree with.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Model {
    /// The entries at absolute indices `[compacted_idx, compacted_idx + log.len())`.
    pub log: Vec<TestEntry>,
    /// The first stored index.
    pub compacted_idx: usize,
    /// The decided index.
    pub decided_idx: usize,
    /// The promised ballot.
    pub promise: Option<Ballot>,
    /// The accepted round.
    pub accepted_round: Option<Ballot>,
    /// The stop sign.
    pub stopsign: Option<StopSign>,
    /// The snapshot.
    pub snapshot: Option<TestSnapshot>,
}

impl Model {
    /// One past the last stored index.
    pub fn log_end(&self) -> usize {
        self.compacted_idx + self.log.len()
    }

    /// A stop sign is set and the decided index is one past the log: the stop sign is
    /// decided, and the log is closed.
    pub fn stopsign_decided(&self) -> bool {
        self.stopsign.is_some() && self.log_end().checked_add(1) == Some(self.decided_idx)
    }

    /// Applies a batch all or nothing; on error returns the position and reason of the
    /// first invalid op and leaves the model unchanged.
    pub fn apply_batch(&mut self, ops: &[StorageOp<TestEntry>]) -> Result<(), (usize, InvalidOp)> {
        let mut next = self.clone();
        for (position, op) in ops.iter().enumerate() {
            next.apply(op).map_err(|reason| (position, reason))?;
        }
        *self = next;
        Ok(())
    }

    fn apply(&mut self, op: &StorageOp<TestEntry>) -> Result<(), InvalidOp> {
        let end = self.log_end();
        let closed = self.stopsign_decided();
        // A log end past `usize::MAX` cannot be represented.
        let fits = |op: &'static str, from: usize, entries: usize| match from.checked_add(entries) {
            Some(_) => Ok(()),
            None => Err(InvalidOp::IndexOverflow { op, from, entries }),
        };
        match op.clone() {
            StorageOp::AppendEntry(e) => {
                if closed {
                    let op = "AppendEntry";
                    return Err(InvalidOp::AppendAfterDecidedStopsign { op, log_end: end });
                }
                fits("AppendEntry", end, 1)?;
                self.log.push(e);
            }
            StorageOp::AppendEntries(es) => {
                if closed && !es.is_empty() {
                    let op = "AppendEntries";
                    return Err(InvalidOp::AppendAfterDecidedStopsign { op, log_end: end });
                }
                fits("AppendEntries", end, es.len())?;
                self.log.extend(es);
            }
            StorageOp::AppendOnPrefix(from_idx, es) => {
                if from_idx > end {
                    return Err(InvalidOp::AppendOnPrefixPastEnd { from_idx, log_end: end });
                }
                if from_idx < self.compacted_idx {
                    let compacted_idx = self.compacted_idx;
                    return Err(InvalidOp::AppendOnPrefixBelowCompacted {
                        from_idx,
                        compacted_idx,
                    });
                }
                if from_idx < self.decided_idx {
                    let decided_idx = self.decided_idx;
                    return Err(InvalidOp::AppendOnPrefixOverwritesDecided {
                        from_idx,
                        decided_idx,
                    });
                }
                fits("AppendOnPrefix", from_idx, es.len())?;
                self.log.truncate(from_idx - self.compacted_idx);
                self.log.extend(es);
            }
            StorageOp::SetPromise(b) => self.promise = Some(b),
            StorageOp::SetAcceptedRound(b) => self.accepted_round = Some(b),
            StorageOp::SetDecidedIndex(idx) => {
                let decides_stopsign = end.checked_add(1) == Some(idx) && self.stopsign.is_some();
                if idx > end && !decides_stopsign {
                    return Err(InvalidOp::DecidedPastEnd { idx, log_end: end });
                }
                self.decided_idx = idx;
            }
            StorageOp::Trim(idx) => {
                if idx > end {
                    return Err(InvalidOp::TrimPastEnd { idx, log_end: end });
                }
                if idx < self.compacted_idx {
                    let compacted_idx = self.compacted_idx;
                    return Err(InvalidOp::TrimBelowCompacted { idx, compacted_idx });
                }
                self.log.drain(..idx - self.compacted_idx);
                self.compacted_idx = idx;
            }
            StorageOp::SetCompactedIdx(idx) => {
                if idx < self.compacted_idx {
                    let compacted_idx = self.compacted_idx;
                    return Err(InvalidOp::CompactedBackwards { idx, compacted_idx });
                }
                if idx > end && closed {
                    return Err(InvalidOp::CompactedPastDecidedStopsign { idx, log_end: end });
                }
                if idx >= end {
                    self.log.clear();
                } else {
                    self.log.drain(..idx - self.compacted_idx);
                }
                self.compacted_idx = idx;
            }
            StorageOp::SetStopsign(None) if closed => {
                let decided_idx = self.decided_idx;
                return Err(InvalidOp::ClearDecidedStopsign { decided_idx, log_end: end });
            }
            StorageOp::SetStopsign(s) => self.stopsign = s,
            StorageOp::SetSnapshot(s) => self.snapshot = s,
        }
        Ok(())
    }
}
