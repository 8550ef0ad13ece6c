//! One segment: an append-only file of record batches plus its in-memory offset/time index.
//!
//! The index is *dense*: one entry per batch (Kafka's is sparse, one per 4 KiB), holding the
//! batch's first offset (relative to the segment's base), its byte position and the running
//! maximum timestamp up to that batch. Offsets and running maxima both only grow, so seeking by
//! offset or by timestamp is a binary search over the same array. The index is rebuilt on open
//! by walking the batch headers (61 bytes each), so it needs no files of its own.

use std::fs::{File, OpenOptions};
use std::io::{BufReader, Read};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::batch::{BATCH_HEADER_LEN, BatchHeader, validate_batch};
use crate::error::StreamError;

/// File name of the segment starting at `base`: 20 zero-padded digits, as Kafka names them.
pub(crate) fn file_name(base: i64) -> String {
    format!("{base:020}.log")
}

/// Parses a segment file name back to its base offset.
pub(crate) fn parse_file_name(name: &str) -> Option<i64> {
    let digits = name.strip_suffix(".log")?;
    if digits.len() != 20 || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    digits.parse().ok()
}

#[derive(Debug, Clone, Copy)]
pub(crate) struct IndexEntry {
    /// First offset of the batch minus the segment's base offset.
    pub(crate) offset_delta: u32,
    /// Byte position of the batch in the file.
    pub(crate) position: u32,
    /// Largest timestamp of this batch and all before it in the segment.
    pub(crate) max_ts: i64,
}

#[derive(Debug)]
pub(crate) struct Segment {
    pub(crate) base_offset: i64,
    pub(crate) path: PathBuf,
    pub(crate) file: Arc<File>,
    /// Bytes of complete, published batches.
    pub(crate) size: u64,
    /// One past the last offset in this segment.
    pub(crate) next_offset: i64,
    pub(crate) index: Vec<IndexEntry>,
    /// Clock reading at the first append (age-based roll, time retention fallback).
    pub(crate) first_append_ms: Option<i64>,
    /// Largest record timestamp in the segment (`i64::MIN` when empty).
    pub(crate) max_timestamp: i64,
}

/// What a header walk found.
#[derive(Debug)]
pub(crate) struct ScanProblem {
    pub(crate) position: u64,
    pub(crate) reason: &'static str,
}

impl Segment {
    /// Creates (or empties) the segment file starting at `base`.
    pub(crate) fn create(dir: &Path, base: i64) -> Result<Self, StreamError> {
        let path = dir.join(file_name(base));
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(true)
            .open(&path)?;
        Ok(Self::empty(base, path, file))
    }

    fn empty(base: i64, path: PathBuf, file: File) -> Self {
        Self {
            base_offset: base,
            path,
            file: Arc::new(file),
            size: 0,
            next_offset: base,
            index: Vec::new(),
            first_append_ms: None,
            max_timestamp: i64::MIN,
        }
    }

    /// Opens an existing segment and walks its batches. With `verify_crc` every batch is read
    /// in full and checked; otherwise only headers are read and skipped over.
    ///
    /// Returns the segment holding the valid prefix and, if the walk stopped early, where and
    /// why. `on_batch` sees every valid header (to rebuild producer state).
    pub(crate) fn open(
        path: PathBuf,
        base: i64,
        verify_crc: bool,
        mut on_batch: impl FnMut(&BatchHeader),
    ) -> Result<(Self, Option<ScanProblem>), StreamError> {
        let file = OpenOptions::new().read(true).write(true).open(&path)?;
        let len = file.metadata()?.len();
        let mut seg = Self::empty(base, path, file.try_clone()?);
        let mut reader = BufReader::with_capacity(1 << 16, file);
        let mut pos = 0u64;
        let mut head = [0u8; BATCH_HEADER_LEN];
        let mut body = Vec::new();
        let problem = loop {
            if pos == len {
                break None;
            }
            if len - pos < BATCH_HEADER_LEN as u64 {
                break Some("torn batch header");
            }
            reader.read_exact(&mut head)?;
            let h = match BatchHeader::parse(&head) {
                Ok(h) => h,
                Err(StreamError::CorruptBatch(r)) => break Some(r),
                Err(e) => return Err(e),
            };
            let total = h.total_len() as u64;
            if total > len - pos {
                break Some("torn batch");
            }
            if pos + total > u64::from(u32::MAX) {
                break Some("segment larger than 4 GiB");
            }
            if h.base_offset != seg.next_offset {
                break Some("batch offset does not follow the previous batch");
            }
            if verify_crc {
                body.clear();
                body.extend_from_slice(&head);
                body.resize(total as usize, 0);
                reader.read_exact(&mut body[BATCH_HEADER_LEN..])?;
                if let Err(StreamError::CorruptBatch(r)) = validate_batch(&body) {
                    break Some(r);
                }
            } else {
                reader.seek_relative((total - BATCH_HEADER_LEN as u64) as i64)?;
            }
            on_batch(&h);
            seg.push(&h, pos, None);
            pos += total;
        };
        Ok((
            seg,
            problem.map(|reason| ScanProblem {
                position: pos,
                reason,
            }),
        ))
    }

