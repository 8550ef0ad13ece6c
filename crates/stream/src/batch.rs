//! Kafka's record batch, magic v2 — the on-disk and (next: on-the-wire) format.
//!
//! ```text
//! offset  field                 covered by CRC-32C
//!  0      baseOffset      i64   no   (the log rewrites it on append)
//!  8      batchLength     i32   no   (bytes after this field)
//! 12      leaderEpoch     i32   no
//! 16      magic (= 2)     i8    no
//! 17      crc             u32   —    CRC-32C (Castagnoli) of bytes 21..end
//! 21      attributes      i16   yes  bits 0-2 compression, 3 timestamp type, 4 transactional, 5 control
//! 23      lastOffsetDelta i32   yes
//! 27      baseTimestamp   i64   yes
//! 35      maxTimestamp    i64   yes
//! 43      producerId      i64   yes  -1 when not idempotent
//! 51      producerEpoch   i16   yes
//! 53      baseSequence    i32   yes
//! 57      recordCount     i32   yes
//! 61      records…              yes  each: varint length, i8 attrs, varlong tsDelta, varint offsetDelta,
//!                                     varint keyLen (-1 = null), key, varint valueLen, value,
//!                                     varint headerCount, headers (varint keyLen, key, varint valueLen, value)
//! ```
//!
//! Storing exactly this layout means a Kafka-protocol broker serves `Fetch` by copying file
//! bytes and accepts `Produce` by validating the CRC and patching `baseOffset` — no re-encoding.
//! The CRC leaves out `baseOffset` (and the epoch) precisely so the broker can assign offsets
//! without recomputing it.

use bytes::Bytes;

use crate::error::StreamError;
use crate::varint::{get_varint, get_varlong, put_varint, put_varlong};

/// The only batch format version this log reads and writes.
pub const MAGIC: i8 = 2;
/// Bytes before the first record.
pub const BATCH_HEADER_LEN: usize = 61;
/// `producerId` of a batch from a non-idempotent producer.
pub const NO_PRODUCER_ID: i64 = -1;
/// Position of the first byte covered by the CRC.
const CRC_START: usize = 21;
const ATTR_COMPRESSION_MASK: i16 = 0x07;
const ATTR_CONTROL: i16 = 0x20;

/// A record header (`key` is UTF-8 in Kafka).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Header {
    /// Header name.
    pub key: String,
    /// Header value; `None` is Kafka's null.
    pub value: Option<Bytes>,
}

/// A record to append: optional key, optional value (null = tombstone), headers, timestamp.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Record {
    /// Partitioning and compaction key.
    pub key: Option<Bytes>,
    /// Payload; `None` is a tombstone.
    pub value: Option<Bytes>,
    /// Headers.
    pub headers: Vec<Header>,
    /// Create time in ms since the epoch; `None` takes the clock's time at batching.
    pub timestamp: Option<i64>,
}

impl Record {
    /// A keyless record.
    ///
    /// ```
    /// let r = keel_stream::Record::new("hello");
    /// assert_eq!(r.value.as_deref(), Some(&b"hello"[..]));
    /// ```
    pub fn new(value: impl Into<Bytes>) -> Self {
        Self {
            value: Some(value.into()),
            ..Self::default()
        }
    }

    /// A keyed record.
    pub fn keyed(key: impl Into<Bytes>, value: impl Into<Bytes>) -> Self {
        Self {
            key: Some(key.into()),
            value: Some(value.into()),
            ..Self::default()
        }
    }

    /// Adds a header.
    #[must_use]
    pub fn with_header(mut self, key: impl Into<String>, value: impl Into<Bytes>) -> Self {
        self.headers.push(Header {
            key: key.into(),
            value: Some(value.into()),
        });
        self
    }

    /// Sets the create timestamp (ms since the epoch).
    #[must_use]
    pub fn with_timestamp(mut self, ms: i64) -> Self {
        self.timestamp = Some(ms);
        self
    }

