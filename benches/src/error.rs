//! The one error type of the harness and the report tools.

use std::io;
use std::path::PathBuf;

use paxstore::StorageError;

/// Why a benchmark cell or a report step failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum BenchError {
    /// A backend returned an error.
    #[error("{backend}: {source}")]
    Storage {
        /// The backend's name.
        backend: String,
        /// What it returned.
        #[source]
        source: StorageError,
    },
    /// The operating system refused a file operation of the harness itself.
    #[error("I/O error while {context} ({path}): {source}")]
    Io {
        /// What the harness was doing.
        context: &'static str,
        /// The path involved.
        path: PathBuf,
        /// The OS error.
        #[source]
        source: io::Error,
    },
    /// A backend answered, but not what the workload wrote.
    #[error("{backend}: {detail}")]
    WrongAnswer {
        /// The backend's name.
        backend: String,
        /// What was expected and what came back.
        detail: String,
    },
    /// The replicated cluster failed or stopped making progress.
    #[error("replica cluster over {backend}: {detail}")]
    Cluster {
        /// The backend's name.
        backend: String,
        /// What went wrong.
        detail: String,
    },
    /// A chart could not be drawn.
    #[error("drawing chart {name}: {detail}")]
    Chart {
        /// The chart's file name.
        name: String,
        /// The plotting library's message.
        detail: String,
    },
    /// A report file could not be encoded or decoded.
    #[error("report JSON {path}: {source}")]
    Json {
        /// The file.
        path: PathBuf,
        /// The parser's message.
        #[source]
        source: serde_json::Error,
    },
}

impl BenchError {
    /// Wraps a storage error with the backend's name.
    pub fn storage(backend: &str) -> impl FnOnce(StorageError) -> BenchError + '_ {
        move |source| BenchError::Storage { backend: backend.to_owned(), source }
    }

    /// Wraps an I/O error with what was being done and where.
    pub fn io(
        context: &'static str,
        path: &std::path::Path,
    ) -> impl FnOnce(io::Error) -> BenchError {
        let path = path.to_path_buf();
        move |source| BenchError::Io { context, path, source }
    }
}
