//! The namespace: every file and directory, the name it has now (live), and the names a
//! power cut would leave (durable). Pure bookkeeping, no I/O.
//!
//! Each directory keeps two maps from name to node: `live`, changed by every create,
//! unlink and rename, and `durable`, replaced by a copy of `live` when the directory is
//! fsynced. What survives a cut is what is reachable from the root through `durable`
//! maps. A node keeps a count of the durable entries naming it, so an unlinked file whose
//! old name is still durable keeps its data (in the trash) until that name goes too.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::ffi::{OsStr, OsString};
use std::path::PathBuf;

use crate::journal::Journal;

/// A node's number; also its FUSE inode number.
pub(crate) type NodeId = u64;
/// The root directory (FUSE's root inode number).
pub(crate) const ROOT: NodeId = 1;

/// A file or directory.
#[derive(Debug)]
pub(crate) struct Node {
    pub(crate) kind: Kind,
    /// Its live name: `(parent, name)`; `None` once unlinked or removed.
    pub(crate) live: Option<(NodeId, OsString)>,
    /// Its last live name, for fault patterns (kept after an unlink).
    pub(crate) name: OsString,
    /// How many durable entries (in any directory) name it.
    pub(crate) durable_refs: u32,
}

/// What a node is.
#[derive(Debug)]
pub(crate) enum Kind {
    File(Journal),
    Dir(Dir),
}

/// A directory's entries, live and durable.
#[derive(Debug, Default)]
pub(crate) struct Dir {
    pub(crate) live: BTreeMap<OsString, NodeId>,
    pub(crate) durable: BTreeMap<OsString, NodeId>,
}

/// Every node of one mount.
#[derive(Debug)]
pub(crate) struct Tree {
    nodes: HashMap<NodeId, Node>,
    next: NodeId,
}

/// One node of the durable tree, as a power cut leaves it.
#[derive(Debug)]
pub(crate) struct DurableEntry {
    /// Path relative to the root.
    pub(crate) path: PathBuf,
    pub(crate) node: NodeId,
    /// An earlier entry already named this file (a cross-directory rename whose two
    /// directories were not both fsynced): it comes back as a copy.
    pub(crate) duplicate: bool,
}

impl Tree {
    /// A tree with only the root directory.
    pub(crate) fn new() -> Tree {
        let root = Node {
            kind: Kind::Dir(Dir::default()),
            live: None,
            name: OsString::new(),
            durable_refs: 1,
        };
        Tree { nodes: HashMap::from([(ROOT, root)]), next: ROOT + 1 }
    }

    pub(crate) fn get(&self, id: NodeId) -> Option<&Node> {
        self.nodes.get(&id)
    }

    pub(crate) fn get_mut(&mut self, id: NodeId) -> Option<&mut Node> {
        self.nodes.get_mut(&id)
    }

    pub(crate) fn dir(&self, id: NodeId) -> Option<&Dir> {
        match &self.get(id)?.kind {
            Kind::Dir(dir) => Some(dir),
            Kind::File(_) => None,
        }
    }

    fn dir_mut(&mut self, id: NodeId) -> Option<&mut Dir> {
        match &mut self.get_mut(id)?.kind {
            Kind::Dir(dir) => Some(dir),
            Kind::File(_) => None,
        }
    }

    pub(crate) fn journal_mut(&mut self, id: NodeId) -> Option<&mut Journal> {
        match &mut self.get_mut(id)?.kind {
            Kind::File(journal) => Some(journal),
            Kind::Dir(_) => None,
        }
    }

    /// The live child `name` of directory `parent`.
    pub(crate) fn child(&self, parent: NodeId, name: &OsStr) -> Option<NodeId> {
        self.dir(parent)?.live.get(name).copied()
    }

    /// Adds a node found on the backing directory at mount: live and durable.
    pub(crate) fn add_existing(&mut self, parent: NodeId, name: OsString, kind: Kind) -> NodeId {
        let id = self.add(parent, name.clone(), kind);
        if let Some(dir) = self.dir_mut(parent) {
            dir.durable.insert(name, id);
        }
        if let Some(node) = self.get_mut(id) {
            node.durable_refs = 1;
        }
        id
    }

