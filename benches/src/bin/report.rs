//! `report`: runs the fixed benchmark matrix over the compiled-in backends and writes
//! `report.json`, `report.md`, `index.html` and `charts/*.svg`.
//!
//! ```text
//! cargo run --release -p paxstore-benches --bin report -- [--quick] [--backends a,b] [--out DIR]
//! ```

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Parser;
use paxstore_backends::BackendKind;
use paxstore_benches::report::missing;
use paxstore_benches::runner::{self, Matrix, RunOptions};

/// Compare paxstore's backends on the same workloads, beside the disk's own ceiling.
#[derive(Debug, Parser)]
#[command(version)]
struct Args {
    /// Run the short matrix (under 3 minutes; what CI runs).
    #[arg(long)]
    quick: bool,
    /// Backends to measure, comma-separated (default: every compiled-in backend).
    #[arg(long, value_delimiter = ',')]
    backends: Option<Vec<BackendKind>>,
    /// Output directory; the backends write in DIR/work, so put it on the disk to test.
    #[arg(long, default_value = concat!(env!("CARGO_MANIFEST_DIR"), "/report-out"))]
    out: PathBuf,
}

fn main() -> ExitCode {
    let args = Args::parse();
    let backends = args.backends.clone().unwrap_or_else(BackendKind::compiled_in);
    let opts = RunOptions {
        matrix: if args.quick { Matrix::quick() } else { Matrix::full() },
        quick: args.quick,
        backends,
        out: args.out.clone(),
        command: std::env::args().collect::<Vec<_>>().join(" "),
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
