//! Fault injection: fail the n-th write, fsync, rename or create of a file whose name
//! matches a pattern, with EIO or ENOSPC, or cut the power there.

use std::fmt;

use crate::Error;

/// The kind of call a fault waits for.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Op {
    /// A `write` (each FUSE write request: a large `write(2)` can arrive as several).
    Write,
    /// An `fsync` or `fdatasync` of a file, or an `fsync` of a directory.
    Fsync,
    /// A `rename`; the pattern is matched against the old and the new name.
    Rename,
    /// Creating a file or a directory (`open(O_CREAT)`, `mknod`, `mkdir`).
    Create,
    /// Any of the above: with [`Stats::calls`](crate::Stats::calls) counted around a
    /// piece of work, fail (or cut the power at) each of its calls in turn.
    Any,
}

impl Op {
    /// Every kind, in the order they are listed.
    pub const ALL: [Op; 5] = [Op::Write, Op::Fsync, Op::Rename, Op::Create, Op::Any];

    /// The name used by the command line and the control socket.
    pub fn name(self) -> &'static str {
        match self {
            Op::Write => "write",
            Op::Fsync => "fsync",
            Op::Rename => "rename",
            Op::Create => "create",
            Op::Any => "any",
        }
    }
}

impl fmt::Display for Op {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl std::str::FromStr for Op {
    type Err = Error;
    fn from_str(s: &str) -> Result<Op, Error> {
        Op::ALL.into_iter().find(|op| op.name() == s).ok_or_else(|| {
            Error::Invalid(format!("unknown operation {s:?} (write, fsync, rename, create or any)"))
        })
    }
}

/// What a fault does to the call it hits.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Effect {
    /// The call fails with `EIO` and changes nothing (a failed fsync also loses the
    /// file's unsynced writes, as Linux does).
    Eio,
    /// The call fails with `ENOSPC` and changes nothing.
    Enospc,
    /// The power goes: this call and every later one fail with `EIO` until
    /// [`crate::CrashFs::power_cut`] applies the cut (the call itself is not done).
    PowerOff,
}

impl Effect {
    /// The name used by the command line and the control socket.
    pub fn name(self) -> &'static str {
        match self {
            Effect::Eio => "eio",
            Effect::Enospc => "enospc",
            Effect::PowerOff => "power-off",
        }
    }
}

impl std::str::FromStr for Effect {
    type Err = Error;
    fn from_str(s: &str) -> Result<Effect, Error> {
        [Effect::Eio, Effect::Enospc, Effect::PowerOff]
            .into_iter()
            .find(|e| e.name() == s)
            .ok_or_else(|| {
                Error::Invalid(format!("unknown effect {s:?} (eio, enospc or power-off)"))
            })
    }
}

/// One armed fault: on the `nth` call of kind `op` (counted from arming) to a file whose
/// name matches `pattern`, do `effect`; with `sticky`, every matching call from then on
/// until the faults are cleared.
///
/// ```
/// use paxstore_crashfs::{Effect, Fault, Op};
/// let fault = Fault::new(Op::Fsync, Effect::Eio).nth(3).matching("*.log");
/// assert_eq!(fault.to_string(), "eio on fsync #3 of *.log");
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Fault {
    /// The kind of call.
    pub op: Op,
    /// What happens to it.
    pub effect: Effect,
    /// Which matching call, from 1.
    pub nth: u64,
    /// A glob (`*`, `?`, `[..]`) matched against the file's name (its last component).
    pub pattern: String,
    /// Fail every matching call from the `nth` on, not only the `nth`.
    pub sticky: bool,
}

impl Fault {
    /// The first `op` on any file does `effect`.
    pub fn new(op: Op, effect: Effect) -> Fault {
        Fault { op, effect, nth: 1, pattern: "*".into(), sticky: false }
    }

    /// On the `n`-th matching call (from 1) instead of the first.
    pub fn nth(mut self, n: u64) -> Fault {
        self.nth = n;
        self
    }

    /// Only calls on files whose name matches the glob `pattern`.
    pub fn matching(mut self, pattern: impl Into<String>) -> Fault {
        self.pattern = pattern.into();
        self
    }

    /// Every matching call from the n-th on, until the faults are cleared.
    pub fn sticky(mut self) -> Fault {
        self.sticky = true;
        self
    }
}

impl fmt::Display for Fault {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let from = if self.sticky { " and after" } else { "" };
        write!(f, "{} on {} #{}{from} of {}", self.effect.name(), self.op, self.nth, self.pattern)
    }
}