    /// Upper bound of this record's encoded size inside a batch.
    pub fn encoded_size_bound(&self) -> usize {
        let h: usize = self
            .headers
            .iter()
            .map(|h| 10 + h.key.len() + h.value.as_ref().map_or(0, Bytes::len))
            .sum();
        5 + 1
            + 10
            + 5
            + 5
            + self.key.as_ref().map_or(0, Bytes::len)
            + 5
            + self.value.as_ref().map_or(0, Bytes::len)
            + 5
            + h
    }
}

/// A record read back from the log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredRecord {
    /// Its offset in the partition.
    pub offset: i64,
    /// Create timestamp (ms since the epoch).
    pub timestamp: i64,
    /// Key.
    pub key: Option<Bytes>,
    /// Value (`None` = tombstone).
    pub value: Option<Bytes>,
    /// Headers.
    pub headers: Vec<Header>,
}

/// Idempotent-producer fields of a batch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProducerInfo {
    /// Producer id from `init_producer_id`.
    pub producer_id: i64,
    /// Producer epoch.
    pub producer_epoch: i16,
    /// Sequence number of the batch's first record, per partition.
    pub base_sequence: i32,
}

/// The fixed 61-byte header of a batch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BatchHeader {
    /// Offset of the first record.
    pub base_offset: i64,
    /// Bytes after the length field.
    pub batch_length: i32,
    /// Leader epoch (unused on one node).
    pub partition_leader_epoch: i32,
    /// Always 2.
    pub magic: i8,
    /// Stored CRC-32C.
    pub crc: u32,
    /// Attributes bit field.
    pub attributes: i16,
    /// Offset of the last record minus `base_offset`.
    pub last_offset_delta: i32,
    /// Timestamp of the first record.
    pub base_timestamp: i64,
    /// Largest timestamp in the batch.
    pub max_timestamp: i64,
    /// Producer id or -1.
    pub producer_id: i64,
    /// Producer epoch.
    pub producer_epoch: i16,
    /// First sequence number.
    pub base_sequence: i32,
    /// Number of records.
    pub record_count: i32,
}

fn be_i16(b: &[u8], at: usize) -> i16 {
    i16::from_be_bytes([b[at], b[at + 1]])
}
fn be_i32(b: &[u8], at: usize) -> i32 {
    i32::from_be_bytes(b[at..at + 4].try_into().expect("4 bytes"))
}
fn be_i64(b: &[u8], at: usize) -> i64 {
    i64::from_be_bytes(b[at..at + 8].try_into().expect("8 bytes"))
}

impl BatchHeader {
    /// Parses the fixed header from the first 61 bytes and checks magic and lengths (not the CRC).
    ///
    /// # Errors
    /// [`StreamError::CorruptBatch`] when `buf` is short, the magic is not 2, or a length or
    /// count is impossible.
    pub fn parse(buf: &[u8]) -> Result<Self, StreamError> {
        if buf.len() < BATCH_HEADER_LEN {
            return Err(StreamError::CorruptBatch("short batch header"));
        }
        let h = Self {
            base_offset: be_i64(buf, 0),
            batch_length: be_i32(buf, 8),
            partition_leader_epoch: be_i32(buf, 12),
            magic: buf[16] as i8,
            crc: u32::from_be_bytes(buf[17..21].try_into().expect("4 bytes")),
            attributes: be_i16(buf, 21),
            last_offset_delta: be_i32(buf, 23),
            base_timestamp: be_i64(buf, 27),
            max_timestamp: be_i64(buf, 35),
            producer_id: be_i64(buf, 43),
            producer_epoch: be_i16(buf, 51),
            base_sequence: be_i32(buf, 53),
            record_count: be_i32(buf, 57),
        };
        if h.magic != MAGIC {
            return Err(StreamError::CorruptBatch("magic is not 2"));
        }
        if (h.batch_length as i64) < (BATCH_HEADER_LEN - 12) as i64 {
            return Err(StreamError::CorruptBatch("batch length too small"));
        }
        if h.last_offset_delta < 0 || h.record_count < 0 || h.base_offset < 0 {
            return Err(StreamError::CorruptBatch(
                "negative offset delta, count or base offset",
            ));
        }
        if h.base_offset
            .checked_add(i64::from(h.last_offset_delta))
            .is_none()
        {
            return Err(StreamError::CorruptBatch("last offset overflows"));
        }
        Ok(h)
    }

