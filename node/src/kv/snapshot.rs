//! [`KvSnapshot`]: what a prefix of the log does to the map, so the replica can fold a
//! decided prefix into a snapshot and trim it (paxstore's `Snapshot` trait).
//!
//! The trait builds a snapshot from entries alone (`create`) and folds a later one into
//! an earlier one (`merge`), so a snapshot cannot assume what the map held before its
//! first entry. Puts and deletes do not care; a compare-and-set does. So a snapshot keeps,
//! per key, the *function* its stretch of the log applies to the key's value: either a
//! fixed value (a put or delete happened) or a finite map of compare-and-sets
//! (`expected -> new`, every other value unchanged). Functions compose exactly, so
//! `create` and `merge` are correct for any split of the log, and evaluating the
//! snapshot of the log from index 0 on an empty map gives the state.

use std::collections::BTreeMap;

use paxstore::Snapshot;
use serde::{Deserialize, Serialize};

use super::{Command, KvOp};

/// What a stretch of the log does to one key's value.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum KeyFn {
    /// A put or delete fixed the value (`None`: absent), whatever it was before.
    Set(Option<String>),
    /// Only compare-and-sets: a value equal to a pair's first element becomes its second;
    /// any other value is unchanged. The firsts are distinct; no pair maps a value to
    /// itself.
    Map(Vec<(Option<String>, String)>),
}

impl KeyFn {
    /// The function of a stretch that does nothing to the key.
    pub fn identity() -> Self {
        KeyFn::Map(Vec::new())
    }

    /// The function of one operation (a get is the identity).
    pub fn of(op: &KvOp) -> Self {
        match op {
            KvOp::Put { value, .. } => KeyFn::Set(Some(value.clone())),
            KvOp::Delete { .. } => KeyFn::Set(None),
            KvOp::Get { .. } => KeyFn::identity(),
            KvOp::Cas { expected, new, .. } => {
                if expected.as_ref() == Some(new) {
                    KeyFn::identity()
                } else {
                    KeyFn::Map(vec![(expected.clone(), new.clone())])
                }
            }
        }
    }

    /// The value after the stretch, given the value before.
    pub fn apply(&self, before: Option<&String>) -> Option<String> {
        match self {
            KeyFn::Set(v) => v.clone(),
            KeyFn::Map(pairs) => map_apply(pairs, before),
        }
    }

    /// This stretch followed by `next`.
    pub fn then(self, next: KeyFn) -> KeyFn {
        match (self, next) {
            (_, KeyFn::Set(v)) => KeyFn::Set(v),
            (KeyFn::Set(v), g) => KeyFn::Set(g.apply(v.as_ref())),
            (KeyFn::Map(f), KeyFn::Map(g)) => {
                let mut out: Vec<(Option<String>, String)> = Vec::new();
                for (x, y) in &f {
                    // f maps x to Some(y), and g keeps a present value present.
                    if let Some(z) = map_apply(&g, Some(y)) {
                        if x.as_ref() != Some(&z) {
                            out.push((x.clone(), z));
                        }
                    }
                }
                for (x, z) in g {
                    // Where f leaves the value alone (x not in its domain), the stretch is g.
                    if !f.iter().any(|(from, _)| *from == x) && x.as_ref() != Some(&z) {
                        out.push((x, z));
                    }
                }
                KeyFn::Map(out)
            }
        }
    }

    fn is_identity(&self) -> bool {
        matches!(self, KeyFn::Map(pairs) if pairs.is_empty())
    }
}

/// A compare-and-set map applied to `before`.
fn map_apply(pairs: &[(Option<String>, String)], before: Option<&String>) -> Option<String> {
    match pairs.iter().find(|(from, _)| from.as_ref() == before) {
        Some((_, to)) => Some(to.clone()),
        None => before.cloned(),
    }
}

/// What a stretch of the log does to the map: one [`KeyFn`] per key it touches.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct KvSnapshot {
    /// Per key, what the stretch does to its value (keys it leaves alone are absent).
    pub keys: BTreeMap<String, KeyFn>,
}

impl KvSnapshot {
    fn push(&mut self, key: &str, f: KeyFn) {
        let before = self.keys.remove(key).unwrap_or_else(KeyFn::identity);
        let after = before.then(f);
        if !after.is_identity() {
            self.keys.insert(key.to_owned(), after);
        }
    }

