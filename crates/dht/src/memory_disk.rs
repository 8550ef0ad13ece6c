//! An in-memory disk for the node's redb store, kept across restarts, on which a crash
//! loses exactly what was not yet synced.
//!
//! The deterministic simulation runs every node of a cluster inside one test process, so
//! a node's "disk" must outlive the node (a crashed node restarts on the same data) and a
//! crash must lose what a real `kill -9` or power cut loses: writes that were not yet
//! `fsync`ed. [`MemoryDisk`] keeps two images — what redb wrote, and what the last
//! `sync_data` made durable. A node started again on the disk ([`NodeBuilder::memory_disk`])
//! opens the durable image only; the previous run's backend is detached at that moment
//! (its late writes and syncs go nowhere), so a crash of the old run can never leak into
//! the new one. A node acknowledges a write only after its commit's `sync_data`, so this
//! model loses only unacknowledged work — precisely the property under test.
//!
//! With a memory disk the node's storage writer runs as a tokio task instead of a thread
//! (see `storage`): there is no real fsync to wait for, and the simulator can then order
//! every step of a node deterministically.
//!
//! [`NodeBuilder::memory_disk`]: crate::NodeBuilder::memory_disk

use std::fmt;
use std::io;
use std::sync::Arc;

use parking_lot::Mutex;
use redb::StorageBackend;

/// A disk that lives in memory and survives the node; clones share it.
///
/// ```
/// let disk = keel_dht::MemoryDisk::new();
/// assert_eq!(disk.synced_len(), 0);
/// ```
#[derive(Clone, Default)]
pub struct MemoryDisk {
    state: Arc<Mutex<DiskState>>,
}

#[derive(Default)]
struct DiskState {
    /// What the last `sync_data` made durable.
    durable: Vec<u8>,
    /// Bumped by every open and every crash; a backend of an older generation is detached.
    generation: u64,
}

impl fmt::Debug for MemoryDisk {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let s = self.state.lock();
        f.debug_struct("MemoryDisk")
            .field("durable_bytes", &s.durable.len())
            .field("generation", &s.generation)
            .finish()
    }
}

impl MemoryDisk {
    /// An empty disk.
    pub fn new() -> Self {
        Self::default()
    }

    /// A crash: the running node's backend is detached at once, so nothing it writes or
    /// syncs afterwards reaches the disk; the next open sees only what was synced before.
    pub fn crash(&self) {
        self.state.lock().generation += 1;
    }

    /// Bytes of the durable image.
    pub fn synced_len(&self) -> usize {
        self.state.lock().durable.len()
    }

    /// A backend for a new run on this disk (detaches every earlier one).
    pub(crate) fn open(&self) -> MemoryBackend {
        let mut s = self.state.lock();
        s.generation += 1;
        MemoryBackend {
            disk: Arc::clone(&self.state),
            generation: s.generation,
            run: Mutex::new(Run {
                image: s.durable.clone(),
                unsynced: Vec::new(),
            }),
        }
    }
}

/// One run's view of a [`MemoryDisk`]: the image redb reads and writes, and the changes
/// since the last sync (replayed onto the durable image by `sync_data`).
pub(crate) struct MemoryBackend {
    disk: Arc<Mutex<DiskState>>,
    generation: u64,
    run: Mutex<Run>,
}

struct Run {
    image: Vec<u8>,
    unsynced: Vec<Change>,
}

enum Change {
    Write(usize, Vec<u8>),
    SetLen(usize),
}

impl fmt::Debug for MemoryBackend {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MemoryBackend")
            .field("generation", &self.generation)
            .finish_non_exhaustive()
    }
}

fn out_of_range() -> io::Error {
    io::Error::new(io::ErrorKind::InvalidInput, "offset out of range")
}

fn to_usize(n: u64) -> io::Result<usize> {
    usize::try_from(n).map_err(|_| out_of_range())
}

impl StorageBackend for MemoryBackend {
    fn len(&self) -> io::Result<u64> {
        Ok(self.run.lock().image.len() as u64)
    }

    fn read(&self, offset: u64, out: &mut [u8]) -> io::Result<()> {
        let run = self.run.lock();
        let start = to_usize(offset)?;
        let end = start.checked_add(out.len()).ok_or_else(out_of_range)?;
        out.copy_from_slice(run.image.get(start..end).ok_or_else(out_of_range)?);
        Ok(())
    }

    fn set_len(&self, len: u64) -> io::Result<()> {
        let len = to_usize(len)?;
        let mut run = self.run.lock();
        run.image.resize(len, 0);
        run.unsynced.push(Change::SetLen(len));
        Ok(())
    }

    fn sync_data(&self) -> io::Result<()> {
        let changes = std::mem::take(&mut self.run.lock().unsynced);
        let mut disk = self.disk.lock();
        if disk.generation != self.generation {
            // Detached by a crash or a newer run: a dead process syncs nothing.
            return Ok(());
        }
        for change in changes {
            match change {
                Change::SetLen(len) => disk.durable.resize(len, 0),
                Change::Write(at, bytes) => {
                    let end = at + bytes.len();
                    if disk.durable.len() < end {
                        disk.durable.resize(end, 0);
                    }
                    disk.durable[at..end].copy_from_slice(&bytes);
                }
            }
        }
        Ok(())
    }

    fn write(&self, offset: u64, data: &[u8]) -> io::Result<()> {
        let start = to_usize(offset)?;
        let end = start.checked_add(data.len()).ok_or_else(out_of_range)?;
        let mut run = self.run.lock();
        run.image
            .get_mut(start..end)
            .ok_or_else(out_of_range)?
            .copy_from_slice(data);
        run.unsynced.push(Change::Write(start, data.to_vec()));
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_crash_keeps_what_was_synced_and_loses_the_rest() {
        let disk = MemoryDisk::new();
        let run = disk.open();
        run.set_len(8).unwrap();
        run.write(0, b"abcd").unwrap();
        run.sync_data().unwrap();
        run.write(4, b"efgh").unwrap();
        disk.crash();
        run.sync_data().unwrap(); // a detached run syncs nothing
        let next = disk.open();
        let mut out = [0; 8];
        next.read(0, &mut out).unwrap();
        assert_eq!(&out, b"abcd\0\0\0\0");
    }

    #[test]
    fn a_new_run_detaches_the_previous_one() {
        let disk = MemoryDisk::new();
        let old = disk.open();
        old.set_len(4).unwrap();
        old.sync_data().unwrap();
        let new = disk.open();
        old.write(0, b"late").unwrap();
        old.sync_data().unwrap();
        let mut out = [1; 4];
        disk.open().read(0, &mut out).unwrap();
        assert_eq!(out, [0; 4]);
        assert_eq!(new.len().unwrap(), 4);
    }

    #[test]
    fn reads_past_the_end_are_errors_not_panics() {
        let disk = MemoryDisk::new();
        let run = disk.open();
        let mut out = [0; 4];
        assert!(run.read(u64::MAX, &mut out).is_err());
        assert!(run.write(u64::MAX - 1, b"xy").is_err());
    }
}
