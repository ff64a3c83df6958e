//! The cases of the suite, each a function generic over the [`Factory`].
//! [`storage_suite!`](crate::storage_suite) turns each into a named `#[test]`; they can
//! also be called directly.

mod atomicity;
mod errors;
mod flush;
mod limits;
pub(crate) mod ops;
mod pinned;
mod power;
mod random;
mod reopen;
mod sizes;
mod stopsign;
mod widths;

pub use atomicity::*;
pub use errors::*;
pub use flush::*;
pub use limits::*;
pub use ops::*;
pub use pinned::*;
pub use power::*;
pub use random::*;
pub use reopen::*;
pub use sizes::*;
pub use stopsign::*;
pub use widths::*;

use crate::crash::{self, CrashConfig};
use crate::Factory;

/// SIGKILL a writer at random moments, `PAXSTORE_CRASH_ITERATIONS` times (default 30),
/// twice per directory: every acknowledged batch survives, no batch is torn.
/// `test_path` is `module_path!()::<this test's name>`, so the harness can re-run the
/// test binary as the child.
pub fn crash_sigkill_keeps_acknowledged_batches<F: Factory>(factory: &F, test_path: &str) {
    match crash::run(factory, test_path, &CrashConfig::from_env()) {
        Ok(report) => eprintln!("{report}"),
        Err(err) => panic!("{err}"),
    }
}
