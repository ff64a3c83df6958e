//! Scenario tests as data: a small text language that drives a [`LocalCluster`] step by
//! step, with the expected outcome beside each step (feature `testing`).
//! [`Scenario::parse`] reads a file; [`Scenario::run`] runs it over any storage (the tests
//! use the memory backend).
//!
//! ```text
//! # comments start with '#'
//! cluster 3 entries=trim batch=1      first line: replicas, entry type (trim|snapshot), batch size,
//!         priorities=1,0,2            and optionally each replica's election priority
//! elect                               step until a leader is elected
//! propose 3 a b c                     append values a, b, c at replica 3 (names or numbers)
//! deliver                             deliver in rounds until nothing is queued
//! deliver 3 -> 1                      deliver only the queued messages from 3 to 1
//! drop                                lose every queued message
//! duplicate                           queue a second copy of every queued message
//! tick 10                             10 times: tick every replica, then deliver
//! partition 1 | 2 3                   only replicas of a group reach each other
//! cut 1 -> 2    /  cut 1 - 2          cut one direction / both directions of a link
//! cut all                             cut every link
//! connect 1 - 2 /  connect 1 -> 2     restore both directions / one direction of a link
//! heal                                restore every link
//! crash 2       /  restart 2          crash a replica (keeping its storage) / rebuild it over it
//! reconfigure 1                       reconfigure at replica 1 (next configuration id, same nodes)
//! trim 3 4      /  snapshot 3 4 local compact at replica 3 below index 4
//! expect leader 2                     replica 2 leads (`expect leader none`: no one does)
//! expect leaders 2                    exactly replica 2 believes it leads (`none`, or `1,3`)
//! expect decided all 3 a b c          every running replica decided exactly 3 entries: a b c
//! expect decided 1,2 3 a b c          replicas 1 and 2 did
//! expect decided 1 0                  replica 1 decided nothing
//! expect log 3 a x y                  replica 3 holds exactly a x y (decided or not)
//! expect compacted all 4              the log starts at 4 (below: trimmed or snapshotted)
//! expect stopsign all decided         decided | accepted | none
//! expect refused propose 2 e          the command must fail (propose, trim, snapshot, reconfigure)
//! ```
//!
//! Values are checked at every index a replica still holds; where a snapshot stands for
//! the compacted prefix, it is checked against the values expected there.

use std::collections::BTreeMap;
use std::fmt;

use paxstore::{ClusterConfig, Storage};

use crate::cluster::LocalCluster;
use crate::sim::{DigestSnapshot, SimValue};
use crate::{InjectedBug, LogEntry, PaxosError, ReplicaConfig};

/// Steps `elect` may take.
const ELECT_STEPS: usize = 1_000;

/// The entry type a scenario runs with.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EntryKind {
    /// [`TrimEntry`](crate::sim::TrimEntry): no snapshots, compaction trims.
    Trim,
    /// [`SimEntry`](crate::sim::SimEntry): compaction folds entries into a snapshot.
    Snapshot,
}

/// A parsed scenario.
#[derive(Clone, Debug)]
pub struct Scenario {
    /// The scenario's name (its file name, in the tests).
    pub name: String,
    /// Replicas, ids `1..=nodes`.
    pub nodes: usize,
    /// The leader's batch size.
    pub batch_size: usize,
    /// The entry type.
    pub entries: EntryKind,
    /// Each replica's election priority (0 where the list is shorter).
    pub priorities: Vec<u32>,
    /// The commands, with their line numbers.
    commands: Vec<(usize, String)>,
    /// Defects re-introduced in every replica (to show that the scenario catches them).
    bugs: Vec<InjectedBug>,
}

/// A scenario line that failed: a syntax error, a failed command or an unmet expectation.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ScenarioError {
    /// The scenario.
    pub scenario: String,
    /// The line number, from 1.
    pub line: usize,
    /// The line.
    pub text: String,
    /// What went wrong.
    pub message: String,
}

impl fmt::Display for ScenarioError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}: `{}`: {}", self.scenario, self.line, self.text, self.message)
    }
}

impl std::error::Error for ScenarioError {}

