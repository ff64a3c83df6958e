//! Running many seeds: the runner, its summary lines and the seeds the environment asks for.

use paxstore::Storage;

use super::{Checker, OpenStorage, SimConfig, SimOutcome, SimValue, Simulation};

/// Runs seeds `seeds` with `cfg`, each over storages from `open(seed)`; returns every
/// outcome. Prints the failing seeds with how to replay them.
pub fn run_seeds<T: SimValue, S: Storage<T>>(
    cfg: &SimConfig,
    seeds: impl IntoIterator<Item = u64>,
    mut open: impl FnMut(u64) -> OpenStorage<S>,
) -> Vec<SimOutcome> {
    let mut outcomes = Vec::new();
    for seed in seeds {
        let outcome = match Simulation::<T, S>::new(cfg.clone(), seed, open(seed)) {
            Ok(sim) => sim.run(),
            Err(e) => SimOutcome {
                seed,
                violations: vec![format!("seed {seed}: setup failed: {e}")],
                ..SimOutcome::default()
            },
        };
        for v in &outcome.violations {
            eprintln!("sim violation: {v} (replay: PAXSTORE_SIM_SEED={seed})");
        }
        outcomes.push(outcome);
    }
    outcomes
}

/// The one summary line: `sim: seeds=N steps=M violations=V`.
pub fn summary(outcomes: &[SimOutcome]) -> String {
    let steps: usize = outcomes.iter().map(|o| o.steps).sum();
    let violations: usize = outcomes.iter().map(|o| o.violations.len()).sum();
    format!("sim: seeds={} steps={steps} violations={violations}", outcomes.len())
}

/// A second line of totals: what was injected and what was checked.
pub fn stats(outcomes: &[SimOutcome]) -> String {
    let sum = |f: fn(&SimOutcome) -> usize| outcomes.iter().map(f).sum::<usize>();
    format!(
        "  decided={} crashes={} (right before/after a write: {}) partitions={} delivered={} \
         reconfigured_seeds={} progressed_partially_connected={}\n  checked: {}",
        sum(|o| o.decided),
        sum(|o| o.crashes),
        sum(|o| o.timed_crashes),
        sum(|o| o.partitions),
        sum(|o| o.delivered),
        sum(|o| usize::from(o.reconfigured)),
        sum(|o| usize::from(o.progressed_partially_connected)),
        Checker::INVARIANTS.join(", "),
    )
}

/// Seeds from the environment: `PAXSTORE_SIM_SEED=<seed>` replays one; otherwise
/// `PAXSTORE_SIM_SEEDS` seeds (default: `default` times `PAXSTORE_SOAK`, itself default 1)
/// starting at `PAXSTORE_SIM_FIRST_SEED` (default 0).
pub fn seeds_from_env(default: u64) -> Result<Vec<u64>, String> {
    let var = |name: &str| -> Result<Option<u64>, String> {
        match std::env::var(name) {
            Ok(s) => s.parse().map(Some).map_err(|_| format!("{name}={s} is not a number")),
            Err(_) => Ok(None),
        }
    };
    if let Some(seed) = var("PAXSTORE_SIM_SEED")? {
        return Ok(vec![seed]);
    }
    let soak = var("PAXSTORE_SOAK")?.unwrap_or(1).max(1);
    let n = var("PAXSTORE_SIM_SEEDS")?.unwrap_or(default.saturating_mul(soak));
    let first = var("PAXSTORE_SIM_FIRST_SEED")?.unwrap_or(0);
    Ok((first..first.saturating_add(n)).collect())
}
