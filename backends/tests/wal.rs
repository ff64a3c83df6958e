//! The conformance suite against the WAL: Immediate (default segments), Buffered, and
//! tiny segments so every case also rolls over, recycles and deletes segments.
#![cfg(feature = "wal")]

paxstore_conformance::storage_suite!(persistent, |dir: &std::path::Path| {
    paxstore_backends::wal::WalStorage::open(dir, paxstore::Durability::Immediate)
});

mod buffered {
    paxstore_conformance::storage_suite!(persistent, buffered, |dir: &std::path::Path| {
        paxstore_backends::wal::WalStorage::open(dir, paxstore::Durability::Buffered)
    });
}

mod small_segments {
    use paxstore_backends::wal::{WalOptions, WalStorage};

    paxstore_conformance::storage_suite!(persistent, |dir: &std::path::Path| {
        // 256 KiB segments: nearly every case rolls over, the 100,000-entry case hundreds
        // of times, and the suite's MiB-sized batches and snapshots each get a segment of
        // their own size.
        WalStorage::open_with_options(
            dir,
            WalOptions::new(paxstore::Durability::Immediate).segment_bytes(256 << 10),
        )
    });
}

mod no_zeros_ahead {
    use paxstore_backends::wal::{WalOptions, WalStorage};

    // Recovery must not depend on the zeros written ahead of the tail (FORMAT.md).
    paxstore_conformance::storage_suite!(persistent, |dir: &std::path::Path| {
        WalStorage::open_with_options(
            dir,
            WalOptions::new(paxstore::Durability::Immediate)
                .segment_bytes(256 << 10)
                .zero_ahead(false),
        )
    });
}
