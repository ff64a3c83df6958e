//! A deterministic cluster simulator (feature `testing`).
//!
//! N replicas in one process over their real storage. A seeded scheduler drops,
//! duplicates, delays, reorders and splits messages, partitions the network (two sides,
//! one node cut off, or partial connectivity where a node reaches some peers and not
//! others), crashes replicas at any time and in particular right before a step's write
//! (what the replica staged is lost) and right after a step that acknowledged something
//! (a `Promise` or `Accepted` is on its way, the replica is down), restarts them from
//! their storage, appends and compacts. After every step a [`Checker`] verifies safety
//! and integrity (see its docs).
//!
//! After the faulty phase, the network goes quiet and, if
//! [`SimConfig::partial_connectivity_check`] is on, a random partial connectivity with at
//! least one quorum-connected replica is set up and **left up**: a quorum-connected
//! leader must emerge and decide a new entry (the Omni-Paxos paper's progress claim).
//! Then the network heals, every replica restarts, and an append must be decided by every
//! replica within a bound (liveness).
//!
//! Everything is a function of the seed: a failing seed replays exactly.
//!
//! | file | job |
//! |---|---|
//! | `mod.rs` | the simulation: its state, a step, message collection and delivery |
//! | `faults.rs` | the faults a step injects: partitions, crashes, restarts |
//! | `progress.rs` | the end-of-run checks: progress under partial connectivity, liveness |
//! | `checker.rs` | the safety and integrity invariants checked after every step |
//! | `seeds.rs` | running many seeds, the summary lines, seeds from the environment |
//! | `entry.rs`, `tracked.rs` | the simulated values and the storage wrapper that counts writes |

mod checker;
mod entry;
mod faults;
mod progress;
mod seeds;
mod tracked;

use paxstore::{ClusterConfig, Snapshot, Storage};
use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};

pub use checker::{persisted_before_sent, Checker};
pub use entry::{DigestSnapshot, SimEntry, SimValue, TrimEntry};
pub use seeds::{run_seeds, seeds_from_env, stats, summary};
pub use tracked::Tracked;

use crate::messages::PaxosMessage;
use crate::{InjectedBug, Message, PaxosError, Payload, Replica, ReplicaConfig};

/// The fault and workload rates of a simulation. Rates are per step unless said.
#[derive(Clone, Debug)]
pub struct SimConfig {
    /// Replicas (ids 1..=nodes).
    pub nodes: usize,
    /// Steps with faults.
    pub steps: usize,
    /// Probability that a message is lost.
    pub drop_rate: f64,
    /// Probability that a message is delivered twice.
    pub dup_rate: f64,
    /// Probability that a message is split into one message per payload (each then lost,
    /// duplicated and delayed on its own).
    pub split_rate: f64,
    /// Extra steps a message may wait (uniform in `0..=max_delay`), which reorders them.
    pub max_delay: u64,
    /// Probability that a running replica crashes (between steps).
    pub crash_rate: f64,
    /// Probability, per take of a running replica, that it crashes right before the take:
    /// what it staged since its last take is lost and never sent.
    pub crash_before_write_rate: f64,
    /// Probability that a replica crashes right after a take that released a `Promise`
    /// (the promise must already be written); it restarts at the next step, while the
    /// round it promised is still being prepared.
    pub crash_after_promise_rate: f64,
    /// Probability that a replica crashes right after a take that released an
    /// `Accepted` (the entries it acknowledges must already be written); it restarts at
    /// the next step.
    pub crash_after_accepted_rate: f64,
    /// Probability that a crashed replica restarts.
    pub restart_rate: f64,
    /// Probability that the network is partitioned anew.
    pub partition_rate: f64,
    /// Probability that a partition heals.
    pub heal_rate: f64,
    /// Probability that a client appends at a random replica.
    pub append_rate: f64,
    /// Probability that the leader is asked to compact.
    pub compact_rate: f64,
    /// Probability that a replica asks to reconfigure, in the last 30% of the faulty
    /// phase. Once a stop sign is decided, liveness means every replica decides it.
    pub reconfigure_rate: f64,
    /// Leader batch size.
    pub batch_size: usize,
    /// `(read, write)` quorum sizes, or `None` for majorities.
    pub flexible_quorum: Option<(u32, u32)>,
    /// Whether a progress check under partial connectivity follows the faulty phase.
    pub partial_connectivity_check: bool,
    /// Steps allowed, under partial connectivity, for a leader to emerge and decide.
    pub partial_connectivity_steps: usize,
    /// Steps allowed, after healing, for an append to be decided everywhere.
    pub liveness_steps: usize,
    /// A defect re-introduced in every replica (to show that the checks catch it).
    pub bug: Option<InjectedBug>,
    /// Whether every take's messages are checked against what its write left in storage
    /// (persist before send). Off only to show what the other checks catch alone.
    pub check_persist_before_send: bool,
}

