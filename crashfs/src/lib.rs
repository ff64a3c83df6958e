//! # paxstore-crashfs: power loss and I/O faults, for real, under any storage engine
//!
//! A FUSE filesystem that passes every call through to a backing directory and keeps,
//! for each file and each directory, what was made durable apart from what was only
//! written. It can then **cut the power** — throw away everything not durable (or keep a
//! seeded part of it, torn at sector granularity or reordered) and serve what survives at
//! the next mount — and **fail chosen calls** with `EIO` or `ENOSPC`. An engine under
//! test runs on the mount as on any directory; it needs no seam of its own.
//!
//! ```no_run
//! use paxstore_crashfs::{CrashFs, Effect, Fault, Op, PowerCut};
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! paxstore_crashfs::available()?; // FUSE usable here? (Linux, root, /dev/fuse)
//! let mut fs = CrashFs::mount("/tmp/backing", "/tmp/mnt")?;
//! std::fs::write("/tmp/mnt/unsynced", b"gone after the cut")?;
//! let report = fs.power_cut(PowerCut::seeded(42))?; // unmount, cut, mount again
//! assert!(!std::path::Path::new("/tmp/mnt/unsynced").exists());
//! println!("{report}");
//! fs.arm(Fault::new(Op::Fsync, Effect::Eio).matching("*.log"))?;
//! # Ok(()) }
//! ```
//!
//! The command line `paxstore-crashfs` mounts a directory the same way and cuts the
//! power or arms faults from another shell (see its `--help`).
//!
//! ## What is durable
//!
//! The model is Linux's guarantees, taken strictly: what a power cut on ext4 *may* lose,
//! it loses.
//!
//! | call | live effect | durable after | note |
//! |---|---|---|---|
//! | `write` / `pwrite` | passed through | an `fsync` or `fdatasync` of the file | each FUSE write request is one unsynced change (a large `write(2)` arrives as several) |
//! | `fsync`, `fdatasync` (file) | — | at once: the file's data **and** size | both make the size durable, as `fdatasync` does on Linux when the size changed; neither makes the file's name durable |
//! | failed `fsync` (injected) | — | never, for the changes before it | as Linux: pages that failed write-back are marked clean, so a later successful fsync does not write them; blocks changed again after the failure are written by the next fsync |
//! | `sync_file_range`, `close`, `syncfs`, `sync` | — | nothing | `sync_file_range` never reaches FUSE; `close` (flush) and `syncfs` make nothing durable here (stricter than ext4) |
//! | `O_SYNC` / `O_DSYNC` writes | passed through | at once | the kernel sends an fsync after each write |
//! | `ftruncate` / `set_len` | passed through | an `fsync` or `fdatasync` of the file | a size change is an unsynced change like a write |
//! | `fallocate` | passed through | an `fsync`/`fdatasync` if it changed the size or zeroed bytes | modes: plain, `KEEP_SIZE`, `PUNCH_HOLE`, `ZERO_RANGE`; others `EOPNOTSUPP`; counted as a write for faults |
//! | create, `mkdir`, `unlink`, `rmdir`, `rename` | passed through | an `fsync` of the directory holding the entry | a directory fsync makes *all* its entries as they are now durable (for a rename across directories, each side needs its own directory's fsync) |
//! | a file created and fsynced, its directory not fsynced | — | — | **gone after a power cut** (its data was durable, but no durable name reaches it) |
//! | `rename` over an existing file | atomic replace | the directory's fsync | until then a cut brings back the old file under the name (and the source name too if that was durable) |
//! | `lseek` `SEEK_DATA` / `SEEK_HOLE` | answered by the backing file | — | the live data and holes |
//! | `mmap` | through the kernel page cache (no direct I/O, no writeback cache) | as `write` | shared writable maps are written back as FUSE writes; not from the mounting process itself (see [`CrashFs`]) |
//! | `flock`, POSIX locks | kept by the kernel, per mount | — | released at unmount (a power cut) |
//! | `chmod`, `chown`, timestamps | passed through | not modelled | a file's survive a cut as they are; a directory is made again by the cut, with its live permissions if it is still live |
//! | hard links, symlinks, special files | `EPERM` | — | a backing directory holding any of them is refused at mount |
//!
//! A directory found in the backing directory at mount, and every file in it, is
//! durable as found. A clean unmount (drop, [`CrashFs::unmount`]) leaves the backing
//! directory with the live state, as a clean shutdown does.
//!
//! ## A power cut
//!
//! [`CrashFs::power_cut`] unmounts (the caller first stops every process writing on the
//! mount: it kills nothing itself; a file still open keeps failing with `EIO`), rewrites
//! the backing directory to the durable state — the tree reachable from the root through
//! fsynced directory entries, each file with its fsynced content — and mounts again
//! (the kernel's page cache of the old mount goes with it). What survives of the
//! unsynced changes is [`PowerCut::unsynced`] ([`Unsynced`]):
//!
//! | mode | what survives of the changes since each file's last fsync |
//! |---|---|
//! | `Lost` (default) | nothing |
//! | `Prefix { torn }` | the oldest changes in issue order (across files) up to a seeded point, whole; the next `torn` torn at 512-byte sectors; nothing after |
//! | `Reordered` | each change (write request or size change) independently: whole, torn, or lost |
//! | `Pages` | each 4 KiB page changed since the file's last fsync, with its *latest* content: whole, torn, or lost; the size change or not — what a kernel's write-back can leave |
//!
//! `Prefix` and `Reordered` work on write requests: `Reordered` can keep a later write to
//! a sector and lose an earlier one to the same sector, which a real disk cannot (the
//! page cache merges them); it is stricter than the hardware, never more lenient.
//! `Pages` never does that. Unsynced directory changes never survive, in any mode.
//! Choices come from [`PowerCut::seed`]; the cut's report prints it, so a failure
//! replays. The data of unsynced writes is held in memory until the next fsync of their
//! file ([`Stats::held_bytes`]).
//!
//! ## Faults
//!
//! [`CrashFs::arm`] a [`Fault`]: `EIO`, `ENOSPC` or a power-off on the n-th write, fsync,
//! rename or create — or any of them ([`Op::Any`]) — of a file whose name matches a glob,
//! once or from then on until cleared. A failed call changes nothing; a failed fsync
//! also loses the file's unsynced changes for good (see the table). [`Stats::calls`]
//! counts the calls faults can hit, so a test can count the calls of a piece of work and
//! then fail, or cut the power at, each of them in turn.
//!
//! ## Where it runs
//!
//! Linux, as root (the mount is a plain `mount(2)` with fuser's pure-Rust session; no
//! libfuse, no `fusermount`), with `/dev/fuse`. [`available`] says whether, and if not,
//! why. Everything a crash filesystem serves goes through one daemon thread, in order,
//! in the process that mounted it (mind the one thing that process must not do itself:
//! see [`CrashFs`]).

