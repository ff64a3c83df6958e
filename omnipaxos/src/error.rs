//! The error [`OmniStorage`](crate::OmniStorage) returns to OmniPaxos (boxed, as OmniPaxos'
//! `StorageResult` wants).

use paxstore::StorageError;

/// Why an OmniPaxos storage call on a paxstore backend failed. Nothing was written.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum OmniStorageError {
    /// The paxstore backend refused the (normalised) batch or failed. An
    /// [`StorageError::InvalidOp`] names the position of the op **in the batch OmniPaxos
    /// sent**, not in the normalised one.
    #[error("paxstore backend: {0}")]
    Storage(#[from] StorageError),
    /// A flexible quorum size does not fit paxstore's `u32`.
    #[error("flexible quorum {field} = {value} does not fit in paxstore's u32")]
    QuorumTooLarge {
        /// `"read_quorum_size"` or `"write_quorum_size"`.
        field: &'static str,
        /// The size given.
        value: usize,
    },
}

impl OmniStorageError {
    /// The paxstore error, if this is one.
    pub fn storage_error(&self) -> Option<&StorageError> {
        match self {
            OmniStorageError::Storage(err) => Some(err),
            OmniStorageError::QuorumTooLarge { .. } => None,
        }
    }
}
