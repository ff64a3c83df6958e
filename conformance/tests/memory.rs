//! The memory backend against the whole suite (reopen and crash cases: ignored).

paxstore_conformance::storage_suite!(volatile, |_dir: &std::path::Path| Ok(
    paxstore_backends::MemoryStorage::new()
));
