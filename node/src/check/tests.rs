//! The checker against hand-made histories it must accept and reject, and against a
//! brute-force search on random small histories.

use proptest::prelude::*;

use super::*;

fn put(v: &str) -> KvOp {
    KvOp::Put { key: "k".into(), value: v.into() }
}
fn get() -> KvOp {
    KvOp::Get { key: "k".into() }
}
fn cas(e: Option<&str>, n: &str) -> KvOp {
    KvOp::Cas { key: "k".into(), expected: e.map(Into::into), new: n.into() }
}
fn s(v: Option<&str>) -> Option<String> {
    v.map(Into::into)
}
fn done(client: usize, op: KvOp, call: u64, ret: u64, out: KvOutcome) -> HistOp {
    HistOp { client, op, call, completed: Some((ret, out)) }
}
fn open(client: usize, op: KvOp, call: u64) -> HistOp {
    HistOp { client, op, call, completed: None }
}
fn put_ok(c: usize, v: &str, prev: Option<&str>, call: u64, ret: u64) -> HistOp {
    done(c, put(v), call, ret, KvOutcome::Put { previous: s(prev) })
}
fn get_ok(c: usize, v: Option<&str>, call: u64, ret: u64) -> HistOp {
    done(c, get(), call, ret, KvOutcome::Get { value: s(v) })
}

fn rejected(h: &[HistOp]) -> bool {
    matches!(check(h), Verdict::Violation { .. })
}

#[test]
fn accepts_sequential_and_concurrent_histories() {
    let h = vec![put_ok(0, "a", None, 0, 1), get_ok(1, Some("a"), 2, 3)];
    assert_eq!(check(&h), Verdict::Linearizable);
    // A read concurrent with a write may see either value.
    for seen in [None, Some("a")] {
        let h = vec![put_ok(0, "a", None, 0, 10), get_ok(1, seen, 2, 3)];
        assert_eq!(check(&h), Verdict::Linearizable, "{seen:?}");
    }
    // Two overlapping writes, later reads agree on the order.
    let h = vec![
        put_ok(0, "a", Some("b"), 0, 10),
        put_ok(1, "b", None, 0, 10),
        get_ok(2, Some("a"), 11, 12),
        get_ok(2, Some("a"), 13, 14),
    ];
    assert_eq!(check(&h), Verdict::Linearizable);
    // Touching intervals (a return and a call at the same instant) count as concurrent.
    let h = vec![put_ok(0, "a", None, 0, 5), get_ok(1, None, 5, 6)];
    assert_eq!(check(&h), Verdict::Linearizable);
}

#[test]
fn accepts_operations_without_an_outcome_either_way() {
    // A write whose client never heard back, seen later...
    let h = vec![open(0, put("a"), 0), get_ok(1, Some("a"), 50, 51)];
    assert_eq!(check(&h), Verdict::Linearizable);
    // ...or never.
    let h = vec![open(0, put("a"), 0), get_ok(1, None, 50, 51)];
    assert_eq!(check(&h), Verdict::Linearizable);
    // ...but not seen before it was invoked.
    let h = vec![get_ok(1, Some("a"), 0, 1), open(0, put("a"), 5)];
    assert!(rejected(&h));
    // A read without an outcome is dropped.
    let h = vec![open(0, get(), 0), put_ok(1, "a", None, 1, 2)];
    assert_eq!(check(&h), Verdict::Linearizable);
}

#[test]
fn unobserved_writes_without_an_outcome_change_no_verdict() {
    // Forty writes nobody heard back from, never observed: accepted, quickly.
    let mut h: Vec<HistOp> = (0..40).map(|i| open(i, put(&format!("lost{i}")), i as u64)).collect();
    for i in 0..200u64 {
        let v = format!("v{i}");
        let prev = if i == 0 { None } else { Some(format!("v{}", i - 1)) };
        h.push(put_ok(99, &v, prev.as_deref(), 100 + 2 * i, 101 + 2 * i));
    }
    assert_eq!(check_with_budget(&h, 100_000), Verdict::Linearizable);
    // A dropped write cannot hide a violation: the stale read is still caught.
    h.push(get_ok(98, Some("v3"), 10_000, 10_001));
    assert!(rejected(&h));
    // An observed one is kept: a later read of it is explained by it.
    let h = vec![open(0, put("a"), 0), get_ok(1, Some("a"), 5, 6), get_ok(1, Some("a"), 7, 8)];
    assert_eq!(check(&h), Verdict::Linearizable);
}

