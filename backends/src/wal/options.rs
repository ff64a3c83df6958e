//! [`WalOptions`]: how a WAL is opened (durability, segment sizes, verification), and
//! the record-size limits that follow from them.

use paxstore::{Durability, StorageError, StorageResult};

use super::format::{
    DEFAULT_SEGMENT_BYTES, MAX_SEGMENT_BYTES, MIN_SEGMENT_BYTES, RECORD_ALIGN, SEGMENT_HEADER_BYTES,
};

/// How a [`WalStorage`](super::WalStorage) is opened.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct WalOptions {
    /// When a successful write is durable.
    pub durability: Durability,
    /// The size of new segment files, a multiple of 8 in
    /// \[[`MIN_SEGMENT_BYTES`], `max_segment_bytes`\]. Existing segments keep their
    /// size. The active segment is the one `open` replays record by record after a crash
    /// (a clean close seals it, see `seal_on_close`), so this bounds the cost of such a
    /// reopen (FORMAT.md, "Seals").
    pub segment_bytes: u64,
    /// The largest segment the WAL makes, for a batch or checkpoint that does not fit a
    /// segment of `segment_bytes` (it then gets a segment of its own size); a multiple of
    /// 8 in \[`segment_bytes`, [`MAX_SEGMENT_BYTES`]\]. A batch record may take
    /// 3/4 of it, a checkpoint (stop sign and snapshot) 1/4; larger input is refused with
    /// [`StorageError::TooLarge`].
    pub max_segment_bytes: u64,
    /// Whether `open` also verifies every record of the sealed segments (see FORMAT.md,
    /// "Seals"), instead of each one before its first entry is read. Default `false`.
    pub verify_on_open: bool,
    /// With [`Durability::Immediate`]: whether zeros are written ahead of the tail of a
    /// segment used for the first time (FORMAT.md, "Segment file"), so that almost every
    /// synced record lands on blocks already allocated and written and its `fdatasync`
    /// needs no extent change. Default `true`. The cost: every byte of a new segment is
    /// written twice (zeros, then records); recycled segments get no zeros either way.
    /// `false` halves the bytes a log that is never trimmed writes, at the price of an
    /// extent change (a filesystem journal commit on ext4) in many syncs. Recovery does
    /// not depend on it.
    pub zero_ahead: bool,
    /// With [`Durability::Immediate`]: whether closing the WAL (drop, or
    /// [`WalStorage::close`](super::WalStorage::close)) seals the active segment when its
    /// records take at least an eighth of it, so the next `open` replays one record instead
    /// of the active segment's (FORMAT.md, "Seals"). Default `true`. The cost: the rest of
    /// that segment stays unused until a trim frees it, so each close may leave up to
    /// seven eighths of a segment unused.
    pub seal_on_close: bool,
    /// How many bytes (encoded size) of the most recently written entries the WAL keeps
    /// in memory as written, so reads of the log's tail clone them instead of decoding
    /// them from the map. Default 4 MiB; 0 keeps none. Entries written before the last
    /// `open` are always decoded.
    pub recent_bytes: usize,
}

impl WalOptions {
    /// Default options with the given durability.
    pub fn new(durability: Durability) -> Self {
        WalOptions {
            durability,
            segment_bytes: DEFAULT_SEGMENT_BYTES,
            max_segment_bytes: MAX_SEGMENT_BYTES,
            verify_on_open: false,
            zero_ahead: true,
            seal_on_close: true,
            recent_bytes: 4 << 20,
        }
    }

    /// Sets the size of new segment files.
    pub fn segment_bytes(mut self, bytes: u64) -> Self {
        self.segment_bytes = bytes;
        self
    }

    /// Sets the largest segment the WAL makes (and so the record size limits).
    pub fn max_segment_bytes(mut self, bytes: u64) -> Self {
        self.max_segment_bytes = bytes;
        self
    }

    /// Sets whether `open` verifies every record of the sealed segments up front.
    pub fn verify_on_open(mut self, verify: bool) -> Self {
        self.verify_on_open = verify;
        self
    }

    /// Sets whether zeros are written ahead of the tail of new segments (`Immediate`).
    pub fn zero_ahead(mut self, zero_ahead: bool) -> Self {
        self.zero_ahead = zero_ahead;
        self
    }

    /// Sets whether closing the WAL seals the active segment (`Immediate`).
    pub fn seal_on_close(mut self, seal: bool) -> Self {
        self.seal_on_close = seal;
        self
    }

    /// Sets how many bytes of recently written entries are kept in memory for reads.
    pub fn recent_bytes(mut self, bytes: usize) -> Self {
        self.recent_bytes = bytes;
        self
    }

    pub(super) fn validate(&self) -> StorageResult<()> {
        let (b, max) = (self.segment_bytes, self.max_segment_bytes);
        let aligned = |n: u64| n.is_multiple_of(RECORD_ALIGN as u64);
        if !(MIN_SEGMENT_BYTES..=max).contains(&b)
            || max > MAX_SEGMENT_BYTES
            || !aligned(b)
            || !aligned(max)
        {
            return Err(StorageError::InvalidConfig {
                backend: "wal",
                detail: format!(
                    "segment size {b} and largest segment size {max} must be multiples of {RECORD_ALIGN} with {MIN_SEGMENT_BYTES} <= {b} <= {max} <= {MAX_SEGMENT_BYTES}"
                ),
            });
        }
        Ok(())
    }

    /// The most bytes a batch record may take: 3/4 of the largest segment's record space.
    pub fn max_batch_record_bytes(&self) -> u64 {
        (self.max_segment_bytes - SEGMENT_HEADER_BYTES as u64) / 4 * 3
    }

    /// The most bytes a checkpoint record (mostly stop sign and snapshot) may take: 1/4 of
    /// the largest segment's record space.
    pub fn max_checkpoint_record_bytes(&self) -> u64 {
        (self.max_segment_bytes - SEGMENT_HEADER_BYTES as u64) / 4
    }
}

impl Default for WalOptions {
    fn default() -> Self {
        WalOptions::new(Durability::Immediate)
    }
}