impl Default for SimConfig {
    fn default() -> Self {
        SimConfig {
            nodes: 3,
            steps: 1000,
            drop_rate: 0.05,
            dup_rate: 0.03,
            split_rate: 0.2,
            max_delay: 2,
            crash_rate: 0.004,
            crash_before_write_rate: 0.001,
            crash_after_promise_rate: 0.3,
            crash_after_accepted_rate: 0.01,
            restart_rate: 0.03,
            partition_rate: 0.006,
            heal_rate: 0.02,
            append_rate: 0.3,
            compact_rate: 0.01,
            reconfigure_rate: 0.002,
            batch_size: 1,
            flexible_quorum: None,
            partial_connectivity_check: true,
            partial_connectivity_steps: 600,
            liveness_steps: 400,
            bug: None,
            check_persist_before_send: true,
        }
    }
}

/// What one seed did.
#[derive(Clone, Debug, Default)]
pub struct SimOutcome {
    /// The seed.
    pub seed: u64,
    /// Steps run (all phases).
    pub steps: usize,
    /// The invariant violations (the run stops at the first).
    pub violations: Vec<String>,
    /// Indices decided somewhere.
    pub decided: usize,
    /// Crashes injected (all kinds).
    pub crashes: usize,
    /// Crashes right before a take or right after an acknowledging one.
    pub timed_crashes: usize,
    /// Partitions injected.
    pub partitions: usize,
    /// Messages delivered.
    pub delivered: usize,
    /// Whether a stop sign was decided (the configuration ended).
    pub reconfigured: bool,
    /// Whether the progress check under partial connectivity passed (it runs unless the
    /// configuration ended before it).
    pub progressed_partially_connected: bool,
}

/// Opens a replica's storage: `None` the first time, `Some(old)` on restart after a
/// crash (a persistent backend drops `old` and reopens its files; the memory backend
/// hands `old` back).
pub type OpenStorage<S> = Box<dyn FnMut(u64, Option<S>) -> S>;

struct InFlight<T: paxstore::Entry> {
    at: u64,
    msg: Message<T>,
}

/// One simulated cluster, driven by one seed.
pub struct Simulation<T: SimValue, S: Storage<T>> {
    cfg: SimConfig,
    seed: u64,
    rng: SmallRng,
    configs: Vec<ReplicaConfig>,
    replicas: Vec<Option<Replica<T, Tracked<S>>>>,
    /// Storage of crashed replicas.
    down: Vec<Option<S>>,
    /// Per replica: its decided index when it last wrote (a restart may not go below).
    written_decided: Vec<usize>,
    /// Per replica: crashed right after an acknowledgement, restarts at the next step.
    restart_soon: Vec<bool>,
    open: OpenStorage<S>,
    net: Vec<InFlight<T>>,
    /// `link[a][b]`: messages from slot a reach slot b.
    link: Vec<Vec<bool>>,
    now: u64,
    next_value: u64,
    checker: Checker,
    outcome: SimOutcome,
    buf: Vec<Message<T>>,
}

impl<T: SimValue, S: Storage<T>> Simulation<T, S> {
    /// A cluster of `cfg.nodes` fresh replicas over storages from `open`.
    pub fn new(cfg: SimConfig, seed: u64, mut open: OpenStorage<S>) -> Result<Self, PaxosError> {
        let n = cfg.nodes;
        let cluster = ClusterConfig {
            configuration_id: 1,
            nodes: (1..=n as u64).collect(),
            flexible_quorum: cfg.flexible_quorum.map(|(read_quorum_size, write_quorum_size)| {
                paxstore::FlexibleQuorum { read_quorum_size, write_quorum_size }
            }),
        };
        let mut configs = Vec::new();
        let mut replicas = Vec::new();
        for pid in 1..=n as u64 {
            let mut config =
                ReplicaConfig::new(pid, cluster.clone()).with_batch_size(cfg.batch_size);
            config.heartbeat_ticks = 2 * (cfg.max_delay as u32 + 1) + 2;
            config.resend_ticks = 3 * config.heartbeat_ticks / 2;
            let storage = Tracked::new(open(pid, None));
            let mut replica = Replica::new(config.clone(), storage).map_err(|(e, _)| e)?;
            if let Some(bug) = cfg.bug {
                replica.inject_bug(bug);
            }
            replicas.push(Some(replica));
            configs.push(config);
        }
        Ok(Simulation {
            rng: SmallRng::seed_from_u64(seed),
            seed,
            configs,
            replicas,
            down: (0..n).map(|_| None).collect(),
            written_decided: vec![0; n],
            restart_soon: vec![false; n],
            open,
            net: Vec::new(),
            link: vec![vec![true; n]; n],
            now: 0,
            next_value: seed.wrapping_mul(1_000_000_007) << 20,
            checker: Checker::new(n),
            outcome: SimOutcome { seed, ..SimOutcome::default() },
            buf: Vec::new(),
            cfg,
        })
    }

