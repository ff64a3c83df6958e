//! The conformance suite against the sled backend, in `Immediate` and `Buffered` mode.
#![cfg(feature = "sled")]

paxstore_conformance::storage_suite!(persistent, |dir: &std::path::Path| {
    paxstore_backends::sled::SledStorage::open(dir, paxstore::Durability::Immediate)
});

mod buffered {
    paxstore_conformance::storage_suite!(persistent, |dir: &std::path::Path| {
        paxstore_backends::sled::SledStorage::open(dir, paxstore::Durability::Buffered)
    });
}