    /// Whole batch size in bytes, `baseOffset` and length field included.
    pub fn total_len(&self) -> usize {
        self.batch_length as usize + 12
    }

    /// Offset of the batch's last record.
    pub fn last_offset(&self) -> i64 {
        self.base_offset + i64::from(self.last_offset_delta)
    }

    /// Sequence number of the batch's last record (wrapping as Kafka's does).
    pub fn last_sequence(&self) -> i32 {
        self.base_sequence.wrapping_add(self.last_offset_delta)
    }

    /// Compression codec bits (0 = none).
    pub fn compression(&self) -> i16 {
        self.attributes & ATTR_COMPRESSION_MASK
    }
}

/// Checks a whole batch: header, exact length and CRC-32C.
///
/// # Errors
/// [`StreamError::CorruptBatch`] naming the first problem found.
pub fn validate_batch(buf: &[u8]) -> Result<BatchHeader, StreamError> {
    let h = BatchHeader::parse(buf)?;
    if h.total_len() != buf.len() {
        return Err(StreamError::CorruptBatch(
            "batch length does not match its bytes",
        ));
    }
    if crc32c::crc32c(&buf[CRC_START..]) != h.crc {
        return Err(StreamError::CorruptBatch("crc mismatch"));
    }
    Ok(h)
}

/// Overwrites `baseOffset` (outside the CRC, so the batch stays valid).
pub(crate) fn set_base_offset(buf: &mut [u8], base: i64) {
    buf[0..8].copy_from_slice(&base.to_be_bytes());
}

/// Encodes records as one uncompressed v2 batch with base offset 0.
///
/// Records without a timestamp get `now_ms`.
///
/// # Errors
/// [`StreamError::EmptyBatch`] for no records; [`StreamError::RecordTooLarge`] when the batch
/// would not fit Kafka's `i32` lengths.
///
/// ```
/// use keel_stream::{batch, Record};
/// let bytes = batch::encode_batch(&[Record::keyed("k", "v")], 1_000, None).unwrap();
/// let header = batch::validate_batch(&bytes).unwrap();
/// assert_eq!((header.record_count, header.max_timestamp), (1, 1_000));
/// ```
pub fn encode_batch(
    records: &[Record],
    now_ms: i64,
    producer: Option<ProducerInfo>,
) -> Result<Vec<u8>, StreamError> {
    let first = records.first().ok_or(StreamError::EmptyBatch)?;
    let count = i32::try_from(records.len()).map_err(|_| StreamError::RecordTooLarge {
        size: records.len(),
        max: i32::MAX as usize,
    })?;
    let base_ts = first.timestamp.unwrap_or(now_ms);
    let bound: usize = records
        .iter()
        .map(Record::encoded_size_bound)
        .sum::<usize>()
        + BATCH_HEADER_LEN;
    if bound > i32::MAX as usize {
        return Err(StreamError::RecordTooLarge {
            size: bound,
            max: i32::MAX as usize,
        });
    }
    let mut out = Vec::with_capacity(bound);
    out.resize(BATCH_HEADER_LEN, 0);
    let mut max_ts = i64::MIN;
    let mut body = Vec::new();
    for (i, r) in records.iter().enumerate() {
        let ts = r.timestamp.unwrap_or(now_ms);
        max_ts = max_ts.max(ts);
        body.clear();
        body.push(0); // record attributes
        put_varlong(&mut body, ts.wrapping_sub(base_ts));
        put_varint(&mut body, i as i32);
        put_bytes(&mut body, r.key.as_deref());
        put_bytes(&mut body, r.value.as_deref());
        put_varint(&mut body, r.headers.len() as i32);
        for h in &r.headers {
            put_bytes(&mut body, Some(h.key.as_bytes()));
            put_bytes(&mut body, h.value.as_deref());
        }
        put_varint(&mut out, body.len() as i32);
        out.extend_from_slice(&body);
    }
    let (pid, epoch, seq) = producer.map_or((NO_PRODUCER_ID, -1, -1), |p| {
        (p.producer_id, p.producer_epoch, p.base_sequence)
    });
    let batch_length = (out.len() - 12) as i32;
    out[8..12].copy_from_slice(&batch_length.to_be_bytes());
    out[12..16].copy_from_slice(&(-1i32).to_be_bytes());
    out[16] = MAGIC as u8;
    out[21..23].copy_from_slice(&0i16.to_be_bytes());
    out[23..27].copy_from_slice(&(count - 1).to_be_bytes());
    out[27..35].copy_from_slice(&base_ts.to_be_bytes());
    out[35..43].copy_from_slice(&max_ts.to_be_bytes());
    out[43..51].copy_from_slice(&pid.to_be_bytes());
    out[51..53].copy_from_slice(&epoch.to_be_bytes());
    out[53..57].copy_from_slice(&seq.to_be_bytes());
    out[57..61].copy_from_slice(&count.to_be_bytes());
    let crc = crc32c::crc32c(&out[CRC_START..]);
    out[17..21].copy_from_slice(&crc.to_be_bytes());
    Ok(out)
}

