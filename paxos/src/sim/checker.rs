//! The invariants the simulator checks after every step.

use std::collections::{HashMap, HashSet};

use paxstore::{Ballot, Entry, Storage};

use super::SimValue;
use crate::messages::PaxosMessage;
use crate::{LogEntry, Message, Payload, Replica};

/// What every replica has decided so far, and the checks against it ([`Checker::INVARIANTS`]):
///
/// - **agreement**: at most one value is decided per index, so every decided prefix agrees;
/// - **integrity**: a value is decided at most once (at one index), and every decided value
///   was appended by someone;
/// - **decided index**: within one run of a replica its decided index never goes back;
///   across a restart it may go back (the decided index is written lazily), but never
///   below the decided index the replica held at its last write, and what it decides
///   again must equal what was decided before (agreement);
/// - **persist before send** ([`persisted_before_sent`]): what a replica's messages report
///   (a promise, a round it leads, entries it accepted) is in its storage when they leave;
/// - **stop sign**: at most one stop sign is decided, at one index, and nothing after it;
/// - **compaction**: nothing is compacted past the decided index, and a snapshot equals
///   the decided prefix it stands for;
/// - no replica stopped with an error.
#[derive(Debug, Default)]
pub struct Checker {
    /// The value decided at each index, as far as any replica told.
    chosen: Vec<Option<u64>>,
    /// The index at which each decided value was decided.
    decided_at: HashMap<u64, usize>,
    /// Every value appended (the workload registers them).
    appended: HashSet<u64>,
    /// Per replica: decided entries below this index were checked.
    checked: Vec<usize>,
    /// Per replica: the highest decided index seen since it last started.
    max_decided: Vec<usize>,
    /// The decided stop sign: its index and the configuration it names.
    stopsign: Option<(usize, u32)>,
}

