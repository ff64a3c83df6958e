//! Filesystem steps the engine adapters share: looking at a store directory before the
//! engine touches it, and syncing paths.

// Helpers shared by the engines: with only some engines built, the others' are unused.
#![cfg_attr(
    not(all(
        feature = "fjall",
        feature = "raft-engine",
        feature = "redb",
        feature = "rocksdb",
        feature = "sled"
    )),
    allow(dead_code)
)]

use std::collections::HashSet;
use std::ffi::OsString;
use std::fs;
use std::path::Path;

use paxstore::{StorageError, StorageResult};

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
fn list_store_dir(path: &Path, backend: &'static str) -> StorageResult<Option<Vec<String>>> {
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

/// The names in store directory `path` if it holds any; `None` if it is empty or absent
/// (then it is created): a new store goes there.
pub(crate) fn store_dir_names(
    path: &Path,
    backend: &'static str,
) -> StorageResult<Option<Vec<String>>> {
    Ok(list_store_dir(path, backend)?.filter(|names| !names.is_empty()))
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

/// fsyncs a just-created store directory and its parent, so the directory's entries and
/// its own entry in the parent are durable.
pub(crate) fn sync_new_dir(path: &Path) -> StorageResult<()> {
    sync_path(path)?;
    match path.parent().filter(|p| !p.as_os_str().is_empty()) {
        Some(parent) => sync_path(parent),
        None => Ok(()),
    }
}

/// Writes and syncs marker file `name` holding `content` in `dir`, for an engine that
/// cannot tell its own files from foreign ones before it rewrites them.
pub(crate) fn write_marker_file(dir: &Path, name: &str, content: &[u8]) -> StorageResult<()> {
    let path = dir.join(name);
    fs::File::create(&path)
        .and_then(|mut f| {
            std::io::Write::write_all(&mut f, content)?;
            f.sync_all()
        })
        .map_err(|e| StorageError::io(format!("writing {}", path.display()), e))
}

/// Checks that marker file `name` in `dir` holds `content`; anything else is
/// `Unrecognized`.
pub(crate) fn check_marker_file(
    dir: &Path,
    backend: &'static str,
    name: &str,
    content: &[u8],
) -> StorageResult<()> {
    let path = dir.join(name);
    let found =
        fs::read(&path).map_err(|e| StorageError::io(format!("reading {}", path.display()), e))?;
    if found == content {
        return Ok(());
    }
    let shown = String::from_utf8_lossy(&found[..found.len().min(64)]);
    let expected = String::from_utf8_lossy(content);
    Err(unrecognized(dir, backend, format!("{name} holds {shown:?}, expected {expected:?}")))
}

/// fsyncs every file in `dir` whose name is not in `synced`, then `dir` if there was any,
/// and adds their names to `synced` (which is cleared past 1,024 names, so names of files
/// removed since do not pile up; a file is then at worst synced again).
pub(crate) fn sync_new_files(dir: &Path, synced: &mut HashSet<OsString>) -> StorageResult<()> {
    let listing = |e| StorageError::io(format!("listing {}", dir.display()), e);
    let mut new_files = Vec::new();
    for entry in fs::read_dir(dir).map_err(listing)? {
        let entry = entry.map_err(listing)?;
        if !synced.contains(&entry.file_name()) {
            sync_path(&entry.path())?;
            new_files.push(entry.file_name());
        }
    }
    if !new_files.is_empty() {
        sync_path(dir)?;
        if synced.len() > 1024 {
            synced.clear();
        }
        synced.extend(new_files);
    }
    Ok(())
}