/// Encodes already-stored records as one uncompressed batch covering the offsets
/// `base..=last` (compaction): each record keeps its own offset, so deltas may be sparse, and
/// the batch may hold no record at all (it then only keeps the offset range contiguous).
/// `empty_ts` is the batch timestamp when there are no records.
pub(crate) fn encode_compacted(
    base: i64,
    last: i64,
    records: &[StoredRecord],
    empty_ts: i64,
) -> Result<Vec<u8>, StreamError> {
    let too_large = |size| StreamError::RecordTooLarge {
        size,
        max: i32::MAX as usize,
    };
    let last_delta = i32::try_from(last - base).map_err(|_| too_large(usize::MAX))?;
    let count = i32::try_from(records.len()).map_err(|_| too_large(records.len()))?;
    let base_ts = records.first().map_or(empty_ts, |r| r.timestamp);
    let mut out = vec![0u8; BATCH_HEADER_LEN];
    let mut max_ts = if records.is_empty() {
        empty_ts
    } else {
        i64::MIN
    };
    let mut body = Vec::new();
    for r in records {
        max_ts = max_ts.max(r.timestamp);
        body.clear();
        body.push(0);
        put_varlong(&mut body, r.timestamp.wrapping_sub(base_ts));
        put_varint(
            &mut body,
            i32::try_from(r.offset - base).map_err(|_| too_large(usize::MAX))?,
        );
        put_bytes(&mut body, r.key.as_deref());
        put_bytes(&mut body, r.value.as_deref());
        put_varint(&mut body, r.headers.len() as i32);
        for h in &r.headers {
            put_bytes(&mut body, Some(h.key.as_bytes()));
            put_bytes(&mut body, h.value.as_deref());
        }
        put_varint(&mut out, body.len() as i32);
        out.extend_from_slice(&body);
    }
    if out.len() > i32::MAX as usize {
        return Err(too_large(out.len()));
    }
    let batch_length = (out.len() - 12) as i32;
    out[0..8].copy_from_slice(&base.to_be_bytes());
    out[8..12].copy_from_slice(&batch_length.to_be_bytes());
    out[12..16].copy_from_slice(&(-1i32).to_be_bytes());
    out[16] = MAGIC as u8;
    out[23..27].copy_from_slice(&last_delta.to_be_bytes());
    out[27..35].copy_from_slice(&base_ts.to_be_bytes());
    out[35..43].copy_from_slice(&max_ts.to_be_bytes());
    out[43..51].copy_from_slice(&NO_PRODUCER_ID.to_be_bytes());
    out[51..53].copy_from_slice(&(-1i16).to_be_bytes());
    out[53..57].copy_from_slice(&(-1i32).to_be_bytes());
    out[57..61].copy_from_slice(&count.to_be_bytes());
    let crc = crc32c::crc32c(&out[CRC_START..]);
    out[17..21].copy_from_slice(&crc.to_be_bytes());
    Ok(out)
}

