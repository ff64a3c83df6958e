//! [`LocalCluster`]: replicas of one configuration in one process, connected by a
//! fault-free FIFO network, for examples and scenario tests (feature `testing`).
//!
//! ```
//! use paxstore_backends::MemoryStorage;
//! use paxstore_paxos::cluster::LocalCluster;
//! use paxstore_paxos::sim::TrimEntry;
//! use paxstore_paxos::ReplicaConfig;
//! use paxstore::ClusterConfig;
//!
//! let template = ReplicaConfig::new(1, ClusterConfig::default()).with_batch_size(10);
//! let mut cluster = LocalCluster::new(3, &template, |_pid| MemoryStorage::<TrimEntry>::new())?;
//! cluster.elect_leader(1_000)?;
//! for i in 0..100 {
//!     cluster.append(TrimEntry(i))?;
//! }
//! cluster.run_until(1_000, |c| c.min_decided_idx() == 100)?;
//! # Ok::<(), paxstore_paxos::PaxosError>(())
//! ```

use std::collections::VecDeque;

use paxstore::{ClusterConfig, Entry, Storage};

use crate::{InjectedBug, Message, PaxosError, Replica, ReplicaConfig};

/// `n` replicas (ids `1..=n`) exchanging messages through an in-memory FIFO queue.
///
/// Nothing happens until the caller drives it. [`deliver`](LocalCluster::deliver) works
/// in rounds, the way replicas are meant to be driven: every queued message is handed to
/// its receiver, then every replica takes its outgoing messages (one write each) into
/// the queue, until the queue is empty. [`tick`](LocalCluster::tick) ticks every replica;
/// [`step`](LocalCluster::step) does both. Links can be cut and replicas crashed and
/// restarted over their storage, for scenario tests; by default there are no faults.
pub struct LocalCluster<T: Entry, S: Storage<T>> {
    configs: Vec<ReplicaConfig>,
    replicas: Vec<Option<Replica<T, S>>>,
    down: Vec<Option<S>>,
    queue: VecDeque<Message<T>>,
    /// `link[a][b]`: messages from slot a reach slot b.
    link: Vec<Vec<bool>>,
    delivered: u64,
    bugs: Vec<InjectedBug>,
}

impl<T: Entry, S: Storage<T>> LocalCluster<T, S> {
    /// `n` fresh replicas configured like `template` (its `pid` and node list are
    /// replaced: the nodes are `1..=n`), each over `storage(pid)`.
    pub fn new(
        n: usize,
        template: &ReplicaConfig,
        storage: impl FnMut(u64) -> S,
    ) -> Result<Self, PaxosError> {
        Self::with_priorities(n, template, &[], storage)
    }

    /// Like [`new`](LocalCluster::new), with replica `pid` standing for election with
    /// priority `priorities[pid - 1]` (the template's where the slice is shorter).
    pub fn with_priorities(
        n: usize,
        template: &ReplicaConfig,
        priorities: &[u32],
        mut storage: impl FnMut(u64) -> S,
    ) -> Result<Self, PaxosError> {
        let cluster = ClusterConfig {
            configuration_id: template.cluster.configuration_id.max(1),
            nodes: (1..=n as u64).collect(),
            flexible_quorum: template.cluster.flexible_quorum,
        };
        let mut configs = Vec::new();
        let mut replicas = Vec::new();
        for (slot, pid) in (1..=n as u64).enumerate() {
            let priority = priorities.get(slot).copied().unwrap_or(template.priority);
            let config =
                ReplicaConfig { pid, cluster: cluster.clone(), priority, ..template.clone() };
            replicas.push(Some(Replica::new(config.clone(), storage(pid)).map_err(|(e, _)| e)?));
            configs.push(config);
        }
        Ok(LocalCluster {
            configs,
            down: (0..n).map(|_| None).collect(),
            replicas,
            queue: VecDeque::new(),
            link: vec![vec![true; n]; n],
            delivered: 0,
            bugs: Vec::new(),
        })
    }

    /// Re-introduces `bug` in every replica, now and after every restart.
    pub fn inject_bug(&mut self, bug: InjectedBug) {
        self.bugs.push(bug);
        for r in self.replicas.iter_mut().flatten() {
            r.inject_bug(bug);
        }
    }

    /// The running replica `pid`.
    pub fn replica(&self, pid: u64) -> Option<&Replica<T, S>> {
        self.slot(pid).and_then(|s| self.replicas[s].as_ref())
    }

