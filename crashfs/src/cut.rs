//! A power cut: what it keeps of the unsynced changes ([`PowerCut`]), what it reports
//! ([`CutReport`]), and how one file's surviving changes are chosen and applied. The
//! rewrite of the backing directory is [`crate::rebuild`].

use std::fmt;
use std::fs::File;
use std::io;
use std::os::unix::fs::FileExt;
use std::path::PathBuf;

use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};

use crate::journal::{Change, Journal, BLOCK, SECTOR};

/// What a power cut keeps of the writes that were not made durable.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Unsynced {
    /// Nothing: the disk holds exactly what was synced.
    #[default]
    Lost,
    /// The disk wrote them in issue order and lost power part-way: a seeded number of the
    /// oldest survive whole, the next `torn` are torn (each 512-byte sector of each one
    /// kept or lost), the rest are lost.
    Prefix {
        /// How many writes after the surviving prefix are torn.
        torn: usize,
    },
    /// The disk wrote them in any order: each one survives whole, torn, or not at all.
    Reordered,
    /// What a kernel's write-back can leave: each page (4 KiB) changed since the file's
    /// last fsync is written with its latest content, whole, torn at sectors, or not at
    /// all, in any order; a size change happens or not. The most realistic of the modes
    /// (never a state in which a later write to a sector survives an earlier one that
    /// was lost).
    Pages,
}

/// How to cut the power: what survives of unsynced writes, and the seed of every random
/// choice, so a failing cut replays exactly (its [`fmt::Display`] names both).
///
/// ```
/// use paxstore_crashfs::PowerCut;
/// assert_eq!(PowerCut::seeded(7).to_string(), "power cut (seed 7, unsynced writes lost)");
/// assert_eq!(
///     PowerCut::seeded(7).torn_prefix(2).to_string(),
///     "power cut (seed 7, unsynced writes: an in-order prefix kept, then 2 torn)"
/// );
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct PowerCut {
    /// Seeds every random choice of the cut.
    pub seed: u64,
    /// What survives of the writes not yet durable.
    pub unsynced: Unsynced,
}

impl PowerCut {
    /// A cut that loses every unsynced write (the seed is unused but reported).
    pub fn seeded(seed: u64) -> PowerCut {
        PowerCut { seed, unsynced: Unsynced::Lost }
    }

    /// Keep a seeded prefix of the unsynced writes, tearing the `torn` after it.
    pub fn torn_prefix(mut self, torn: usize) -> PowerCut {
        self.unsynced = Unsynced::Prefix { torn };
        self
    }

    /// Keep, tear or lose each unsynced write independently.
    pub fn reordered(mut self) -> PowerCut {
        self.unsynced = Unsynced::Reordered;
        self
    }

    /// Write back, tear or lose each changed page independently, with its latest content.
    pub fn pages(mut self) -> PowerCut {
        self.unsynced = Unsynced::Pages;
        self
    }
}

impl fmt::Display for PowerCut {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "power cut (seed {}, ", self.seed)?;
        match self.unsynced {
            Unsynced::Lost => write!(f, "unsynced writes lost)"),
            Unsynced::Prefix { torn } => {
                write!(f, "unsynced writes: an in-order prefix kept, then {torn} torn)")
            }
            Unsynced::Reordered => write!(f, "unsynced writes kept, torn or lost in any order)"),
            Unsynced::Pages => write!(f, "changed pages written back, torn or lost in any order)"),
        }
    }
}

/// What a power cut did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct CutReport {
    /// The cut, with its seed.
    pub cut: PowerCut,
    /// Unsynced changes (writes, size changes) of files that survive the cut.
    pub unsynced: usize,
    /// Of those, kept whole.
    pub kept: usize,
    /// Of those, torn at sector granularity.
    pub torn: usize,
    /// Live paths that the cut removed (their directory entry was not durable).
    pub lost_paths: Vec<PathBuf>,
    /// Paths that the cut brought back (removed or renamed away, but not durably).
    pub restored_paths: Vec<PathBuf>,
    /// Files whose content or length the cut changed.
    pub reverted_files: Vec<PathBuf>,
}