#[cfg(target_os = "linux")]
mod cut;
#[cfg(target_os = "linux")]
mod daemon;
mod error;
#[cfg(target_os = "linux")]
mod fault;
#[cfg(target_os = "linux")]
mod handle;
#[cfg(target_os = "linux")]
mod journal;
#[cfg(target_os = "linux")]
mod mount;
#[cfg(target_os = "linux")]
mod rebuild;
#[cfg(target_os = "linux")]
mod state;
#[cfg(target_os = "linux")]
mod tree;

#[cfg(target_os = "linux")]
pub mod control;

#[cfg(target_os = "linux")]
pub use cut::{CutReport, PowerCut, Unsynced};
pub use error::Error;
#[cfg(target_os = "linux")]
pub use fault::{Effect, Fault, Op};
#[cfg(target_os = "linux")]
pub use handle::{available, CrashFs, MountOptions};
#[cfg(target_os = "linux")]
pub use journal::SECTOR;

/// Whether FUSE can be mounted here: on anything but Linux, never.
#[cfg(not(target_os = "linux"))]
pub fn available() -> Result<(), Error> {
    Err(Error::Unavailable("the crash filesystem runs on Linux only".into()))
}

/// What a mount has done, counted since [`CrashFs::mount`] (across power cuts).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct Stats {
    /// Calls a fault can hit — writes, fsyncs, renames, creates — failed ones included:
    /// the positions [`Op::Any`] counts.
    pub calls: u64,
    /// Write requests (and `fallocate` calls).
    pub writes: u64,
    /// Bytes written.
    pub bytes_written: u64,
    /// `fsync` and `fdatasync` calls on files that succeeded.
    pub fsyncs: u64,
    /// `fsync` calls on directories that succeeded.
    pub dir_fsyncs: u64,
    /// Files and directories created.
    pub creates: u64,
    /// Renames.
    pub renames: u64,
    /// Files and directories removed.
    pub unlinks: u64,
    /// Size changes (`ftruncate`, `set_len`).
    pub truncates: u64,
    /// Injected faults that fired.
    pub faults_fired: u64,
    /// Power cuts applied.
    pub power_cuts: u64,
    /// Bytes held in memory now for unsynced writes and saved durable blocks.
    pub held_bytes: u64,
}

/// Deliberately broken variants of the filesystem, which its own tests run their checks
/// against to show each check catches what it is for. Only settable with the
/// `self-check` feature ([`MountOptions::broken`]).
#[doc(hidden)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Broken {
    /// The real thing.
    #[default]
    None,
    /// A power cut forgets nothing: the backing directory is served as it is.
    CutKeepsEverything,
    /// An fsync of anything makes every file and directory durable.
    FsyncSyncsEverything,
    /// Directory entries are durable as soon as they are made.
    DirentsDurableAtOnce,
    /// A torn write is kept whole.
    TearsWholeWrites,
    /// "Reordered" keeps an in-order prefix.
    ReorderKeepsOrder,
    /// "Pages" keeps, tears or loses each write, as "reordered" does.
    PagesAsWrites,
    /// Armed faults never fire.
    FaultsNeverFire,
    /// A failed fsync leaves the unsynced writes to a later fsync (no Linux page marking).
    FailedFsyncKeepsWrites,
    /// `SEEK_DATA`/`SEEK_HOLE` unsupported (the kernel then calls the whole file data).
    NoSeekData,
    /// An fsync of a file makes nothing durable.
    FsyncIgnored,
    /// Files are opened for direct I/O (no page cache: shared memory maps fail).
    DirectIo,
    /// `flock` and POSIX locks are handled by the daemon, which grants every one.
    LocksAlwaysGranted,
}
