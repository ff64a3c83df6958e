//! Rewriting the backing directory at a power cut, with the mount gone: the durable tree
//! is built in a staging directory from the files' backing objects (live or in the
//! trash), each restored to its durable content plus what the cut keeps, then swapped in
//! for the live tree.

use std::collections::{HashMap, HashSet};
use std::ffi::OsString;
use std::fs::OpenOptions;
use std::path::{Path, PathBuf};

use rand::rngs::SmallRng;
use rand::SeedableRng;

use crate::cut::{apply, fates, read_dirty, write_back_pages, CutReport, Fate, PowerCut, Unsynced};
use crate::journal::{Change, Journal};
use crate::state::{internal_dir, State, INTERNAL_DIR};
use crate::tree::{DurableEntry, Kind, NodeId};
use crate::{Broken, Error};

/// The surviving changes of each file, with their fates.
type Survivors<'a> = HashMap<NodeId, Vec<(&'a Change, Fate)>>;

/// Rewrites the backing directory of `state` to hold what survives `cut`.
pub(crate) fn rebuild(state: &State, cut: PowerCut) -> Result<CutReport, Error> {
    let mut report = CutReport { cut, ..CutReport::default() };
    let live_before = state.tree.live_paths();
    let entries = state.tree.durable_tree();
    let mut survivors = decide(state, &entries, cut, &mut report);
    let internal = internal_dir(&state.backing);
    let stage = internal.join("new");
    if stage.exists() {
        std::fs::remove_dir_all(&stage).map_err(|e| Error::io("removing", &stage, e))?;
    }
    std::fs::create_dir(&stage).map_err(|e| Error::io("creating", &stage, e))?;
    let mut rebuilder = Rebuilder {
        state,
        cut,
        stage: &stage,
        page_rng: SmallRng::seed_from_u64(cut.seed),
        placed: HashMap::new(),
    };
    for entry in entries.iter().filter(|e| !e.duplicate) {
        let changes = survivors.remove(&entry.node).unwrap_or_default();
        rebuilder.place(entry, changes, &mut report)?;
    }
    for entry in entries.iter().filter(|e| e.duplicate) {
        rebuilder.copy(entry)?;
    }
    swap_in(&state.backing, &stage)?;
    std::fs::remove_dir_all(&internal).map_err(|e| Error::io("removing", &internal, e))?;
    compare_paths(&mut report, live_before, &entries);
    Ok(report)
}

/// The fates of the unsynced changes of every surviving file, decided in issue order
/// (across files) from the cut's seed.
fn decide<'a>(
    state: &'a State,
    entries: &[DurableEntry],
    cut: PowerCut,
    report: &mut CutReport,
) -> Survivors<'a> {
    let mut order: Vec<(u64, NodeId, &Change)> = Vec::new();
    for entry in entries.iter().filter(|e| !e.duplicate) {
        if let Some(Kind::File(journal)) = state.tree.get(entry.node).map(|n| &n.kind) {
            order.extend(journal.pending().iter().map(|p| (p.seq, entry.node, &p.change)));
        }
    }
    order.sort_unstable_by_key(|&(seq, _, _)| seq);
    let changes: Vec<&Change> = order.iter().map(|&(_, _, c)| c).collect();
    let decided = fates(&cut, &changes, state.broken);
    if !by_pages(cut, state.broken) {
        report.unsynced = decided.len();
        report.kept = decided.iter().filter(|f| **f == Fate::Kept).count();
        report.torn = decided.iter().filter(|f| matches!(f, Fate::Torn(_))).count();
    }
    let mut survivors = Survivors::new();
    for ((_, id, change), fate) in order.into_iter().zip(decided) {
        survivors.entry(id).or_default().push((change, fate));
    }
    survivors
}

/// Whether the cut decides per page ([`Unsynced::Pages`]) rather than per change.
fn by_pages(cut: PowerCut, broken: Broken) -> bool {
    cut.unsynced == Unsynced::Pages && broken != Broken::PagesAsWrites
}

/// Builds the staged tree, entry by entry.
struct Rebuilder<'a> {
    state: &'a State,
    cut: PowerCut,
    stage: &'a Path,
    page_rng: SmallRng,
    /// Where each file was placed, for its duplicates.
    placed: HashMap<NodeId, PathBuf>,
}