    /// The map this snapshot leaves behind when it covers the log from index 0 (every
    /// key absent before it).
    pub fn evaluate_from_empty(&self) -> BTreeMap<String, String> {
        self.keys.iter().filter_map(|(k, f)| f.apply(None).map(|v| (k.clone(), v))).collect()
    }
}

impl Snapshot<Command> for KvSnapshot {
    fn create(entries: &[Command]) -> Self {
        let mut s = KvSnapshot::default();
        for e in entries {
            if !matches!(e.op, KvOp::Get { .. }) {
                s.push(e.op.key(), KeyFn::of(&e.op));
            }
        }
        s
    }

    fn merge(&mut self, delta: Self) {
        for (key, f) in delta.keys {
            self.push(&key, f);
        }
    }

    fn use_snapshots() -> bool {
        true
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;
    use crate::kv::{CommandId, KvState};

    fn op_strategy() -> impl Strategy<Value = KvOp> {
        let key = prop::sample::select(vec!["a", "b"]).prop_map(String::from);
        let value = prop::sample::select(vec!["1", "2", "3"]).prop_map(String::from);
        let maybe = prop::option::of(value.clone());
        prop_oneof![
            (key.clone(), value.clone()).prop_map(|(key, value)| KvOp::Put { key, value }),
            key.clone().prop_map(|key| KvOp::Get { key }),
            key.clone().prop_map(|key| KvOp::Delete { key }),
            (key.clone(), maybe.clone(), value.clone())
                .prop_map(|(key, expected, new)| KvOp::Cas { key, expected, new }),
            (key, maybe, value).prop_map(|(key, expected, new)| KvOp::Cas { key, expected, new }),
        ]
    }

    fn commands(ops: &[KvOp]) -> Vec<Command> {
        ops.iter()
            .zip(0..)
            .map(|(op, seq)| Command {
                id: CommandId { node: 1, incarnation: 1, seq },
                op: op.clone(),
            })
            .collect()
    }

    proptest! {
        /// However the log is cut into snapshots and merged, the snapshot from index 0
        /// evaluates to the state of applying every command in order.
        #[test]
        fn snapshots_of_any_split_equal_sequential_application(
            ops in prop::collection::vec(op_strategy(), 0..60),
            cuts in prop::collection::vec(0usize..60, 0..5),
        ) {
            let log = commands(&ops);
            let mut state = KvState::new();
            for c in &log {
                state.apply(&c.op);
            }
            let mut bounds: Vec<usize> = cuts.into_iter().map(|c| c.min(log.len())).collect();
            bounds.push(0);
            bounds.push(log.len());
            bounds.sort_unstable();
            bounds.dedup();
            let mut snap: Option<KvSnapshot> = None;
            for w in bounds.windows(2) {
                let delta = KvSnapshot::create(&log[w[0]..w[1]]);
                match &mut snap {
                    Some(s) => s.merge(delta),
                    None => snap = Some(delta),
                }
            }
            let snap = snap.unwrap_or_default();
            prop_assert_eq!(KvState::from_snapshot(&snap), state);
        }

        /// A snapshot of a stretch is the function the stretch applies, on every value the
        /// key may hold before it.
        #[test]
        fn key_functions_match_the_operations_on_every_start(
            ops in prop::collection::vec(op_strategy(), 0..30),
        ) {
            let f = KvSnapshot::create(&commands(&ops));
            for start in [None, Some("1"), Some("2"), Some("3"), Some("9")] {
                for key in ["a", "b"] {
                    let mut v = start.map(String::from);
                    for op in ops.iter().filter(|op| op.key() == key) {
                        let mut s = KvState::new();
                        if let Some(v) = &v {
                            s.apply(&KvOp::Put { key: key.into(), value: v.clone() });
                        }
                        s.apply(op);
                        v = s.get(key).cloned();
                    }
                    let got = f.keys.get(key).cloned().unwrap_or_else(KeyFn::identity);
                    prop_assert_eq!(got.apply(start.map(String::from).as_ref()), v);
                }
            }
        }
    }

    #[test]
    fn a_broken_composition_is_caught() {
        // Composing compare-and-sets the wrong way round gives a different function: the
        // property above would fail for it.
        let f = KeyFn::of(&KvOp::Cas { key: "k".into(), expected: None, new: "1".into() });
        let g =
            KeyFn::of(&KvOp::Cas { key: "k".into(), expected: Some("1".into()), new: "2".into() });
        let right = f.clone().then(g.clone());
        let wrong = g.then(f);
        assert_eq!(right.apply(None), Some("2".into()));
        assert_eq!(wrong.apply(None), Some("1".into()));
    }
}