fn put_bytes(out: &mut Vec<u8>, b: Option<&[u8]>) {
    match b {
        None => put_varint(out, -1),
        Some(b) => {
            put_varint(out, b.len() as i32);
            out.extend_from_slice(b);
        }
    }
}

/// Decodes the records of one validated batch; key and value share `batch`'s memory.
///
/// Control batches (transaction markers) yield no records.
///
/// # Errors
/// [`StreamError::CorruptBatch`] on a bad CRC or malformed record; [`StreamError::Unsupported`]
/// for compressed batches (stored and served as they are, but not decoded here).
pub fn decode_batch(batch: &Bytes) -> Result<Vec<StoredRecord>, StreamError> {
    let h = validate_batch(batch)?;
    if h.attributes & ATTR_CONTROL != 0 {
        return Ok(Vec::new());
    }
    if h.compression() != 0 {
        return Err(StreamError::Unsupported("compressed record batches"));
    }
    let bad = |m| StreamError::CorruptBatch(m);
    let buf = &batch[..];
    let mut pos = BATCH_HEADER_LEN;
    let mut out = Vec::with_capacity(h.record_count.clamp(0, 4096) as usize);
    for _ in 0..h.record_count {
        let len = get_varint(buf, &mut pos).ok_or(bad("bad record length"))?;
        let end = usize::try_from(len)
            .ok()
            .and_then(|l| pos.checked_add(l))
            .filter(|&e| e <= buf.len())
            .ok_or(bad("record length past the batch"))?;
        let rec = &buf[..end];
        pos += 1; // attributes
        let ts_delta = get_varlong(rec, &mut pos).ok_or(bad("bad timestamp delta"))?;
        let off_delta = get_varint(rec, &mut pos).ok_or(bad("bad offset delta"))?;
        let key = get_bytes(batch, rec, &mut pos)?;
        let value = get_bytes(batch, rec, &mut pos)?;
        let n_headers = get_varint(rec, &mut pos).ok_or(bad("bad header count"))?;
        if n_headers < 0 || n_headers as usize > rec.len() {
            return Err(bad("bad header count"));
        }
        let mut headers = Vec::with_capacity(n_headers as usize);
        for _ in 0..n_headers {
            let k = get_bytes(batch, rec, &mut pos)?.ok_or(bad("null header key"))?;
            let key = String::from_utf8(k.to_vec()).map_err(|_| bad("header key not utf-8"))?;
            let value = get_bytes(batch, rec, &mut pos)?;
            headers.push(Header { key, value });
        }
        if pos != end {
            return Err(bad("record length does not match its fields"));
        }
        let offset = h
            .base_offset
            .checked_add(i64::from(off_delta))
            .filter(|&o| o >= 0)
            .ok_or(bad("record offset out of range"))?;
        out.push(StoredRecord {
            offset,
            timestamp: h.base_timestamp.wrapping_add(ts_delta),
            key,
            value,
            headers,
        });
    }
    if pos != buf.len() {
        return Err(bad("trailing bytes after the records"));
    }
    Ok(out)
}

fn get_bytes(whole: &Bytes, rec: &[u8], pos: &mut usize) -> Result<Option<Bytes>, StreamError> {
    let len = get_varint(rec, pos).ok_or(StreamError::CorruptBatch("bad length"))?;
    if len < 0 {
        return Ok(None);
    }
    let end = pos
        .checked_add(len as usize)
        .filter(|&e| e <= rec.len())
        .ok_or(StreamError::CorruptBatch("field past the record"))?;
    let b = whole.slice(*pos..end);
    *pos = end;
    Ok(Some(b))
}

