//! Zig-zag varints as Kafka writes them inside records (`ByteUtils.writeVarint/Varlong`).

/// Appends `v` as a zig-zag varint (at most 5 bytes).
pub(crate) fn put_varint(out: &mut Vec<u8>, v: i32) {
    put_varlong(out, i64::from(v));
}

/// Appends `v` as a zig-zag varlong (at most 10 bytes).
pub(crate) fn put_varlong(out: &mut Vec<u8>, v: i64) {
    let mut z = ((v << 1) ^ (v >> 63)) as u64;
    while z >= 0x80 {
        out.push((z as u8) | 0x80);
        z >>= 7;
    }
    out.push(z as u8);
}

/// Encoded length of `v` as a varint.
#[cfg(test)]
fn varint_len(v: i32) -> usize {
    let mut z = ((i64::from(v) << 1) ^ (i64::from(v) >> 63)) as u64;
    let mut n = 1;
    while z >= 0x80 {
        z >>= 7;
        n += 1;
    }
    n
}

/// Reads a zig-zag varlong of at most `max_bytes` bytes from `buf[*pos..]`.
fn get_zigzag(buf: &[u8], pos: &mut usize, max_bytes: usize) -> Option<i64> {
    let mut z: u64 = 0;
    for i in 0..max_bytes {
        let b = *buf.get(*pos)?;
        *pos += 1;
        z |= u64::from(b & 0x7f) << (7 * i);
        if b & 0x80 == 0 {
            return Some(((z >> 1) as i64) ^ -((z & 1) as i64));
        }
    }
    None
}

/// Reads a varint; `None` on truncation, overlong encoding or overflow.
pub(crate) fn get_varint(buf: &[u8], pos: &mut usize) -> Option<i32> {
    i32::try_from(get_zigzag(buf, pos, 5)?).ok()
}

/// Reads a varlong; `None` on truncation or overlong encoding.
pub(crate) fn get_varlong(buf: &[u8], pos: &mut usize) -> Option<i64> {
    get_zigzag(buf, pos, 10)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn zigzag_matches_kafka_examples() {
        // From the protobuf/Kafka zig-zag table: 0→0, -1→1, 1→2, -2→3, 300→0xd8 0x04.
        for (v, bytes) in [
            (0, vec![0]),
            (-1, vec![1]),
            (1, vec![2]),
            (-2, vec![3]),
            (300, vec![0xd8, 0x04]),
        ] {
            let mut out = Vec::new();
            put_varint(&mut out, v);
            assert_eq!(out, bytes, "{v}");
            assert_eq!(varint_len(v), bytes.len());
            let mut pos = 0;
            assert_eq!(get_varint(&out, &mut pos), Some(v));
        }
    }

    #[test]
    fn roundtrip_extremes_and_reject_truncation() {
        for v in [i64::MIN, i64::MAX, -123_456_789_012, 0] {
            let mut out = Vec::new();
            put_varlong(&mut out, v);
            let mut pos = 0;
            assert_eq!(get_varlong(&out, &mut pos), Some(v));
            let mut pos = 0;
            assert_eq!(get_varlong(&out[..out.len() - 1], &mut pos), None);
        }
        let mut pos = 0;
        assert_eq!(
            get_varint(&[0xff, 0xff, 0xff, 0xff, 0xff, 0x01], &mut pos),
            None
        );
    }
}
