//! What a log holds: entries, and the snapshots that can replace a prefix of them.

use std::fmt::Debug;

use serde::{Deserialize, Serialize};

/// An entry of the replicated log.
pub trait Entry: Clone + Debug + Send + 'static {
    /// The snapshot type that can stand in for a compacted prefix of entries.
    /// Use [`NoSnapshot`] when the application does not snapshot.
    type Snapshot: Snapshot<Self>;
}

/// A compact stand-in for a prefix of the log.
pub trait Snapshot<T: Entry>: Clone + Debug + Send + 'static {
    /// The snapshot of `entries`, in order.
    fn create(entries: &[T]) -> Self;
    /// Folds a later snapshot (`delta`, covering the entries after `self`) into `self`.
    fn merge(&mut self, delta: Self);
    /// `false` if this type is a placeholder and the replica must never snapshot.
    fn use_snapshots() -> bool;
}

/// The snapshot type of applications that do not snapshot.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct NoSnapshot;

impl<T: Entry> Snapshot<T> for NoSnapshot {
    fn create(_entries: &[T]) -> Self {
        NoSnapshot
    }

    fn merge(&mut self, _delta: Self) {}

    fn use_snapshots() -> bool {
        false
    }
}
