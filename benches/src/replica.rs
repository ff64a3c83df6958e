//! The replica driver: 3 replicas in one process, on one thread, driven the way users
//! drive a sans-IO replica (and OmniPaxos): **delivery in rounds**. In a round, each
//! replica in turn (the leader first) takes its outgoing messages and the receivers handle
//! them at once.
//! Appends go to the leader; an entry counts when it is decided on every replica, and its
//! latency runs from its `append` on the leader until the leader decided it.
//!
//! Two workloads, at each batch size:
//!
//! - **upfront**: `n` appends on the leader, then rounds until all are decided
//!   everywhere (throughput when work arrives in bursts); the `n` entries are made
//!   before the clock starts, so the time is the replicas' alone;
//! - **stream**: one append per round, for the time given, then rounds until all are
//!   decided (steady arrival: latency, and what a round costs).
//!
//! The driver is generic over [`RoundNode`], a small trait with one implementation for
//! paxstore's [`Replica`](paxstore_paxos::Replica) (over any backend, here) and one for OmniPaxos 0.2.4
//! ([`crate::omni`]), so both run exactly the same rounds. No tick happens while timing,
//! except to flush a partial batch when a round moves nothing (then counted as a stall).
//! The leader trims what every replica decided every [`TRIM_EVERY`] entries and at the end
//! of each run (timed), so the logs in memory stay bounded, as in a long-running service.
//!
//! Each replica's storage counts its writes; the WAL also counts its own syncs
//! ([`paxstore_backends::wal::WalStorage::stats`]). Figures are per decided entry and per
//! replica.
//!
//! This file holds the driver ([`RoundNode`], [`Rounds`], [`timed_run`]);
//! `replica/storage.rs` the counted storage ([`BenchStorage`]) and
//! `replica/paxstore_node.rs` paxstore's replica as a node ([`PaxstoreCluster`]).

use std::time::{Duration, Instant};

use crate::workload::BenchEntry;
use crate::BenchError;

mod paxstore_node;
mod storage;

pub use paxstore_node::{PaxstoreCluster, PaxstoreNode};
pub use storage::{BenchStorage, StoredEntry};

/// Replicas in the cluster.
pub const REPLICAS: usize = 3;

/// Whether this build has a cluster to measure.
pub const AVAILABLE: bool = true;

/// The entry size the cluster appends.
pub const ENTRY_BYTES: usize = 128;

/// The leader trims the log every this many entries appended (and after every run), as a
/// long-running log does: memory stays bounded, so a cell measures the protocol rather
/// than the growth of three logs in memory.
pub const TRIM_EVERY: usize = 4096;

/// Ticks (each followed by a round) allowed for electing a leader.
const ELECTION_TICKS: usize = 2_000;

/// Rounds that move no message before the run is declared stuck (each one ticks every
/// replica once, to flush a partial batch).
const STALL_ROUNDS: usize = 1_000;

/// The two ways entries arrive.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    /// All appends of a run at once, then delivery.
    Upfront,
    /// One append per round.
    Stream,
}

impl Mode {
    /// `upfront` or `stream`.
    pub fn name(self) -> &'static str {
        match self {
            Mode::Upfront => "upfront",
            Mode::Stream => "stream",
        }
    }

    /// Both modes.
    pub const ALL: [Mode; 2] = [Mode::Upfront, Mode::Stream];
}

impl std::str::FromStr for Mode {
    type Err = String;

    /// `upfront` or `stream`.
    fn from_str(s: &str) -> Result<Self, String> {
        Mode::ALL
            .into_iter()
            .find(|m| m.name() == s)
            .ok_or_else(|| format!("unknown mode {s:?} (expected upfront or stream)"))
    }
}

