//! The single-keyspace layout, for engines with one sorted keyspace (RocksDB's default
//! column family, sled's default tree):
//!
//! | key | value |
//! |---|---|
//! | `b"e"` ++ index as `u64` **big-endian** (9 bytes) | the entry at that absolute index |
//! | `b"m:"` ++ [`MetaKey::name`] (`b"m:format"`, `b"m:log_end"`, ...) | the metadata value |
//!
//! Entry keys sort by index and before every metadata key (`b'e' < b'm'`), so a range
//! read is one forward iteration over `[entry_key(from), entry_key(to))` and the last
//! entry is the last key below [`ENTRIES_END`].

use paxstore::{StorageError, StorageResult};

use super::MetaKey;

const ENTRY_PREFIX: u8 = b'e';

/// The first key past every entry key.
pub const ENTRIES_END: [u8; 1] = [ENTRY_PREFIX + 1];

/// The key of the entry at absolute index `idx`.
pub fn entry_key(idx: u64) -> [u8; 9] {
    let mut key = [0u8; 9];
    key[0] = ENTRY_PREFIX;
    key[1..].copy_from_slice(&idx.to_be_bytes());
    key
}

/// The index of an entry key, or `None` if `key` is not one.
pub fn index_of_key(key: &[u8]) -> Option<u64> {
    match key {
        [ENTRY_PREFIX, rest @ ..] => rest.try_into().ok().map(u64::from_be_bytes),
        _ => None,
    }
}

/// The index of a key an engine returned from a read of the entry range; any other key
/// there is [`StorageError::Corruption`].
pub fn entry_index(key: &[u8]) -> StorageResult<u64> {
    index_of_key(key).ok_or_else(|| StorageError::Corruption {
        location: format!("key {}", String::from_utf8_lossy(key)),
        detail: "a key among the entry keys that is not b\"e\" ++ an 8-byte index".to_owned(),
    })
}

/// The key of a metadata value.
pub fn meta_key(key: MetaKey) -> &'static [u8] {
    match key {
        MetaKey::Format => b"m:format",
        MetaKey::Compacted => b"m:compacted",
        MetaKey::LogEnd => b"m:log_end",
        MetaKey::Decided => b"m:decided",
        MetaKey::Promise => b"m:promise",
        MetaKey::Accepted => b"m:accepted",
        MetaKey::Stopsign => b"m:stopsign",
        MetaKey::Snapshot => b"m:snapshot",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entry_keys_sort_by_index_and_before_metadata() {
        let keys = [entry_key(0), entry_key(255), entry_key(256), entry_key(u64::MAX)];
        assert!(keys.windows(2).all(|w| w[0] < w[1]));
        assert!(entry_key(u64::MAX)[..] < ENTRIES_END[..]);
        assert!(ENTRIES_END[..] < meta_key(MetaKey::Compacted)[..]);
        assert_eq!(index_of_key(&entry_key(77)), Some(77));
        assert_eq!(index_of_key(meta_key(MetaKey::Format)), None);
        assert_eq!(entry_index(&entry_key(9)).ok(), Some(9));
        assert!(matches!(entry_index(b"e\0"), Err(StorageError::Corruption { .. })));
    }

    #[test]
    fn meta_keys_are_the_prefixed_names() {
        for key in MetaKey::ALL {
            assert_eq!(meta_key(key), format!("m:{}", key.name()).as_bytes());
        }
    }
}