    /// Adds a newly created node: live only, until its directory is fsynced.
    pub(crate) fn add(&mut self, parent: NodeId, name: OsString, kind: Kind) -> NodeId {
        let id = self.next;
        self.next += 1;
        if let Some(dir) = self.dir_mut(parent) {
            dir.live.insert(name.clone(), id);
        }
        let node = Node { kind, live: Some((parent, name.clone())), name, durable_refs: 0 };
        self.nodes.insert(id, node);
        id
    }

    /// Removes the live entry `name` of `parent`; returns the node it named.
    pub(crate) fn unlink(&mut self, parent: NodeId, name: &OsStr) -> Option<NodeId> {
        let id = self.dir_mut(parent)?.live.remove(name)?;
        if let Some(node) = self.get_mut(id) {
            node.live = None;
        }
        Some(id)
    }

    /// Moves the live entry `(from, name)` to `(to, new_name)`, replacing what was there;
    /// returns the replaced node. The caller has checked that the move is allowed.
    pub(crate) fn rename(
        &mut self,
        from: NodeId,
        name: &OsStr,
        to: NodeId,
        new_name: &OsStr,
    ) -> Option<NodeId> {
        let id = self.dir_mut(from)?.live.remove(name)?;
        let replaced = self.dir_mut(to)?.live.insert(new_name.to_owned(), id);
        if let Some(old) = replaced.and_then(|r| self.get_mut(r)) {
            old.live = None;
        }
        if let Some(node) = self.get_mut(id) {
            node.live = Some((to, new_name.to_owned()));
            node.name = new_name.to_owned();
        }
        replaced
    }

    /// An fsync of directory `id`: its live entries become its durable ones. Returns the
    /// nodes that no entry names any more, live or durable (their data can go).
    pub(crate) fn sync_dir(&mut self, id: NodeId) -> Vec<NodeId> {
        let Some(dir) = self.dir_mut(id) else { return Vec::new() };
        let old = std::mem::replace(&mut dir.durable, dir.live.clone());
        let new: Vec<NodeId> = dir.durable.values().copied().collect();
        for child in &new {
            if let Some(node) = self.get_mut(*child) {
                node.durable_refs += 1;
            }
        }
        let mut gone = Vec::new();
        for child in old.into_values() {
            if let Some(node) = self.get_mut(child) {
                node.durable_refs = node.durable_refs.saturating_sub(1);
                if node.durable_refs == 0 && node.live.is_none() {
                    gone.push(child);
                }
            }
        }
        gone
    }

    /// Whether nothing names `id` any more, live or durable.
    pub(crate) fn unreferenced(&self, id: NodeId) -> bool {
        id != ROOT && self.get(id).is_some_and(|n| n.live.is_none() && n.durable_refs == 0)
    }

    /// Whether `id` has a live name (the root always has).
    pub(crate) fn is_live(&self, id: NodeId) -> bool {
        id == ROOT || self.get(id).is_some_and(|n| n.live.is_some())
    }

    /// Whether `ancestor` is `id` or one of its live ancestors.
    pub(crate) fn is_within(&self, id: NodeId, ancestor: NodeId) -> bool {
        let mut at = id;
        loop {
            if at == ancestor {
                return true;
            }
            match self.get(at).and_then(|n| n.live.as_ref()) {
                Some((parent, _)) => at = *parent,
                None => return false,
            }
        }
    }

    /// The live path of `id` relative to the root, or `None` if it is not live.
    pub(crate) fn live_path(&self, id: NodeId) -> Option<PathBuf> {
        let mut names = Vec::new();
        let mut at = id;
        while at != ROOT {
            let (parent, name) = self.get(at)?.live.as_ref()?;
            names.push(name.as_os_str());
            at = *parent;
        }
        Some(names.iter().rev().collect())
    }

