//! Key → partition, exactly as Kafka's Java client's default partitioner, so keyed data lands
//! in the partition a Kafka client would pick: `toPositive(murmur2(key)) % partitions`.
//! Keyless records use [`KeylessPartitioning`]: round-robin per record, or sticky (KIP-480:
//! stay on one partition until its batch is sent, so batches fill up).

/// Kafka's `Utils.murmur2` (MurmurHash2, seed `0x9747b28c`), as a signed 32-bit value.
///
/// ```
/// assert_eq!(keel_stream::murmur2(b"foobar"), -790_332_482);
/// ```
pub fn murmur2(data: &[u8]) -> i32 {
    const M: u32 = 0x5bd1_e995;
    const R: u32 = 24;
    let len = data.len();
    let mut h: u32 = 0x9747_b28c ^ (len as u32);
    let mut chunks = data.chunks_exact(4);
    for c in &mut chunks {
        let mut k = u32::from_le_bytes([c[0], c[1], c[2], c[3]]);
        k = k.wrapping_mul(M);
        k ^= k >> R;
        k = k.wrapping_mul(M);
        h = h.wrapping_mul(M);
        h ^= k;
    }
    let tail = chunks.remainder();
    if tail.len() >= 3 {
        h ^= u32::from(tail[2]) << 16;
    }
    if tail.len() >= 2 {
        h ^= u32::from(tail[1]) << 8;
    }
    if !tail.is_empty() {
        h ^= u32::from(tail[0]);
        h = h.wrapping_mul(M);
    }
    h ^= h >> 13;
    h = h.wrapping_mul(M);
    h ^= h >> 15;
    h as i32
}

/// The partition Kafka's default partitioner gives `key` among `partitions` (> 0).
///
/// ```
/// assert_eq!(keel_stream::partition_for_key(b"foobar", 12), (-790_332_482i32 & 0x7fff_ffff) as u32 % 12);
/// ```
pub fn partition_for_key(key: &[u8], partitions: u32) -> u32 {
    ((murmur2(key) & 0x7fff_ffff) as u32) % partitions.max(1)
}

/// How records without a key are spread.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum KeylessPartitioning {
    /// Stick to one partition until its batch is sealed, then move on (fuller batches).
    #[default]
    Sticky,
    /// Next partition for every record.
    RoundRobin,
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Kafka's `UtilsTest.testMurmur2`, plus the empty key.
    #[test]
    fn murmur2_matches_kafka_vectors() {
        let cases: [(&[u8], i32); 7] = [
            (b"21", -973_932_308),
            (b"foobar", -790_332_482),
            (b"a-little-bit-long-string", -985_981_536),
            (b"a-little-bit-longer-string", -1_486_304_829),
            (
                b"lkjh234lh9fiuh90y23oiuhsafujhadof229phr9h19h89h8",
                -58_897_971,
            ),
            (b"abc", 479_470_107),
            (b"", 275_646_681),
        ];
        for (key, hash) in cases {
            assert_eq!(murmur2(key), hash, "{:?}", std::str::from_utf8(key));
        }
    }

    #[test]
    fn partition_is_to_positive_modulo() {
        // -973932308 & 0x7fffffff = 1173551340; % 7 = 1173551340 - 7*167650191 = 3.
        assert_eq!(partition_for_key(b"21", 7), 3);
        for p in 1..50 {
            assert!(partition_for_key(b"abc", p) < p);
        }
    }
}
