//! A linearizability checker for key-value histories (test tooling, feature `testing`).
//!
//! A [`History`] is what clients saw: each [`HistOp`] with its invocation time, its
//! completion time and outcome, or neither when the client never learned the outcome (a
//! timeout or a broken connection: the operation may or may not have taken effect, at
//! any time after its invocation). [`check`] decides whether some order of the
//! operations (1) respects real time — an operation that completed before another was
//! invoked comes first — and (2) gives every completed operation the outcome it had
//! when applied, in that order, to one register per key that starts absent.
//!
//! The algorithm is Wing and Gong's search with Lowe's memoization, as in porcupine:
//! operations on different keys are independent (a history is linearizable if and only
//! if each key's sub-history is), so each key is checked alone; within a key, calls and
//! returns form one list in time order, and a depth-first search linearizes any
//! operation whose call comes before the first pending return, backtracking when a
//! return is reached whose operation is not linearized yet. A configuration already seen
//! (the set of linearized operations and the register's value) is not explored again.
//! An operation without an outcome has its return at infinity: it may be linearized
//! anywhere after its call, including after everything else (which is the same as never
//! having happened). Reads without an outcome constrain nothing and are dropped.
//!
//! Writes without an outcome are the expensive part: the search tries each of them at
//! every point after its call. So a put or compare-and-set `U` without an outcome,
//! whose value `x` no completed operation observed (as a read's value, a put's or
//! delete's previous value, or a compare-and-set's current value) and no
//! compare-and-set expects, is dropped first. This changes no verdict. If the history
//! without `U` is linearizable, so is the history with it (linearize `U` last). If the
//! history with `U` has a linearization, remove `U` from it: every completed operation
//! observes the value it is applied to, so none is applied while the value is `x`;
//! between `U` and the next put or delete only operations without an outcome run, and a
//! compare-and-set among them changes nothing observed, as the next put or delete (or
//! the end) overwrites whatever it did. So every completed operation sees the same
//! values, and the rest is still linearizable.

use std::collections::{BTreeMap, HashSet};

use crate::kv::{KvOp, KvOutcome};

/// One operation as a client saw it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HistOp {
    /// Which client (for reports).
    pub client: usize,
    /// The operation.
    pub op: KvOp,
    /// When it was invoked (any monotonic clock, one for the whole history).
    pub call: u64,
    /// When it completed, with the outcome; `None` when the client never learned it.
    pub completed: Option<(u64, KvOutcome)>,
}

/// A whole history.
pub type History = Vec<HistOp>;

/// What [`check`] concluded.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// Some order explains every outcome.
    Linearizable,
    /// No order does; the key, and the operation whose completion no order could reach
    /// (its index in the history), at the deepest point the search got to.
    Violation {
        /// The key whose sub-history is not linearizable.
        key: String,
        /// The history index of an operation that could not be linearized in time.
        op: usize,
        /// How many of that key's operations the deepest attempt linearized.
        linearized: usize,
        /// That key's operations.
        of: usize,
    },
    /// The search gave up after its budget of steps on this key.
    Undecided {
        /// The key.
        key: String,
    },
}

/// Search steps per key before [`check`] gives up.
pub const DEFAULT_BUDGET: u64 = 50_000_000;

/// The register's value after `op`, if applying `op` to `state` gives `outcome` (or any
/// outcome, when it is unknown).
pub fn step(
    state: &Option<String>,
    op: &KvOp,
    outcome: Option<&KvOutcome>,
) -> Option<Option<String>> {
    let (after, expected) = match op {
        KvOp::Put { value, .. } => {
            (Some(value.clone()), KvOutcome::Put { previous: state.clone() })
        }
        KvOp::Get { .. } => (state.clone(), KvOutcome::Get { value: state.clone() }),
        KvOp::Delete { .. } => (None, KvOutcome::Delete { previous: state.clone() }),
        KvOp::Cas { expected, new, .. } => {
            let ok = state == expected;
            let after = if ok { Some(new.clone()) } else { state.clone() };
            (after.clone(), KvOutcome::Cas { ok, current: after })
        }
    };
    match outcome {
        Some(o) if *o != expected => None,
        _ => Some(after),
    }
}

/// Checks `history` with [`DEFAULT_BUDGET`].
pub fn check(history: &[HistOp]) -> Verdict {
    check_with_budget(history, DEFAULT_BUDGET)
}

/// Checks `history`, giving up on a key after `budget` search steps.
pub fn check_with_budget(history: &[HistOp], budget: u64) -> Verdict {
    let mut by_key: BTreeMap<&str, Vec<usize>> = BTreeMap::new();
    for (i, h) in history.iter().enumerate() {
        let unknown_read = h.completed.is_none() && matches!(h.op, KvOp::Get { .. });
        if !unknown_read {
            by_key.entry(h.op.key()).or_default().push(i);
        }
    }
    for (key, ops) in by_key {
        let ops = without_unobserved_writes(history, &ops);
        let sub: Vec<&HistOp> = ops.iter().map(|&i| &history[i]).collect();
        match check_key(&sub, budget) {
            KeyVerdict::Ok => {}
            KeyVerdict::Stuck { op, linearized } => {
                return Verdict::Violation {
                    key: key.to_owned(),
                    op: ops[op],
                    linearized,
                    of: ops.len(),
                }
            }
            KeyVerdict::OutOfBudget => return Verdict::Undecided { key: key.to_owned() },
        }
    }
    Verdict::Linearizable
}

