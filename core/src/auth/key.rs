//! Keys, key ids and the receiver's keyring.

use std::collections::BTreeMap;
use std::fmt;

use hmac::Hmac;
use sha2::Sha256;

use crate::id::NodeId;

/// HMAC-SHA256 with its key already absorbed: the keyed state is computed
/// once per key and cloned per frame (a copy of two SHA-256 states), so a
/// frame costs only the hashing of its own bytes.
pub(crate) type Mac = Hmac<Sha256>;

/// Length of a [`Key`] in bytes.
pub const KEY_LEN: usize = 32;

/// A secret key the operator provisions: 32 bytes (256 bits, SHA-256's
/// block-size-independent recommendation for HMAC keys).
///
/// `Debug` never prints the bytes, so a key cannot leak into a log through
/// a config struct's `{:?}`.
#[derive(Clone, PartialEq, Eq)]
pub struct Key([u8; KEY_LEN]);

impl Key {
    /// A key from its bytes.
    pub const fn from_bytes(bytes: [u8; KEY_LEN]) -> Key {
        Key(bytes)
    }

    /// A key from 64 hexadecimal digits (either case; surrounding
    /// whitespace ignored): the form configuration files and environment
    /// variables carry it in (`openssl rand -hex 32` makes one).
    pub fn from_hex(text: &str) -> Result<Key, KeyError> {
        let text = text.trim();
        if text.len() != 2 * KEY_LEN {
            return Err(KeyError::WrongLength { digits: text.len() });
        }
        let mut bytes = [0u8; KEY_LEN];
        hex::decode_to_slice(text, &mut bytes).map_err(|_| KeyError::NotHex)?;
        Ok(Key(bytes))
    }

    /// The key's bytes.
    pub fn as_bytes(&self) -> &[u8; KEY_LEN] {
        &self.0
    }

    /// The keyed MAC state.
    pub(crate) fn mac(&self) -> Mac {
        // HMAC takes a key of any length: this cannot fail.
        <Mac as hmac::Mac>::new_from_slice(&self.0)
            .unwrap_or_else(|_| unreachable!("HMAC accepts any key length"))
    }
}

impl fmt::Debug for Key {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Key(<redacted>)")
    }
}

/// A key that does not parse.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum KeyError {
    /// Not 64 digits.
    #[error("a key is {expected} hexadecimal digits (32 bytes), found {digits}", expected = 2 * KEY_LEN)]
    WrongLength {
        /// How many characters there were.
        digits: usize,
    },
    /// A character that is not a hexadecimal digit.
    #[error("a key is hexadecimal digits only (0-9, a-f)")]
    NotHex,
}

/// Which key sealed a frame: a small number the operator assigns, so that
/// receivers can hold the old and the new key during a rotation and tell
/// which one a frame needs without trying both.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize, serde::Deserialize)]
pub struct KeyId(pub u16);

impl fmt::Display for KeyId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

/// The keys a receiver accepts frames under.
///
/// - **Fleet keys** are accepted for a frame claiming any sender. Every
///   holder of a fleet key can therefore speak as any node: a fleet key
///   keeps out whoever does not hold it, not a compromised member.
/// - **Node keys** are accepted only for frames claiming that node, and
///   once a node has a key of its own, fleet keys are no longer accepted
///   for it: a holder of the fleet key (or of another node's key) can no
///   longer impersonate it.
///
/// Each scope holds any number of key ids; during a rotation it holds the
/// current and the previous one (see the
/// [rotation procedure](crate::auth#rotation)).
#[derive(Clone, Default)]
pub struct Keyring {
    fleet: BTreeMap<KeyId, Mac>,
    nodes: BTreeMap<NodeId, BTreeMap<KeyId, Mac>>,
}

impl fmt::Debug for Keyring {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let nodes: BTreeMap<_, Vec<_>> =
            self.nodes.iter().map(|(n, keys)| (n, keys.keys().collect())).collect();
        f.debug_struct("Keyring")
            .field("fleet", &self.fleet.keys().collect::<Vec<_>>())
            .field("nodes", &nodes)
            .finish()
    }
}

impl Keyring {
    /// A keyring with no key: it accepts nothing.
    pub fn new() -> Keyring {
        Keyring::default()
    }

    /// A keyring with one fleet key.
    pub fn fleet(id: KeyId, key: &Key) -> Keyring {
        let mut ring = Keyring::new();
        ring.add_fleet_key(id, key);
        ring
    }

    /// Accept frames from any sender sealed under `id`; replaces a fleet
    /// key of the same id.
    pub fn add_fleet_key(&mut self, id: KeyId, key: &Key) {
        self.fleet.insert(id, key.mac());
    }

    /// Stop accepting the fleet key `id`; whether it was there.
    pub fn remove_fleet_key(&mut self, id: KeyId) -> bool {
        self.fleet.remove(&id).is_some()
    }

    /// Accept frames claiming `node` sealed under `id`, and no longer any
    /// fleet key for `node`.
    pub fn add_node_key(&mut self, node: NodeId, id: KeyId, key: &Key) {
        self.nodes.entry(node).or_default().insert(id, key.mac());
    }

    /// Stop accepting `node`'s key `id`; whether it was there. A node whose
    /// last own key is removed is under the fleet keys again.
    pub fn remove_node_key(&mut self, node: NodeId, id: KeyId) -> bool {
        let Some(keys) = self.nodes.get_mut(&node) else {
            return false;
        };
        let removed = keys.remove(&id).is_some();
        if keys.is_empty() {
            self.nodes.remove(&node);
        }
        removed
    }

    /// Whether no key at all is held.
    pub fn is_empty(&self) -> bool {
        self.fleet.is_empty() && self.nodes.is_empty()
    }

    /// The keyed state for a frame claiming `from` under `id`.
    pub(crate) fn lookup(&self, from: NodeId, id: KeyId) -> Option<&Mac> {
        match self.nodes.get(&from) {
            Some(own) => own.get(&id),
            None => self.fleet.get(&id),
        }
    }
}