impl fmt::Display for CutReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}: {} unsynced changes ({} kept, {} torn), {} paths lost, {} restored, {} files reverted",
            self.cut,
            self.unsynced,
            self.kept,
            self.torn,
            self.lost_paths.len(),
            self.restored_paths.len(),
            self.reverted_files.len()
        )
    }
}

/// What happens to one unsynced change.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Fate {
    Kept,
    /// A write with these sectors (by index within the write) kept.
    Torn(Vec<bool>),
    Lost,
}

/// The 512-byte-sector pieces of a write at `offset` of `len` bytes: `(start, end)`
/// within the write's data.
fn sector_pieces(offset: u64, len: usize) -> Vec<(usize, usize)> {
    let mut pieces = Vec::new();
    let mut at = 0usize;
    while at < len {
        let abs = offset + at as u64;
        let to_boundary = (SECTOR - abs % SECTOR) as usize;
        let end = (at + to_boundary).min(len);
        pieces.push((at, end));
        at = end;
    }
    pieces
}

fn tear(rng: &mut SmallRng, change: &Change) -> Fate {
    match change {
        Change::Write { offset, data } => {
            let n = sector_pieces(*offset, data.len()).len();
            Fate::Torn((0..n).map(|_| rng.random_bool(0.5)).collect())
        }
        // A size change is one metadata update: it happens or not.
        _ if rng.random_bool(0.5) => Fate::Kept,
        _ => Fate::Lost,
    }
}

/// Decides the fate of every change in `order` (issue order).
pub(crate) fn fates(cut: &PowerCut, order: &[&Change], broken: crate::Broken) -> Vec<Fate> {
    let mut rng = SmallRng::seed_from_u64(cut.seed);
    let unsynced = match cut.unsynced {
        Unsynced::Reordered if broken == crate::Broken::ReorderKeepsOrder => {
            Unsynced::Prefix { torn: 0 }
        }
        Unsynced::Pages if broken == crate::Broken::PagesAsWrites => Unsynced::Reordered,
        other => other,
    };
    match unsynced {
        // Pages are decided per file at the cut ([`write_back_pages`]).
        Unsynced::Lost | Unsynced::Pages => order.iter().map(|_| Fate::Lost).collect(),
        Unsynced::Prefix { torn } => {
            let kept = rng.random_range(0..=order.len());
            order
                .iter()
                .enumerate()
                .map(|(i, change)| match i {
                    i if i < kept => Fate::Kept,
                    i if i < kept + torn => tear(&mut rng, change),
                    _ => Fate::Lost,
                })
                .collect()
        }
        Unsynced::Reordered => order
            .iter()
            .map(|change| match rng.random_range(0..3) {
                0 => Fate::Kept,
                1 => tear(&mut rng, change),
                _ => Fate::Lost,
            })
            .collect(),
    }
}

/// [`Unsynced::Pages`] for one file, restored to its durable content: writes back a
/// seeded choice of its dirty pages (`live`: their latest content, read before the
/// restore) and maybe its latest length. Returns (changes, kept, torn).
pub(crate) fn write_back_pages(
    rng: &mut SmallRng,
    file: &File,
    durable_len: u64,
    live_len: u64,
    live: &[(u64, Vec<u8>)],
    broken: crate::Broken,
) -> io::Result<(usize, usize, usize)> {
    let (mut changes, mut kept, mut torn) = (live.len(), 0, 0);
    let mut len = durable_len;
    if live_len != durable_len {
        changes += 1;
        if rng.random_bool(0.5) {
            len = live_len;
            kept += 1;
        }
    }
    file.set_len(len)?;
    for (at, bytes) in live {
        // Bytes past the durable length are not reachable unless the size made it.
        let reach = (len.saturating_sub(*at) as usize).min(bytes.len());
        let page = Change::Write { offset: *at, data: bytes[..reach].to_vec() };
        let fate = match rng.random_range(0..3) {
            0 => Fate::Kept,
            1 => tear(rng, &page),
            _ => Fate::Lost,
        };
        match fate {
            Fate::Kept => kept += 1,
            Fate::Torn(_) => torn += 1,
            Fate::Lost => {}
        }
        apply(file, &page, &fate, broken)?;
    }
    Ok((changes, kept, torn))
}

