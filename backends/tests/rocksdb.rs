//! The conformance suite against the RocksDB backend, in `Immediate` and `Buffered` mode.
#![cfg(feature = "rocksdb")]

paxstore_conformance::storage_suite!(persistent, |dir: &std::path::Path| {
    paxstore_backends::rocksdb::RocksDbStorage::open(dir, paxstore::Durability::Immediate)
});

mod buffered {
    paxstore_conformance::storage_suite!(persistent, buffered, |dir: &std::path::Path| {
        paxstore_backends::rocksdb::RocksDbStorage::open(dir, paxstore::Durability::Buffered)
    });
}
