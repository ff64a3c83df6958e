//! The proof: a tiny key-value store written three ways, by a child process killed and
//! then hit by a power cut. Only the correct way (temporary file, fsync, rename,
//! directory fsync) keeps every value it acknowledged; writing without fsync, or
//! renaming without the directory fsync, is caught.
//!
//! The child is this test binary run again with `CRASHFS_CHILD_DIR` set, selecting
//! [`writer_child_process`]; it prints `ack N` after each put returns.
#![cfg(target_os = "linux")]
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::fs::{File, OpenOptions};
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use common::{ensure, Fixture};
use paxstore_crashfs::PowerCut;

const DIR_ENV: &str = "CRASHFS_CHILD_DIR";
const WAY_ENV: &str = "CRASHFS_CHILD_WAY";
const PUTS: u64 = 20;
const KEYS: u64 = 4;

/// How the store makes a put durable.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Way {
    /// Temporary file and rename, no fsync at all.
    NoFsync,
    /// Temporary file, fsync, rename; the directory is never fsynced.
    NoDirFsync,
    /// Temporary file, fsync, rename, directory fsync.
    Correct,
}

impl Way {
    fn name(self) -> &'static str {
        match self {
            Way::NoFsync => "no-fsync",
            Way::NoDirFsync => "no-dir-fsync",
            Way::Correct => "correct",
        }
    }

    fn parse(s: &str) -> Way {
        [Way::NoFsync, Way::NoDirFsync, Way::Correct]
            .into_iter()
            .find(|w| w.name() == s)
            .expect("a known way")
    }
}

/// One file per key in `dir`.
struct TinyStore {
    dir: PathBuf,
    way: Way,
}

impl TinyStore {
    fn put(&self, key: u64, value: &[u8]) -> std::io::Result<()> {
        let tmp = self.dir.join(format!("{key}.tmp"));
        let mut f = OpenOptions::new().write(true).create(true).truncate(true).open(&tmp)?;
        f.write_all(value)?;
        if self.way != Way::NoFsync {
            f.sync_all()?;
        }
        drop(f);
        std::fs::rename(&tmp, self.dir.join(key.to_string()))?;
        if self.way == Way::Correct {
            File::open(&self.dir)?.sync_all()?;
        }
        Ok(())
    }

    fn get(&self, key: u64) -> Option<Vec<u8>> {
        common::read(&self.dir.join(key.to_string()))
    }
}

fn value(i: u64) -> Vec<u8> {
    format!("value of put {i}").repeat(100).into_bytes()
}

#[test]
#[ignore = "the child half of the kill-and-cut tests in this file; they start it"]
fn writer_child_process() {
    let (Ok(dir), Ok(way)) = (std::env::var(DIR_ENV), std::env::var(WAY_ENV)) else { return };
    let store = TinyStore { dir: PathBuf::from(dir), way: Way::parse(&way) };
    let mut out = std::io::stdout();
    for i in 0..PUTS {
        store.put(i % KEYS, &value(i)).unwrap();
        writeln!(out, "ack {i}").unwrap();
        out.flush().unwrap();
    }
    // Wait to be killed.
    loop {
        std::thread::park();
    }
}

/// Runs the child on `dir` until it acknowledged every put, then kills it (SIGKILL).
fn run_child_until_acked(dir: &Path, way: Way) -> u64 {
    let exe = std::env::current_exe().unwrap();
    let mut child = Command::new(exe)
        .args(["writer_child_process", "--exact", "--ignored", "--nocapture", "--test-threads=1"])
        .env(DIR_ENV, dir)
        .env(WAY_ENV, way.name())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut acked = 0;
    for line in BufReader::new(child.stdout.take().unwrap()).lines() {
        let line = line.unwrap();
        if let Some(n) = line.strip_prefix("ack ") {
            acked = n.parse::<u64>().unwrap() + 1;
            if acked == PUTS {
                break;
            }
        }
    }
    child.kill().unwrap();
    child.wait().unwrap();
    acked
}

/// After the kill and a power cut, every key holds the last value acknowledged for it.
fn acknowledged_puts_survive(way: Way) -> Result<(), String> {
    let mut fx = Fixture::new();
    std::fs::create_dir(fx.path("db")).unwrap();
    fx.sync_dir("");
    let acked = run_child_until_acked(&fx.path("db"), way);
    ensure(acked == PUTS, format!("the child acknowledged {acked} puts, not {PUTS}"))?;
    let report = fx.cut_with(PowerCut::seeded(acked));
    let store = TinyStore { dir: fx.path("db"), way };
    for key in 0..KEYS {
        let last = (0..PUTS).filter(|i| i % KEYS == key).max().unwrap();
        let got = store.get(key);
        ensure(
            got.as_deref() == Some(&value(last)[..]),
            format!(
                "{}: key {key} lost its acknowledged put {last} ({} bytes there) after {report}",
                way.name(),
                got.map_or(0, |v| v.len())
            ),
        )?;
    }
    Ok(())
}

#[test]
fn the_correct_way_keeps_every_acknowledged_put() {
    acknowledged_puts_survive(Way::Correct).unwrap();
}

#[test]
fn writing_without_fsync_is_caught() {
    let err = acknowledged_puts_survive(Way::NoFsync).unwrap_err();
    eprintln!("caught: {err}");
}

#[test]
fn renaming_without_the_directory_fsync_is_caught() {
    let err = acknowledged_puts_survive(Way::NoDirFsync).unwrap_err();
    eprintln!("caught: {err}");
}

#[test]
fn the_naive_ways_survive_a_kill_without_a_power_cut() {
    // What the SIGKILL-only crash test sees: the page cache outlives the process, so the
    // naive stores look correct. Only the power cut tells them apart.
    for way in [Way::NoFsync, Way::NoDirFsync] {
        let fx = Fixture::new();
        std::fs::create_dir(fx.path("db")).unwrap();
        let acked = run_child_until_acked(&fx.path("db"), way);
        let store = TinyStore { dir: fx.path("db"), way };
        for key in 0..KEYS {
            let last = (0..acked).filter(|i| i % KEYS == key).max().unwrap();
            assert_eq!(store.get(key), Some(value(last)), "{}: key {key}", way.name());
        }
    }
}