/// The armed faults of a mount, with how many matching calls each has seen.
#[derive(Debug, Default)]
pub(crate) struct Faults {
    armed: Vec<Armed>,
}

#[derive(Debug)]
struct Armed {
    fault: Fault,
    pattern: glob::Pattern,
    seen: u64,
}

impl Faults {
    /// Arms `fault`; a pattern that is not a valid glob is refused.
    pub(crate) fn arm(&mut self, fault: Fault) -> Result<(), Error> {
        if fault.nth == 0 {
            return Err(Error::Invalid(format!("{fault}: calls are counted from 1")));
        }
        let pattern = glob::Pattern::new(&fault.pattern)
            .map_err(|e| Error::Invalid(format!("pattern {:?}: {e}", fault.pattern)))?;
        self.armed.push(Armed { fault, pattern, seen: 0 });
        Ok(())
    }

    pub(crate) fn clear(&mut self) {
        self.armed.clear();
    }

    pub(crate) fn list(&self) -> Vec<Fault> {
        self.armed.iter().map(|a| a.fault.clone()).collect()
    }

    /// Counts a call of kind `op` on files named `names` against every armed fault and
    /// returns the effect of the first one it hits (and which), if any.
    pub(crate) fn hit(&mut self, op: Op, names: &[&std::ffi::OsStr]) -> Option<(Effect, Fault)> {
        let mut hit = None;
        for armed in &mut self.armed {
            let matches = names.iter().any(|n| armed.pattern.matches(&n.to_string_lossy()));
            if (armed.fault.op != op && armed.fault.op != Op::Any) || !matches {
                continue;
            }
            armed.seen += 1;
            let fires = if armed.fault.sticky {
                armed.seen >= armed.fault.nth
            } else {
                armed.seen == armed.fault.nth
            };
            if fires && hit.is_none() {
                hit = Some((armed.fault.effect, armed.fault.clone()));
            }
        }
        hit
    }
}

#[cfg(test)]
mod tests {
    use std::ffi::OsStr;

    use super::*;

    fn name(s: &str) -> &OsStr {
        OsStr::new(s)
    }

    #[test]
    fn the_nth_matching_call_fires_once_or_from_then_on() {
        let mut faults = Faults::default();
        faults.arm(Fault::new(Op::Write, Effect::Eio).nth(2).matching("*.log")).unwrap();
        faults.arm(Fault::new(Op::Fsync, Effect::Enospc).nth(2).sticky()).unwrap();
        let write = |f: &mut Faults, n: &str| f.hit(Op::Write, &[name(n)]).map(|h| h.0);
        assert_eq!(write(&mut faults, "a.log"), None);
        assert_eq!(write(&mut faults, "a.sst"), None, "another name does not count");
        assert_eq!(write(&mut faults, "b.log"), Some(Effect::Eio));
        assert_eq!(write(&mut faults, "c.log"), None, "a fault without sticky fires once");
        let fsync = |f: &mut Faults| f.hit(Op::Fsync, &[name("x")]).map(|h| h.0);
        assert_eq!(fsync(&mut faults), None);
        assert_eq!(fsync(&mut faults), Some(Effect::Enospc));
        assert_eq!(fsync(&mut faults), Some(Effect::Enospc), "sticky fires from the nth on");
        faults.clear();
        assert_eq!(fsync(&mut faults), None);
    }

    #[test]
    fn any_counts_every_kind_and_a_rename_matches_either_name() {
        let mut faults = Faults::default();
        faults.arm(Fault::new(Op::Any, Effect::PowerOff).nth(3)).unwrap();
        assert!(faults.hit(Op::Create, &[name("a")]).is_none());
        assert!(faults.hit(Op::Write, &[name("a")]).is_none());
        assert_eq!(faults.hit(Op::Rename, &[name("a")]).map(|h| h.0), Some(Effect::PowerOff));
        faults.clear();
        faults.arm(Fault::new(Op::Rename, Effect::Eio).matching("final")).unwrap();
        assert!(faults.hit(Op::Rename, &[name("tmp"), name("final")]).is_some());
    }

    #[test]
    fn names_parse_back() {
        for op in Op::ALL {
            assert_eq!(op.name().parse::<Op>().unwrap(), op);
        }
        for effect in [Effect::Eio, Effect::Enospc, Effect::PowerOff] {
            assert_eq!(effect.name().parse::<Effect>().unwrap(), effect);
        }
        assert!("read".parse::<Op>().is_err());
    }
}
