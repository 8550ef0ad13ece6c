//! Producer ids for `InitProducerId`, unique across restarts.
//!
//! Ids are handed out from blocks of [`BLOCK`]: before the first id of a block is given,
//! the block's end is written (fsynced) to `producer_ids`. After a crash the broker starts
//! at the stored end, so an id is never given twice (at most one block is skipped).

use std::path::{Path, PathBuf};

use parking_lot::Mutex;

use crate::error::BrokerError;

const BLOCK: i64 = 1000;

#[derive(Debug)]
pub(crate) struct ProducerIds {
    path: PathBuf,
    inner: Mutex<(i64, i64)>, // (next, reserved end)
}

impl ProducerIds {
    pub(crate) fn open(dir: &Path) -> Result<Self, BrokerError> {
        let path = dir.join("producer_ids");
        let start = match std::fs::read_to_string(&path) {
            Ok(s) => s
                .trim()
                .parse::<i64>()
                .map_err(|_| BrokerError::CorruptFile {
                    path: path.clone(),
                    reason: "not an integer".into(),
                })?,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => 0,
            Err(e) => return Err(e.into()),
        };
        Ok(Self {
            path,
            inner: Mutex::new((start, start)),
        })
    }

    /// The next producer id.
    pub(crate) fn next(&self) -> Result<i64, BrokerError> {
        let mut g = self.inner.lock();
        if g.0 >= g.1 {
            let end = g.0 + BLOCK;
            let tmp = self.path.with_extension("tmp");
            std::fs::write(&tmp, end.to_string())?;
            std::fs::File::open(&tmp)?.sync_all()?;
            std::fs::rename(&tmp, &self.path)?;
            g.1 = end;
        }
        g.0 += 1;
        Ok(g.0 - 1)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_unique_across_reopen() {
        let dir = tempfile::tempdir().unwrap();
        let a = ProducerIds::open(dir.path()).unwrap();
        let first: Vec<i64> = (0..5).map(|_| a.next().unwrap()).collect();
        assert_eq!(first, vec![0, 1, 2, 3, 4]);
        drop(a);
        let b = ProducerIds::open(dir.path()).unwrap();
        assert!(b.next().unwrap() > 4);
    }
}
