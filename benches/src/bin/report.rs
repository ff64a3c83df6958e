//! `report`: runs the fixed benchmark matrix over the compiled-in backends and writes
//! `report.json`, `report.md`, `index.html` and `charts/*.svg`.
//!
//! ```text
//! cargo run --release -p paxstore-benches --bin report -- [--quick] [--replica-only] [--backends a,b] [--modes m,..] [--batches n,..] [--reps N] [--out DIR]
//! ```

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Parser;
use paxstore_backends::BackendKind;
use paxstore_benches::replica::Mode;
use paxstore_benches::report::{missing, Report};
use paxstore_benches::runner::{self, Matrix, RunOptions};

/// Compare paxstore's backends on the same workloads, beside the disk's own ceiling.
#[derive(Debug, Parser)]
#[command(version)]
struct Args {
    /// Run the short matrix (about 3–4 minutes; what CI runs).
    #[arg(long)]
    quick: bool,
    /// Backends to measure, comma-separated (default: every compiled-in backend).
    #[arg(long, value_delimiter = ',')]
    backends: Option<Vec<BackendKind>>,
    /// Output directory; the backends write in DIR/work, so put it on the disk to test.
    #[arg(long, default_value = concat!(env!("CARGO_MANIFEST_DIR"), "/report-out"))]
    out: PathBuf,
    /// Only the replica cells (paxstore and OmniPaxos) and the disk's ceiling.
    #[arg(long)]
    replica_only: bool,
    /// Replica cells: only these modes, comma-separated (upfront, stream; default: both).
    #[arg(long, value_delimiter = ',')]
    modes: Option<Vec<Mode>>,
    /// Replica cells: only these batch sizes, comma-separated (default: 1,10,100,1000).
    #[arg(long, value_delimiter = ',')]
    batches: Option<Vec<usize>>,
    /// Repetitions of every cell (default: 3, or 2 with --quick). More repetitions make
    /// the paired ratios steadier on a noisy machine.
    #[arg(long, value_parser = clap::value_parser!(u64).range(1..))]
    reps: Option<u64>,
    /// Measure nothing: re-render report.md, index.html and the charts of an existing
    /// report.json into --out (its conclusions are recomputed from its rows).
    #[arg(long, value_name = "REPORT_JSON")]
    render: Option<PathBuf>,
}

/// Re-renders an existing report.json into `out`.
fn render(json: &std::path::Path, out: &std::path::Path) -> ExitCode {
    let report = std::fs::read_to_string(json)
        .map_err(|e| e.to_string())
        .and_then(|text| serde_json::from_str::<Report>(&text).map_err(|e| e.to_string()));
    let mut report = match report {
        Ok(r) => r,
        Err(e) => {
            eprintln!("report: cannot read {}: {e}", json.display());
            return ExitCode::FAILURE;
        }
    };
    report.recommendations = paxstore_benches::report::recommendations(&report);
    match runner::write(&report, out) {
        Ok(files) => {
            for f in files {
                eprintln!("wrote {}", f.display());
            }
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("report: {e}");
            ExitCode::FAILURE
        }
    }
}

fn main() -> ExitCode {
    let args = Args::parse();
    if let Some(json) = &args.render {
        return render(json, &args.out);
    }
    let backends = args.backends.clone().unwrap_or_else(BackendKind::compiled_in);
    let mut matrix = if args.quick { Matrix::quick() } else { Matrix::full() };
    if let Some(modes) = &args.modes {
        matrix.replica_modes.clone_from(modes);
    }
    if let Some(batches) = &args.batches {
        matrix.replica_batches.clone_from(batches);
    }
    if let Some(reps) = args.reps {
        matrix.reps = usize::try_from(reps).unwrap_or(usize::MAX);
    }
    let opts = RunOptions {
        matrix,
        quick: args.quick,
        backends,
        out: args.out.clone(),
        command: std::env::args().collect::<Vec<_>>().join(" "),
        replica_only: args.replica_only,
    };
    let report = match runner::run(&opts) {
        Ok(report) => report,
        Err(e) => {
            eprintln!("report: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runner::write(&report, &args.out) {
        Ok(files) => {
            for f in files {
                eprintln!("wrote {}", f.display());
            }
        }
        Err(e) => {
            eprintln!("report: {e}");
            return ExitCode::FAILURE;
        }
    }
    eprintln!("done in {:.0} s", report.duration_s);
    if report.failures.is_empty() {
        ExitCode::SUCCESS
    } else {
        let expected: Vec<(String, bool)> =
            opts.backends.iter().map(|k| (k.name().to_owned(), k.is_persistent())).collect();
        for line in missing(&report, &expected, paxstore_benches::replica::AVAILABLE) {
            eprintln!("report: {line}");
        }
        ExitCode::FAILURE
    }
}
