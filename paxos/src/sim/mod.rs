//! A deterministic cluster simulator.
//!
//! N replicas in one process over their real storage. A seeded scheduler drops,
//! duplicates, delays and reorders messages, partitions the network (two sides, one node
//! cut off, or partial connectivity where a node reaches some peers and not others),
//! crashes replicas and restarts them from their storage, appends and compacts. After
//! every step a [`Checker`] verifies: at most one value decided per index (hence every
//! decided prefix agrees), no replica's decided index goes back (nothing decided is lost
//! across restarts), snapshots match the decided prefix they stand for, no replica
//! stopped with an error. After the faulty phase the network heals, every replica
//! restarts, and an append must be decided by every replica within a bound (liveness).
//!
//! Everything is a function of the seed: a failing seed replays exactly.

mod checker;
mod entry;

use paxstore::{ClusterConfig, Snapshot, Storage};
use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};

pub use checker::Checker;
pub use entry::{DigestSnapshot, SimEntry, SimValue, TrimEntry};

use crate::{Message, PaxosError, Replica, ReplicaConfig};

/// The fault and workload rates of a simulation. Rates are per step.
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
    /// Extra steps a message may wait (uniform in `0..=max_delay`), which reorders them.
    pub max_delay: u64,
    /// Probability that a running replica crashes.
    pub crash_rate: f64,
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
    /// Steps allowed, after healing, for an append to be decided everywhere.
    pub liveness_steps: usize,
}

impl Default for SimConfig {
    fn default() -> Self {
        SimConfig {
            nodes: 3,
            steps: 1000,
            drop_rate: 0.05,
            dup_rate: 0.03,
            max_delay: 2,
            crash_rate: 0.004,
            restart_rate: 0.03,
            partition_rate: 0.006,
            heal_rate: 0.02,
            append_rate: 0.3,
            compact_rate: 0.01,
            reconfigure_rate: 0.002,
            batch_size: 1,
            flexible_quorum: None,
            liveness_steps: 400,
        }
    }
}

