//! The replicated key-value service: the commands that go through the log, and the
//! state machine that applies them in log order.
//!
//! Every operation, reads included, is a [`Command`] appended to the log; a node answers
//! the client when it applies the command (see the crate docs on why reads go through
//! the log). Applying is deterministic, so every node that applied the same prefix of the
//! decided log holds the same [`KvState`].

mod snapshot;

use std::collections::BTreeMap;

use paxstore::Entry;
use serde::{Deserialize, Serialize};

pub use snapshot::{KeyFn, KvSnapshot};

/// The longest key accepted, in bytes.
pub const MAX_KEY_BYTES: usize = 1024;
/// The longest value accepted, in bytes.
pub const MAX_VALUE_BYTES: usize = 1 << 20;

/// Identifies one command, so the node that appended it can answer its client when the
/// command is applied. `incarnation` differs between runs of the same node, so numbers
/// never repeat across restarts.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct CommandId {
    /// The node the client talked to.
    pub node: u64,
    /// Chosen at the node's start (the wall clock in nanoseconds).
    pub incarnation: u64,
    /// Counts the node's commands within the incarnation.
    pub seq: u64,
}

/// One operation of the service.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum KvOp {
    /// Sets `key` to `value`.
    Put {
        /// The key.
        key: String,
        /// The new value.
        value: String,
    },
    /// Reads `key`.
    Get {
        /// The key.
        key: String,
    },
    /// Removes `key`.
    Delete {
        /// The key.
        key: String,
    },
    /// Sets `key` to `new` if its value is `expected` (`None`: if it is absent).
    Cas {
        /// The key.
        key: String,
        /// The value the key must hold (`None`: the key must be absent).
        expected: Option<String>,
        /// The value written if it does.
        new: String,
    },
}

impl KvOp {
    /// The key the operation is about.
    pub fn key(&self) -> &str {
        match self {
            KvOp::Put { key, .. }
            | KvOp::Get { key }
            | KvOp::Delete { key }
            | KvOp::Cas { key, .. } => key,
        }
    }

    /// Checks the sizes of the key and values against [`MAX_KEY_BYTES`] and
    /// [`MAX_VALUE_BYTES`].
    pub fn validate(&self) -> Result<(), String> {
        let key = self.key();
        if key.is_empty() {
            return Err("the key is empty".into());
        }
        if key.len() > MAX_KEY_BYTES {
            return Err(format!("the key is {} bytes; at most {MAX_KEY_BYTES}", key.len()));
        }
        let values: &[Option<&String>] = match self {
            KvOp::Put { value, .. } => &[Some(value)],
            KvOp::Cas { expected, new, .. } => &[expected.as_ref(), Some(new)],
            KvOp::Get { .. } | KvOp::Delete { .. } => &[],
        };
        for value in values.iter().flatten() {
            if value.len() > MAX_VALUE_BYTES {
                return Err(format!("a value is {} bytes; at most {MAX_VALUE_BYTES}", value.len()));
            }
        }
        Ok(())
    }
}

/// What applying a [`KvOp`] returned.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum KvOutcome {
    /// A put: the value it replaced.
    Put {
        /// The value before.
        previous: Option<String>,
    },
    /// A get: the value read.
    Get {
        /// The value, `None` if the key is absent.
        value: Option<String>,
    },
    /// A delete: the value it removed.
    Delete {
        /// The value before.
        previous: Option<String>,
    },
    /// A compare-and-set: whether it wrote, and the value after.
    Cas {
        /// Whether the key held the expected value (and now holds the new one).
        ok: bool,
        /// The key's value after the operation.
        current: Option<String>,
    },
}

/// One entry of the replicated log.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Command {
    /// Who is waiting for it.
    pub id: CommandId,
    /// What it does.
    pub op: KvOp,
}

impl Entry for Command {
    type Snapshot = KvSnapshot;
}

/// The service's state: the map, as of the commands applied so far.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct KvState {
    map: BTreeMap<String, String>,
}

impl KvState {
    /// An empty map.
    pub fn new() -> Self {
        KvState::default()
    }

    /// The state a snapshot of the log from index 0 stands for.
    pub fn from_snapshot(snapshot: &KvSnapshot) -> Self {
        KvState { map: snapshot.evaluate_from_empty() }
    }