impl Checker {
    /// The names of the invariants checked, for the summary lines.
    pub const INVARIANTS: &'static [&'static str] = &[
        "agreement",
        "decided-at-most-once",
        "decided-was-appended",
        "decided-index-monotone-per-run",
        "restart-keeps-written-decided",
        "persist-before-send",
        "one-stop-sign",
        "compaction-below-decided",
        "snapshot-matches-prefix",
        "no-replica-stopped",
    ];

    /// A checker for `n` replicas (indexed from 0).
    pub fn new(n: usize) -> Self {
        Checker { checked: vec![0; n], max_decided: vec![0; n], ..Checker::default() }
    }

    /// Registers a value some client appended.
    pub fn appended(&mut self, value: u64) {
        self.appended.insert(value);
    }

    /// The value decided at `idx`, if known.
    pub fn chosen(&self, idx: usize) -> Option<u64> {
        self.chosen.get(idx).copied().flatten()
    }

    /// The number of leading indices whose decided value is known.
    pub fn chosen_prefix(&self) -> usize {
        self.chosen.iter().take_while(|v| v.is_some()).count()
    }

    /// The index at which `value` was decided, if it was.
    pub fn index_of(&self, value: u64) -> Option<usize> {
        self.decided_at.get(&value).copied()
    }

    /// Whether some replica decided a stop sign.
    pub fn stopsign_decided(&self) -> bool {
        self.stopsign.is_some()
    }

    /// Replica `slot` restarted, holding the decided index it recovered; `written` is the
    /// decided index it held at its last write before the crash. Its whole decided log is
    /// checked again from now on.
    pub fn restarted<T: SimValue, S: Storage<T>>(
        &mut self,
        slot: usize,
        replica: &Replica<T, S>,
        written: usize,
    ) -> Result<(), String> {
        self.checked[slot] = 0;
        let recovered = replica.decided_idx();
        self.max_decided[slot] = recovered;
        if recovered < written {
            return Err(format!(
                "replica {}: restarted with decided index {recovered}, below the {written} its \
                 last write held",
                replica.pid()
            ));
        }
        Ok(())
    }

    /// Checks replica `slot`'s decided log against what others decided.
    pub fn check<T: SimValue, S: Storage<T>>(
        &mut self,
        slot: usize,
        replica: &Replica<T, S>,
    ) -> Result<(), String> {
        let pid = replica.pid();
        if let Some(err) = replica.error() {
            return Err(format!("replica {pid} stopped: {err}"));
        }
        let decided = replica.decided_idx();
        if decided < self.max_decided[slot] {
            return Err(format!(
                "replica {pid}: decided index went back from {} to {decided} without a restart",
                self.max_decided[slot]
            ));
        }
        self.max_decided[slot] = decided;
        self.check_stopsign(replica)?;
        let compacted = replica.compacted_idx();
        if compacted > decided {
            return Err(format!("replica {pid}: compacted {compacted} past decided {decided}"));
        }
        if self.checked[slot] < compacted {
            self.check_compacted(replica, compacted)?;
            self.checked[slot] = compacted;
        }
        let from = self.checked[slot];
        if from >= decided {
            return Ok(());
        }
        let read =
            replica.read_entries(from..decided).map_err(|e| format!("replica {pid}: {e}"))?;
        let entries =
            read.ok_or_else(|| format!("replica {pid}: cannot read {from}..{decided}"))?;
        if entries.len() != decided - from {
            return Err(format!(
                "replica {pid}: read {} entries of {from}..{decided}",
                entries.len()
            ));
        }
        for (idx, entry) in (from..).zip(entries) {
            let LogEntry::Decided(e) = entry else {
                return Err(format!("replica {pid}: index {idx} below decided reads as {entry:?}"));
            };
            self.record(pid, idx, e.value())?;
        }
        self.checked[slot] = decided;
        Ok(())
    }

    /// At most one stop sign is decided, at one index, and nothing is decided after it.
    fn check_stopsign<T: SimValue, S: Storage<T>>(
        &mut self,
        replica: &Replica<T, S>,
    ) -> Result<(), String> {
        let pid = replica.pid();
        if let Some((idx, _)) = self.stopsign {
            if replica.decided_idx() > idx {
                return Err(format!(
                    "replica {pid} decided index {} past the stop sign at {idx}",
                    replica.decided_idx()
                ));
            }
        }
        let Some(ss) = replica.is_reconfigured() else { return Ok(()) };
        let this = (replica.log_end(), ss.next_config.configuration_id);
        if replica.decided_idx() != this.0 {
            return Err(format!(
                "replica {pid}: stop sign decided at {} but entries decided to {}",
                this.0,
                replica.decided_idx()
            ));
        }
        if self.chosen.len() > this.0 {
            if let Some(i) = self.chosen[this.0..].iter().position(|v| v.is_some()) {
                return Err(format!(
                    "replica {pid}: stop sign decided at {} but index {} is decided",
                    this.0,
                    this.0 + i
                ));
            }
        }
        match self.stopsign {
            Some(known) if known != this => Err(format!(
                "replica {pid} decided the stop sign {this:?}, another decided {known:?}"
            )),
            _ => {
                self.stopsign = Some(this);
                Ok(())
            }
        }
    }

    fn record(&mut self, pid: u64, idx: usize, value: u64) -> Result<(), String> {
        if self.chosen.len() <= idx {
            self.chosen.resize(idx + 1, None);
        }
        match self.chosen[idx] {
            Some(v) if v != value => {
                return Err(format!(
                    "index {idx}: replica {pid} decided {value} but {v} was decided there before"
                ))
            }
            Some(_) => return Ok(()),
            None => {}
        }
        if !self.appended.contains(&value) {
            return Err(format!(
                "index {idx}: replica {pid} decided {value}, which no one appended"
            ));
        }
        if let Some(&other) = self.decided_at.get(&value) {
            return Err(format!(
                "index {idx}: replica {pid} decided {value}, already decided at index {other}"
            ));
        }
        self.chosen[idx] = Some(value);
        self.decided_at.insert(value, idx);
        Ok(())
    }

    /// The snapshot standing for `[0, compacted)` must match the decided values there.
    fn check_compacted<T: SimValue, S: Storage<T>>(
        &self,
        replica: &Replica<T, S>,
        compacted: usize,
    ) -> Result<(), String> {
        let pid = replica.pid();
        let Some(LogEntry::Snapshotted(s)) = replica.read(0).map_err(|e| e.to_string())? else {
            return Ok(());
        };
        let Some((len, digest)) = T::snapshot_digest(&s.snapshot) else { return Ok(()) };
        if len != compacted as u64 {
            return Err(format!(
                "replica {pid}: snapshot covers {len} entries, compacted at {compacted}"
            ));
        }
        if self.chosen_prefix() >= compacted {
            let values = self.chosen[..compacted].iter().map(|v| v.unwrap_or_default());
            let expected = super::DigestSnapshot::of_values(values);
            if expected.digest != digest {
                return Err(format!(
                    "replica {pid}: snapshot of [0, {compacted}) differs from the decided values"
                ));
            }
        }
        Ok(())
    }
}

