//! `FileStore`: a complete, deliberately simple persistent paxstore backend.
//!
//! The whole state lives in one file, encoded with postcard. Every `write_atomically`
//! validates the batch with `LogBounds::validate_batch`, applies the `BatchPlan` it
//! returns (the batch's net effect) to a copy of the state, writes the copy to
//! `state.bin.tmp`, fsyncs it, renames it over `state.bin` and fsyncs the directory, and
//! only then replaces the in-memory state. A crash at any point leaves either the old
//! file or the new one: the batch is all or nothing, and `Ok` means it survives power
//! loss.
//!
//! It costs O(state) per write, so it is an example of the contract, not a fast engine.

use std::fs::{self, File};
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use paxstore::{
    Ballot, BatchPlan, BatchValues, Entry, LogBounds, StopSign, Storage, StorageError, StorageOp,
    StorageResult,
};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

const STATE_FILE: &str = "state.bin";
const TEMP_FILE: &str = "state.bin.tmp";

/// Everything the contract stores, as it is written to disk.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(bound(
    serialize = "T: Serialize, S: Serialize",
    deserialize = "T: DeserializeOwned, S: DeserializeOwned"
))]
struct State<T, S> {
    /// Tells a `FileStore` file from any other file.
    format: String,
    /// The entries at `[compacted_idx, compacted_idx + log.len())`.
    log: Vec<T>,
    compacted_idx: u64,
    decided_idx: u64,
    promise: Option<Ballot>,
    accepted_round: Option<Ballot>,
    stopsign: Option<StopSign>,
    snapshot: Option<S>,
}

const FORMAT: &str = "custom-backend FileStore v1";

/// A persistent `Storage` keeping its whole state in `<dir>/state.bin`.
pub struct FileStore<T: Entry> {
    dir: PathBuf,
    state: State<T, T::Snapshot>,
}

fn io_err(context: String) -> impl FnOnce(io::Error) -> StorageError {
    move |source| StorageError::io(context, source)
}

fn index(value: u64) -> StorageResult<usize> {
    usize::try_from(value)
        .map_err(|_| StorageError::codec("index", format!("{value} does not fit in usize")))
}

impl<T> FileStore<T>
where
    T: Entry + Serialize + DeserializeOwned,
    T::Snapshot: Serialize + DeserializeOwned,
{
    /// Opens the store in `dir`, creating the directory and an empty store if needed.
    pub fn open(dir: &Path) -> StorageResult<Self> {
        fs::create_dir_all(dir).map_err(io_err(format!("creating {}", dir.display())))?;
        let path = dir.join(STATE_FILE);
        let state = match fs::read(&path) {
            Ok(bytes) => {
                let state: State<T, T::Snapshot> =
                    postcard::from_bytes(&bytes).map_err(|e| StorageError::Unrecognized {
                        path: path.clone(),
                        backend: "custom-backend",
                        detail: e.to_string(),
                    })?;
                if state.format != FORMAT {
                    return Err(StorageError::Unrecognized {
                        path,
                        backend: "custom-backend",
                        detail: format!("format {:?}", state.format),
                    });
                }
                state
            }
            Err(err) if err.kind() == io::ErrorKind::NotFound => State {
                format: FORMAT.to_owned(),
                log: Vec::new(),
                compacted_idx: 0,
                decided_idx: 0,
                promise: None,
                accepted_round: None,
                stopsign: None,
                snapshot: None,
            },
            Err(err) => return Err(StorageError::io(format!("reading {}", path.display()), err)),
        };
        Ok(FileStore { dir: dir.to_owned(), state })
    }

    fn bounds(&self) -> StorageResult<LogBounds> {
        let compacted_idx = index(self.state.compacted_idx)?;
        Ok(LogBounds {
            compacted_idx,
            log_end: compacted_idx + self.state.log.len(),
            decided_idx: index(self.state.decided_idx)?,
            has_stopsign: self.state.stopsign.is_some(),
        })
    }

    /// Writes `state` durably: temp file, fsync, rename, fsync of the directory.
    fn persist(&self, state: &State<T, T::Snapshot>) -> StorageResult<()> {
        let bytes = postcard::to_stdvec(state).map_err(|e| StorageError::codec("state", e))?;
        let temp = self.dir.join(TEMP_FILE);
        let mut file =
            File::create(&temp).map_err(io_err(format!("creating {}", temp.display())))?;
        file.write_all(&bytes).map_err(io_err(format!("writing {}", temp.display())))?;
        file.sync_all().map_err(io_err(format!("syncing {}", temp.display())))?;
        fs::rename(&temp, self.dir.join(STATE_FILE))
            .map_err(io_err(format!("renaming {}", temp.display())))?;
        File::open(&self.dir)
            .and_then(|d| d.sync_all())
            .map_err(io_err(format!("syncing directory {}", self.dir.display())))
    }
}

/// Applies to `state` the plan `LogBounds::validate_batch` returned for it, with the
/// values of its batch: what the batch means was decided there, once; this only moves
/// the values in.
fn apply<T: Entry>(state: &mut State<T, T::Snapshot>, plan: &BatchPlan, values: BatchValues<T>) {
    let compacted = plan.before.compacted_idx;
    let kept = plan.kept();
    state.log.truncate(kept.end - compacted);
    state.log.drain(..kept.start - compacted);
    state.log.extend(values.entries);
    state.compacted_idx = plan.after.compacted_idx as u64;
    state.decided_idx = plan.after.decided_idx as u64;
    state.promise = plan.promise.or(state.promise);
    state.accepted_round = plan.accepted_round.or(state.accepted_round);
    if let Some(stopsign) = values.stopsign {
        state.stopsign = stopsign;
    }
    if let Some(snapshot) = values.snapshot {
        state.snapshot = snapshot;
    }
}

impl<T> Storage<T> for FileStore<T>
where
    T: Entry + Serialize + DeserializeOwned,
    T::Snapshot: Serialize + DeserializeOwned,
{
    fn write_atomically(&mut self, ops: Vec<StorageOp<T>>) -> StorageResult<()> {
        let plan = self.bounds()?.validate_batch(&ops)?;
        let mut next = self.state.clone();
        apply(&mut next, &plan, plan.into_values(ops));
        self.persist(&next)?;
        self.state = next;
        Ok(())
    }

    fn get_entries(&self, from: usize, to: usize) -> StorageResult<Vec<T>> {
        let bounds = self.bounds()?;
        bounds.check_range("get_entries", from, to)?;
        let c = bounds.compacted_idx;
        Ok(self.state.log[from - c..to - c].to_vec())
    }

    fn get_log_len(&self) -> StorageResult<usize> {
        Ok(self.state.log.len())
    }

    fn get_decided_idx(&self) -> StorageResult<usize> {
        index(self.state.decided_idx)
    }

    fn get_promise(&self) -> StorageResult<Option<Ballot>> {
        Ok(self.state.promise)
    }

    fn get_accepted_round(&self) -> StorageResult<Option<Ballot>> {
        Ok(self.state.accepted_round)
    }

    fn get_compacted_idx(&self) -> StorageResult<usize> {
        index(self.state.compacted_idx)
    }

    fn get_stopsign(&self) -> StorageResult<Option<StopSign>> {
        Ok(self.state.stopsign.clone())
    }

    fn get_snapshot(&self) -> StorageResult<Option<T::Snapshot>> {
        Ok(self.state.snapshot.clone())
    }
}
