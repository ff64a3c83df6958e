//! Controlling a running mount from another process: a Unix socket that takes one command
//! per connection, one line each way.
//!
//! | request | effect | reply |
//! |---|---|---|
//! | `cut [seed=N] [unsynced=lost\|prefix:T\|reordered\|pages]` | [`CrashFs::power_cut`] | `ok <report>` |
//! | `fail op=write\|fsync\|rename\|create\|any effect=eio\|enospc\|power-off [nth=N] [pattern=GLOB] [sticky]` | [`CrashFs::arm`] | `ok armed <fault>` |
//! | `clear` | [`CrashFs::clear_faults`] | `ok` |
//! | `faults` | the armed faults | `ok <fault>; <fault>` |
//! | `stats` | [`CrashFs::stats`] | `ok writes=.. fsyncs=.. ...` |
//! | `unmount` | a clean unmount; the mounting process exits | `ok` |
//!
//! Any failure replies `error <why>`. The socket is [`default_socket`] of the mount point
//! unless given.

use std::io::{BufRead, BufReader, Write};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::sync::mpsc::Sender;
use std::sync::{Arc, Mutex, PoisonError};

use crate::{CrashFs, Effect, Error, Fault, Op, PowerCut};

/// The control socket of a mount point: in the temporary directory, named after a hash of
/// the mount point's absolute path (socket paths are limited to 108 bytes).
pub fn default_socket(mountpoint: &Path) -> Result<PathBuf, Error> {
    // The mount point itself is not resolved: while the power is off it answers EIO.
    let name = mountpoint
        .file_name()
        .ok_or_else(|| Error::Invalid(format!("{} names no directory", mountpoint.display())))?;
    let parent = match mountpoint.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let parent = parent.canonicalize().map_err(|e| Error::io("finding", &parent, e))?;
    let full = parent.join(name);
    // FNV-1a, 64 bits: stable across runs and builds.
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for byte in full.as_os_str().as_encoded_bytes() {
        hash = (hash ^ u64::from(*byte)).wrapping_mul(0x0100_0000_01b3);
    }
    Ok(std::env::temp_dir().join(format!("paxstore-crashfs-{hash:016x}.sock")))
}

/// What the server tells its owner.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Event {
    /// An `unmount` command was served: the mount is gone.
    Unmounted,
}

/// Serves commands for `fs` on `socket` in a thread, until an `unmount` command, which
/// unmounts and sends [`Event::Unmounted`] on `events`.
pub fn serve(
    fs: Arc<Mutex<Option<CrashFs>>>,
    socket: &Path,
    events: Sender<Event>,
) -> Result<std::thread::JoinHandle<()>, Error> {
    if socket.exists() {
        // A socket nobody listens on is left by a killed daemon; a live one is refused.
        if UnixStream::connect(socket).is_ok() {
            return Err(Error::Invalid(format!("{} is in use by another mount", socket.display())));
        }
        std::fs::remove_file(socket).map_err(|e| Error::io("removing", socket, e))?;
    }
    let listener = UnixListener::bind(socket).map_err(|e| Error::io("listening on", socket, e))?;
    let socket = socket.to_path_buf();
    let thread = std::thread::Builder::new()
        .name("paxstore-crashfs-control".into())
        .spawn(move || {
            for stream in listener.incoming() {
                let Ok(stream) = stream else { continue };
                let done = serve_one(&fs, stream);
                if done {
                    let _ = std::fs::remove_file(&socket);
                    let _ = events.send(Event::Unmounted);
                    return;
                }
            }
        })
        .map_err(|e| Error::io("starting the control thread for", Path::new("."), e))?;
    Ok(thread)
}

/// Serves one connection; whether it unmounted.
fn serve_one(fs: &Mutex<Option<CrashFs>>, stream: UnixStream) -> bool {
    let mut line = String::new();
    let mut reader = BufReader::new(&stream);
    if reader.read_line(&mut line).is_err() {
        return false;
    }
    let mut guard = fs.lock().unwrap_or_else(PoisonError::into_inner);
    let (reply, done) = match guard.as_mut() {
        None => ("error not mounted".to_owned(), false),
        Some(_) if line.trim() == "unmount" => match guard.take().map(CrashFs::unmount) {
            Some(Err(e)) => (format!("error {e}"), true),
            _ => ("ok".to_owned(), true),
        },
        Some(fs) => match execute(fs, line.trim()) {
            Ok(text) => (format!("ok {text}").trim_end().to_owned(), false),
            Err(e) => (format!("error {e}"), false),
        },
    };
    let mut out = &stream;
    let _ = writeln!(out, "{reply}");
    done
}

/// Runs one command (any but `unmount`) on `fs`; the text of its reply.
pub fn execute(fs: &mut CrashFs, line: &str) -> Result<String, Error> {
    let mut words = line.split_whitespace();
    let command = words.next().unwrap_or("");
    let args: Vec<&str> = words.collect();
    match command {
        "cut" => {
            let cut = parse_cut(&args)?;
            Ok(fs.power_cut(cut)?.to_string())
        }
        "fail" => {
            let fault = parse_fault(&args)?;
            let text = fault.to_string();
            fs.arm(fault)?;
            Ok(format!("armed {text}"))
        }
        "clear" => fs.clear_faults().map(|()| String::new()),
        "faults" => {
            let list: Vec<String> = fs.faults()?.iter().map(Fault::to_string).collect();
            Ok(list.join("; "))
        }
        "stats" => {
            let s = fs.stats()?;
            Ok(format!(
                "calls={} writes={} bytes_written={} fsyncs={} dir_fsyncs={} creates={} \
                 renames={} unlinks={} truncates={} faults_fired={} power_cuts={} held_bytes={}",
                s.calls,
                s.writes,
                s.bytes_written,
                s.fsyncs,
                s.dir_fsyncs,
                s.creates,
                s.renames,
                s.unlinks,
                s.truncates,
                s.faults_fired,
                s.power_cuts,
                s.held_bytes
            ))
        }
        other => Err(Error::Invalid(format!(
            "unknown command {other:?} (cut, fail, clear, faults, stats, unmount)"
        ))),
    }
}