    /// Applies `op`, returning what the client is told.
    pub fn apply(&mut self, op: &KvOp) -> KvOutcome {
        match op {
            KvOp::Put { key, value } => {
                KvOutcome::Put { previous: self.map.insert(key.clone(), value.clone()) }
            }
            KvOp::Get { key } => KvOutcome::Get { value: self.map.get(key).cloned() },
            KvOp::Delete { key } => KvOutcome::Delete { previous: self.map.remove(key) },
            KvOp::Cas { key, expected, new } => {
                let ok = self.map.get(key) == expected.as_ref();
                if ok {
                    self.map.insert(key.clone(), new.clone());
                }
                KvOutcome::Cas { ok, current: self.map.get(key).cloned() }
            }
        }
    }

    /// The value of `key`.
    pub fn get(&self, key: &str) -> Option<&String> {
        self.map.get(key)
    }

    /// How many keys are present.
    pub fn len(&self) -> usize {
        self.map.len()
    }

    /// Whether no key is present.
    pub fn is_empty(&self) -> bool {
        self.map.is_empty()
    }

    /// A 64-bit digest of every key and value, in key order (FNV-1a): equal states have
    /// equal digests, so nodes compare their states without shipping them.
    pub fn digest(&self) -> u64 {
        let mut h = Fnv::new();
        for (k, v) in &self.map {
            h.write(&(k.len() as u64).to_le_bytes());
            h.write(k.as_bytes());
            h.write(&(v.len() as u64).to_le_bytes());
            h.write(v.as_bytes());
        }
        h.finish()
    }
}

/// FNV-1a, 64 bits: a stable digest (the same in every process and build), for comparing
/// states and log ranges across nodes. Not for anything adversarial.
#[derive(Clone, Copy, Debug)]
pub struct Fnv(u64);

impl Fnv {
    /// The empty digest.
    pub fn new() -> Self {
        Fnv(0xcbf2_9ce4_8422_2325)
    }

    /// Feeds `bytes`.
    pub fn write(&mut self, bytes: &[u8]) {
        for b in bytes {
            self.0 ^= u64::from(*b);
            self.0 = self.0.wrapping_mul(0x0000_0100_0000_01b3);
        }
    }

    /// The digest so far.
    pub fn finish(&self) -> u64 {
        self.0
    }
}

impl Default for Fnv {
    fn default() -> Self {
        Fnv::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn put(k: &str, v: &str) -> KvOp {
        KvOp::Put { key: k.into(), value: v.into() }
    }

    #[test]
    fn apply_returns_what_each_operation_saw() {
        let mut s = KvState::new();
        assert_eq!(s.apply(&put("a", "1")), KvOutcome::Put { previous: None });
        assert_eq!(s.apply(&put("a", "2")), KvOutcome::Put { previous: Some("1".into()) });
        assert_eq!(
            s.apply(&KvOp::Get { key: "a".into() }),
            KvOutcome::Get { value: Some("2".into()) }
        );
        let cas = |e: Option<&str>, n: &str| KvOp::Cas {
            key: "a".into(),
            expected: e.map(Into::into),
            new: n.into(),
        };
        assert_eq!(
            s.apply(&cas(Some("1"), "x")),
            KvOutcome::Cas { ok: false, current: Some("2".into()) }
        );
        assert_eq!(
            s.apply(&cas(Some("2"), "3")),
            KvOutcome::Cas { ok: true, current: Some("3".into()) }
        );
        assert_eq!(
            s.apply(&KvOp::Delete { key: "a".into() }),
            KvOutcome::Delete { previous: Some("3".into()) }
        );
        assert_eq!(
            s.apply(&cas(None, "4")),
            KvOutcome::Cas { ok: true, current: Some("4".into()) }
        );
        assert_eq!(s.len(), 1);
    }

    #[test]
    fn digests_tell_states_apart() {
        let mut a = KvState::new();
        let mut b = KvState::new();
        assert_eq!(a.digest(), b.digest());
        a.apply(&put("ab", "c"));
        b.apply(&put("a", "bc"));
        assert_ne!(a.digest(), b.digest());
        b.apply(&KvOp::Delete { key: "a".into() });
        b.apply(&put("ab", "c"));
        assert_eq!(a.digest(), b.digest());
    }

    #[test]
    fn oversized_keys_and_values_are_refused_by_name() {
        assert!(put("", "v").validate().unwrap_err().contains("empty"));
        let long = "k".repeat(MAX_KEY_BYTES + 1);
        assert!(put(&long, "v").validate().unwrap_err().contains("key"));
        let big = "v".repeat(MAX_VALUE_BYTES + 1);
        assert!(put("k", &big).validate().unwrap_err().contains("value"));
        assert!(put("k", "v").validate().is_ok());
    }
}