    /// Every node reachable from the root through durable entries, parents before their
    /// children. A directory reached twice (durable entries can form a cycle after
    /// half-synced directory moves) is listed once.
    pub(crate) fn durable_tree(&self) -> Vec<DurableEntry> {
        let mut out = Vec::new();
        let mut seen_dirs = HashSet::from([ROOT]);
        let mut seen_files = HashSet::new();
        let mut stack = vec![(ROOT, PathBuf::new())];
        while let Some((id, path)) = stack.pop() {
            let Some(dir) = self.dir(id) else { continue };
            for (name, &child) in &dir.durable {
                let child_path = path.join(name);
                match self.get(child).map(|n| &n.kind) {
                    Some(Kind::Dir(_)) if seen_dirs.insert(child) => {
                        out.push(DurableEntry {
                            path: child_path.clone(),
                            node: child,
                            duplicate: false,
                        });
                        stack.push((child, child_path));
                    }
                    Some(Kind::File(_)) => {
                        let duplicate = !seen_files.insert(child);
                        out.push(DurableEntry { path: child_path, node: child, duplicate });
                    }
                    _ => {}
                }
            }
        }
        out
    }

    /// Every live path, for reports.
    pub(crate) fn live_paths(&self) -> Vec<PathBuf> {
        let mut out = Vec::new();
        let mut stack = vec![(ROOT, PathBuf::new())];
        while let Some((id, path)) = stack.pop() {
            let Some(dir) = self.dir(id) else { continue };
            for (name, &child) in &dir.live {
                let child_path = path.join(name);
                out.push(child_path.clone());
                stack.push((child, child_path));
            }
        }
        out
    }

    /// Every node (for the broken variants that make everything durable at once).
    pub(crate) fn ids(&self) -> Vec<NodeId> {
        self.nodes.keys().copied().collect()
    }

    /// Every file's journal.
    pub(crate) fn files(&self) -> impl Iterator<Item = &Journal> {
        self.nodes.values().filter_map(|n| match &n.kind {
            Kind::File(journal) => Some(journal),
            Kind::Dir(_) => None,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file() -> Kind {
        Kind::File(Journal::created())
    }

    fn durable_paths(tree: &Tree) -> Vec<String> {
        let mut v: Vec<String> =
            tree.durable_tree().iter().map(|e| e.path.display().to_string()).collect();
        v.sort();
        v
    }

    #[test]
    fn a_create_is_durable_only_after_its_directory_is_synced() {
        let mut t = Tree::new();
        let d = t.add(ROOT, "d".into(), Kind::Dir(Dir::default()));
        t.add(d, "f".into(), file());
        assert!(durable_paths(&t).is_empty());
        t.sync_dir(d);
        assert!(durable_paths(&t).is_empty(), "d itself is not durable yet");
        t.sync_dir(ROOT);
        assert_eq!(durable_paths(&t), ["d", "d/f"]);
    }

    #[test]
    fn rename_over_keeps_the_old_file_until_the_directory_is_synced() {
        let mut t = Tree::new();
        let old = t.add_existing(ROOT, "a".into(), file());
        let tmp = t.add(ROOT, "a.tmp".into(), file());
        assert_eq!(t.rename(ROOT, OsStr::new("a.tmp"), ROOT, OsStr::new("a")), Some(old));
        assert!(!t.unreferenced(old), "its durable name still holds it");
        assert_eq!(t.durable_tree()[0].node, old);
        assert_eq!(t.sync_dir(ROOT), vec![old]);
        assert_eq!(t.durable_tree()[0].node, tmp);
        assert_eq!(t.live_path(tmp), Some(PathBuf::from("a")));
    }

    #[test]
    fn a_half_synced_cross_directory_rename_is_listed_twice() {
        let mut t = Tree::new();
        let a = t.add_existing(ROOT, "a".into(), Kind::Dir(Dir::default()));
        let b = t.add_existing(ROOT, "b".into(), Kind::Dir(Dir::default()));
        let f = t.add_existing(a, "f".into(), file());
        t.rename(a, OsStr::new("f"), b, OsStr::new("f"));
        t.sync_dir(b);
        let entries = t.durable_tree();
        let named: Vec<_> = entries.iter().filter(|e| e.node == f).collect();
        assert_eq!(named.len(), 2);
        assert_eq!(named.iter().filter(|e| e.duplicate).count(), 1);
    }
}
