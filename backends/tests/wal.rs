//! The conformance suite against the WAL: Immediate (default segments), Buffered, and
//! tiny segments so every case also rolls over, recycles and deletes segments.
#![cfg(feature = "wal")]

paxstore_conformance::storage_suite!(persistent, |dir: &std::path::Path| {
    paxstore_backends::wal::WalStorage::open(dir, paxstore::Durability::Immediate)
});

mod buffered {
    paxstore_conformance::storage_suite!(persistent, |dir: &std::path::Path| {
        paxstore_backends::wal::WalStorage::open(dir, paxstore::Durability::Buffered)
    });
}

mod small_segments {
    use paxstore_backends::wal::{WalOptions, WalStorage};

    paxstore_conformance::storage_suite!(persistent, |dir: &std::path::Path| {
        // 8 MiB segments: the suite's 3 MiB batches still fit one batch record (3/4 of a
        // segment), and the 100,000-entry case rolls over many times.
        WalStorage::open_with_options(
            dir,
            WalOptions::new(paxstore::Durability::Immediate).segment_bytes(8 << 20),
        )
    });
}
