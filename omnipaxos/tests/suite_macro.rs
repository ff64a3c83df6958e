//! The one line a user writes to run the whole suite on their own OmniPaxos storage: every
//! case is a named test, and every one passes in OmniPaxos-contract mode, here on
//! `Careful` (an OmniPaxos storage without `MemoryStorage`'s defects) and on
//! `DurableCareful` (the same, kept in a file: the reopen and SIGKILL crash cases run too).

mod careful;

paxstore_omnipaxos::omnipaxos_storage_suite!(volatile, |_dir: &std::path::Path| {
    careful::Careful::default()
});

mod durable {
    use super::careful;

    paxstore_omnipaxos::omnipaxos_storage_suite!(persistent, |dir: &std::path::Path| {
        careful::DurableCareful::open(dir)
    });
}
