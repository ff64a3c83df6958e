//! Bugs the tests put back on purpose, to show that the simulator and the scenarios catch
//! them (feature `testing`). Without the feature no bug can be switched on and every check
//! of one is a constant `false`.

/// A defect the replica once had (or could easily have), re-introduced on one replica by
/// [`Replica::inject_bug`](crate::Replica::inject_bug).
#[cfg_attr(not(feature = "testing"), allow(unreachable_pub, dead_code))]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum InjectedBug {
    /// The leader proposes every forwarded batch it receives, duplicates and replays
    /// included: a network that duplicates a `Forward` gets its entries decided twice.
    DuplicateForwards,
    /// A deposed leader is never told: followers drop messages of a lower round silently,
    /// heartbeat replies vouch for no leader, and a refused leader keeps leading.
    ZombieLeader,
    /// A restarted replica stands for election with its promise's round, so a higher pid
    /// or priority unseats a live leader.
    LoudRestart,
    /// A promise is written with the take after the one that sends the `Promise`.
    PromiseAfterSend,
    /// A promise (a follower's, or a new leader's own) is never written: the `Promise`
    /// (or `Prepare`) leaves with the promise in memory only, and a crash takes it back.
    UnwrittenPromise,
    /// A new leader takes the round of the log it adopted to be its own, so no follower
    /// counts as holding a prefix of it and each is resent everything after its decided
    /// index.
    ResendAfterDecided,
    /// A decided stop sign is written as merely accepted (the decided index of the
    /// entries alone), so a restarted replica forgets that its configuration ended.
    ForgetDecidedStopsign,
}

impl InjectedBug {
    #[cfg_attr(not(feature = "testing"), allow(dead_code))]
    const fn bit(self) -> u8 {
        match self {
            InjectedBug::DuplicateForwards => 1,
            InjectedBug::ZombieLeader => 2,
            InjectedBug::LoudRestart => 4,
            InjectedBug::PromiseAfterSend => 8,
            InjectedBug::ResendAfterDecided => 16,
            InjectedBug::UnwrittenPromise => 32,
            InjectedBug::ForgetDecidedStopsign => 64,
        }
    }
}

/// The bugs switched on in one replica.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct Bugs {
    #[cfg(feature = "testing")]
    set: u8,
}

impl Bugs {
    /// Whether `bug` is switched on.
    #[inline]
    pub(crate) fn has(self, bug: InjectedBug) -> bool {
        #[cfg(feature = "testing")]
        {
            self.set & bug.bit() != 0
        }
        #[cfg(not(feature = "testing"))]
        {
            let _ = bug;
            false
        }
    }

    #[cfg(feature = "testing")]
    pub(crate) fn insert(&mut self, bug: InjectedBug) {
        self.set |= bug.bit();
    }
}
