//! Reads: entries through the index and the segments' read-only maps.

use paxstore::{StorageError, StorageResult};

use super::index::Piece;
use super::segment::Segment;
use super::WalStorage;
use crate::codec::{decode, PersistentEntry};

impl<T: PersistentEntry> WalStorage<T> {
    /// The entries at absolute indices `[from, to)`, which the caller checked are in the
    /// log: clones of the recently written ones if it holds them all, else decoded. The segment is looked up once per run of entries it holds, and a segment taken
    /// from its seal is verified before its first entry is returned.
    pub(super) fn read_range(&self, from: usize, to: usize) -> StorageResult<Vec<T>> {
        if let Some(entries) = self.recent.get(from, to) {
            return Ok(entries);
        }
        let mut out = Vec::with_capacity(to - from);
        let compacted = self.meta.compacted;
        for piece in self.index.pieces(from - compacted, to - compacted) {
            match piece {
                Piece::Run { seq, offsets } => {
                    let seg = self.live_segment(seq, from + out.len())?;
                    for offset in offsets.chunks_exact(4) {
                        let offset =
                            u32::from_le_bytes([offset[0], offset[1], offset[2], offset[3]]);
                        out.push(read_entry(seg, offset as usize, from + out.len())?);
                    }
                }
                Piece::Tail(locs) => {
                    let mut seg: Option<&Segment> = None;
                    for &loc in locs {
                        let seg = match seg {
                            Some(seg) if seg.seq == loc >> 32 => seg,
                            _ => seg.insert(self.live_segment(loc >> 32, from + out.len())?),
                        };
                        let offset = (loc & u64::from(u32::MAX)) as usize;
                        out.push(read_entry(seg, offset, from + out.len())?);
                    }
                }
            }
        }
        Ok(out)
    }

    /// Segment `seq`, which holds entry `i`, verified if it was taken from its seal.
    fn live_segment(&self, seq: u64, i: usize) -> StorageResult<&Segment> {
        let first = self.segments[0].seq;
        let seg = seq.checked_sub(first).and_then(|k| self.segments.get(k as usize)).ok_or_else(
            || StorageError::Corruption {
                location: format!("entry {i}"),
                detail: format!("indexed in segment {seq}, which is not live"),
            },
        )?;
        seg.check_sealed()?;
        Ok(seg)
    }
}

/// Decodes entry `i`, whose `u32` length is at `offset` in `seg`.
#[inline(always)]
fn read_entry<T: PersistentEntry>(seg: &Segment, offset: usize, i: usize) -> StorageResult<T> {
    match framed_at(seg.bytes(), offset) {
        Some(entry) => decode("entry", entry),
        None => Err(past_the_end(seg, offset, i)),
    }
}

/// The bytes of the value framed at `offset`: a `u32` length, then that many bytes.
#[inline]
fn framed_at(bytes: &[u8], offset: usize) -> Option<&[u8]> {
    let rest = bytes.get(offset..)?;
    let (len, rest) = rest.split_first_chunk::<4>()?;
    rest.get(..u32::from_le_bytes(*len) as usize)
}

/// The error for entry `i`, whose length at `offset` runs past the end of `seg`.
#[cold]
fn past_the_end(seg: &Segment, offset: usize, i: usize) -> StorageError {
    StorageError::Corruption {
        location: format!("segment {} offset {offset}", seg.name()),
        detail: format!("entry {i} runs past the end of the segment"),
    }
}

#[cfg(test)]
mod tests {
    use super::framed_at;

    /// Every way a length or an offset can point past the end is refused, and a value
    /// that ends exactly at the end is read.
    #[test]
    fn framed_values_never_run_past_the_end() {
        let bytes = [3, 0, 0, 0, 7, 8, 9, 2, 0, 0, 0, 5];
        assert_eq!(framed_at(&bytes, 0), Some(&[7, 8, 9][..]));
        assert_eq!(framed_at(&bytes, 7), None, "length 2 with 1 byte left");
        assert_eq!(framed_at(&bytes, 9), None, "no room for the length");
        assert_eq!(framed_at(&bytes, 12), None, "at the end");
        assert_eq!(framed_at(&bytes, usize::MAX), None, "far past the end");
        assert_eq!(framed_at(&bytes[..11], 7), None, "length 2 with nothing left");
        assert_eq!(framed_at(&[0, 0, 0, 0], 0), Some(&[][..]), "an empty value");
    }
}