impl Rebuilder<'_> {
    /// Places one durable entry (not a duplicate) in the staging directory.
    fn place(
        &mut self,
        entry: &DurableEntry,
        changes: Vec<(&Change, Fate)>,
        report: &mut CutReport,
    ) -> Result<(), Error> {
        let to = self.stage.join(&entry.path);
        let node = self.state.tree.get(entry.node).ok_or_else(|| Error::Inconsistent {
            detail: format!("durable entry {} names no node", entry.path.display()),
        })?;
        match &node.kind {
            Kind::Dir(_) => {
                std::fs::create_dir(&to).map_err(|e| Error::io("creating", &to, e))?;
                // Keep the permissions of a directory that is still there.
                if let Ok(meta) = std::fs::metadata(self.state.object_path(entry.node)) {
                    let _ = std::fs::set_permissions(&to, meta.permissions());
                }
            }
            Kind::File(journal) => {
                let from = self.state.object_path(entry.node);
                std::fs::rename(&from, &to).map_err(|e| Error::io("moving", &from, e))?;
                if self.restore(journal, &to, &changes, report)? {
                    report.reverted_files.push(entry.path.clone());
                }
                self.placed.insert(entry.node, to);
            }
        }
        Ok(())
    }

    /// Gives the file at `to` its durable content plus what the cut keeps of its
    /// unsynced changes; whether anything changed.
    fn restore(
        &mut self,
        journal: &Journal,
        to: &Path,
        changes: &[(&Change, Fate)],
        report: &mut CutReport,
    ) -> Result<bool, Error> {
        let err = |what: &'static str| move |e| Error::io(what, to, e);
        let file = OpenOptions::new().read(true).write(true).open(to).map_err(err("opening"))?;
        let live_len = file.metadata().map_err(err("reading"))?.len();
        let broken = self.state.broken;
        if broken == Broken::CutKeepsEverything {
            return Ok(false);
        }
        if by_pages(self.cut, broken) {
            let live = read_dirty(&file, journal, live_len).map_err(err("reading"))?;
            journal.restore(&file).map_err(err("restoring"))?;
            let durable = journal.durable_len();
            let (n, kept, torn) =
                write_back_pages(&mut self.page_rng, &file, durable, live_len, &live, broken)
                    .map_err(err("writing pages back to"))?;
            report.unsynced += n;
            report.kept += kept;
            report.torn += torn;
        } else {
            journal.restore(&file).map_err(err("restoring"))?;
            for (change, fate) in changes {
                apply(&file, change, fate, broken).map_err(err("replaying a write to"))?;
            }
        }
        Ok(journal.differs(live_len) || !changes.is_empty())
    }

    /// A second durable name of a file (a half-synced cross-directory rename): a copy.
    fn copy(&self, entry: &DurableEntry) -> Result<(), Error> {
        let to = self.stage.join(&entry.path);
        match self.placed.get(&entry.node) {
            Some(from) => {
                std::fs::copy(from, &to).map(|_| ()).map_err(|e| Error::io("copying", from, e))
            }
            None => Ok(()),
        }
    }
}

/// Replaces everything in `backing` but the crash filesystem's own directory with the
/// content of `stage`.
fn swap_in(backing: &Path, stage: &Path) -> Result<(), Error> {
    for child in read_dir_names(backing)? {
        if child == INTERNAL_DIR {
            continue;
        }
        let path = backing.join(&child);
        let removed = if path.is_dir() && !path.is_symlink() {
            std::fs::remove_dir_all(&path)
        } else {
            std::fs::remove_file(&path)
        };
        removed.map_err(|e| Error::io("removing", &path, e))?;
    }
    for child in read_dir_names(stage)? {
        let from = stage.join(&child);
        std::fs::rename(&from, backing.join(&child)).map_err(|e| Error::io("moving", &from, e))?;
    }
    Ok(())
}

/// The paths the cut removed and brought back.
fn compare_paths(report: &mut CutReport, live_before: Vec<PathBuf>, entries: &[DurableEntry]) {
    let durable: HashSet<PathBuf> = entries.iter().map(|e| e.path.clone()).collect();
    let live: HashSet<PathBuf> = live_before.into_iter().collect();
    report.lost_paths = live.difference(&durable).cloned().collect();
    report.restored_paths = durable.difference(&live).cloned().collect();
    report.lost_paths.sort();
    report.restored_paths.sort();
    report.reverted_files.sort();
}

fn read_dir_names(dir: &Path) -> Result<Vec<OsString>, Error> {
    let mut names = Vec::new();
    for entry in std::fs::read_dir(dir).map_err(|e| Error::io("listing", dir, e))? {
        names.push(entry.map_err(|e| Error::io("listing", dir, e))?.file_name());
    }
    Ok(names)
}
