//! The conformance suite against the WAL: every case on Immediate with default segments;
//! on Buffered, the groups durability changes; on tiny segments (with and without zeros
//! ahead of the tail), the groups whose writes roll over, recycle and delete segments and
//! whose logs are recovered; with no recent entries kept in memory, the groups that read
//! what batches wrote. The other cases of those suites are reported ignored, by
//! name, with the reason (README, "CI time").
#![cfg(feature = "wal")]

paxstore_conformance::storage_suite!(persistent, |dir: &std::path::Path| {
    paxstore_backends::wal::WalStorage::open(dir, paxstore::Durability::Immediate)
});

mod buffered {
    // What a reopen, a crash or a power cut leaves, and a failed write: the rest is the
    // same code as Immediate's.
    paxstore_conformance::storage_suite!(
        persistent,
        buffered,
        |dir: &std::path::Path| {
            paxstore_backends::wal::WalStorage::open(dir, paxstore::Durability::Buffered)
        },
        only = [reopen, flush, crash, power_loss, failed_writes]
    );
}

mod small_segments {
    use paxstore_backends::wal::{WalOptions, WalStorage};

    // 256 KiB segments: the 100,000-entry case rolls over hundreds of times, the MiB-sized
    // entries and the crash, power and kill cases' big batches each get a segment of their
    // own size, and recovery reads many segments. The groups that write only a few KiB
    // (ops, errors, atomicity, stopsign, limits, flush, random) never fill one: they run
    // in the suite above.
    paxstore_conformance::storage_suite!(
        persistent,
        |dir: &std::path::Path| {
            WalStorage::open_with_options(
                dir,
                WalOptions::new(paxstore::Durability::Immediate).segment_bytes(256 << 10),
            )
        },
        only = [sizes, reopen, crash, power_loss, failed_writes]
    );
}

mod no_zeros_ahead {
    use paxstore_backends::wal::{WalOptions, WalStorage};

    // Recovery must not depend on the zeros written ahead of the tail (FORMAT.md): the
    // groups that recover a log, on small segments as above; the rest is the same code.
    paxstore_conformance::storage_suite!(
        persistent,
        |dir: &std::path::Path| {
            WalStorage::open_with_options(
                dir,
                WalOptions::new(paxstore::Durability::Immediate)
                    .segment_bytes(256 << 10)
                    .zero_ahead(false),
            )
        },
        only = [sizes, reopen, crash, power_loss, failed_writes]
    );
}

mod decoded_reads {
    use paxstore_backends::wal::{WalOptions, WalStorage};

    // Reads of recently written entries are served from memory (`recent_bytes`); with
    // none kept, every read decodes from the map: the groups that read what a batch wrote.
    paxstore_conformance::storage_suite!(
        persistent,
        |dir: &std::path::Path| {
            WalStorage::open_with_options(
                dir,
                WalOptions::new(paxstore::Durability::Immediate).recent_bytes(0),
            )
        },
        only = [ops, atomicity, sizes, random]
    );
}