#[test]
fn rejects_a_stale_read() {
    let h = vec![put_ok(0, "a", None, 0, 1), get_ok(1, None, 2, 3)];
    assert!(matches!(check(&h), Verdict::Violation { ref key, op: 1, .. } if key == "k"));
}

#[test]
fn rejects_a_lost_acknowledged_write() {
    let h = vec![
        put_ok(0, "a", None, 0, 1),
        put_ok(0, "b", Some("a"), 2, 3),
        get_ok(1, Some("a"), 10, 11),
    ];
    assert!(rejected(&h));
}

#[test]
fn rejects_a_value_nobody_wrote() {
    let h = vec![put_ok(0, "a", None, 0, 1), get_ok(1, Some("z"), 2, 3)];
    assert!(rejected(&h));
}

#[test]
fn rejects_reads_that_disagree_on_the_order_of_writes() {
    let h = vec![
        put_ok(0, "a", None, 0, 100),
        put_ok(1, "b", None, 0, 100),
        get_ok(2, Some("a"), 101, 102),
        get_ok(2, Some("b"), 103, 104),
        get_ok(2, Some("a"), 105, 106),
    ];
    assert!(rejected(&h));
}

#[test]
fn rejects_a_new_value_then_the_old_one_during_one_write() {
    let h = vec![
        put_ok(0, "new", Some("old"), 10, 100),
        put_ok(1, "old", None, 0, 1),
        get_ok(2, Some("new"), 20, 30),
        get_ok(3, Some("old"), 40, 50),
    ];
    assert!(rejected(&h));
}

#[test]
fn rejects_a_compare_and_set_that_could_not_have_matched() {
    let h = vec![
        put_ok(0, "a", None, 0, 1),
        done(1, cas(Some("b"), "c"), 2, 3, KvOutcome::Cas { ok: true, current: s(Some("c")) }),
    ];
    assert!(rejected(&h));
    // The same with the outcome the register gives is fine.
    let h = vec![
        put_ok(0, "a", None, 0, 1),
        done(1, cas(Some("b"), "c"), 2, 3, KvOutcome::Cas { ok: false, current: s(Some("a")) }),
    ];
    assert_eq!(check(&h), Verdict::Linearizable);
}

#[test]
fn rejects_a_wrong_previous_value_of_a_put() {
    let h = vec![put_ok(0, "a", None, 0, 1), put_ok(1, "b", None, 2, 3)];
    assert!(rejected(&h));
}

#[test]
fn keys_are_checked_apart() {
    let other = |op| match op {
        KvOp::Put { value, .. } => KvOp::Put { key: "j".into(), value },
        KvOp::Get { .. } => KvOp::Get { key: "j".into() },
        op => op,
    };
    let mut h = vec![put_ok(0, "a", None, 0, 1)];
    h.push(HistOp { op: other(get()), ..get_ok(1, None, 2, 3) });
    assert_eq!(check(&h), Verdict::Linearizable);
    h.push(get_ok(1, None, 4, 5));
    assert!(matches!(check(&h), Verdict::Violation { ref key, .. } if key == "k"));
}

#[test]
fn a_tiny_budget_is_reported_as_undecided() {
    // Twelve concurrent writes, each observed by a later read, in an order the search
    // must find.
    let mut h: Vec<HistOp> = (0..12).map(|i| open(i, put(&i.to_string()), 0)).collect();
    for i in 0..12u64 {
        h.push(get_ok(99, Some(&((i * 7) % 12).to_string()), 10 + 2 * i, 11 + 2 * i));
    }
    assert!(matches!(check_with_budget(&h, 5), Verdict::Undecided { .. }));
    assert_eq!(check(&h), Verdict::Linearizable);
}

/// Every order of the operations that respects real time, tried one by one.
fn brute_force(h: &[HistOp]) -> bool {
    let ops: Vec<&HistOp> =
        h.iter().filter(|o| !(o.completed.is_none() && matches!(o.op, KvOp::Get { .. }))).collect();
    fn go(ops: &[&HistOp], used: &mut Vec<bool>, state: Option<String>) -> bool {
        if used.iter().all(|u| *u) {
            return true;
        }
        for i in 0..ops.len() {
            if used[i] {
                continue;
            }
            // i may come next only if no unused op completed before i was invoked.
            let blocked = (0..ops.len()).any(|j| {
                !used[j]
                    && j != i
                    && ops[j].completed.as_ref().is_some_and(|(t, _)| *t < ops[i].call)
            });
            if blocked {
                continue;
            }
            if let Some(after) = step(&state, &ops[i].op, ops[i].completed.as_ref().map(|(_, o)| o))
            {
                used[i] = true;
                if go(ops, used, after) {
                    return true;
                }
                used[i] = false;
            }
        }
        false
    }
    let mut used = vec![false; ops.len()];
    go(&ops, &mut used, None)
}

