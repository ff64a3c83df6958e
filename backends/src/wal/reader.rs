//! Reads: entries through the index and the segments' read-only maps.

use paxstore::{StorageError, StorageResult};

use super::format::u32_at;
use super::segment::Segment;
use super::WalStorage;
use crate::codec::{decode, PersistentEntry};

impl<T: PersistentEntry> WalStorage<T> {
    /// The entries at absolute indices `[from, to)`, which the caller checked are in the
    /// log. The segment is looked up once per run of entries it holds, and a segment taken
    /// from its seal is verified before its first entry is returned.
    pub(super) fn read_range(&self, from: usize, to: usize) -> StorageResult<Vec<T>> {
        let mut out = Vec::with_capacity(to - from);
        let first = self.segments[0].seq;
        let mut current: Option<&Segment> = None;
        let locs = self.index.range(from - self.meta.compacted, to - self.meta.compacted);
        for (i, loc) in (from..).zip(locs) {
            let seq = loc >> 32;
            let seg = match current {
                Some(seg) if seg.seq == seq => seg,
                _ => {
                    let seg = seq
                        .checked_sub(first)
                        .and_then(|k| self.segments.get(k as usize))
                        .ok_or_else(|| StorageError::Corruption {
                            location: format!("entry {i}"),
                            detail: format!("indexed in segment {seq}, which is not live"),
                        })?;
                    seg.check_sealed()?;
                    current = Some(seg);
                    seg
                }
            };
            let offset = (loc & u64::from(u32::MAX)) as usize;
            let bytes = seg.bytes();
            let entry = bytes
                .get(offset..offset + 4)
                .map(|b| u32_at(b, 0) as usize)
                .and_then(|len| bytes.get(offset + 4..offset + 4 + len))
                .ok_or_else(|| StorageError::Corruption {
                    location: format!("segment {} offset {offset}", seg.name()),
                    detail: format!("entry {i} runs past the end of the segment"),
                })?;
            out.push(decode("entry", entry)?);
        }
        Ok(out)
    }
}