    /// The running replica `pid`, mutably. What a call on it stages is written and sent
    /// at the next take ([`collect`](LocalCluster::collect), which every driving call
    /// does first).
    pub fn replica_mut(&mut self, pid: u64) -> Option<&mut Replica<T, S>> {
        self.slot(pid).and_then(|s| self.replicas[s].as_mut())
    }

    /// Every running replica.
    pub fn replicas(&self) -> impl Iterator<Item = &Replica<T, S>> {
        self.replicas.iter().flatten()
    }

    fn slot(&self, pid: u64) -> Option<usize> {
        let slot = usize::try_from(pid).ok()?.checked_sub(1)?;
        (slot < self.replicas.len()).then_some(slot)
    }

    /// The replica that leads (the one with the highest round, if several think so).
    pub fn leader(&self) -> Option<u64> {
        self.replicas().filter(|r| r.is_leader()).max_by_key(|r| r.promise()).map(|r| r.pid())
    }

    /// Every replica that believes it leads, in pid order.
    pub fn leaders(&self) -> Vec<u64> {
        self.replicas().filter(|r| r.is_leader()).map(|r| r.pid()).collect()
    }

    /// Steps until a leader is elected; returns it.
    pub fn elect_leader(&mut self, max_steps: usize) -> Result<u64, PaxosError> {
        self.run_until(max_steps, |c| c.leader().is_some())?;
        self.leader().ok_or(PaxosError::NotLeader { leader: None })
    }

    /// Appends `entry` at the leader ([`PaxosError::NotLeader`] if there is none).
    pub fn append(&mut self, entry: T) -> Result<(), PaxosError> {
        let leader = self.leader().ok_or(PaxosError::NotLeader { leader: None })?;
        self.append_at(leader, entry)
    }

    /// Appends `entry` at replica `pid` (forwarded to the leader if it is not), and takes
    /// that replica's messages.
    pub fn append_at(&mut self, pid: u64, entry: T) -> Result<(), PaxosError> {
        let replica = self.replica_mut(pid).ok_or(PaxosError::NotLeader { leader: None })?;
        replica.append(entry)?;
        self.collect()
    }

    /// Ticks every running replica once, then takes their messages.
    pub fn tick(&mut self) -> Result<(), PaxosError> {
        for r in self.replicas.iter_mut().flatten() {
            r.tick()?;
        }
        self.collect()
    }

    /// Delivers in rounds until the queue is empty: every queued message goes to its
    /// receiver (in FIFO order), then every replica takes its messages into the queue.
    /// Messages over a cut link or to a crashed replica are lost. Returns how many were
    /// delivered.
    pub fn deliver(&mut self) -> Result<usize, PaxosError> {
        let mut count = 0;
        self.collect()?;
        while !self.queue.is_empty() {
            count += self.deliver_round()?;
        }
        Ok(count)
    }

    /// One round: every queued message goes to its receiver, then every replica takes its
    /// messages into the queue. Returns how many were delivered.
    pub fn deliver_round(&mut self) -> Result<usize, PaxosError> {
        let mut count = 0;
        for msg in std::mem::take(&mut self.queue) {
            count += usize::from(self.deliver_one(msg)?);
        }
        self.collect()?;
        Ok(count)
    }

    /// Delivers only queued messages from `from` to `to`, then lets every replica take
    /// (replies are queued, not delivered). For scenarios that stop a round half-way.
    pub fn deliver_link(&mut self, from: u64, to: u64) -> Result<usize, PaxosError> {
        let (batch, rest): (VecDeque<_>, VecDeque<_>) =
            self.queue.drain(..).partition(|m| m.from == from && m.to == to);
        self.queue = rest;
        let mut count = 0;
        for msg in batch {
            count += usize::from(self.deliver_one(msg)?);
        }
        self.collect()?;
        Ok(count)
    }

    fn deliver_one(&mut self, msg: Message<T>) -> Result<bool, PaxosError> {
        let (Some(from), Some(to)) = (self.slot(msg.from), self.slot(msg.to)) else {
            return Ok(false);
        };
        if !self.link[from][to] {
            return Ok(false);
        }
        let Some(replica) = self.replicas[to].as_mut() else { return Ok(false) };
        replica.handle_incoming(msg)?;
        self.delivered += 1;
        Ok(true)
    }

    /// Drops every queued message.
    pub fn drop_queued(&mut self) -> usize {
        let n = self.queue.len();
        self.queue.clear();
        n
    }