/// A replica as the round driver sees it.
pub trait RoundNode {
    /// What replicas send each other.
    type Msg;
    /// Appends an entry here (the driver appends on the leader).
    fn append(&mut self, entry: BenchEntry) -> Result<(), BenchError>;
    /// Advances the replica's timers by one tick.
    fn tick(&mut self) -> Result<(), BenchError>;
    /// Moves the outgoing messages to `out` (for paxstore, this is the step's write).
    fn take(&mut self, out: &mut Vec<Self::Msg>) -> Result<(), BenchError>;
    /// The pid a message goes to.
    fn receiver(msg: &Self::Msg) -> u64;
    /// Handles a message addressed to this replica.
    fn handle(&mut self, msg: Self::Msg) -> Result<(), BenchError>;
    /// Entries below this index are decided here.
    fn decided_idx(&self) -> usize;
    /// Whether this replica leads and accepts appends.
    fn is_leader(&self) -> bool;
    /// On the leader: drops the log prefix every replica has decided (as far as the
    /// leader knows), everywhere.
    fn trim(&mut self) -> Result<(), BenchError>;
    /// Storage writes so far (calls that change the stored state).
    fn writes(&self) -> u64;
    /// Syncs so far, where the storage counts them.
    fn syncs(&self) -> Option<u64>;
}

/// What one timed run did.
#[derive(Clone, Debug, Default)]
pub struct ClusterRun {
    /// Entries decided on every replica.
    pub decided: usize,
    /// Wall time from the first append until the last entry was decided everywhere.
    pub elapsed: Duration,
    /// Per entry, from `append` on the leader until it was decided there.
    pub latencies: Vec<Duration>,
    /// Storage writes of all replicas.
    pub writes: u64,
    /// Syncs of all replicas, where counted.
    pub syncs: Option<u64>,
    /// Rounds that moved nothing and needed a tick.
    pub stalls: usize,
    /// On-CPU time of the driving thread over the same span as `elapsed`, where the system
    /// reports it (Linux): wall time less the time the thread waited for a core, which on
    /// a shared machine is most of the noise.
    pub cpu: Option<Duration>,
}

impl ClusterRun {
    /// Entries decided per second of wall time.
    pub fn decided_per_s(&self) -> f64 {
        let s = self.elapsed.as_secs_f64();
        if s > 0.0 {
            self.decided as f64 / s
        } else {
            0.0
        }
    }

    /// Entries decided per second of the driving thread's CPU time, where known.
    pub fn decided_per_cpu_s(&self) -> Option<f64> {
        let s = self.cpu?.as_secs_f64();
        (s > 0.0).then(|| self.decided as f64 / s)
    }

    /// Storage writes per decided entry, per replica.
    pub fn writes_per_entry(&self) -> f64 {
        self.writes as f64 / (self.decided.max(1) * REPLICAS) as f64
    }

    /// Syncs per decided entry, per replica, where counted.
    pub fn syncs_per_entry(&self) -> Option<f64> {
        self.syncs.map(|s| s as f64 / (self.decided.max(1) * REPLICAS) as f64)
    }

    /// Adds `other` (a later run of the same cell).
    pub fn absorb(&mut self, other: ClusterRun) {
        self.decided += other.decided;
        self.elapsed += other.elapsed;
        self.latencies.extend(other.latencies);
        self.writes += other.writes;
        self.syncs = self.syncs.zip(other.syncs).map(|(a, b)| a + b);
        self.stalls += other.stalls;
        self.cpu = self.cpu.zip(other.cpu).map(|(a, b)| a + b);
    }
}

/// The calling thread's on-CPU time so far (Linux's `/proc/thread-self/schedstat`, in
/// nanoseconds), or `None` where the system does not report it. The kernel brings it up to
/// date at each scheduler tick and switch, so it is exact to a few milliseconds; a cell
/// runs for hundreds.
pub fn thread_cpu_time() -> Option<Duration> {
    let stat = std::fs::read_to_string("/proc/thread-self/schedstat").ok()?;
    let ns: u64 = stat.split_whitespace().next()?.parse().ok()?;
    Some(Duration::from_nanos(ns))
}

/// Replicas driven in rounds.
pub struct Rounds<N: RoundNode> {
    nodes: Vec<N>,
    buf: Vec<N::Msg>,
    leader: usize,
    next_index: u64,
    label: String,
}

impl<N: RoundNode> Rounds<N> {
    /// Replicas `nodes` (pids `1..=n`, in order); elects a leader and lets every replica
    /// catch up with one decided entry.
    pub fn new(nodes: Vec<N>, label: String) -> Result<Self, BenchError> {
        let mut rounds = Rounds { nodes, buf: Vec::new(), leader: 0, next_index: 0, label };
        rounds.elect()?;
        rounds.run(Mode::Upfront, 1, Duration::ZERO)?;
        Ok(rounds)
    }