impl Scenario {
    /// Parses the header line (`cluster N [entries=trim|snapshot] [batch=B]`) and keeps
    /// the commands, which are checked as they run.
    pub fn parse(name: &str, text: &str) -> Result<Scenario, ScenarioError> {
        let mut lines = text
            .lines()
            .enumerate()
            .map(|(i, l)| (i + 1, l.split('#').next().unwrap_or("").trim().to_string()))
            .filter(|(_, l)| !l.is_empty());
        let err = |line: usize, text: &str, message: String| ScenarioError {
            scenario: name.to_string(),
            line,
            text: text.to_string(),
            message,
        };
        let (line, header) = lines.next().ok_or_else(|| err(0, "", "empty scenario".into()))?;
        let words: Vec<&str> = header.split_whitespace().collect();
        if words.first() != Some(&"cluster") || words.len() < 2 {
            return Err(err(line, &header, "the first line must be `cluster N ...`".into()));
        }
        let nodes =
            words[1].parse().map_err(|_| err(line, &header, "N must be a number".into()))?;
        let mut scenario = Scenario {
            name: name.to_string(),
            nodes,
            batch_size: 1,
            entries: EntryKind::Trim,
            priorities: Vec::new(),
            commands: Vec::new(),
            bugs: Vec::new(),
        };
        for word in &words[2..] {
            match word.split_once('=') {
                Some(("entries", "trim")) => scenario.entries = EntryKind::Trim,
                Some(("entries", "snapshot")) => scenario.entries = EntryKind::Snapshot,
                Some(("batch", b)) => {
                    scenario.batch_size = b
                        .parse()
                        .map_err(|_| err(line, &header, "batch must be a number".into()))?
                }
                Some(("priorities", list)) => {
                    scenario.priorities =
                        list.split(',').map(str::parse).collect::<Result<_, _>>().map_err(|_| {
                            err(line, &header, "priorities are numbers: 1,0,2".into())
                        })?
                }
                _ => return Err(err(line, &header, format!("unknown option {word}"))),
            }
        }
        scenario.commands = lines.collect();
        Ok(scenario)
    }

    /// The scenario with `bug` re-introduced in every replica.
    pub fn with_bug(mut self, bug: InjectedBug) -> Self {
        self.bugs.push(bug);
        self
    }

    /// Runs the scenario over storages from `storage(pid)`.
    pub fn run<T: SimValue, S: Storage<T>>(
        &self,
        storage: impl FnMut(u64) -> S,
    ) -> Result<(), ScenarioError> {
        let template =
            ReplicaConfig::new(1, ClusterConfig::default()).with_batch_size(self.batch_size);
        let mut cluster =
            LocalCluster::with_priorities(self.nodes, &template, &self.priorities, storage)
                .map_err(|e| ScenarioError {
                    scenario: self.name.clone(),
                    line: 1,
                    text: "cluster".into(),
                    message: e.to_string(),
                })?;
        for &bug in &self.bugs {
            cluster.inject_bug(bug);
        }
        let mut runner = Runner { cluster, names: BTreeMap::new(), values: BTreeMap::new() };
        for (line, text) in &self.commands {
            runner.command(text).map_err(|message| ScenarioError {
                scenario: self.name.clone(),
                line: *line,
                text: text.clone(),
                message,
            })?;
        }
        Ok(())
    }
}

struct Runner<T: SimValue, S: Storage<T>> {
    cluster: LocalCluster<T, S>,
    /// Value name -> value.
    names: BTreeMap<String, u64>,
    /// Value -> name.
    values: BTreeMap<u64, String>,
}

type Res = Result<(), String>;

fn num<N: std::str::FromStr>(word: Option<&&str>, what: &str) -> Result<N, String> {
    word.and_then(|w| w.parse().ok()).ok_or_else(|| format!("expected {what}"))
}

impl<T: SimValue, S: Storage<T>> Runner<T, S> {
    fn value(&mut self, name: &str) -> u64 {
        if let Some(v) = self.names.get(name) {
            return *v;
        }
        let v = name.parse().unwrap_or(1_000_000 + self.names.len() as u64);
        self.names.insert(name.to_string(), v);
        self.values.insert(v, name.to_string());
        v
    }

    fn name(&self, v: u64) -> String {
        self.values.get(&v).cloned().unwrap_or_else(|| v.to_string())
    }

    fn paxos<R>(r: Result<R, PaxosError>) -> Result<R, String> {
        r.map_err(|e| e.to_string())
    }

