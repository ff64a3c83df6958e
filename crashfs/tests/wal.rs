//! paxstore's WAL backend on the crash filesystem: with `Immediate`, every acknowledged
//! batch survives power cuts of every kind, across segment roll-overs and trims, with the
//! store open or closed when the power goes.
#![cfg(target_os = "linux")]
#![allow(clippy::unwrap_used)]

mod common;

use std::path::Path;

use common::Fixture;
use paxstore::{Durability, Storage};
use paxstore_backends::wal::{WalOptions, WalStorage};
use paxstore_conformance::TestEntry;
use paxstore_crashfs::PowerCut;

fn open(dir: &Path, durability: Durability) -> WalStorage<TestEntry> {
    let options = WalOptions::new(durability).segment_bytes(256 << 10);
    WalStorage::open_with_options(dir, options).unwrap()
}

/// Every entry from `compacted` to the end, by id.
fn ids(wal: &WalStorage<TestEntry>) -> Vec<u64> {
    let from = wal.get_compacted_idx().unwrap();
    wal.get_suffix(from).unwrap().iter().map(|e| e.id).collect()
}

#[test]
fn wal_immediate_keeps_every_acknowledged_batch_across_power_cuts() {
    let mut fx = Fixture::new();
    let dir = fx.path("wal");
    let mut next = 0u64;
    let mut trimmed = 0usize;
    let cuts = [
        PowerCut::seeded(1),
        PowerCut::seeded(2).torn_prefix(3),
        PowerCut::seeded(3).reordered(),
        PowerCut::seeded(4).pages(),
        PowerCut::seeded(5).pages(),
    ];
    for (round, cut) in cuts.into_iter().enumerate() {
        let mut wal = open(&dir, Durability::Immediate);
        assert_eq!(ids(&wal), (trimmed as u64..next).collect::<Vec<_>>(), "round {round}");
        // ~120 KiB a round on 256 KiB segments: roll-overs and, with the trims, recycling.
        for _ in 0..300 {
            wal.append_entries(vec![TestEntry::new(next, 400)]).unwrap();
            next += 1;
        }
        trimmed = next as usize - 200;
        wal.trim(trimmed).unwrap();
        let stats = fx.fs.stats().unwrap();
        assert!(stats.fsyncs >= 300, "Immediate appends made {} fsyncs", stats.fsyncs);
        if round % 2 == 0 {
            drop(wal);
            fx.cut_with(cut);
        } else {
            // The power goes with the store open: its files fail from then on.
            fx.cut_with(cut);
            drop(wal);
        }
    }
    let wal = open(&dir, Durability::Immediate);
    assert_eq!(ids(&wal), (trimmed as u64..next).collect::<Vec<_>>());
}

/// What a `Buffered` WAL does after power cuts that keep part of its unsynced writes:
/// printed for the record, not asserted (issue 15 part 2 decides the policy).
#[test]
#[ignore = "exploration: prints what a Buffered WAL does after power cuts"]
fn wal_buffered_after_power_cuts() {
    for seed in 0..30u64 {
        let mut fx = Fixture::new();
        let dir = fx.path("wal");
        let mut wal = open(&dir, Durability::Buffered);
        for i in 0..300 {
            wal.append_entries(vec![TestEntry::new(i, 400)]).unwrap();
        }
        drop(wal);
        let cut = match seed % 3 {
            0 => PowerCut::seeded(seed).torn_prefix(2),
            1 => PowerCut::seeded(seed).reordered(),
            _ => PowerCut::seeded(seed).pages(),
        };
        let report = fx.cut_with(cut);
        let opened =
            WalStorage::<TestEntry>::open_with_options(&dir, WalOptions::new(Durability::Buffered));
        match opened {
            Ok(wal) => {
                let got = ids(&wal);
                let prefix = got.iter().enumerate().all(|(i, &id)| id == i as u64);
                println!("{report}: opens, {} entries, a prefix: {prefix}", got.len());
            }
            Err(e) => println!("{report}: open fails: {e}"),
        }
    }
}
