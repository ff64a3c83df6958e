//! `check-report FILE`: checks that a `report.json` parses and has every row this build
//! should have produced: storage rows for every op and durability of every compiled-in
//! backend, a reopen row for each persistent one, replica rows of both replicas
//! (paxstore's and OmniPaxos 0.2.4) over every backend and of OmniPaxos over its own
//! `MemoryStorage` when the cluster is built, TCP cluster rows for every backend and
//! client count, and a positive ceiling. Lists what is missing and exits non-zero if
//! anything is.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Parser;
use paxstore_backends::BackendKind;
use paxstore_benches::report::{missing, Report};

/// Check a report.json for completeness.
#[derive(Debug, Parser)]
struct Args {
    /// The report.json to check.
    file: PathBuf,
    /// Backends that must be present (default: every compiled-in backend).
    #[arg(long, value_delimiter = ',')]
    backends: Option<Vec<BackendKind>>,
}

fn main() -> ExitCode {
    let args = Args::parse();
    let text = match std::fs::read_to_string(&args.file) {
        Ok(t) => t,
        Err(e) => {
            eprintln!("check-report: cannot read {}: {e}", args.file.display());
            return ExitCode::FAILURE;
        }
    };
    let report: Report = match serde_json::from_str(&text) {
        Ok(r) => r,
        Err(e) => {
            eprintln!("check-report: {} does not parse as a report: {e}", args.file.display());
            return ExitCode::FAILURE;
        }
    };
    let backends = args.backends.unwrap_or_else(BackendKind::compiled_in);
    let expected: Vec<(String, bool)> =
        backends.iter().map(|k| (k.name().to_owned(), k.is_persistent())).collect();
    let lacking = missing(&report, &expected, paxstore_benches::replica::AVAILABLE);
    if lacking.is_empty() {
        println!(
            "check-report: {} is complete: {} storage, {} reopen, {} replica, {} tcp cluster rows for {}; ceiling {:.0} syncs/s",
            args.file.display(),
            report.storage.len(),
            report.reopen.len(),
            report.replica.len(),
            report.tcp_cluster.len(),
            expected.iter().map(|(n, _)| n.as_str()).collect::<Vec<_>>().join(", "),
            report.ceiling.sync_writes_per_s
        );
        ExitCode::SUCCESS
    } else {
        eprintln!("check-report: {} is missing:", args.file.display());
        for line in lacking {
            eprintln!("  - {line}");
        }
        ExitCode::FAILURE
    }
}