/// What one seed did.
#[derive(Clone, Debug, Default)]
pub struct SimOutcome {
    /// The seed.
    pub seed: u64,
    /// Steps run (faulty and liveness phases).
    pub steps: usize,
    /// The invariant violations (the run stops at the first).
    pub violations: Vec<String>,
    /// Indices decided somewhere.
    pub decided: usize,
    /// Crashes injected.
    pub crashes: usize,
    /// Partitions injected.
    pub partitions: usize,
    /// Messages delivered.
    pub delivered: usize,
    /// Whether a stop sign was decided (the configuration ended).
    pub reconfigured: bool,
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
    replicas: Vec<Option<Replica<T, S>>>,
    /// Storage of crashed replicas.
    down: Vec<Option<S>>,
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
            let storage = open(pid, None);
            replicas.push(Some(Replica::new(config.clone(), storage).map_err(|(e, _)| e)?));
            configs.push(config);
        }
        Ok(Simulation {
            rng: SmallRng::seed_from_u64(seed),
            seed,
            configs,
            replicas,
            down: (0..n).map(|_| None).collect(),
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

    /// Runs the faulty phase, then heals and checks liveness.
    pub fn run(mut self) -> SimOutcome {
        for _ in 0..self.cfg.steps {
            self.step(true);
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

    /// Heals everything, restarts every replica, lets a leader settle, appends one value
    /// and requires every replica to decide it in time.
    fn check_liveness(&mut self) {
        self.calm();
        for row in &mut self.link {
            row.iter_mut().for_each(|l| *l = true);
        }
        for slot in 0..self.replicas.len() {
            if self.replicas[slot].is_none() {
                self.restart(slot);
            }
        }
        let settle = self.cfg.liveness_steps / 2;
        for _ in 0..settle {
            self.step(false);
        }
        let marker = u64::MAX - self.seed;
        let slot = self.rng.random_range(0..self.replicas.len());
        // With a stop sign in some log, the configuration may be ending: then liveness
        // means every replica decides the stop sign.
        let ending = self.replicas.iter().flatten().any(|r| r.stopsign().is_some());
        if !ending {
            if let Some(Err(e)) =
                self.replicas[slot].as_mut().map(|r| r.append(T::from_value(marker)))
            {
                self.violation(format!("append of the liveness marker failed: {e}"));
                return;
            }
        }
        for _ in 0..self.cfg.liveness_steps {
            self.step(false);
            if !self.outcome.violations.is_empty() {
                return;
            }
            let all_ended = self.replicas.iter().flatten().all(|r| r.is_reconfigured().is_some());
            if ending && all_ended {
                return;
            }
            if let Some(idx) = self.checker.index_of(marker) {
                if self.replicas.iter().flatten().all(|r| r.decided_idx() > idx) {
                    return;
                }
            }
        }
        let state: Vec<String> = self.replicas.iter().flatten().map(|r| format!("{r:?}")).collect();
        self.violation(format!(
            "liveness: the marker appended at {} was not decided everywhere after healing [{}]",
            slot + 1,
            state.join("; ")
        ));
    }

    /// One step: maybe a fault, maybe an append or compaction, a tick of every running
    /// replica, then delivery of every message due, in random order; then the checks.
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
        self.collect();
        self.deliver();
        self.collect();
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

    fn inject_faults(&mut self) {
        let n = self.replicas.len();
        if self.rng.random_bool(self.cfg.crash_rate) {
            let slot = self.rng.random_range(0..n);
            if self.replicas[slot].is_some() {
                self.crash(slot);
            }
        }
        for slot in 0..n {
            if self.replicas[slot].is_none() && self.rng.random_bool(self.cfg.restart_rate) {
                self.restart(slot);
            }
        }
        if self.rng.random_bool(self.cfg.partition_rate) {
            self.partition();
        }
        if self.rng.random_bool(self.cfg.heal_rate) {
            for row in &mut self.link {
                row.iter_mut().for_each(|l| *l = true);
            }
        }
    }

    fn partition(&mut self) {
        self.outcome.partitions += 1;
        let n = self.replicas.len();
        match self.rng.random_range(0..3) {
            0 => {
                // Two sides.
                let side: Vec<bool> = (0..n).map(|_| self.rng.random_bool(0.5)).collect();
                for a in 0..n {
                    for b in 0..n {
                        self.link[a][b] = side[a] == side[b];
                    }
                }
            }
            1 => {
                // One node cut off.
                let x = self.rng.random_range(0..n);
                for o in 0..n {
                    if o != x {
                        self.link[x][o] = false;
                        self.link[o][x] = false;
                    }
                }
            }
            _ => {
                // Partial connectivity: random links fail, in one or both directions.
                for a in 0..n {
                    for b in 0..n {
                        if a != b && self.rng.random_bool(0.3) {
                            self.link[a][b] = false;
                        }
                    }
                }
            }
        }
    }

    fn crash(&mut self, slot: usize) {
        if let Some(r) = self.replicas[slot].take() {
            self.outcome.crashes += 1;
            let pid = r.pid();
            let storage = (self.open)(pid, Some(r.into_storage()));
            self.down[slot] = Some(storage);
        }
    }

    fn restart(&mut self, slot: usize) {
        let Some(storage) = self.down[slot].take() else { return };
        match Replica::new(self.configs[slot].clone(), storage) {
            Ok(r) => {
                self.replicas[slot] = Some(r);
                self.checker.restarted(slot);
            }
            Err((e, storage)) => {
                self.down[slot] = Some(storage);
                self.violation(format!("replica {} failed to recover: {e}", slot + 1));
            }
        }
    }

    /// Moves released messages into the network, with drops, duplicates and delays.
    fn collect(&mut self) {
        for r in self.replicas.iter_mut().flatten() {
            r.drain_outgoing_into(&mut self.buf);
        }
        let faulty = self.cfg.drop_rate > 0.0 || self.cfg.dup_rate > 0.0;
        for msg in std::mem::take(&mut self.buf) {
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
        // Sometimes a replica gets everything due for it in one step (group commit).
        let grouped = self.rng.random_bool(0.3);
        let mut groups: Vec<Vec<Message<T>>> =
            (0..self.replicas.len()).map(|_| Vec::new()).collect();
        for msg in due {
            let (from, to) = (msg.from as usize - 1, msg.to as usize - 1);
            if to >= self.replicas.len() || !self.link[from][to] {
                continue;
            }
            if let Some(r) = &mut self.replicas[to] {
                self.outcome.delivered += 1;
                if grouped {
                    groups[to].push(msg);
                } else {
                    let _ = r.handle_incoming(msg);
                }
            }
        }
        for (slot, msgs) in groups.into_iter().enumerate() {
            if let (false, Some(r)) = (msgs.is_empty(), &mut self.replicas[slot]) {
                let _ = r.handle_incoming_batch(msgs);
            }
        }
    }

    /// Disables faults from now on (drops and duplicates too), for a clean phase.
    pub fn calm(&mut self) {
        self.cfg.drop_rate = 0.0;
        self.cfg.dup_rate = 0.0;
    }
}

/// Runs seeds `seeds` with `cfg`, each over storages from `open(seed)`; returns every
/// outcome. Prints the failing seeds with how to replay them.
pub fn run_seeds<T: SimValue, S: Storage<T>>(
    cfg: &SimConfig,
    seeds: impl IntoIterator<Item = u64>,
    mut open: impl FnMut(u64) -> OpenStorage<S>,
) -> Vec<SimOutcome> {
    let mut outcomes = Vec::new();
    for seed in seeds {
        let outcome = match Simulation::<T, S>::new(cfg.clone(), seed, open(seed)) {
            Ok(sim) => sim.run(),
            Err(e) => SimOutcome {
                seed,
                violations: vec![format!("seed {seed}: setup failed: {e}")],
                ..SimOutcome::default()
            },
        };
        for v in &outcome.violations {
            eprintln!("sim violation: {v} (replay: PAXSTORE_SIM_SEED={seed})");
        }
        outcomes.push(outcome);
    }
    outcomes
}

/// The one summary line: `sim: seeds=N steps=M violations=V`.
pub fn summary(outcomes: &[SimOutcome]) -> String {
    let steps: usize = outcomes.iter().map(|o| o.steps).sum();
    let violations: usize = outcomes.iter().map(|o| o.violations.len()).sum();
    format!("sim: seeds={} steps={steps} violations={violations}", outcomes.len())
}

/// A second line of totals: decided indices, crashes, partitions, reconfigured seeds.
pub fn stats(outcomes: &[SimOutcome]) -> String {
    let sum = |f: fn(&SimOutcome) -> usize| outcomes.iter().map(f).sum::<usize>();
    format!(
        "  decided={} crashes={} partitions={} delivered={} reconfigured_seeds={}",
        sum(|o| o.decided),
        sum(|o| o.crashes),
        sum(|o| o.partitions),
        sum(|o| o.delivered),
        sum(|o| usize::from(o.reconfigured)),
    )
}
