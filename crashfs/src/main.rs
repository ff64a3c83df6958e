//! `paxstore-crashfs`: mount a crash filesystem, and cut its power or arm faults from
//! another shell.
//!
//! ```text
//! paxstore-crashfs mount BACKING MOUNTPOINT        # stays in the foreground; Ctrl-C unmounts
//! paxstore-crashfs cut MOUNTPOINT [--seed N] [--torn N | --reordered | --pages]
//! paxstore-crashfs fail MOUNTPOINT --op fsync --effect eio [--nth N] [--pattern GLOB] [--sticky]
//! paxstore-crashfs clear|faults|stats|unmount MOUNTPOINT
//! paxstore-crashfs check                            # can FUSE be mounted here?
//! ```

#[cfg(target_os = "linux")]
mod cli {
    use std::path::{Path, PathBuf};
    use std::process::ExitCode;
    use std::sync::{mpsc, Arc, Mutex};
    use std::time::{Duration, SystemTime, UNIX_EPOCH};

    use clap::{Args, Parser, Subcommand};
    use paxstore_crashfs::control::{self, Event};
    use paxstore_crashfs::{CrashFs, Error};

    #[derive(Parser)]
    #[command(
        name = "paxstore-crashfs",
        version,
        about = "A crash filesystem: cut the power, fail chosen calls"
    )]
    struct Cli {
        #[command(subcommand)]
        command: Command,
    }

    #[derive(Args)]
    struct Target {
        /// The mount point of the running crash filesystem.
        mountpoint: PathBuf,
        /// Its control socket (default: derived from the mount point).
        #[arg(long)]
        control: Option<PathBuf>,
    }

    #[derive(Subcommand)]
    enum Command {
        /// Mounts BACKING at MOUNTPOINT and serves it until `unmount`, Ctrl-C or SIGTERM.
        Mount {
            backing: PathBuf,
            mountpoint: PathBuf,
            /// Where to serve the control socket (default: derived from the mount point).
            #[arg(long)]
            control: Option<PathBuf>,
        },
        /// Cuts the power and mounts what survives.
        Cut {
            #[command(flatten)]
            target: Target,
            /// Seed of the cut's choices (default: from the clock; printed).
            #[arg(long)]
            seed: Option<u64>,
            /// Keep an in-order prefix of the unsynced writes and tear the next N.
            #[arg(long, conflicts_with_all = ["reordered", "pages"])]
            torn: Option<usize>,
            /// Keep, tear or lose each unsynced write independently.
            #[arg(long, conflicts_with = "pages")]
            reordered: bool,
            /// Write back, tear or lose each changed page independently.
            #[arg(long)]
            pages: bool,
        },
        /// Arms a fault.
        Fail {
            #[command(flatten)]
            target: Target,
            /// write, fsync, rename, create or any.
            #[arg(long)]
            op: String,
            /// eio, enospc or power-off.
            #[arg(long)]
            effect: String,
            /// Which matching call, from 1.
            #[arg(long, default_value_t = 1)]
            nth: u64,
            /// Glob on the file name.
            #[arg(long, default_value = "*")]
            pattern: String,
            /// Every matching call from the n-th on, until `clear`.
            #[arg(long)]
            sticky: bool,
        },
        /// Disarms every fault.
        Clear(Target),
        /// Lists the armed faults.
        Faults(Target),
        /// Prints the mount's counters.
        Stats(Target),
        /// Unmounts cleanly (the backing directory keeps the live state).
        Unmount(Target),
        /// Says whether a crash filesystem can be mounted here, and if not why.
        Check,
    }

    pub(crate) fn main() -> ExitCode {
        match run(Cli::parse()) {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("paxstore-crashfs: {e}");
                ExitCode::FAILURE
            }
        }
    }

    fn socket(target: &Target) -> Result<PathBuf, Error> {
        match &target.control {
            Some(path) => Ok(path.clone()),
            None => control::default_socket(&target.mountpoint),
        }
    }

    fn send(target: &Target, line: &str) -> Result<(), Error> {
        let reply = control::request(&socket(target)?, line)?;
        if !reply.is_empty() {
            println!("{reply}");
        }
        Ok(())
    }

    fn run(cli: Cli) -> Result<(), Error> {
        match cli.command {
            Command::Mount { backing, mountpoint, control } => {
                serve(&backing, &mountpoint, control)
            }
            Command::Cut { target, seed, torn, reordered, pages } => {
                let seed = seed.unwrap_or_else(clock_seed);
                let unsynced = match (torn, reordered, pages) {
                    (Some(t), _, _) => format!("prefix:{t}"),
                    (None, true, _) => "reordered".into(),
                    (None, false, true) => "pages".into(),
                    (None, false, false) => "lost".into(),
                };
                send(&target, &format!("cut seed={seed} unsynced={unsynced}"))
            }
            Command::Fail { target, op, effect, nth, pattern, sticky } => {
                let sticky = if sticky { " sticky" } else { "" };
                send(
                    &target,
                    &format!("fail op={op} effect={effect} nth={nth} pattern={pattern}{sticky}"),
                )
            }
            Command::Clear(target) => send(&target, "clear"),
            Command::Faults(target) => send(&target, "faults"),
            Command::Stats(target) => send(&target, "stats"),
            Command::Unmount(target) => send(&target, "unmount"),
            Command::Check => {
                paxstore_crashfs::available()?;
                println!("ok: a crash filesystem can be mounted here");
                Ok(())
            }
        }
    }

    fn clock_seed() -> u64 {
        SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_nanos() as u64)
    }

    fn serve(backing: &Path, mountpoint: &Path, control: Option<PathBuf>) -> Result<(), Error> {
        let socket = match control {
            Some(path) => path,
            None => control::default_socket(mountpoint)?,
        };
        let fs = CrashFs::mount(backing, mountpoint)?;
        let mountpoint = fs.mountpoint().to_path_buf();
        let fs = Arc::new(Mutex::new(Some(fs)));
        let (events, stop) = mpsc::channel();
        control::serve(Arc::clone(&fs), &socket, events.clone())?;
        let on_signal = events.clone();
        ctrlc::set_handler(move || {
            let _ = on_signal.send(Event::Unmounted);
        })
        .map_err(|e| Error::Invalid(format!("cannot handle signals: {e}")))?;
        println!(
            "mounted {} at {}; control socket {}",
            backing.display(),
            mountpoint.display(),
            socket.display()
        );
        // Until an `unmount` command or a signal; also notices an outside `umount`.
        loop {
            match stop.recv_timeout(Duration::from_secs(1)) {
                Ok(Event::Unmounted) => break,
                Err(mpsc::RecvTimeoutError::Timeout) => {
                    let guard = fs.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
                    match guard.as_ref().map(CrashFs::is_mounted) {
                        Some(Ok(false)) | None => break,
                        _ => {}
                    }
                }
                Err(mpsc::RecvTimeoutError::Disconnected) => break,
            }
        }
        let taken = fs.lock().unwrap_or_else(std::sync::PoisonError::into_inner).take();
        let _ = std::fs::remove_file(&socket);
        match taken {
            Some(fs) => fs.unmount(),
            None => Ok(()),
        }
    }
}

#[cfg(target_os = "linux")]
fn main() -> std::process::ExitCode {
    cli::main()
}

#[cfg(not(target_os = "linux"))]
fn main() -> std::process::ExitCode {
    eprintln!("paxstore-crashfs runs on Linux only");
    std::process::ExitCode::FAILURE
}