/// Splits concatenated batches (as returned by a fetch) into single batches without copying.
/// A partial batch at the end (a fetch cut at `max_bytes` never produces one) is dropped.
pub fn split_batches(bytes: &Bytes) -> impl Iterator<Item = Result<Bytes, StreamError>> + '_ {
    let mut pos = 0usize;
    std::iter::from_fn(move || {
        if pos + BATCH_HEADER_LEN > bytes.len() {
            return None;
        }
        let h = match BatchHeader::parse(&bytes[pos..]) {
            Ok(h) => h,
            Err(e) => {
                pos = bytes.len();
                return Some(Err(e));
            }
        };
        let end = pos + h.total_len();
        if end > bytes.len() {
            return None;
        }
        let b = bytes.slice(pos..end);
        pos = end;
        Some(Ok(b))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn crc32c_is_castagnoli() {
        // The standard check value of CRC-32C over "123456789".
        assert_eq!(crc32c::crc32c(b"123456789"), 0xE306_9283);
    }

    #[test]
    fn roundtrip_with_headers_nulls_and_timestamps() {
        let recs = vec![
            Record::keyed("k1", "v1")
                .with_header("h", "x")
                .with_timestamp(5_000),
            Record {
                key: None,
                value: None,
                headers: vec![],
                timestamp: Some(4_000),
            },
            Record::new(vec![7u8; 300]),
        ];
        let pi = ProducerInfo {
            producer_id: 9,
            producer_epoch: 1,
            base_sequence: 41,
        };
        let mut raw = encode_batch(&recs, 6_000, Some(pi)).unwrap();
        set_base_offset(&mut raw, 100);
        let h = validate_batch(&raw).unwrap();
        assert_eq!(h.base_offset, 100);
        assert_eq!(h.last_offset(), 102);
        assert_eq!(h.max_timestamp, 6_000);
        assert_eq!(h.last_sequence(), 43);
        let out = decode_batch(&Bytes::from(raw)).unwrap();
        assert_eq!(out.len(), 3);
        assert_eq!(out[0].offset, 100);
        assert_eq!(out[0].headers[0].key, "h");
        assert_eq!(out[1].timestamp, 4_000);
        assert_eq!(out[1].value, None);
        assert_eq!(out[2].value.as_deref(), Some(&[7u8; 300][..]));
        let bound: usize =
            recs.iter().map(Record::encoded_size_bound).sum::<usize>() + BATCH_HEADER_LEN;
        assert!(
            validate_batch(&encode_batch(&recs, 6_000, None).unwrap())
                .unwrap()
                .total_len()
                <= bound
        );
    }

    #[test]
    fn every_flipped_byte_is_detected() {
        let raw = encode_batch(&[Record::keyed("key", "value")], 1, None).unwrap();
        // Bytes 0..17 are outside the CRC: base offset, length, epoch, magic — length and
        // magic are checked structurally; the rest by the CRC.
        for i in 8..raw.len() {
            if (12..16).contains(&i) {
                continue; // leader epoch: not covered, not checked (as in Kafka)
            }
            let mut bad = raw.clone();
            bad[i] ^= 0x40;
            assert!(validate_batch(&bad).is_err(), "flip at {i} undetected");
        }
    }

    /// `decode_batch` and `BatchHeader::last_offset` are public: a crafted base offset near
    /// `i64::MAX` overflowed (a panic in debug builds) instead of being a typed error.
    #[test]
    fn a_base_offset_near_i64_max_is_an_error_not_an_overflow() {
        let mut raw = encode_batch(&[Record::new("a"), Record::new("b")], 1, None).unwrap();
        set_base_offset(&mut raw, i64::MAX);
        assert!(matches!(
            BatchHeader::parse(&raw),
            Err(StreamError::CorruptBatch(_))
        ));
        assert!(matches!(
            decode_batch(&Bytes::from(raw)),
            Err(StreamError::CorruptBatch(_))
        ));
    }

    #[test]
    fn malformed_records_are_errors_not_panics() {
        let raw = encode_batch(&[Record::keyed("key", "value")], 1, None).unwrap();
        // Corrupt the record's key length but fix the CRC, so only record parsing can catch it.
        let mut bad = raw.clone();
        bad[BATCH_HEADER_LEN + 4] = 0x7f;
        let crc = crc32c::crc32c(&bad[CRC_START..]);
        bad[17..21].copy_from_slice(&crc.to_be_bytes());
        assert!(matches!(
            decode_batch(&Bytes::from(bad)),
            Err(StreamError::CorruptBatch(_))
        ));
    }
}
