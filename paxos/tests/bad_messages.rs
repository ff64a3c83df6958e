//! Garbage, stale, duplicated and out-of-order messages never make a replica panic,
//! stop, or break its invariants; a cluster fed garbage alongside real traffic still
//! decides one log.

use paxstore::{Ballot, ClusterConfig, StopSign};
use paxstore_backends::MemoryStorage;
use paxstore_paxos::cluster::LocalCluster;
use paxstore_paxos::messages::{
    AcceptDecide, AcceptSync, Accepted, BleMessage, Compaction, Decide, Forward, LogSync,
    PaxosMessage, Prepare, Promise,
};
use paxstore_paxos::sim::{DigestSnapshot, SimEntry};
use paxstore_paxos::{Message, Payload, ReplicaConfig};
use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};

fn idx(rng: &mut SmallRng) -> usize {
    match rng.random_range(0..4) {
        0 => rng.random_range(0..5),
        1 => rng.random_range(0..40),
        2 => usize::MAX - rng.random_range(0..3),
        _ => rng.random_range(0..1_000_000),
    }
}

fn ballot(rng: &mut SmallRng) -> Ballot {
    Ballot::new(1, rng.random_range(0..6), rng.random_range(0..2), rng.random_range(0..5))
}

fn entries(rng: &mut SmallRng) -> Vec<SimEntry> {
    (0..rng.random_range(0..4)).map(|_| SimEntry(rng.random_range(0..1000))).collect()
}

fn stopsign(rng: &mut SmallRng) -> Option<StopSign> {
    rng.random_bool(0.2).then(|| StopSign {
        next_config: ClusterConfig {
            configuration_id: 2,
            nodes: vec![1, 2, 3],
            flexible_quorum: None,
        },
        metadata: None,
    })
}

fn sync(rng: &mut SmallRng) -> LogSync<SimEntry> {
    LogSync {
        snapshot: rng
            .random_bool(0.2)
            .then(|| (DigestSnapshot { len: 3, digest: rng.random() }, idx(rng))),
        suffix_start: idx(rng),
        entries: entries(rng),
        stopsign: stopsign(rng),
    }
}

fn garbage(rng: &mut SmallRng) -> Message<SimEntry> {
    let from = rng.random_range(0..5);
    let to = rng.random_range(0..5);
    let payloads = (0..rng.random_range(0..4)).map(|_| payload(rng)).collect();
    Message { from, to, payloads }
}

fn payload(rng: &mut SmallRng) -> Payload<SimEntry> {
    match rng.random_range(0..13) {
        0 => Payload::Ble(BleMessage::HeartbeatRequest { round: rng.random_range(0..50) }),
        1 => Payload::Ble(BleMessage::HeartbeatReply {
            round: rng.random_range(0..50),
            ballot: ballot(rng),
            quorum_connected: rng.random(),
            leader: rng.random_bool(0.5).then(|| ballot(rng)),
        }),
        n => Payload::Paxos(match n {
            2 => PaxosMessage::Prepare(Prepare {
                n: ballot(rng),
                decided_idx: idx(rng),
                accepted_round: ballot(rng),
                log_end: idx(rng),
            }),
            3 => PaxosMessage::Promise(Box::new(Promise {
                n: ballot(rng),
                accepted_round: ballot(rng),
                decided_idx: idx(rng),
                log_end: idx(rng),
                has_stopsign: rng.random(),
                sync: rng.random_bool(0.5).then(|| sync(rng)),
            })),
            4 => PaxosMessage::AcceptSync(Box::new(AcceptSync {
                n: ballot(rng),
                sync: sync(rng),
                decided_idx: idx(rng),
                forward_epoch: rng.random_range(0..3) * u64::MAX / 2,
            })),
            5 => PaxosMessage::AcceptDecide(AcceptDecide {
                n: ballot(rng),
                start_idx: idx(rng),
                entries: entries(rng),
                stopsign: stopsign(rng).map(Box::new),
                decided_idx: idx(rng),
            }),
            6 => PaxosMessage::Accepted(Accepted {
                n: ballot(rng),
                accepted_idx: idx(rng),
                decided_idx: idx(rng),
            }),
            7 => PaxosMessage::Decide(Decide { n: ballot(rng), decided_idx: idx(rng) }),
            8 => PaxosMessage::Nack { n: ballot(rng), promise: ballot(rng) },
            9 => PaxosMessage::PrepareReq,
            10 => PaxosMessage::Forward(Forward {
                n: ballot(rng),
                epoch: rng.random_range(0..3),
                seq: rng.random_range(0..3) * u64::MAX / 2,
                entries: entries(rng),
            }),
            11 => PaxosMessage::Compaction(if rng.random() {
                Compaction::Trim(idx(rng))
            } else {
                Compaction::Snapshot(idx(rng))
            }),
            _ => PaxosMessage::ForwardStopSign(Box::new(StopSign {
                next_config: ClusterConfig::default(),
                metadata: None,
            })),
        }),
    }
}

#[test]
fn a_lone_replica_survives_garbage() {
    for seed in 0..200 {
        let mut rng = SmallRng::seed_from_u64(seed);
        let config = ReplicaConfig::new(
            1,
            ClusterConfig { configuration_id: 1, nodes: vec![1, 2, 3], flexible_quorum: None },
        );
        let mut r = paxstore_paxos::Replica::new(config, MemoryStorage::<SimEntry>::new()).unwrap();
        for _ in 0..300 {
            let mut msg = garbage(&mut rng);
            msg.to = 1;
            r.handle_incoming(msg).unwrap();
            if rng.random_bool(0.1) {
                r.tick().unwrap();
            }
            assert!(
                r.compacted_idx() <= r.decided_idx() && r.decided_idx() <= r.log_end(),
                "seed {seed}: {r:?}"
            );
            r.read_entries(..).unwrap();
            r.take_outgoing_messages().unwrap();
        }
    }
}

#[test]
fn stale_and_duplicate_messages_do_not_disturb_a_cluster() {
    let template = ReplicaConfig::new(1, ClusterConfig::default());
    let mut c = LocalCluster::new(3, &template, |_| MemoryStorage::<SimEntry>::new()).unwrap();
    let mut history: Vec<Message<SimEntry>> = Vec::new();
    let mut rng = SmallRng::seed_from_u64(7);
    c.elect_leader(500).unwrap();
    for i in 0..50 {
        c.append(SimEntry(i)).unwrap();
        // Record what is in flight, then replay old messages at random later.
        history.extend(c.queued_messages());
        for msg in history.iter().filter(|_| rng.random_bool(0.05)).cloned().collect::<Vec<_>>() {
            let to = msg.to;
            c.replica_mut(to).unwrap().handle_incoming(msg.clone()).unwrap();
            c.replica_mut(to).unwrap().handle_incoming(msg).unwrap();
        }
        c.tick().unwrap();
        history.extend(c.queued_messages());
        c.deliver().unwrap();
    }
    assert!(history.len() > 100, "{}", history.len());
    assert!(c.run_until(300, |c| c.min_decided_idx() >= 40).unwrap());
    let logs: Vec<_> =
        c.replicas().map(|r| r.read_decided_suffix(0).unwrap().unwrap()[..40].to_vec()).collect();
    assert!(logs.windows(2).all(|w| w[0] == w[1]));
}