    /// Records a batch written at `position`.
    pub(crate) fn push(&mut self, h: &BatchHeader, position: u64, now_ms: Option<i64>) {
        self.max_timestamp = self.max_timestamp.max(h.max_timestamp);
        self.index.push(IndexEntry {
            offset_delta: (h.base_offset - self.base_offset) as u32,
            position: position as u32,
            max_ts: self.max_timestamp,
        });
        self.size = position + h.total_len() as u64;
        self.next_offset = h.last_offset() + 1;
        if self.first_append_ms.is_none() {
            self.first_append_ms = now_ms;
        }
    }

    /// Index of the batch holding `offset` (which must be in `base_offset..next_offset`).
    pub(crate) fn batch_for_offset(&self, offset: i64) -> Option<usize> {
        let rel = offset - self.base_offset;
        let i = self
            .index
            .partition_point(|e| i64::from(e.offset_delta) <= rel);
        i.checked_sub(1)
    }

    /// First batch whose running max timestamp reaches `ts`.
    pub(crate) fn batch_for_timestamp(&self, ts: i64) -> Option<usize> {
        let i = self.index.partition_point(|e| e.max_ts < ts);
        (i < self.index.len()).then_some(i)
    }

    /// Byte position where batch `i` ends.
    pub(crate) fn batch_end(&self, i: usize) -> u64 {
        self.index
            .get(i + 1)
            .map_or(self.size, |e| u64::from(e.position))
    }

    /// Byte range `[start, end)` of whole batches from batch `i`, at most `max_bytes` long
    /// unless the first batch alone is longer (then exactly that batch, as Kafka's KIP-74).
    pub(crate) fn range_from(&self, i: usize, max_bytes: usize) -> (u64, u64) {
        let start = u64::from(self.index[i].position);
        let limit = start.saturating_add(max_bytes as u64);
        let rest = &self.index[i + 1..];
        let c = rest.partition_point(|e| u64::from(e.position) <= limit);
        let end = if c == rest.len() && self.size <= limit {
            self.size
        } else if c == 0 {
            self.batch_end(i)
        } else {
            u64::from(rest[c - 1].position)
        };
        (start, end)
    }

    /// Truncates the file to `len` bytes (recovery of a torn tail).
    pub(crate) fn truncate_file(&self, len: u64) -> Result<(), StreamError> {
        self.file.set_len(len)?;
        self.file.sync_all()?;
        Ok(())
    }
}

/// Reads `[start, end)` of `file`; a short file is reported as a corrupt segment.
pub(crate) fn read_range(
    file: &File,
    path: &Path,
    start: u64,
    end: u64,
) -> Result<Vec<u8>, StreamError> {
    let mut buf = vec![0u8; (end - start) as usize];
    match file.read_exact_at(&mut buf, start) {
        Ok(()) => Ok(buf),
        Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => {
            Err(StreamError::CorruptSegment {
                path: path.to_path_buf(),
                position: start,
                reason: "file shorter than its index",
            })
        }
        Err(e) => Err(e.into()),
    }
}

/// Lists `(base_offset, path)` of the segment files in `dir`, sorted.
pub(crate) fn list(dir: &Path) -> Result<Vec<(i64, PathBuf)>, StreamError> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir)? {
        let entry = entry?;
        if let Some(base) = entry.file_name().to_str().and_then(parse_file_name) {
            out.push((base, entry.path()));
        }
    }
    out.sort();
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_names_roundtrip() {
        assert_eq!(file_name(42), "00000000000000000042.log");
        assert_eq!(parse_file_name(&file_name(42)), Some(42));
        assert_eq!(parse_file_name("42.log"), None);
        assert_eq!(parse_file_name("0000000000000000004x.log"), None);
    }
}
