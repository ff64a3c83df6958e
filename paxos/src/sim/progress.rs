//! The end-of-run checks: progress while a partial connectivity is left up, then
//! liveness once the network heals.

use paxstore::Storage;
use rand::Rng;

use super::{SimValue, Simulation};

impl<T: SimValue, S: Storage<T>> Simulation<T, S> {
    /// Quiet network, every replica up, then a random partial connectivity with at least
    /// one quorum-connected replica, left up: a quorum-connected leader must emerge and
    /// decide a new entry (or the stop sign, if the configuration is ending).
    pub(super) fn check_progress_partially_connected(&mut self) {
        self.calm();
        self.set_all_links(true);
        self.restart_all();
        if self.reconfigured() {
            return; // the configuration ended: nothing more can be decided in it
        }
        let n = self.replicas.len();
        let quorum = self.configs[0].read_quorum().max(self.configs[0].write_quorum());
        let connected = loop {
            for a in 0..n {
                for b in a + 1..n {
                    let up = self.rng.random_bool(0.5);
                    self.link[a][b] = up;
                    self.link[b][a] = up;
                }
            }
            let degree = |a: usize| (0..n).filter(|&b| b != a && self.link[a][b]).count();
            let qc: Vec<usize> = (0..n).filter(|&a| degree(a) + 1 >= quorum).collect();
            let partial = (0..n).any(|a| degree(a) + 1 < n);
            if !qc.is_empty() && partial {
                break qc;
            }
        };
        self.outcome.partitions += 1;
        let marker = u64::MAX - 2 * self.seed - 1;
        let settle = self.cfg.partial_connectivity_steps / 2;
        let mut appended = false;
        for i in 0..self.cfg.partial_connectivity_steps {
            self.step(false);
            if !self.outcome.violations.is_empty() {
                return;
            }
            if self.reconfigured() || self.checker.index_of(marker).is_some() {
                self.outcome.progressed_partially_connected = true;
                break;
            }
            if appended || i < settle {
                continue;
            }
            let leader = connected
                .iter()
                .filter_map(|&s| self.replicas[s].as_ref().map(|r| (s, r)))
                .filter(|(_, r)| r.is_leader())
                .max_by_key(|(_, r)| r.promise())
                .map(|(s, _)| s);
            let zombies: Vec<u64> = connected
                .iter()
                .filter_map(|&s| self.replicas[s].as_ref())
                .filter(|r| r.is_leader() && Some(r.pid()) != leader.map(|s| s as u64 + 1))
                .map(|r| r.pid())
                .collect();
            if !zombies.is_empty() {
                let what = self.describe();
                self.violation(format!(
                    "partial connectivity: quorum-connected replicas {zombies:?} still believe \
                     they lead beside the leader {:?} {what}",
                    leader.map(|s| s + 1)
                ));
                return;
            }
            let Some(slot) = leader else {
                let what = self.describe();
                self.violation(format!(
                    "partial connectivity: no quorum-connected leader after {settle} steps \
                     (quorum-connected: {:?}) {what}",
                    connected.iter().map(|s| s + 1).collect::<Vec<_>>()
                ));
                return;
            };
            // Refused: the leader's log ends the configuration; it decides the stop sign.
            match self.append_marker(slot, marker) {
                Ok(done) => appended = done,
                Err(e) => return self.violation(e),
            }
        }
        if !self.outcome.progressed_partially_connected {
            let what = self.describe();
            self.violation(format!(
                "partial connectivity: nothing decided while the partition was up {what}"
            ));
        }
        self.set_all_links(true);
    }

    /// Heals everything, restarts every replica, lets a leader settle, appends one value
    /// and requires every replica to decide it in time (or, if the configuration ends,
    /// every replica to decide the stop sign).
    pub(super) fn check_liveness(&mut self) {
        self.calm();
        self.set_all_links(true);
        self.restart_all();
        let settle = self.cfg.liveness_steps / 2;
        for _ in 0..settle {
            self.step(false);
            if !self.outcome.violations.is_empty() {
                return;
            }
        }
        let marker = u64::MAX - 2 * self.seed;
        let slot = self.rng.random_range(0..self.replicas.len());
        let mut appended = false;
        for _ in 0..self.cfg.liveness_steps {
            if !appended {
                // A replica holding a stop sign refuses appends until a leader's log
                // replaces it, or the stop sign is decided.
                match self.append_marker(slot, marker) {
                    Ok(done) => appended = done,
                    Err(e) => return self.violation(e),
                }
            }
            self.step(false);
            if !self.outcome.violations.is_empty() {
                return;
            }
            let mut running = self.replicas.iter().flatten();
            if running.all(|r| r.is_reconfigured().is_some()) {
                return;
            }
            if let Some(idx) = self.checker.index_of(marker) {
                if self.replicas.iter().flatten().all(|r| r.decided_idx() > idx) {
                    return;
                }
            }
        }
        let what = self.describe();
        self.violation(format!(
            "liveness: the marker appended at {} was not decided everywhere after healing {what}",
            slot + 1,
        ));
    }
}