    fn command(&mut self, text: &str) -> Res {
        let words: Vec<&str> = text.split_whitespace().collect();
        match words.as_slice() {
            ["expect", "refused", rest @ ..] => match self.act(rest) {
                Ok(()) => Err("expected the command to be refused, it succeeded".into()),
                Err(_) => Ok(()),
            },
            ["expect", rest @ ..] => self.expect(rest),
            _ => self.act(&words),
        }
    }

    fn act(&mut self, words: &[&str]) -> Res {
        let c = &mut self.cluster;
        match words {
            ["elect"] => Self::paxos(c.elect_leader(ELECT_STEPS)).map(|_| ()),
            ["deliver"] => Self::paxos(c.deliver()).map(|_| ()),
            ["deliver", a, "->", b] => {
                Self::paxos(c.deliver_link(num(Some(a), "a replica")?, num(Some(b), "a replica")?))
                    .map(|_| ())
            }
            ["drop"] => {
                c.drop_queued();
                Ok(())
            }
            ["duplicate"] => {
                c.duplicate_queued();
                Ok(())
            }
            ["tick", n] => {
                for _ in 0..num::<usize>(Some(n), "a tick count")? {
                    Self::paxos(c.step())?;
                }
                Ok(())
            }
            ["heal"] => {
                c.heal();
                Ok(())
            }
            ["partition", rest @ ..] => {
                let groups = rest
                    .split(|w| *w == "|")
                    .map(|g| {
                        g.iter().map(|p| num(Some(p), "a replica")).collect::<Result<Vec<u64>, _>>()
                    })
                    .collect::<Result<Vec<_>, _>>()?;
                c.partition(&groups);
                Ok(())
            }
            ["cut", "all"] => {
                c.partition(&[]);
                Ok(())
            }
            ["cut", a, dir, b] => Self::link(c, a, dir, b, false),
            ["connect", a, dir, b] => Self::link(c, a, dir, b, true),
            ["crash", p] => {
                c.crash(num(Some(p), "a replica")?);
                Ok(())
            }
            ["restart", p] => Self::paxos(c.restart(num(Some(p), "a replica")?)),
            ["propose", p, values @ ..] => {
                let pid = num(Some(p), "a replica")?;
                for v in values {
                    let value = self.value(v);
                    Self::paxos(self.cluster.append_at(pid, T::from_value(value)))?;
                }
                Ok(())
            }
            ["reconfigure", p] => {
                let r = self.replica_mut(p)?;
                let mut next = r.config().cluster.clone();
                next.configuration_id += 1;
                Self::paxos(r.reconfigure(next, None))
            }
            ["trim", p, idx] => {
                let idx = num(Some(idx), "an index")?;
                Self::paxos(self.replica_mut(p)?.trim(idx))
            }
            ["snapshot", p, idx, rest @ ..] => {
                let idx = num(Some(idx), "an index")?;
                let local = rest == ["local"];
                Self::paxos(self.replica_mut(p)?.snapshot(Some(idx), local))
            }
            _ => Err("unknown command".into()),
        }
    }

    /// Sets the link `a -> b` (and `b -> a` for `dir == "-"`) up or down.
    fn link(c: &mut LocalCluster<T, S>, a: &str, dir: &str, b: &str, up: bool) -> Res {
        let (a, b) = (num(Some(&a), "a replica")?, num(Some(&b), "a replica")?);
        match dir {
            "->" => c.set_link(a, b, up),
            "-" => {
                c.set_link(a, b, up);
                c.set_link(b, a, up);
            }
            _ => return Err("expected `->` or `-`".into()),
        }
        Ok(())
    }

    fn replica_mut(&mut self, p: &str) -> Result<&mut crate::Replica<T, S>, String> {
        let pid = num(Some(&p), "a replica")?;
        self.cluster.replica_mut(pid).ok_or_else(|| format!("replica {pid} is not running"))
    }

    /// The replicas `who` names: a pid, pids separated by commas, or `all` (every running
    /// replica).
    fn targets(&self, who: &str) -> Result<Vec<u64>, String> {
        if who == "all" {
            return Ok(self.cluster.replicas().map(|r| r.pid()).collect());
        }
        let mut pids = Vec::new();
        for p in who.split(',') {
            let pid = num(Some(&p), "a replica, replicas separated by commas, or `all`")?;
            if self.cluster.replica(pid).is_none() {
                return Err(format!("replica {pid} is not running"));
            }
            pids.push(pid);
        }
        Ok(pids)
    }

