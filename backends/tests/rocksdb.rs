//! The conformance suite against the RocksDB backend, in `Immediate` and `Buffered` mode.
#![cfg(feature = "rocksdb")]

paxstore_conformance::storage_suite!(persistent, |dir: &std::path::Path| {
    paxstore_backends::rocksdb::RocksDbStorage::open(dir, paxstore::Durability::Immediate)
});

mod buffered {
    // Durability changes what a reopen, a crash or a power cut leaves and what a failed
    // write may leave behind: those groups run here; the others run on the same engine in
    // the Immediate suite above (README, "CI time").
    paxstore_conformance::storage_suite!(
        persistent,
        buffered,
        |dir: &std::path::Path| {
            paxstore_backends::rocksdb::RocksDbStorage::open(dir, paxstore::Durability::Buffered)
        },
        only = [reopen, flush, crash, power_loss, failed_writes]
    );
}
