//! The conformance suite against the fjall backend, in `Immediate` and `Buffered` mode.
#![cfg(feature = "fjall")]

paxstore_conformance::storage_suite!(persistent, |dir: &std::path::Path| {
    paxstore_backends::fjall::FjallStorage::open(dir, paxstore::Durability::Immediate)
});

mod buffered {
    paxstore_conformance::storage_suite!(persistent, buffered, |dir: &std::path::Path| {
        paxstore_backends::fjall::FjallStorage::open(dir, paxstore::Durability::Buffered)
    });
}
