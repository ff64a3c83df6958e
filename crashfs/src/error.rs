//! The crate's error type.

use std::io;
use std::path::{Path, PathBuf};

/// What went wrong mounting, cutting or controlling a crash filesystem.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// FUSE cannot be mounted here; says why (not Linux, not root, no `/dev/fuse`, ...).
    #[error("the crash filesystem cannot run here: {0}")]
    Unavailable(String),
    /// A system call failed.
    #[error("{what}: {source}")]
    Io {
        /// What was being done, naming the path.
        what: String,
        /// The system's error.
        #[source]
        source: io::Error,
    },
    /// A request that makes no sense (a bad pattern, a bad path, a bad command).
    #[error("{0}")]
    Invalid(String),
    /// The backing directory holds something the filesystem does not model.
    #[error("{}: {what} cannot be served by the crash filesystem", path.display())]
    Unsupported {
        /// Where.
        path: PathBuf,
        /// What it is.
        what: String,
    },
    /// A live crash filesystem is already mounted there.
    #[error("{} already has a live crash filesystem mounted", .0.display())]
    AlreadyMounted(PathBuf),
    /// The filesystem's own bookkeeping contradicts itself (a bug: please report).
    #[error("the crash filesystem's bookkeeping is inconsistent: {detail}")]
    Inconsistent {
        /// What contradicts what.
        detail: String,
    },
}

impl Error {
    /// An I/O error while doing `what` to `path`.
    pub(crate) fn io(what: &str, path: &Path, source: io::Error) -> Error {
        Error::Io { what: format!("{what} {}", path.display()), source }
    }
}