/// Checks the messages replica `pid` just released against what its storage holds: a
/// `Promise` or a leader's message of round `n` needs a written promise of at least `n`;
/// an `Accepted` of round `n` up to `idx` needs the log accepted in `n` written up to `idx`;
/// the decided index a `Promise` or an `Accepted` reports (a leader trims up to it) must be
/// written.
pub fn persisted_before_sent<T: Entry, S: Storage<T>>(
    pid: u64,
    storage: &S,
    sent: &[Message<T>],
) -> Result<(), String> {
    let read = |e: paxstore::StorageError| format!("replica {pid}: reading storage: {e}");
    let promise = storage.get_promise().map_err(read)?.unwrap_or_default();
    let accepted = storage.get_accepted_round().map_err(read)?.unwrap_or_default();
    let log_end = storage.get_log_end().map_err(read)?;
    let logical_end = log_end + usize::from(storage.get_stopsign().map_err(read)?.is_some());
    let decided = storage.get_decided_idx().map_err(read)?;
    // A decided stop sign is not written (the contract has no place for it): compare entries.
    let reported = |what: &str, idx: usize| {
        if idx.min(log_end) > decided {
            Err(format!(
                "persist-before-send: replica {pid} sent {what} reporting decided index {idx} \
                 with {decided} written"
            ))
        } else {
            Ok(())
        }
    };
    let promised = |what: &str, n: Ballot| {
        if promise < n {
            Err(format!(
                "persist-before-send: replica {pid} sent {what} of round {n:?} with promise \
                 {promise:?} in storage"
            ))
        } else {
            Ok(())
        }
    };
    for payload in sent.iter().flat_map(|m| &m.payloads) {
        let Payload::Paxos(msg) = payload else { continue };
        match msg {
            PaxosMessage::Promise(p) => {
                promised("a Promise", p.n)?;
                reported("a Promise", p.decided_idx)?;
            }
            PaxosMessage::Prepare(p) => promised("a Prepare", p.n)?,
            PaxosMessage::AcceptSync(a) => promised("an AcceptSync", a.n)?,
            PaxosMessage::AcceptDecide(a) => promised("an AcceptDecide", a.n)?,
            PaxosMessage::Accepted(a) => {
                promised("an Accepted", a.n)?;
                reported("an Accepted", a.decided_idx)?;
                if accepted != a.n || logical_end < a.accepted_idx {
                    return Err(format!(
                        "persist-before-send: replica {pid} sent Accepted {a:?} with the log of \
                         round {accepted:?} written up to {logical_end}"
                    ));
                }
            }
            _ => {}
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use paxstore_backends::MemoryStorage;

    use super::*;
    use crate::sim::TrimEntry;
    use crate::ReplicaConfig;

    /// Each rule of `record` is proven by a history that breaks it.
    #[test]
    fn the_integrity_checks_catch_what_they_name() {
        let mut c = Checker::new(1);
        c.appended(7);
        c.appended(8);
        c.record(1, 0, 7).unwrap();
        c.record(1, 0, 7).unwrap(); // the same decision seen again
        assert!(c.record(1, 0, 8).unwrap_err().contains("was decided there before"));
        assert!(c.record(1, 1, 7).unwrap_err().contains("already decided at index 0"));
        assert!(c.record(1, 1, 9).unwrap_err().contains("which no one appended"));
    }

    /// Each rule of `persisted_before_sent`, caught breaking.
    #[test]
    fn persist_before_send_catches_what_is_not_written() {
        use paxstore::{Ballot, StorageOp};

        use crate::messages::{Accepted, Prepare, Promise};

        let n = Ballot::new(1, 2, 0, 1);
        let mut s = MemoryStorage::<TrimEntry>::new();
        s.write_atomically(vec![
            StorageOp::SetPromise(n),
            StorageOp::SetAcceptedRound(n),
            StorageOp::AppendEntries(vec![TrimEntry(1), TrimEntry(2)]),
            StorageOp::SetDecidedIndex(1),
        ])
        .unwrap();
        let msg = |p: PaxosMessage<TrimEntry>| Message {
            from: 1,
            to: 2,
            payloads: Payload::Paxos(p).into(),
        };
        let prepare = |n| {
            msg(PaxosMessage::Prepare(Prepare { n, decided_idx: 0, accepted_round: n, log_end: 0 }))
        };
        let promise = |n, decided_idx| {
            msg(PaxosMessage::Promise(Box::new(Promise {
                n,
                accepted_round: n,
                decided_idx,
                log_end: 2,
                has_stopsign: false,
                sync: None,
            })))
        };
        let accepted = |n, accepted_idx, decided_idx| {
            msg(PaxosMessage::Accepted(Accepted { n, accepted_idx, decided_idx }))
        };
        let check = |m: Message<TrimEntry>| persisted_before_sent(1, &s, &[m]);
        let higher = Ballot::new(1, 3, 0, 1);
        check(prepare(n)).unwrap();
        check(promise(n, 1)).unwrap();
        check(accepted(n, 2, 1)).unwrap();
        assert!(check(prepare(higher)).is_err(), "a round never promised");
        assert!(check(promise(higher, 1)).is_err(), "a promise not written");
        assert!(check(promise(n, 2)).is_err(), "a decided index not written");
        assert!(check(accepted(n, 3, 1)).is_err(), "an entry not written");
        assert!(check(accepted(n, 2, 2)).is_err(), "a decided index not written");
    }

    #[test]
    fn a_restart_may_lower_the_decided_index_but_not_below_the_last_write() {
        let cluster =
            paxstore::ClusterConfig { configuration_id: 1, nodes: vec![1], flexible_quorum: None };
        let config = ReplicaConfig::new(1, cluster);
        let r = Replica::new(config, MemoryStorage::<TrimEntry>::new()).unwrap();
        let mut c = Checker::new(1);
        c.max_decided[0] = 5;
        c.restarted(0, &r, 0).unwrap();
        assert_eq!(c.max_decided[0], 0, "the decided index may go back across a restart");
        assert!(c.restarted(0, &r, 3).unwrap_err().contains("below the 3 its last write held"));
    }
}
