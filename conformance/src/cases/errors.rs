//! Every documented error: the exact typed error, and nothing changed.

use paxstore::InvalidOp;
use paxstore::StorageOp::*;

use crate::{Factory, Fixture};

/// A fixture holding entries `[5, 10)` (five trimmed), decided up to 7.
fn trimmed<F: Factory>(factory: &F) -> Fixture<'_, F> {
    let mut fx = Fixture::new(factory);
    let es = fx.entries(10, 8);
    fx.write(vec![AppendEntries(es), SetDecidedIndex(7), Trim(5)]);
    fx
}

/// `AppendOnPrefix` past the end of the log is `AppendOnPrefixPastEnd`.
pub fn error_append_on_prefix_past_end<F: Factory>(factory: &F) {
    let mut fx = trimmed(factory);
    let es = fx.entries(2, 8);
    fx.write_invalid(
        vec![AppendOnPrefix(11, es)],
        0,
        InvalidOp::AppendOnPrefixPastEnd { from_idx: 11, log_end: 10 },
    );
}

/// `AppendOnPrefix` below the compacted index is `AppendOnPrefixBelowCompacted`.
pub fn error_append_on_prefix_below_compacted<F: Factory>(factory: &F) {
    let mut fx = trimmed(factory);
    let es = fx.entries(2, 8);
    fx.write_invalid(
        vec![AppendOnPrefix(4, es)],
        0,
        InvalidOp::AppendOnPrefixBelowCompacted { from_idx: 4, compacted_idx: 5 },
    );
}

/// `AppendOnPrefix` below the decided index is `AppendOnPrefixOverwritesDecided`.
pub fn error_append_on_prefix_overwrites_decided<F: Factory>(factory: &F) {
    let mut fx = trimmed(factory);
    let es = fx.entries(2, 8);
    fx.write_invalid(
        vec![AppendOnPrefix(6, es)],
        0,
        InvalidOp::AppendOnPrefixOverwritesDecided { from_idx: 6, decided_idx: 7 },
    );
}

/// `Trim` past the end of the log is `TrimPastEnd`.
pub fn error_trim_past_end<F: Factory>(factory: &F) {
    let mut fx = trimmed(factory);
    fx.write_invalid(vec![Trim(11)], 0, InvalidOp::TrimPastEnd { idx: 11, log_end: 10 });
    let mut empty = Fixture::new(factory);
    empty.write_invalid(vec![Trim(1)], 0, InvalidOp::TrimPastEnd { idx: 1, log_end: 0 });
}

/// `Trim` below the compacted index is `TrimBelowCompacted`.
pub fn error_trim_below_compacted<F: Factory>(factory: &F) {
    let mut fx = trimmed(factory);
    fx.write_invalid(vec![Trim(4)], 0, InvalidOp::TrimBelowCompacted { idx: 4, compacted_idx: 5 });
}

/// `SetDecidedIndex` past the end of the log is `DecidedPastEnd`.
pub fn error_decided_past_end<F: Factory>(factory: &F) {
    let mut fx = trimmed(factory);
    fx.write_invalid(
        vec![SetDecidedIndex(11)],
        0,
        InvalidOp::DecidedPastEnd { idx: 11, log_end: 10 },
    );
    let mut empty = Fixture::new(factory);
    empty.write_invalid(
        vec![SetDecidedIndex(1)],
        0,
        InvalidOp::DecidedPastEnd { idx: 1, log_end: 0 },
    );
}

/// `SetCompactedIdx` below the compacted index is `CompactedBackwards`.
pub fn error_compacted_backwards<F: Factory>(factory: &F) {
    let mut fx = trimmed(factory);
    fx.write_invalid(
        vec![SetCompactedIdx(4)],
        0,
        InvalidOp::CompactedBackwards { idx: 4, compacted_idx: 5 },
    );
}

/// Reads outside `[compacted_idx, log_end]` or reversed are `InvalidRange` with the
/// getter and bounds (the model comparison checks each field).
pub fn reads_out_of_range_return_invalid_range<F: Factory>(factory: &F) {
    let mut fx = trimmed(factory);
    // `check` compares the exact InvalidRange of reads past the end, below the
    // compacted index and reversed, for get_entries and get_suffix.
    fx.check();
    let mut empty = Fixture::new(factory);
    empty.check();
}
