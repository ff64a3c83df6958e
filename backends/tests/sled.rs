//! The conformance suite against the sled backend, in `Immediate` and `Buffered` mode.
//!
//! `failed_write_changes_nothing` is ignored: after an injected `EIO` in one of a batch's
//! I/O calls, sled deadlocks (a later write waits forever on its concurrency-control
//! lock; found on the crash filesystem, see the backend's docs).
#![cfg(feature = "sled")]

paxstore_conformance::storage_suite!(
    persistent,
    |dir: &std::path::Path| {
        paxstore_backends::sled::SledStorage::open(dir, paxstore::Durability::Immediate)
    },
    failed_writes_ignored =
        "sled deadlocks after an I/O error in a write (see the sled backend docs)"
);

mod buffered {
    paxstore_conformance::storage_suite!(
        persistent,
        buffered,
        |dir: &std::path::Path| {
            paxstore_backends::sled::SledStorage::open(dir, paxstore::Durability::Buffered)
        },
        failed_writes_ignored =
            "sled deadlocks after an I/O error in a write (see the sled backend docs)"
    );
}
