//! Filesystem steps the engine backends (RocksDB, sled, redb) share: looking at a store
//! directory before the engine touches it, and syncing paths.

use std::fs;
use std::path::Path;

use paxstore::{StorageError, StorageResult};

/// Whether a directory is ready for a new store or holds one.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum DirState {
    Fresh,
    Existing,
}

/// `StorageError::Unrecognized` for `backend` at `path`.
pub(crate) fn unrecognized(
    path: &Path,
    backend: &'static str,
    detail: impl Into<String>,
) -> StorageError {
    StorageError::Unrecognized { path: path.to_owned(), backend, detail: detail.into() }
}

/// The names in store directory `path`, creating it (and returning `None`) if it is
/// absent; a path that is not a directory is `Unrecognized`.
pub(crate) fn list_store_dir(
    path: &Path,
    backend: &'static str,
) -> StorageResult<Option<Vec<String>>> {
    match fs::metadata(path) {
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => {
            fs::create_dir_all(path).map_err(|e| {
                StorageError::io(format!("creating directory {}", path.display()), e)
            })?;
            return Ok(None);
        }
        Err(err) => {
            return Err(StorageError::io(format!("reading metadata of {}", path.display()), err))
        }
        Ok(meta) if !meta.is_dir() => {
            return Err(unrecognized(
                path,
                backend,
                "a regular file or other non-directory, not a directory",
            ))
        }
        Ok(_) => {}
    }
    let listing = |e| StorageError::io(format!("listing directory {}", path.display()), e);
    let mut names = Vec::new();
    for entry in fs::read_dir(path).map_err(listing)? {
        names.push(entry.map_err(listing)?.file_name().to_string_lossy().into_owned());
    }
    Ok(Some(names))
}

/// `Unrecognized`: a non-empty directory without `missing`, naming a few of its files.
pub(crate) fn foreign_dir(
    path: &Path,
    backend: &'static str,
    missing: &str,
    mut names: Vec<String>,
) -> StorageError {
    names.sort();
    names.truncate(5);
    unrecognized(
        path,
        backend,
        format!("a non-empty directory without {missing} (holds {})", names.join(", ")),
    )
}

/// fsyncs a file or directory, naming it in the error.
pub(crate) fn sync_path(path: &Path) -> StorageResult<()> {
    fs::File::open(path)
        .and_then(|f| f.sync_all())
        .map_err(|e| StorageError::io(format!("syncing {}", path.display()), e))
}