    /// Runs the faulty phase, then the progress check under partial connectivity, then
    /// heals and checks liveness.
    pub fn run(mut self) -> SimOutcome {
        for _ in 0..self.cfg.steps {
            self.step(true);
            if !self.outcome.violations.is_empty() {
                return self.finish();
            }
        }
        if self.cfg.partial_connectivity_check {
            self.check_progress_partially_connected();
            if !self.outcome.violations.is_empty() {
                return self.finish();
            }
        }
        self.check_liveness();
        self.finish()
    }

    fn finish(mut self) -> SimOutcome {
        self.outcome.decided = self.checker.chosen_prefix();
        self.outcome.reconfigured = self.checker.stopsign_decided();
        self.outcome
    }

    fn violation(&mut self, what: String) {
        let msg = format!("seed {} step {}: {what}", self.seed, self.now);
        self.outcome.violations.push(msg);
    }

    fn set_all_links(&mut self, up: bool) {
        for row in &mut self.link {
            row.iter_mut().for_each(|l| *l = up);
        }
    }

    fn restart_all(&mut self) {
        for slot in 0..self.replicas.len() {
            if self.replicas[slot].is_none() {
                self.restart(slot);
            }
        }
    }

    /// Appends `marker` at `slot`, recording it as appended. `Ok(false)` if the replica
    /// refused it because it holds a stop sign (which may yet be replaced by a leader's
    /// log, or be decided: the caller tries again or waits for the configuration to end).
    fn append_marker(&mut self, slot: usize, marker: u64) -> Result<bool, String> {
        self.checker.appended(marker);
        match self.replicas[slot].as_mut().map(|r| r.append(T::from_value(marker))) {
            Some(Err(PaxosError::ConfigurationEnded { .. })) => Ok(false),
            Some(Err(e)) => {
                Err(format!("append of the marker {marker} at {} failed: {e}", slot + 1))
            }
            Some(Ok(())) => Ok(true),
            None => Ok(false),
        }
    }

    /// Whether a stop sign was decided somewhere: the configuration ended.
    fn reconfigured(&self) -> bool {
        self.checker.stopsign_decided()
    }

    fn describe(&self) -> String {
        let state: Vec<String> = self.replicas.iter().flatten().map(|r| format!("{r:?}")).collect();
        format!("links {:?} [{}]", self.link, state.join("; "))
    }

    /// One step: maybe a fault, maybe an append or compaction, a tick of every running
    /// replica and its take, then delivery of every message due (in random order) and
    /// every replica's take; then the checks.
    pub fn step(&mut self, faults: bool) {
        self.now += 1;
        self.outcome.steps += 1;
        if faults {
            self.inject_faults();
            self.workload();
        }
        for slot in 0..self.replicas.len() {
            if let Some(r) = &mut self.replicas[slot] {
                let _ = r.tick();
            }
        }
        self.collect(faults);
        self.deliver();
        self.collect(faults);
        for slot in 0..self.replicas.len() {
            if let Some(r) = &self.replicas[slot] {
                if let Err(e) = self.checker.check(slot, r) {
                    self.violation(e);
                }
            }
        }
    }

    fn workload(&mut self) {
        if self.rng.random_bool(self.cfg.append_rate) {
            let slot = self.rng.random_range(0..self.replicas.len());
            let value = self.next_value;
            self.next_value += 1;
            self.checker.appended(value);
            if let Some(r) = &mut self.replicas[slot] {
                let _ = r.append(T::from_value(value));
            }
        }
        let late = self.now as usize > self.cfg.steps * 7 / 10;
        if late && self.rng.random_bool(self.cfg.reconfigure_rate) {
            let slot = self.rng.random_range(0..self.replicas.len());
            if let Some(r) = &mut self.replicas[slot] {
                let mut next = r.config().cluster.clone();
                next.configuration_id += 1;
                let _ = r.reconfigure(next, Some(self.seed.to_le_bytes().to_vec()));
            }
        }
        if self.rng.random_bool(self.cfg.compact_rate) {
            let local = self.rng.random_bool(0.3);
            for r in self.replicas.iter_mut().flatten() {
                if local || r.is_leader() {
                    let idx = r.decided_idx().saturating_sub(3);
                    if T::Snapshot::use_snapshots() {
                        let _ = r.snapshot(Some(idx), local);
                    } else if !local {
                        let _ = r.trim(idx);
                    }
                    break;
                }
            }
        }
    }

