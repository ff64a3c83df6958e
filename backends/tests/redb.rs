//! The conformance suite against the redb backend, in `Immediate` and `Buffered` mode.
#![cfg(feature = "redb")]

paxstore_conformance::storage_suite!(persistent, |dir: &std::path::Path| {
    paxstore_backends::redb::RedbStorage::open(dir, paxstore::Durability::Immediate)
});

mod buffered {
    paxstore_conformance::storage_suite!(persistent, buffered, |dir: &std::path::Path| {
        paxstore_backends::redb::RedbStorage::open(dir, paxstore::Durability::Buffered)
    });
}
