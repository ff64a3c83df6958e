//! [`LocalCluster`]: replicas of one configuration in one process, connected by a
//! fault-free FIFO network, for benchmarks, examples and scenario tests.
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

use crate::{Message, PaxosError, Replica, ReplicaConfig};

/// `n` replicas (ids `1..=n`) exchanging messages through an in-memory FIFO queue.
///
/// Nothing happens until the caller drives it: [`deliver`](LocalCluster::deliver)
/// hands every queued message to its receiver (and those the replies produce, until the
/// queue is empty); [`tick`](LocalCluster::tick) ticks every replica;
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
}

impl<T: Entry, S: Storage<T>> LocalCluster<T, S> {
    /// `n` fresh replicas configured like `template` (its `pid` and node list are
    /// replaced: the nodes are `1..=n`), each over `storage(pid)`.
    pub fn new(
        n: usize,
        template: &ReplicaConfig,
        mut storage: impl FnMut(u64) -> S,
    ) -> Result<Self, PaxosError> {
        let cluster = ClusterConfig {
            configuration_id: template.cluster.configuration_id.max(1),
            nodes: (1..=n as u64).collect(),
            flexible_quorum: template.cluster.flexible_quorum,
        };
        let mut configs = Vec::new();
        let mut replicas = Vec::new();
        for pid in 1..=n as u64 {
            let config = ReplicaConfig { pid, cluster: cluster.clone(), ..template.clone() };
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
        })
    }

    /// The running replica `pid`.
    pub fn replica(&self, pid: u64) -> Option<&Replica<T, S>> {
        self.slot(pid).and_then(|s| self.replicas[s].as_ref())
    }

    /// The running replica `pid`, mutably.
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

    /// Appends `entry` at replica `pid` (forwarded to the leader if it is not).
    pub fn append_at(&mut self, pid: u64, entry: T) -> Result<(), PaxosError> {
        let replica = self.replica_mut(pid).ok_or(PaxosError::NotLeader { leader: None })?;
        replica.append(entry)?;
        self.collect();
        Ok(())
    }

    /// Ticks every running replica once.
    pub fn tick(&mut self) -> Result<(), PaxosError> {
        for r in self.replicas.iter_mut().flatten() {
            r.tick()?;
        }
        self.collect();
        Ok(())
    }

    /// Delivers queued messages in FIFO order, including those sent in reply, until the
    /// queue is empty. Messages over a cut link or to a crashed replica are lost.
    /// Returns how many were delivered.
    pub fn deliver(&mut self) -> Result<usize, PaxosError> {
        self.deliver_matching(|_| true)
    }

    /// Like [`deliver`](LocalCluster::deliver), but hands each replica all the messages
    /// queued for it in one [`Replica::handle_incoming_batch`] call, so their storage
    /// changes share one write (group commit); repeats until the queue is empty. Order
    /// per link is kept.
    pub fn deliver_grouped(&mut self) -> Result<usize, PaxosError> {
        let mut count = 0;
        self.collect();
        while !self.queue.is_empty() {
            let mut per_slot: Vec<Vec<Message<T>>> =
                (0..self.replicas.len()).map(|_| Vec::new()).collect();
            for msg in std::mem::take(&mut self.queue) {
                let (Some(from), Some(to)) = (self.slot(msg.from), self.slot(msg.to)) else {
                    continue;
                };
                if self.link[from][to] && self.replicas[to].is_some() {
                    per_slot[to].push(msg);
                }
            }
            for (slot, msgs) in per_slot.into_iter().enumerate() {
                if let (false, Some(replica)) = (msgs.is_empty(), self.replicas[slot].as_mut()) {
                    count += msgs.len();
                    replica.handle_incoming_batch(msgs)?;
                }
            }
            self.delivered += count as u64;
            self.collect();
        }
        Ok(count)
    }

    /// Delivers only queued messages from `from` to `to` (those produced in reply are
    /// queued, not delivered). For scenarios that need to stop a round half-way.
    pub fn deliver_link(&mut self, from: u64, to: u64) -> Result<usize, PaxosError> {
        let (batch, rest): (VecDeque<_>, VecDeque<_>) =
            self.queue.drain(..).partition(|m| m.from == from && m.to == to);
        self.queue = rest;
        let mut count = 0;
        for msg in batch {
            count += usize::from(self.deliver_one(msg)?);
        }
        self.collect();
        Ok(count)
    }

    fn deliver_matching(
        &mut self,
        keep: impl Fn(&Message<T>) -> bool,
    ) -> Result<usize, PaxosError> {
        let mut count = 0;
        self.collect();
        while let Some(msg) = self.queue.pop_front() {
            if keep(&msg) {
                count += usize::from(self.deliver_one(msg)?);
            }
            self.collect();
        }
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

    /// Crashes replica `pid`: its volatile state is gone, its storage is kept for
    /// [`restart`](LocalCluster::restart). Messages it had sent stay queued.
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
            Ok(r) => {
                self.replicas[slot] = Some(r);
                self.collect();
                Ok(())
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

    fn collect(&mut self) {
        for r in self.replicas.iter_mut().flatten() {
            for msg in r.take_outgoing_messages() {
                self.queue.push_back(msg);
            }
        }
    }
}
