//! Latency samples of one run, and the median over repeated runs.
//!
//! Percentiles are exact (nearest rank over every call's latency, sorted), not from a
//! histogram such as `hdrhistogram`. A histogram's gain is bounded memory, and here a
//! cell's samples are few enough to keep: a storage repetition stops at 200,000 calls
//! ([`crate::workload::Budget::time`]), 3.2 MB of latencies; the fastest replica cell of a
//! quick run (`--backends wal,memory`) decided 750,000 entries/s, so a 1.5 s repetition of
//! the full run holds about 1.1 million latencies, 18 MB. A histogram rounds each value (to
//! a chosen number of significant digits), and the small samples (a ceiling repetition of a
//! few hundred syncs, a three-repetition reopen) are where exact ranks matter most.

use std::time::Duration;

/// The timed calls of one run of a cell: one latency per call, each call covering
/// `items_per_call` entries (a batch appended, a range read, a trim).
#[derive(Clone, Debug, Default)]
pub struct Samples {
    /// The latency of each call, in the order made.
    pub latencies: Vec<Duration>,
    /// Entries each call appended, read or trimmed.
    pub items_per_call: usize,
}

impl Samples {
    /// An empty run of calls that each cover `items_per_call` entries.
    pub fn new(items_per_call: usize) -> Self {
        Samples { latencies: Vec::new(), items_per_call }
    }

    /// The time spent inside the timed calls.
    pub fn total(&self) -> Duration {
        self.latencies.iter().sum()
    }

    /// Calls per second of timed time (0 for an empty run).
    pub fn calls_per_s(&self) -> f64 {
        let secs = self.total().as_secs_f64();
        if secs > 0.0 {
            self.latencies.len() as f64 / secs
        } else {
            0.0
        }
    }

    /// Entries per second of timed time.
    pub fn items_per_s(&self) -> f64 {
        self.calls_per_s() * self.items_per_call as f64
    }
}

/// The summary of a cell over its repetitions.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Summary {
    /// Median over repetitions of calls (batches, reads, trims) per second.
    pub calls_per_s: f64,
    /// Median over repetitions of entries per second.
    pub items_per_s: f64,
    /// Slowest repetition's entries per second.
    pub items_per_s_min: f64,
    /// Fastest repetition's entries per second.
    pub items_per_s_max: f64,
    /// Median call latency over all repetitions' calls, in µs.
    pub p50_us: f64,
    /// 99th-percentile call latency over all repetitions' calls, in µs.
    pub p99_us: f64,
    /// Repetitions summarized.
    pub reps: usize,
    /// Timed calls over all repetitions.
    pub calls: usize,
}

/// Summarizes the repetitions of one cell: rates are the median of the per-repetition
/// rates (so one noisy repetition does not move them), latency percentiles are taken over
/// every call of every repetition.
pub fn summarize(runs: &[Samples]) -> Summary {
    let mut call_rates: Vec<f64> = runs.iter().map(Samples::calls_per_s).collect();
    let mut item_rates: Vec<f64> = runs.iter().map(Samples::items_per_s).collect();
    let mut all: Vec<Duration> = runs.iter().flat_map(|r| r.latencies.iter().copied()).collect();
    all.sort_unstable();
    Summary {
        calls_per_s: median(&mut call_rates),
        items_per_s: median(&mut item_rates),
        items_per_s_min: if item_rates.is_empty() {
            0.0
        } else {
            item_rates.iter().copied().fold(f64::INFINITY, f64::min)
        },
        items_per_s_max: item_rates.iter().copied().fold(0.0, f64::max),
        p50_us: percentile_us(&all, 0.50),
        p99_us: percentile_us(&all, 0.99),
        reps: runs.len(),
        calls: all.len(),
    }
}

/// The median of `values` (the mean of the middle two for an even count; 0 if empty).
pub fn median(values: &mut [f64]) -> f64 {
    if values.is_empty() {
        return 0.0;
    }
    values.sort_by(f64::total_cmp);
    let mid = values.len() / 2;
    if values.len() % 2 == 1 {
        values[mid]
    } else {
        (values[mid - 1] + values[mid]) / 2.0
    }
}

/// The `q`-quantile of sorted latencies, in µs (nearest rank; 0 if empty).
pub fn percentile_us(sorted: &[Duration], q: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let rank = ((q * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len());
    sorted[rank - 1].as_secs_f64() * 1e6
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn median_and_percentiles() {
        assert_eq!(median(&mut [3.0, 1.0, 2.0]), 2.0);
        assert_eq!(median(&mut [4.0, 1.0, 2.0, 3.0]), 2.5);
        let lat: Vec<Duration> = (1..=100).map(Duration::from_micros).collect();
        assert_eq!(percentile_us(&lat, 0.5), 50.0);
        assert_eq!(percentile_us(&lat, 0.99), 99.0);
    }

    #[test]
    fn summary_takes_median_of_repetitions() {
        let run = |us: u64, n: usize| Samples {
            latencies: vec![Duration::from_micros(us); n],
            items_per_call: 10,
        };
        let s = summarize(&[run(100, 10), run(200, 10), run(400, 10)]);
        assert!((s.calls_per_s - 5_000.0).abs() < 1e-6);
        assert!((s.items_per_s - 50_000.0).abs() < 1e-6);
        assert!((s.items_per_s_min - 25_000.0).abs() < 1e-6);
        assert!((s.items_per_s_max - 100_000.0).abs() < 1e-6);
        assert_eq!(s.calls, 30);
    }
}