    /// Queues a second copy of every queued message (a network that duplicates).
    pub fn duplicate_queued(&mut self) -> usize {
        let copies: Vec<_> = self.queue.iter().cloned().collect();
        let n = copies.len();
        self.queue.extend(copies);
        n
    }

    /// A copy of the queued messages, oldest first (for tests that replay them later).
    pub fn queued_messages(&self) -> Vec<Message<T>> {
        self.queue.iter().cloned().collect()
    }

    /// Messages queued.
    pub fn queued(&self) -> usize {
        self.queue.len()
    }

    /// Messages delivered so far.
    pub fn delivered(&self) -> u64 {
        self.delivered
    }

    /// One tick of every replica, then [`deliver`](LocalCluster::deliver).
    pub fn step(&mut self) -> Result<(), PaxosError> {
        self.tick()?;
        self.deliver()?;
        Ok(())
    }

    /// Steps until `done(self)` holds, at most `max_steps` times; returns whether it held.
    pub fn run_until(
        &mut self,
        max_steps: usize,
        mut done: impl FnMut(&Self) -> bool,
    ) -> Result<bool, PaxosError> {
        self.deliver()?;
        for _ in 0..max_steps {
            if done(self) {
                return Ok(true);
            }
            self.step()?;
        }
        Ok(done(self))
    }

    /// The leader's decided index (the highest of any replica if there is no leader).
    pub fn decided_idx(&self) -> usize {
        match self.leader().and_then(|p| self.replica(p)) {
            Some(r) => r.decided_idx(),
            None => self.replicas().map(|r| r.decided_idx()).max().unwrap_or(0),
        }
    }

    /// The lowest decided index among the running replicas.
    pub fn min_decided_idx(&self) -> usize {
        self.replicas().map(|r| r.decided_idx()).min().unwrap_or(0)
    }

    /// Cuts (`up == false`) or restores the link from `from` to `to`.
    pub fn set_link(&mut self, from: u64, to: u64, up: bool) {
        if let (Some(a), Some(b)) = (self.slot(from), self.slot(to)) {
            self.link[a][b] = up;
        }
    }

    /// Only replicas in the same group reach each other; replicas in no group reach no one.
    pub fn partition(&mut self, groups: &[Vec<u64>]) {
        let group_of = |pid: u64| groups.iter().position(|g| g.contains(&pid));
        let n = self.replicas.len() as u64;
        for a in 1..=n {
            for b in 1..=n {
                let up = a == b || (group_of(a).is_some() && group_of(a) == group_of(b));
                self.set_link(a, b, up);
            }
        }
    }

    /// Restores every link.
    pub fn heal(&mut self) {
        self.link.iter_mut().for_each(|row| row.iter_mut().for_each(|l| *l = true));
    }

    /// Crashes replica `pid`: its volatile state and whatever it staged since its last
    /// take are gone, its storage is kept for [`restart`](LocalCluster::restart).
    /// Messages it had sent stay queued.
    pub fn crash(&mut self, pid: u64) {
        if let Some(slot) = self.slot(pid) {
            if let Some(r) = self.replicas[slot].take() {
                self.down[slot] = Some(r.into_storage());
            }
        }
    }

    /// Restarts a crashed replica over its storage (fail-recovery).
    pub fn restart(&mut self, pid: u64) -> Result<(), PaxosError> {
        let Some(slot) = self.slot(pid) else { return Ok(()) };
        let Some(storage) = self.down[slot].take() else { return Ok(()) };
        match Replica::new(self.configs[slot].clone(), storage) {
            Ok(mut r) => {
                for &bug in &self.bugs {
                    r.inject_bug(bug);
                }
                self.replicas[slot] = Some(r);
                self.collect()
            }
            Err((e, storage)) => {
                self.down[slot] = Some(storage);
                Err(e)
            }
        }
    }

    /// Takes every replica's storage (crashed ones too), ending the cluster.
    pub fn into_storages(self) -> Vec<S> {
        self.replicas
            .into_iter()
            .zip(self.down)
            .filter_map(|(r, d)| r.map(Replica::into_storage).or(d))
            .collect()
    }

    /// Every running replica takes its outgoing messages (its step: one write) into the
    /// queue.
    pub fn collect(&mut self) -> Result<(), PaxosError> {
        let mut buf = Vec::new();
        for r in self.replicas.iter_mut().flatten() {
            r.drain_outgoing_into(&mut buf)?;
        }
        self.queue.extend(buf);
        Ok(())
    }
}