    /// The replicas, by pid (the first is pid 1).
    pub fn nodes(&self) -> &[N] {
        &self.nodes
    }

    fn fail(&self, detail: String) -> BenchError {
        BenchError::Cluster { backend: self.label.clone(), detail }
    }

    fn elect(&mut self) -> Result<(), BenchError> {
        for _ in 0..ELECTION_TICKS {
            for node in &mut self.nodes {
                node.tick()?;
            }
            self.round()?;
            if let Some(leader) = self.nodes.iter().position(RoundNode::is_leader) {
                self.leader = leader;
                return Ok(());
            }
        }
        Err(self.fail(format!("no leader after {ELECTION_TICKS} ticks")))
    }

    /// One round: each replica in turn, the leader first, takes its messages, and their
    /// receivers handle them. (Leader first, so that where the leader's pid falls does not
    /// decide whether an entry is decided in its round or the next.) Returns how many
    /// messages moved.
    pub fn round(&mut self) -> Result<usize, BenchError> {
        let mut moved = 0;
        let n = self.nodes.len();
        for i in (0..n).map(|k| (self.leader + k) % n) {
            self.nodes[i].take(&mut self.buf)?;
            moved += self.buf.len();
            for msg in self.buf.drain(..) {
                let to = N::receiver(&msg);
                let slot = usize::try_from(to).ok().and_then(|p| p.checked_sub(1));
                match slot.and_then(|s| self.nodes.get_mut(s)) {
                    Some(node) => node.handle(msg)?,
                    None => {
                        return Err(BenchError::Cluster {
                            backend: self.label.clone(),
                            detail: format!("a message to unknown replica {to}"),
                        })
                    }
                }
            }
        }
        Ok(moved)
    }

    fn min_decided(&self) -> usize {
        self.nodes.iter().map(RoundNode::decided_idx).min().unwrap_or(0)
    }

    fn totals(&self) -> (u64, Option<u64>) {
        let writes = self.nodes.iter().map(RoundNode::writes).sum();
        let syncs = self.nodes.iter().map(RoundNode::syncs).sum();
        (writes, syncs)
    }

    /// Appends on the leader: `entries` at once (`Upfront`), or one per round for `time`,
    /// at least `entries` and a multiple of it (`Stream`, with `entries` the batch size,
    /// so no partial batch waits for a tick); then rounds until every entry is decided on
    /// every replica.
    pub fn run(
        &mut self,
        mode: Mode,
        entries: usize,
        time: Duration,
    ) -> Result<ClusterRun, BenchError> {
        // Upfront, the run's entries are made before the clock starts: making them is the
        // workload's work, not the replica's (in stream mode each is made in its round).
        let burst: Vec<BenchEntry> = match mode {
            Mode::Upfront => (0..entries as u64)
                .map(|k| BenchEntry::new(self.next_index + k, ENTRY_BYTES))
                .collect(),
            Mode::Stream => Vec::new(),
        };
        self.timed(mode, entries, time, burst)
    }

