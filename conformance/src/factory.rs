//! How the suite opens the backend under test.

use std::path::Path;

use paxstore::{Storage, StorageResult};

use crate::TestEntry;

/// Opens the backend under test.
///
/// The design's two-function factory (`create() -> (guard, storage)` and
/// `reopen(&guard, storage) -> storage`) is refined into this one function: the suite
/// owns the guard (a fresh temporary directory per case), `create` is `open` on that empty
/// directory, and `reopen` is dropping the storage and calling `open` on the same
/// directory again. The crash harness needs exactly this to open the store in a child
/// process. A volatile backend ignores `dir`.
pub trait Factory {
    /// The backend under test.
    type Storage: Storage<TestEntry>;

    /// Opens the store kept in `dir`, creating it if `dir` is empty.
    fn open(&self, dir: &Path) -> StorageResult<Self::Storage>;
}

/// A [`Factory`] made from a function or closure; see [`from_fn`].
#[derive(Clone, Copy, Debug)]
pub struct FnFactory<F>(F);

/// Makes a [`Factory`] of `open`, e.g. `from_fn(|dir| MyStore::open(dir))`.
pub fn from_fn<S, F>(open: F) -> FnFactory<F>
where
    S: Storage<TestEntry>,
    F: Fn(&Path) -> StorageResult<S>,
{
    FnFactory(open)
}

impl<S, F> Factory for FnFactory<F>
where
    S: Storage<TestEntry>,
    F: Fn(&Path) -> StorageResult<S>,
{
    type Storage = S;

    fn open(&self, dir: &Path) -> StorageResult<S> {
        (self.0)(dir)
    }
}