/// The latest content of `file`'s dirty blocks, before a restore overwrites it.
pub(crate) fn read_dirty(
    file: &File,
    journal: &Journal,
    live_len: u64,
) -> io::Result<Vec<(u64, Vec<u8>)>> {
    let mut out = Vec::new();
    for block in journal.dirty_blocks() {
        let at = block * BLOCK;
        if at >= live_len {
            break;
        }
        let mut bytes = vec![0u8; (live_len - at).min(BLOCK) as usize];
        file.read_exact_at(&mut bytes, at)?;
        out.push((at, bytes));
    }
    Ok(out)
}

/// Applies a surviving change to the restored file.
pub(crate) fn apply(
    file: &File,
    change: &Change,
    fate: &Fate,
    broken: crate::Broken,
) -> io::Result<()> {
    match (change, fate) {
        (_, Fate::Lost) => Ok(()),
        (Change::Write { offset, data }, Fate::Torn(keep)) => {
            if broken == crate::Broken::TearsWholeWrites {
                return file.write_all_at(data, *offset);
            }
            for ((start, end), kept) in sector_pieces(*offset, data.len()).into_iter().zip(keep) {
                if *kept {
                    file.write_all_at(&data[start..end], offset + start as u64)?;
                }
            }
            Ok(())
        }
        (Change::Write { offset, data }, _) => file.write_all_at(data, *offset),
        (Change::SetLen(len), _) => file.set_len(*len),
        (Change::Zero { offset, len }, _) => {
            let zeros = vec![0u8; (*len).min(1 << 20) as usize];
            let mut at = *offset;
            let end = offset + len;
            while at < end {
                let n = (end - at).min(zeros.len() as u64) as usize;
                file.write_all_at(&zeros[..n], at)?;
                at += n as u64;
            }
            Ok(())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sector_pieces_follow_absolute_boundaries() {
        assert_eq!(sector_pieces(0, 1024), vec![(0, 512), (512, 1024)]);
        assert_eq!(sector_pieces(500, 30), vec![(0, 12), (12, 30)]);
        assert_eq!(sector_pieces(512, 10), vec![(0, 10)]);
    }

    #[test]
    fn fates_replay_from_the_seed() {
        let a = Change::Write { offset: 0, data: vec![1; 2048] };
        let b = Change::SetLen(10);
        let order = [&a, &b, &a, &b];
        for cut in [PowerCut::seeded(3).reordered(), PowerCut::seeded(9).torn_prefix(1)] {
            assert_eq!(
                fates(&cut, &order, crate::Broken::None),
                fates(&cut, &order, crate::Broken::None)
            );
        }
        assert!(fates(&PowerCut::seeded(1), &order, crate::Broken::None)
            .iter()
            .all(|f| *f == Fate::Lost));
    }

    #[test]
    fn a_prefix_never_keeps_a_later_change_after_a_lost_one() {
        let w = Change::Write { offset: 0, data: vec![1; 10] };
        let order = vec![&w; 6];
        for seed in 0..200 {
            let f = fates(&PowerCut::seeded(seed).torn_prefix(0), &order, crate::Broken::None);
            let first_lost = f.iter().position(|f| *f == Fate::Lost).unwrap_or(f.len());
            assert!(f[first_lost..].iter().all(|f| *f == Fate::Lost), "seed {seed}: {f:?}");
        }
    }
}
