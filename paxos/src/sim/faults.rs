//! The faults a step injects: partitions (two sides, one node cut off, partial
//! connectivity), crashes and restarts from storage.

use paxstore::Storage;
use rand::Rng;

use super::{SimValue, Simulation, Tracked};
use crate::Replica;

impl<T: SimValue, S: Storage<T>> Simulation<T, S> {
    pub(super) fn inject_faults(&mut self) {
        let n = self.replicas.len();
        if self.rng.random_bool(self.cfg.crash_rate) {
            let slot = self.rng.random_range(0..n);
            if self.replicas[slot].is_some() {
                self.crash(slot);
            }
        }
        for slot in 0..n {
            let soon = std::mem::take(&mut self.restart_soon[slot]);
            if self.replicas[slot].is_none()
                && (soon || self.rng.random_bool(self.cfg.restart_rate))
            {
                self.restart(slot);
            }
        }
        if self.rng.random_bool(self.cfg.partition_rate) {
            self.partition();
        }
        if self.rng.random_bool(self.cfg.heal_rate) {
            self.set_all_links(true);
        }
    }

    pub(super) fn partition(&mut self) {
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

    pub(super) fn crash(&mut self, slot: usize) {
        if let Some(r) = self.replicas[slot].take() {
            self.outcome.crashes += 1;
            let pid = r.pid();
            let storage = (self.open)(pid, Some(r.into_storage().into_inner()));
            self.down[slot] = Some(storage);
        }
    }

    pub(super) fn restart(&mut self, slot: usize) {
        let Some(storage) = self.down[slot].take() else { return };
        match Replica::new(self.configs[slot].clone(), Tracked::new(storage)) {
            Ok(mut r) => {
                if let Some(bug) = self.cfg.bug {
                    r.inject_bug(bug);
                }
                if let Err(e) = self.checker.restarted(slot, &r, self.written_decided[slot]) {
                    self.violation(e);
                }
                self.replicas[slot] = Some(r);
            }
            Err((e, storage)) => {
                self.down[slot] = Some(storage.into_inner());
                self.violation(format!("replica {} failed to recover: {e}", slot + 1));
            }
        }
    }
}
