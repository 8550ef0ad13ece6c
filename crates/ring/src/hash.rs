//! Deterministic, portable hashing: xxh3 with fixed seeds, never `RandomState`.
//!
//! Two processes on two machines (any endianness, any Rust version) compute the same
//! hash for the same key bytes, so they agree on placement. Integers hash as their
//! little-endian bytes, so `7u64` and `7u64.to_le_bytes()` land on the same node.

use xxhash_rust::xxh3::xxh3_64_with_seed;

/// Seed for key hashes.
pub const KEY_SEED: u64 = 0x6b65_656c_2d6b_6579; // "keel-key"
/// Seed for ring / multi-probe points (virtual node `i` hashes `name ‖ i` with this seed).
pub(crate) const POINT_SEED: u64 = 0x6b65_656c_2d70_7400; // "keel-pt\0"
/// Seed for rendezvous node hashes.
pub(crate) const RENDEZVOUS_SEED: u64 = 0x6b65_656c_2d68_7277; // "keel-hrw"
/// Seeds for Maglev offset and skip.
pub(crate) const MAGLEV_OFFSET_SEED: u64 = 0x6b65_656c_2d6d_6f66; // "keel-mof"
pub(crate) const MAGLEV_SKIP_SEED: u64 = 0x6b65_656c_2d6d_736b; // "keel-msk"

/// A key that can be placed: anything with a portable byte representation.
///
/// Implemented for byte slices, strings and the fixed-width integers (little-endian
/// bytes). Implement it for your own key types by hashing a stable byte encoding with
/// [`hash_bytes`].
pub trait RingKey {
    /// The key's portable 64-bit hash.
    fn ring_hash(&self) -> u64;
}

/// The portable hash of `bytes` used for keys (xxh3-64, seed [`KEY_SEED`]).
///
/// # Examples
/// ```
/// use keel_ring::{hash_bytes, RingKey};
/// assert_eq!(hash_bytes(b"user:42"), "user:42".ring_hash());
/// assert_eq!(hash_bytes(&7u64.to_le_bytes()), 7u64.ring_hash());
/// ```
#[inline]
pub fn hash_bytes(bytes: &[u8]) -> u64 {
    xxh3_64_with_seed(bytes, KEY_SEED)
}

#[inline]
pub(crate) fn xxh3_seeded(bytes: &[u8], seed: u64) -> u64 {
    xxh3_64_with_seed(bytes, seed)
}

impl RingKey for [u8] {
    #[inline]
    fn ring_hash(&self) -> u64 {
        hash_bytes(self)
    }
}

impl<const N: usize> RingKey for [u8; N] {
    #[inline]
    fn ring_hash(&self) -> u64 {
        hash_bytes(self)
    }
}

impl RingKey for Vec<u8> {
    #[inline]
    fn ring_hash(&self) -> u64 {
        hash_bytes(self)
    }
}

impl RingKey for str {
    #[inline]
    fn ring_hash(&self) -> u64 {
        hash_bytes(self.as_bytes())
    }
}

impl RingKey for String {
    #[inline]
    fn ring_hash(&self) -> u64 {
        hash_bytes(self.as_bytes())
    }
}

impl<T: RingKey + ?Sized> RingKey for &T {
    #[inline]
    fn ring_hash(&self) -> u64 {
        (**self).ring_hash()
    }
}

macro_rules! int_keys {
    ($($t:ty),*) => {$(
        impl RingKey for $t {
            #[inline]
            fn ring_hash(&self) -> u64 {
                hash_bytes(&self.to_le_bytes())
            }
        }
    )*};
}
int_keys!(u16, u32, u64, u128, i16, i32, i64, i128);

/// A strong 64-bit finaliser (the `splitmix64` / Stafford "mix13" output function): a
/// bijection whose output bits each depend on every input bit.
#[inline]
pub(crate) fn mix64(mut x: u64) -> u64 {
    x ^= x >> 30;
    x = x.wrapping_mul(0xbf58_476d_1ce4_e5b9);
    x ^= x >> 27;
    x = x.wrapping_mul(0x94d0_49bb_1331_11eb);
    x ^ (x >> 31)
}

/// Maps a uniform 64-bit hash onto `0..n` without a division (Lemire's multiply-shift):
/// uniform, monotone in `hash`, and the same on every platform.
#[inline]
pub(crate) fn fast_range(hash: u64, n: u64) -> u64 {
    ((u128::from(hash) * u128::from(n)) >> 64) as u64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn is_standard_xxh3() {
        // Reference value of XXH3_64bits("") with seed 0 from the xxHash test suite.
        assert_eq!(xxh3_seeded(b"", 0), 0x2D06_8005_38D3_94C2);
        assert_eq!(7u64.ring_hash(), hash_bytes(&[7, 0, 0, 0, 0, 0, 0, 0]));
        assert_eq!("ab".ring_hash(), b"ab".to_vec().ring_hash());
    }

    #[test]
    fn fast_range_is_in_range_and_monotone() {
        assert_eq!(fast_range(0, 7), 0);
        assert_eq!(fast_range(u64::MAX, 7), 6);
        assert!(fast_range(1 << 63, 10) == 5);
    }
}
