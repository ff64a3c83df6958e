//! The whole paxstore conformance suite against `FileStore`, in one line.

paxstore_conformance::storage_suite!(persistent, |dir: &std::path::Path| {
    custom_backend::FileStore::open(dir)
});