fn key_values<'a>(args: &[&'a str]) -> Result<Vec<(&'a str, &'a str)>, Error> {
    args.iter()
        .map(|a| match a.split_once('=') {
            Some(kv) => Ok(kv),
            None if *a == "sticky" => Ok(("sticky", "")),
            None => Err(Error::Invalid(format!("argument {a:?} is not key=value"))),
        })
        .collect()
}

fn number(key: &str, value: &str) -> Result<u64, Error> {
    value.parse().map_err(|_| Error::Invalid(format!("{key}={value:?} is not a number")))
}

/// `seed=N unsynced=lost|prefix:T|reordered|pages`.
pub fn parse_cut(args: &[&str]) -> Result<PowerCut, Error> {
    let mut cut = PowerCut::seeded(0);
    for (key, value) in key_values(args)? {
        match key {
            "seed" => cut.seed = number(key, value)?,
            "unsynced" => {
                cut = match value.split_once(':') {
                    _ if value == "lost" => PowerCut::seeded(cut.seed),
                    _ if value == "reordered" => cut.reordered(),
                    _ if value == "pages" => cut.pages(),
                    Some(("prefix", torn)) => {
                        let torn = usize::try_from(number("prefix", torn)?)
                            .map_err(|_| Error::Invalid(format!("prefix:{torn} is too large")))?;
                        cut.torn_prefix(torn)
                    }
                    _ => {
                        return Err(Error::Invalid(format!(
                            "unsynced={value:?}: lost, prefix:T, reordered or pages"
                        )))
                    }
                }
            }
            _ => return Err(Error::Invalid(format!("cut takes seed= and unsynced=, not {key}="))),
        }
    }
    Ok(cut)
}

/// `op=.. effect=.. [nth=N] [pattern=GLOB] [sticky]`.
pub fn parse_fault(args: &[&str]) -> Result<Fault, Error> {
    let (mut op, mut effect) = (None, None);
    let (mut nth, mut pattern, mut sticky) = (1, "*".to_owned(), false);
    for (key, value) in key_values(args)? {
        match key {
            "op" => op = Some(value.parse::<Op>()?),
            "effect" => effect = Some(value.parse::<Effect>()?),
            "nth" => nth = number(key, value)?,
            "pattern" => pattern = value.to_owned(),
            "sticky" => sticky = true,
            _ => return Err(Error::Invalid(format!("fail does not take {key}="))),
        }
    }
    let (Some(op), Some(effect)) = (op, effect) else {
        return Err(Error::Invalid("fail needs op= and effect=".into()));
    };
    let fault = Fault::new(op, effect).nth(nth).matching(pattern);
    Ok(if sticky { fault.sticky() } else { fault })
}

/// Sends one command to the mount served on `socket`; the reply's text after `ok`.
pub fn request(socket: &Path, line: &str) -> Result<String, Error> {
    let stream = UnixStream::connect(socket).map_err(|e| Error::io("connecting to", socket, e))?;
    let mut out = &stream;
    writeln!(out, "{line}").map_err(|e| Error::io("writing to", socket, e))?;
    let mut reply = String::new();
    BufReader::new(&stream)
        .read_line(&mut reply)
        .map_err(|e| Error::io("reading from", socket, e))?;
    let reply = reply.trim_end();
    match reply.split_once(' ').unwrap_or((reply, "")) {
        ("ok", text) => Ok(text.to_owned()),
        ("error", why) => Err(Error::Invalid(why.to_owned())),
        _ => Err(Error::Invalid(format!("unreadable reply {reply:?} from {}", socket.display()))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Unsynced;

    #[test]
    fn cut_arguments_parse() {
        assert_eq!(parse_cut(&[]).unwrap(), PowerCut::seeded(0));
        let cut = parse_cut(&["seed=5", "unsynced=prefix:3"]).unwrap();
        assert_eq!(cut, PowerCut::seeded(5).torn_prefix(3));
        assert_eq!(parse_cut(&["unsynced=reordered"]).unwrap().unsynced, Unsynced::Reordered);
        assert!(parse_cut(&["unsynced=sometimes"]).is_err());
        assert!(parse_cut(&["seed=x"]).is_err());
    }

    #[test]
    fn fault_arguments_parse() {
        let f = parse_fault(&["op=fsync", "effect=enospc", "nth=2", "pattern=*.log", "sticky"])
            .unwrap();
        assert_eq!(f, Fault::new(Op::Fsync, Effect::Enospc).nth(2).matching("*.log").sticky());
        assert!(parse_fault(&["op=fsync"]).is_err());
        assert!(parse_fault(&["op=read", "effect=eio"]).is_err());
    }
}
