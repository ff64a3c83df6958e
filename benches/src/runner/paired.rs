//! Paired ratios: a replica cell against the cell it ran beside, repetition by repetition.

use super::execute::Rep;
use crate::report;
use crate::stats;

/// `a`'s rate over `b`'s, repetition by repetition (the two ran back to back in each
/// round): the lowest, the median and the highest.
pub(super) fn paired_ratio(a: &[Rep], b: &[Rep]) -> Option<Paired> {
    let runs = || {
        a.iter().zip(b).filter_map(|pair| match pair {
            (Rep::Replica(x), Rep::Replica(y)) => Some((x, y)),
            _ => None,
        })
    };
    let wall = Spread::of(runs().map(|(x, y)| x.decided_per_s() / y.decided_per_s()))?;
    let cpu = Spread::of(
        runs().filter_map(|(x, y)| Some(x.decided_per_cpu_s()? / y.decided_per_cpu_s()?)),
    );
    Some(Paired { wall, cpu })
}

/// The paired ratios of a cell's repetitions to those of its OmniPaxos pair: of decided
/// entries per second of wall time, and per second of the driving thread's CPU time (where
/// known; steadier on a shared machine, where wall time includes waiting for a core).
#[derive(Clone, Copy, Debug)]
pub(super) struct Paired {
    pub(super) wall: Spread,
    pub(super) cpu: Option<Spread>,
}

impl Paired {
    /// As the report stores it.
    pub(super) fn ratios(self) -> report::PairedRatios {
        let r = |s: Spread| report::RatioSpread { min: s.min, median: s.median, max: s.max };
        report::PairedRatios { wall: r(self.wall), cpu: self.cpu.map(r) }
    }

    pub(super) fn show(&self) -> String {
        format!(
            "{} in wall time{}",
            self.wall.show(),
            self.cpu.map_or(String::new(), |c| format!(", {} in CPU time", c.show()))
        )
    }
}

/// The lowest, median and highest of some ratios.
#[derive(Clone, Copy, Debug)]
pub(super) struct Spread {
    pub(super) min: f64,
    pub(super) median: f64,
    pub(super) max: f64,
}

impl Spread {
    /// Over the finite, positive `ratios`; `None` if there is none.
    pub(super) fn of(ratios: impl Iterator<Item = f64>) -> Option<Spread> {
        let mut ratios: Vec<f64> = ratios.filter(|r| r.is_finite() && *r > 0.0).collect();
        if ratios.is_empty() {
            return None;
        }
        let min = ratios.iter().copied().fold(f64::INFINITY, f64::min);
        let max = ratios.iter().copied().fold(0.0, f64::max);
        Some(Spread { min, median: stats::median(&mut ratios), max })
    }

    pub(super) fn show(&self) -> String {
        format!(
            "{}× ({}–{}×)",
            report::fmt_ratio(self.median),
            report::fmt_ratio(self.min),
            report::fmt_ratio(self.max)
        )
    }
}
