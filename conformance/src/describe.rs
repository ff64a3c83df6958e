//! Batches as a failure message shows them: concrete ops, entries as `e(id, len)` (the
//! suite's entries are [`TestEntry::new(id, len)`](crate::TestEntry::new)), long entry
//! lists cut to their ends.

use std::fmt::Write;

use paxstore::StorageOp::{self, *};

use crate::TestEntry;

/// More entries than this in one op are shown as the first and last few and a count.
const SHOWN_ENTRIES: usize = 12;

fn entries(out: &mut String, es: &[TestEntry]) {
    let one = |out: &mut String, e: &TestEntry| {
        let _ = write!(out, "e({}, {})", e.id, e.payload.len());
    };
    out.push('[');
    if es.len() <= SHOWN_ENTRIES {
        for (k, e) in es.iter().enumerate() {
            if k > 0 {
                out.push_str(", ");
            }
            one(out, e);
        }
    } else {
        for e in &es[..3] {
            one(out, e);
            out.push_str(", ");
        }
        let _ = write!(out, "... {} more ..., ", es.len() - 6);
        for (k, e) in es[es.len() - 3..].iter().enumerate() {
            if k > 0 {
                out.push_str(", ");
            }
            one(out, e);
        }
    }
    out.push(']');
}

/// One op, concrete: `AppendOnPrefix(4, [e(7, 16)])`, `Trim(3)`, `SetPromise(Ballot {..})`.
pub fn op(op: &StorageOp<TestEntry>) -> String {
    let mut out = String::new();
    match op {
        AppendEntry(e) => {
            let _ = write!(out, "AppendEntry(e({}, {}))", e.id, e.payload.len());
        }
        AppendEntries(es) => {
            out.push_str("AppendEntries(");
            entries(&mut out, es);
            out.push(')');
        }
        AppendOnPrefix(from, es) => {
            let _ = write!(out, "AppendOnPrefix({from}, ");
            entries(&mut out, es);
            out.push(')');
        }
        SetPromise(b) => {
            let _ = write!(out, "SetPromise({b:?})");
        }
        SetAcceptedRound(b) => {
            let _ = write!(out, "SetAcceptedRound({b:?})");
        }
        SetDecidedIndex(i) => {
            let _ = write!(out, "SetDecidedIndex({i})");
        }
        SetCompactedIdx(i) => {
            let _ = write!(out, "SetCompactedIdx({i})");
        }
        Trim(i) => {
            let _ = write!(out, "Trim({i})");
        }
        SetStopsign(s) => {
            let _ = write!(out, "SetStopsign({s:?})");
        }
        SetSnapshot(s) => {
            let _ = write!(out, "SetSnapshot({s:?})");
        }
    }
    out
}

/// A batch, concrete: `[AppendEntry(e(1, 8)), SetDecidedIndex(1)]`.
pub fn batch(ops: &[StorageOp<TestEntry>]) -> String {
    let ops: Vec<String> = ops.iter().map(op).collect();
    format!("[{}]", ops.join(", "))
}

/// The payload of a caught panic, as text.
pub fn panic_message(payload: &(dyn std::any::Any + Send)) -> String {
    match (payload.downcast_ref::<&str>(), payload.downcast_ref::<String>()) {
        (Some(s), _) => (*s).to_owned(),
        (_, Some(s)) => s.clone(),
        _ => "a panic without a message".to_owned(),
    }
}

/// The running test's name (libtest names each test's thread after it), for messages
/// that must say which case they come from.
pub fn case_name() -> String {
    std::thread::current().name().unwrap_or("this case").to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn long_entry_lists_are_cut_to_their_ends() {
        let es: Vec<_> = (1..=20).map(|i| TestEntry::new(i, 4)).collect();
        assert_eq!(
            batch(&[AppendEntries(es), Trim(3)]),
            "[AppendEntries([e(1, 4), e(2, 4), e(3, 4), ... 14 more ..., e(18, 4), e(19, 4), \
             e(20, 4)]), Trim(3)]"
        );
        assert_eq!(
            op(&AppendOnPrefix(2, vec![TestEntry::new(9, 0)])),
            "AppendOnPrefix(2, [e(9, 0)])"
        );
    }
}