    /// Every running replica takes its messages (its step: one write) into the network,
    /// with drops, duplicates, splits and delays; with `faults`, a replica may crash right
    /// before its take, or right after a take that acknowledged something.
    fn collect(&mut self, faults: bool) {
        let mut buf = std::mem::take(&mut self.buf);
        for slot in 0..self.replicas.len() {
            if self.replicas[slot].is_none() {
                continue;
            }
            if faults && self.rng.random_bool(self.cfg.crash_before_write_rate) {
                self.outcome.timed_crashes += 1;
                self.crash(slot);
                continue;
            }
            let Some(r) = &mut self.replicas[slot] else { continue };
            let (decided, writes, start) = (r.decided_idx(), r.storage().writes(), buf.len());
            if r.drain_outgoing_into(&mut buf).is_err() {
                continue; // the replica stopped: the checker reports it
            }
            if r.storage().writes() != writes {
                self.written_decided[slot] = decided;
            }
            if self.cfg.check_persist_before_send {
                if let Err(e) = checker::persisted_before_sent(r.pid(), r.storage(), &buf[start..])
                {
                    self.violation(e);
                }
            }
            let sent = |f: fn(&PaxosMessage<T>) -> bool| {
                buf[start..].iter().flat_map(|m| &m.payloads).any(|p| match p {
                    Payload::Paxos(m) => f(m),
                    Payload::Ble(_) => false,
                })
            };
            let rate = if sent(|m| matches!(m, PaxosMessage::Promise(_))) {
                self.cfg.crash_after_promise_rate
            } else if sent(|m| matches!(m, PaxosMessage::Accepted(_))) {
                self.cfg.crash_after_accepted_rate
            } else {
                0.0
            };
            if faults && rate > 0.0 && self.rng.random_bool(rate) {
                self.outcome.timed_crashes += 1;
                self.crash(slot);
                self.restart_soon[slot] = true;
            }
        }
        for msg in buf.drain(..) {
            if self.cfg.split_rate > 0.0 && self.rng.random_bool(self.cfg.split_rate) {
                let Message { from, to, payloads } = msg;
                for p in payloads {
                    self.send(Message { from, to, payloads: p.into() });
                }
            } else {
                self.send(msg);
            }
        }
        self.buf = buf;
    }

    /// Puts `msg` on the network: lost, once or twice, each copy delayed at random.
    fn send(&mut self, msg: Message<T>) {
        let faulty = self.cfg.drop_rate > 0.0 || self.cfg.dup_rate > 0.0;
        let copies = if !faulty {
            1
        } else if self.rng.random_bool(self.cfg.drop_rate) {
            0
        } else if self.rng.random_bool(self.cfg.dup_rate) {
            2
        } else {
            1
        };
        for _ in 0..copies {
            let at = self.now + 1 + self.rng.random_range(0..=self.cfg.max_delay);
            self.net.push(InFlight { at, msg: msg.clone() });
        }
    }

    fn deliver(&mut self) {
        let now = self.now;
        let mut due = Vec::new();
        let mut i = 0;
        while i < self.net.len() {
            if self.net[i].at <= now {
                due.push(self.net.swap_remove(i).msg);
            } else {
                i += 1;
            }
        }
        // swap_remove already scrambles; shuffle for a seeded, uniform order.
        for i in (1..due.len()).rev() {
            let j = self.rng.random_range(0..=i);
            due.swap(i, j);
        }
        for msg in due {
            let (from, to) = (msg.from as usize - 1, msg.to as usize - 1);
            if to >= self.replicas.len() || !self.link[from][to] {
                continue;
            }
            if let Some(r) = &mut self.replicas[to] {
                self.outcome.delivered += 1;
                let _ = r.handle_incoming(msg);
            }
        }
    }

    /// Disables faults from now on (drops and duplicates too), for a clean phase.
    pub fn calm(&mut self) {
        self.cfg.drop_rate = 0.0;
        self.cfg.dup_rate = 0.0;
    }
}