fn value() -> impl Strategy<Value = Option<String>> {
    prop::option::of(prop::sample::select(vec!["a", "b"]).prop_map(String::from))
}

fn hist_op() -> impl Strategy<Value = HistOp> {
    let op = prop_oneof![
        prop::sample::select(vec!["a", "b"]).prop_map(put),
        Just(get()),
        Just(KvOp::Delete { key: "k".into() }),
        (value(), prop::sample::select(vec!["a", "b"])).prop_map(|(e, n)| KvOp::Cas {
            key: "k".into(),
            expected: e,
            new: n.into()
        }),
    ];
    let outcome = prop_oneof![
        value().prop_map(|previous| KvOutcome::Put { previous }),
        value().prop_map(|value| KvOutcome::Get { value }),
        value().prop_map(|previous| KvOutcome::Delete { previous }),
        (any::<bool>(), value()).prop_map(|(ok, current)| KvOutcome::Cas { ok, current }),
    ];
    (op, 0u64..20, 0u64..10, prop::option::weighted(0.85, outcome)).prop_map(
        |(op, call, len, out)| {
            // Outcomes of the wrong kind never match; keep the kinds aligned with the op.
            let out = out.map(|o| match (&op, o) {
                (
                    KvOp::Put { .. },
                    KvOutcome::Get { value } | KvOutcome::Delete { previous: value },
                ) => KvOutcome::Put { previous: value },
                (
                    KvOp::Get { .. },
                    KvOutcome::Put { previous } | KvOutcome::Delete { previous },
                ) => KvOutcome::Get { value: previous },
                (_, o) => o,
            });
            HistOp { client: 0, op, call, completed: out.map(|o| (call + len, o)) }
        },
    )
}

/// A history built by running the register at random linearization points inside each
/// operation's interval: always linearizable.
fn valid_history() -> impl Strategy<Value = Vec<HistOp>> {
    prop::collection::vec((hist_op(), 0u64..10, any::<bool>()), 1..12).prop_map(|ops| {
        let mut ops: Vec<(HistOp, u64, bool)> = ops;
        for (h, at, _) in &mut ops {
            let len = h.completed.as_ref().map_or(10, |(t, _)| t - h.call);
            *at = h.call + (*at % (len + 1));
        }
        let mut order: Vec<usize> = (0..ops.len()).collect();
        order.sort_by_key(|&i| ops[i].1);
        let mut state: Option<String> = None;
        for i in order {
            let (h, _, lost) = &mut ops[i];
            let after = step(&state, &h.op, None).unwrap_or(None);
            let outcome = match &h.op {
                KvOp::Put { .. } => KvOutcome::Put { previous: state.clone() },
                KvOp::Get { .. } => KvOutcome::Get { value: state.clone() },
                KvOp::Delete { .. } => KvOutcome::Delete { previous: state.clone() },
                KvOp::Cas { expected, .. } => {
                    KvOutcome::Cas { ok: state == *expected, current: after.clone() }
                }
            };
            state = after;
            h.completed = if *lost { None } else { h.completed.take().map(|(t, _)| (t, outcome)) };
        }
        ops.into_iter().map(|(h, _, _)| h).collect()
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(
        std::env::var("PAXSTORE_PROPTEST_CASES").ok().and_then(|v| v.parse().ok()).unwrap_or(512)
    ))]

    /// On random small histories (mostly not linearizable), the checker agrees with
    /// trying every real-time order.
    #[test]
    fn agrees_with_brute_force(h in prop::collection::vec(hist_op(), 1..7)) {
        let expected = brute_force(&h);
        let got = check(&h);
        prop_assert_eq!(got == Verdict::Linearizable, expected, "{:?}", got);
    }

    /// Histories produced by a register at random points inside each interval are
    /// always accepted.
    #[test]
    fn accepts_what_a_register_produced(h in valid_history()) {
        prop_assert_eq!(check(&h), Verdict::Linearizable);
        prop_assert!(brute_force(&h));
    }
}
