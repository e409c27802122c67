//! Seeded randomness, handed down.
//!
//! A run has one `u64` seed. Every component (a node, a link, a fault) draws
//! from its own *child stream*, derived from the parent seed and a stable
//! label, never from a shared generator. Adding a node therefore does not
//! reshuffle the random choices of the others, and a component's behaviour
//! depends only on the run seed and its own name.
//!
//! Streams are ChaCha8 ([`rand_chacha::ChaCha8Rng`]): portable, fast, and
//! identical on every platform, which is what makes a seed replay bit for bit
//! on another machine.

use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

/// The generator every component uses.
pub type Rng = ChaCha8Rng;

/// A seed from which child seeds and generators are derived.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize, serde::Deserialize)]
pub struct Seed(pub u64);

impl Seed {
    /// The child seed for the component with numeric label `label`.
    ///
    /// Distinct labels give independent-looking seeds (SplitMix64 finaliser
    /// over the parent and the label); the same pair always gives the same
    /// child.
    #[must_use]
    pub fn child(self, label: u64) -> Seed {
        Seed(mix64(self.0 ^ mix64(label.wrapping_add(0x9E37_79B9_7F4A_7C15))))
    }

    /// The child seed for the component named `name` (an instance name such
    /// as `checkout/0`, a link, a fault). Stable across runs, platforms and
    /// fleet changes that leave the name alone.
    #[must_use]
    pub fn child_named(self, name: &str) -> Seed {
        self.child(fnv1a(name.as_bytes()))
    }

    /// A fresh generator positioned at the start of this seed's stream.
    pub fn rng(self) -> Rng {
        ChaCha8Rng::seed_from_u64(self.0)
    }
}

/// SplitMix64's finaliser: a bijection on `u64` with good avalanche.
pub const fn mix64(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// 64-bit FNV-1a: a stable hash of bytes (unlike `std`'s, which may change
/// between Rust releases).
pub const fn fnv1a(bytes: &[u8]) -> u64 {
    let mut hash = 0xcbf2_9ce4_8422_2325_u64;
    let mut i = 0;
    while i < bytes.len() {
        hash ^= bytes[i] as u64;
        hash = hash.wrapping_mul(0x0000_0100_0000_01B3);
        i += 1;
    }
    hash
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::Rng as _;

    #[test]
    fn children_are_stable_and_distinct() {
        let root = Seed(42);
        assert_eq!(root.child_named("checkout/0"), root.child_named("checkout/0"));
        assert_ne!(root.child_named("checkout/0"), root.child_named("checkout/1"));
        assert_ne!(root.child(1), root.child(2));
        assert_ne!(Seed(1).child(7), Seed(2).child(7));
    }

    #[test]
    fn same_seed_same_stream() {
        let mut a = Seed(7).rng();
        let mut b = Seed(7).rng();
        for _ in 0..16 {
            assert_eq!(a.next_u64(), b.next_u64());
        }
    }

    #[test]
    fn streams_do_not_depend_on_siblings() {
        // Deriving more children first must not change an existing child.
        let root = Seed(99);
        let before = root.child_named("payments/1").rng().next_u64();
        let _others: Vec<Seed> = (0..100).map(|i| root.child(i)).collect();
        let after = root.child_named("payments/1").rng().next_u64();
        assert_eq!(before, after);
    }
}