/// `ops` (indices into `history`, all of one key) without the writes that have no
/// outcome, whose value no completed operation observed and no compare-and-set expects.
fn without_unobserved_writes(history: &[HistOp], ops: &[usize]) -> Vec<usize> {
    let mut seen: HashSet<&str> = HashSet::new();
    for &i in ops {
        let h = &history[i];
        if let KvOp::Cas { expected: Some(e), .. } = &h.op {
            seen.insert(e);
        }
        let observed = match h.completed.as_ref().map(|(_, o)| o) {
            Some(KvOutcome::Put { previous: v })
            | Some(KvOutcome::Delete { previous: v })
            | Some(KvOutcome::Get { value: v })
            | Some(KvOutcome::Cas { current: v, .. }) => v.as_deref(),
            None => None,
        };
        if let Some(v) = observed {
            seen.insert(v);
        }
    }
    ops.iter()
        .copied()
        .filter(|&i| {
            let h = &history[i];
            let written = match &h.op {
                KvOp::Put { value, .. } => Some(value.as_str()),
                KvOp::Cas { new, .. } => Some(new.as_str()),
                KvOp::Get { .. } | KvOp::Delete { .. } => None,
            };
            !(h.completed.is_none() && written.is_some_and(|v| !seen.contains(v)))
        })
        .collect()
}

enum KeyVerdict {
    Ok,
    Stuck { op: usize, linearized: usize },
    OutOfBudget,
}

const NIL: usize = usize::MAX;

/// One call or return in the doubly linked event list.
#[derive(Clone, Copy, Debug)]
struct Event {
    op: usize,
    is_call: bool,
    /// For a call, its return's event index.
    ret: usize,
    prev: usize,
    next: usize,
}

/// The event list: index 0 is the head sentinel.
struct Events(Vec<Event>);

impl Events {
    fn new(ops: &[&HistOp]) -> Self {
        // (time, calls before returns at equal times, op)
        let mut order: Vec<(u64, u8, usize)> = Vec::with_capacity(ops.len() * 2);
        for (i, h) in ops.iter().enumerate() {
            order.push((h.call, 0, i));
            order.push((h.completed.as_ref().map_or(u64::MAX, |(t, _)| *t), 1, i));
        }
        order.sort_unstable();
        let head = Event { op: NIL, is_call: false, ret: NIL, prev: NIL, next: NIL };
        let mut ev = vec![head];
        let mut ret_of = vec![NIL; ops.len()];
        for (_, kind, op) in &order {
            ev.push(Event { op: *op, is_call: *kind == 0, ret: NIL, prev: NIL, next: NIL });
            if *kind == 1 {
                ret_of[*op] = ev.len() - 1;
            }
        }
        let n = ev.len();
        for i in 0..n {
            ev[i].prev = if i == 0 { NIL } else { i - 1 };
            ev[i].next = if i + 1 == n { NIL } else { i + 1 };
            if ev[i].is_call {
                ev[i].ret = ret_of[ev[i].op];
            }
        }
        Events(ev)
    }

    fn unlink(&mut self, i: usize) {
        let Event { prev, next, .. } = self.0[i];
        self.0[prev].next = next;
        if next != NIL {
            self.0[next].prev = prev;
        }
    }

    fn relink(&mut self, i: usize) {
        let Event { prev, next, .. } = self.0[i];
        self.0[prev].next = i;
        if next != NIL {
            self.0[next].prev = i;
        }
    }

    /// Takes a call and its return out of the list.
    fn lift(&mut self, call: usize) {
        let ret = self.0[call].ret;
        self.unlink(call);
        self.unlink(ret);
    }

    /// Puts back what [`Events::lift`] took out (in reverse order).
    fn unlift(&mut self, call: usize) {
        let ret = self.0[call].ret;
        self.relink(ret);
        self.relink(call);
    }
}

fn check_key(ops: &[&HistOp], budget: u64) -> KeyVerdict {
    let mut ev = Events::new(ops);
    let words = ops.len().div_ceil(64);
    let mut linearized = vec![0u64; words];
    let mut count = 0usize;
    let mut seen: HashSet<(Vec<u64>, Option<String>)> = HashSet::new();
    let mut stack: Vec<(usize, Option<String>)> = Vec::new();
    let mut state: Option<String> = None;
    let mut deepest = (0usize, 0usize);
    let mut steps = 0u64;
    let mut entry = ev.0[0].next;
    while ev.0[0].next != NIL {
        steps += 1;
        if steps > budget {
            return KeyVerdict::OutOfBudget;
        }
        let e = ev.0[entry];
        if e.is_call {
            let h = ops[e.op];
            if let Some(after) = step(&state, &h.op, h.completed.as_ref().map(|(_, o)| o)) {
                let mut next_set = linearized.clone();
                next_set[e.op / 64] |= 1 << (e.op % 64);
                if seen.insert((next_set.clone(), after.clone())) {
                    stack.push((entry, std::mem::replace(&mut state, after)));
                    linearized = next_set;
                    count += 1;
                    ev.lift(entry);
                    entry = ev.0[0].next;
                    continue;
                }
            }
            entry = e.next;
        } else {
            if count >= deepest.0 {
                deepest = (count, e.op);
            }
            let Some((call, before)) = stack.pop() else {
                return KeyVerdict::Stuck { op: deepest.1, linearized: deepest.0 };
            };
            state = before;
            let op = ev.0[call].op;
            linearized[op / 64] &= !(1 << (op % 64));
            count -= 1;
            ev.unlift(call);
            entry = ev.0[call].next;
        }
    }
    KeyVerdict::Ok
}

#[cfg(test)]
mod tests;
