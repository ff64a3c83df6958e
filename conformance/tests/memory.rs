//! The memory backend against the whole suite (reopen and crash cases: ignored).

paxstore_conformance::storage_suite!(
    volatile,
    new = || Ok(paxstore_backends::MemoryStorage::new())
);