    /// The timed part of [`run`](Rounds::run), with the upfront entries already made: its
    /// own function, never inlined, so that an instruction profiler can count exactly what
    /// the clock measures (see `profile_workload`).
    #[inline(never)]
    fn timed(
        &mut self,
        mode: Mode,
        entries: usize,
        time: Duration,
        burst: Vec<BenchEntry>,
    ) -> Result<ClusterRun, BenchError> {
        let base = self.nodes[self.leader].decided_idx();
        let (writes0, syncs0) = self.totals();
        let mut appended: Vec<Instant> = Vec::with_capacity(entries);
        let mut run = ClusterRun::default();
        let mut seen = base;
        let cpu0 = thread_cpu_time();
        let started = Instant::now();
        let append = |rounds: &mut Self, appended: &mut Vec<Instant>, entry: BenchEntry| {
            rounds.next_index += 1;
            appended.push(Instant::now());
            rounds.nodes[rounds.leader].append(entry)
        };
        for entry in burst {
            append(self, &mut appended, entry)?;
        }
        let mut stalled = 0;
        let mut trimmed_at = 0;
        loop {
            let n = appended.len();
            let streaming = mode == Mode::Stream
                && (n < entries || !n.is_multiple_of(entries.max(1)) || started.elapsed() < time);
            if streaming {
                let entry = BenchEntry::new(self.next_index, ENTRY_BYTES);
                append(self, &mut appended, entry)?;
            }
            if self.round()? == 0 && !streaming {
                stalled += 1;
                run.stalls += 1;
                if stalled > STALL_ROUNDS {
                    return Err(self.fail(format!(
                        "stalled: {} of {} entries decided everywhere",
                        self.min_decided().saturating_sub(base),
                        appended.len()
                    )));
                }
                for node in &mut self.nodes {
                    node.tick()?;
                }
            } else {
                stalled = 0;
            }
            let now_decided = self.nodes[self.leader].decided_idx().min(base + appended.len());
            if now_decided > seen {
                let now = Instant::now();
                run.latencies
                    .extend(appended[seen - base..now_decided - base].iter().map(|t| now - *t));
                seen = now_decided;
            }
            if !streaming && self.min_decided() >= base + appended.len() {
                break;
            }
            if appended.len() >= trimmed_at + TRIM_EVERY {
                trimmed_at = appended.len();
                self.nodes[self.leader].trim()?;
            }
        }
        self.nodes[self.leader].trim()?;
        run.elapsed = started.elapsed();
        run.cpu = thread_cpu_time().zip(cpu0).map(|(t, t0)| t.saturating_sub(t0));
        run.decided = appended.len();
        let (writes, syncs) = self.totals();
        run.writes = writes - writes0;
        run.syncs = syncs.zip(syncs0).map(|(s, s0)| s - s0);
        Ok(run)
    }
}

/// The entries of one upfront run at `batch_size`.
pub fn upfront_entries(batch_size: usize) -> usize {
    10 * batch_size.max(100)
}

/// Runs `mode` at `batch_size` on `rounds` for about `time`: upfront runs of
/// [`upfront_entries`] until the time is used (at least one), or one stream.
pub fn timed_run<N: RoundNode>(
    rounds: &mut Rounds<N>,
    mode: Mode,
    batch_size: usize,
    time: Duration,
) -> Result<ClusterRun, BenchError> {
    let entries = upfront_entries(batch_size);
    match mode {
        Mode::Stream => rounds.run(Mode::Stream, batch_size, time),
        Mode::Upfront => {
            let started = Instant::now();
            let mut total = rounds.run(Mode::Upfront, entries, Duration::ZERO)?;
            while started.elapsed() < time {
                total.absorb(rounds.run(Mode::Upfront, entries, Duration::ZERO)?);
            }
            Ok(total)
        }
    }
}

#[cfg(test)]
mod tests {
    use paxstore_backends::BackendKind;

    use super::*;

    #[test]
    fn a_memory_cluster_decides_in_both_modes_at_every_batch_size() {
        let parent = tempfile::tempdir().unwrap();
        for batch in [1, 10, 100] {
            for mode in Mode::ALL {
                let mut c =
                    PaxstoreCluster::new(BackendKind::Memory, None, parent.path(), batch).unwrap();
                let run = timed_run(&mut c.rounds, mode, batch, Duration::ZERO).unwrap();
                assert!(run.decided >= batch, "{mode:?} {batch}: {run:?}");
                assert_eq!(run.latencies.len(), run.decided, "{mode:?} {batch}");
                assert_eq!(run.stalls, 0, "{mode:?} {batch}: a round moved nothing");
            }
        }
    }

    #[test]
    fn modes_parse_by_name_and_unknown_names_are_refused() {
        for mode in Mode::ALL {
            assert_eq!(mode.name().parse::<Mode>(), Ok(mode));
        }
        let err = "streaming".parse::<Mode>().unwrap_err();
        assert!(err.contains("streaming"), "{err}");
    }

    /// The CPU time of a run is the driving thread's own: on Linux it is known, and a
    /// single thread cannot use more of it than the wall time that passed.
    #[test]
    fn a_run_counts_the_cpu_time_of_its_thread() {
        let parent = tempfile::tempdir().unwrap();
        let mut c = PaxstoreCluster::new(BackendKind::Memory, None, parent.path(), 10).unwrap();
        let run = c.rounds.run(Mode::Stream, 10, Duration::from_millis(50)).unwrap();
        if cfg!(target_os = "linux") {
            let cpu = run.cpu.expect("Linux reports a thread's CPU time");
            assert!(cpu > Duration::ZERO, "{run:?}");
            assert!(cpu <= run.elapsed + Duration::from_millis(5), "{run:?}");
            // The CPU clock and the wall clock are read at slightly different moments, so
            // the CPU time may pass the elapsed time by a little (seen: 0.35 ms in 50 ms).
            let per_cpu = run.decided_per_cpu_s().unwrap();
            assert_eq!(per_cpu, run.decided as f64 / cpu.as_secs_f64(), "{run:?}");
        }
    }

