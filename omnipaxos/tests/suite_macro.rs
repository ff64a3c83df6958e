//! The one line a user writes to run the whole suite on their own OmniPaxos storage, here
//! on `Careful` (an OmniPaxos storage without `MemoryStorage`'s defects): every case is a
//! named test, and every one passes in OmniPaxos-contract mode.

mod careful;

paxstore_omnipaxos::omnipaxos_storage_suite!(volatile, |_dir: &std::path::Path| {
    careful::Careful::default()
});