    fn expect(&mut self, words: &[&str]) -> Res {
        match words {
            ["leader", "none"] => match self.cluster.leader() {
                None => Ok(()),
                Some(l) => Err(format!("replica {l} leads")),
            },
            ["leaders", who] => {
                let expected: Vec<u64> = match *who {
                    "none" => Vec::new(),
                    _ => who
                        .split(',')
                        .map(|p| num(Some(&p), "replicas separated by commas, or `none`"))
                        .collect::<Result<_, _>>()?,
                };
                let leaders = self.cluster.leaders();
                if leaders == expected {
                    Ok(())
                } else {
                    Err(format!("the replicas that believe they lead are {leaders:?}"))
                }
            }
            ["leader", p] => {
                let pid: u64 = num(Some(p), "a replica")?;
                match self.cluster.leader() {
                    Some(l) if l == pid => Ok(()),
                    other => Err(format!("the leader is {other:?}")),
                }
            }
            ["decided", who, n, values @ ..] => {
                let n: usize = num(Some(n), "an index")?;
                let values: Vec<u64> = values.iter().map(|v| self.value(v)).collect();
                for pid in self.targets(who)? {
                    let decided = self.cluster.replica(pid).map_or(0, |r| r.decided_idx());
                    if decided != n {
                        return Err(format!("replica {pid} decided {decided} entries"));
                    }
                    if !values.is_empty() {
                        self.check_log(pid, &values[..n.min(values.len())], true)?;
                    }
                }
                Ok(())
            }
            ["log", who, values @ ..] => {
                let values: Vec<u64> = values.iter().map(|v| self.value(v)).collect();
                for pid in self.targets(who)? {
                    self.check_log(pid, &values, false)?;
                }
                Ok(())
            }
            ["compacted", who, n] => {
                let n: usize = num(Some(n), "an index")?;
                for pid in self.targets(who)? {
                    let c = self.cluster.replica(pid).map_or(0, |r| r.compacted_idx());
                    if c != n {
                        return Err(format!("replica {pid} is compacted at {c}"));
                    }
                }
                Ok(())
            }
            ["stopsign", who, state] => {
                for pid in self.targets(who)? {
                    let ss = self.cluster.replica(pid).and_then(|r| r.stopsign());
                    let found = match ss {
                        None => "none",
                        Some((_, true)) => "decided",
                        Some((_, false)) => "accepted",
                    };
                    if found != *state {
                        return Err(format!("replica {pid}'s stop sign is {found}"));
                    }
                }
                Ok(())
            }
            _ => Err("unknown expectation".into()),
        }
    }

    /// Replica `pid` holds `values` (only its decided entries, if `decided_only`).
    fn check_log(&self, pid: u64, values: &[u64], decided_only: bool) -> Res {
        let r = self.cluster.replica(pid).ok_or_else(|| format!("replica {pid} is not running"))?;
        let end = if decided_only { r.decided_idx() } else { r.log_end() };
        if end != values.len() {
            return Err(format!("replica {pid} holds {end} entries, expected {}", values.len()));
        }
        let Some(log) = Self::paxos(r.read_entries(0..end))? else { return Ok(()) };
        let mut found = Vec::new();
        for entry in log {
            match entry {
                LogEntry::Decided(e) | LogEntry::Undecided(e) => found.push(self.name(e.value())),
                LogEntry::Snapshotted(s) => {
                    let covered = s.trimmed_idx;
                    if let Some((len, digest)) = T::snapshot_digest(&s.snapshot) {
                        let expected = DigestSnapshot::of_values(values[..covered].iter().copied());
                        if len != covered as u64 || digest != expected.digest {
                            return Err(format!("replica {pid}'s snapshot does not match the first {covered} values"));
                        }
                    }
                    found.extend(values[..covered].iter().map(|v| self.name(*v)));
                }
                LogEntry::Trimmed(covered) => {
                    found.extend(values[..covered].iter().map(|v| self.name(*v)))
                }
                LogEntry::StopSign(..) => {}
            }
        }
        let expected: Vec<String> = values.iter().map(|v| self.name(*v)).collect();
        if found != expected {
            return Err(format!("replica {pid} holds {found:?}"));
        }
        Ok(())
    }
}