    /// Not a check but a fixed workload for an instruction profiler, so that paxstore's
    /// replica, OmniPaxos and the floor can be compared instruction for instruction on
    /// the same driver (wall time on a shared machine cannot show a 2 % change):
    ///
    /// ```text
    /// PROFILE=paxstore PROFILE_MODE=stream PROFILE_BATCH=1 PROFILE_ENTRIES=30000 \
    ///   valgrind --tool=callgrind --collect-atstart=no --toggle-collect='*Rounds*::timed' \
    ///   <the benches' test binary> --ignored --exact replica::tests::profile_workload
    /// ```
    ///
    /// `PROFILE` is `paxstore`, `omnipaxos` (over its `MemoryStorage`), `floor` (bare) or
    /// `floor-memory`; the counts of the timed runs, divided by the entries they decided, are
    /// per decided entry. Stream mode appends one entry per round, as the report's stream
    /// cells do, for `PROFILE_ENTRIES` rounds.
    #[test]
    #[ignore = "a profiling workload, run by hand under callgrind"]
    fn profile_workload() {
        fn var<T: std::str::FromStr>(name: &str, default: T) -> T {
            std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
        }
        /// `entries` in stream mode; in upfront mode, runs of [`upfront_entries`] as the
        /// report's cells do, as many as fit in `entries`.
        fn go<N: RoundNode>(rounds: &mut Rounds<N>, mode: Mode, entries: usize) -> ClusterRun {
            let batch: usize = var("PROFILE_BATCH", 1);
            match mode {
                Mode::Stream => rounds.run(mode, entries, Duration::ZERO).unwrap(),
                Mode::Upfront => {
                    let per_run = upfront_entries(batch);
                    let mut total = ClusterRun::default();
                    for _ in 0..(entries / per_run).max(1) {
                        total.absorb(rounds.run(mode, per_run, Duration::ZERO).unwrap());
                    }
                    total
                }
            }
        }
        let who: String = var("PROFILE", "paxstore".to_owned());
        let mode: Mode = var("PROFILE_MODE", Mode::Stream);
        let batch: usize = var("PROFILE_BATCH", 1);
        let entries: usize = var("PROFILE_ENTRIES", 30_000);
        let parent = tempfile::tempdir().unwrap();
        let memory = BackendKind::Memory;
        let run = match who.as_str() {
            "paxstore" => {
                let mut c = PaxstoreCluster::new(memory, None, parent.path(), batch).unwrap();
                go(&mut c.rounds, mode, entries)
            }
            "omnipaxos" => go(&mut crate::omni::memory_cluster(batch).unwrap(), mode, entries),
            "floor" => go(&mut crate::floor::bare_cluster(batch).unwrap(), mode, entries),
            "floor-memory" => {
                let mut c =
                    crate::floor::FloorCluster::new(memory, None, parent.path(), batch).unwrap();
                go(&mut c.rounds, mode, entries)
            }
            other => panic!("unknown PROFILE {other:?}"),
        };
        let expected = match mode {
            Mode::Stream => entries,
            Mode::Upfront => (entries / upfront_entries(batch)).max(1) * upfront_entries(batch),
        };
        assert_eq!(run.decided, expected, "{who}: {run:?}");
    }

    /// Upfront at batch 1: the leader writes its appends once and each follower once,
    /// so far less than one write per entry per replica.
    #[test]
    fn a_burst_of_appends_is_written_once_per_replica() {
        let parent = tempfile::tempdir().unwrap();
        let mut c = PaxstoreCluster::new(BackendKind::Memory, None, parent.path(), 1).unwrap();
        let run = c.rounds.run(Mode::Upfront, 1000, Duration::ZERO).unwrap();
        assert_eq!(run.decided, 1000);
        assert!(run.writes <= 6, "{} writes for one burst", run.writes);
    }
}
