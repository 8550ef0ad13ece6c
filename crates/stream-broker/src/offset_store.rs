//! Committed offsets, one file per group, rewritten atomically on every commit.
//!
//! A commit writes the group's whole table to a temporary file, fsyncs it and renames it
//! over the old one, so after a crash the file is the last acknowledged commit or the one
//! before it, never half of one. A group's table is small (one line per partition it
//! consumed) and clients commit every few seconds, so rewriting beats an append log plus
//! compaction here. File names are the group id in hex (a group id is any string).

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};

use parking_lot::Mutex;

use crate::error::BrokerError;

/// A committed position: the next offset to consume and the client's metadata string.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Committed {
    pub(crate) offset: i64,
    pub(crate) metadata: Option<String>,
}

type Table = BTreeMap<(String, i32), Committed>;

#[derive(Debug)]
pub(crate) struct OffsetStore {
    dir: PathBuf,
    groups: Mutex<HashMap<String, Table>>,
}

fn hex(s: &[u8]) -> String {
    s.iter().map(|b| format!("{b:02x}")).collect()
}

fn unhex(s: &str) -> Option<Vec<u8>> {
    if s.len() % 2 != 0 {
        return None;
    }
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(s.get(i..i + 2)?, 16).ok())
        .collect()
}

fn parse_line(line: &str) -> Option<((String, i32), Committed)> {
    let mut it = line.split(' ');
    let topic = String::from_utf8(unhex(it.next()?)?).ok()?;
    let partition = it.next()?.parse().ok()?;
    let offset = it.next()?.parse().ok()?;
    let metadata = match it.next()? {
        "-" => None,
        m => Some(String::from_utf8(unhex(m)?).ok()?),
    };
    Some(((topic, partition), Committed { offset, metadata }))
}

impl OffsetStore {
    pub(crate) fn open(dir: &Path) -> Result<Self, BrokerError> {
        std::fs::create_dir_all(dir)?;
        let mut groups = HashMap::new();
        for entry in std::fs::read_dir(dir)? {
            let path = entry?.path();
            let Some(stem) = path
                .file_name()
                .and_then(|n| n.to_str())
                .and_then(|n| n.strip_suffix(".offsets"))
            else {
                continue; // a temporary file of an interrupted commit
            };
            let corrupt = |reason: &str| BrokerError::CorruptFile {
                path: path.clone(),
                reason: reason.to_string(),
            };
            let group = unhex(stem)
                .and_then(|g| String::from_utf8(g).ok())
                .ok_or_else(|| corrupt("bad file name"))?;
            let text = std::fs::read_to_string(&path)?;
            let table = text
                .lines()
                .map(|l| parse_line(l).ok_or_else(|| corrupt("bad line")))
                .collect::<Result<Table, _>>()?;
            groups.insert(group, table);
        }
        Ok(Self {
            dir: dir.to_path_buf(),
            groups: Mutex::new(groups),
        })
    }

    /// Stores `entries` for `group` durably (fsync + rename) before returning.
    pub(crate) fn commit(
        &self,
        group: &str,
        entries: Vec<((String, i32), Committed)>,
    ) -> Result<(), BrokerError> {
        let mut groups = self.groups.lock();
        let mut table = groups.get(group).cloned().unwrap_or_default();
        table.extend(entries);
        let mut text = String::new();
        for ((t, p), c) in &table {
            let m = c
                .metadata
                .as_deref()
                .map_or("-".to_string(), |m| hex(m.as_bytes()));
            text.push_str(&format!("{} {p} {} {m}\n", hex(t.as_bytes()), c.offset));
        }
        let path = self.dir.join(format!("{}.offsets", hex(group.as_bytes())));
        let tmp = self.dir.join(format!("{}.tmp", hex(group.as_bytes())));
        std::fs::write(&tmp, text)?;
        std::fs::File::open(&tmp)?.sync_all()?;
        std::fs::rename(&tmp, &path)?;
        std::fs::File::open(&self.dir)?.sync_all()?;
        groups.insert(group.to_string(), table);
        Ok(())
    }

    pub(crate) fn fetch(&self, group: &str, topic: &str, partition: i32) -> Option<Committed> {
        self.groups
            .lock()
            .get(group)?
            .get(&(topic.to_string(), partition))
            .cloned()
    }

    /// Every committed position of `group`.
    pub(crate) fn all(&self, group: &str) -> Vec<((String, i32), Committed)> {
        self.groups
            .lock()
            .get(group)
            .map(|t| t.iter().map(|(k, v)| (k.clone(), v.clone())).collect())
            .unwrap_or_default()
    }

    /// Groups that have committed offsets.
    pub(crate) fn groups(&self) -> Vec<String> {
        self.groups.lock().keys().cloned().collect()
    }

    /// Forgets the offsets of a deleted topic (in memory; files are rewritten on the next commit).
    pub(crate) fn forget_topic(&self, topic: &str) {
        for table in self.groups.lock().values_mut() {
            table.retain(|(t, _), _| t != topic);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn commits_survive_reopen_and_odd_names() {
        let dir = tempfile::tempdir().unwrap();
        let s = OffsetStore::open(dir.path()).unwrap();
        let c = |o| Committed {
            offset: o,
            metadata: Some("m e t a".into()),
        };
        s.commit(
            "group with spaces/ü",
            vec![(("t".into(), 0), c(5)), (("t".into(), 1), c(7))],
        )
        .unwrap();
        s.commit("group with spaces/ü", vec![(("t".into(), 0), c(9))])
            .unwrap();
        s.commit(
            "g2",
            vec![(
                ("u".into(), 3),
                Committed {
                    offset: 1,
                    metadata: None,
                },
            )],
        )
        .unwrap();
        let s = OffsetStore::open(dir.path()).unwrap();
        assert_eq!(s.fetch("group with spaces/ü", "t", 0).unwrap().offset, 9);
        assert_eq!(s.fetch("group with spaces/ü", "t", 1), Some(c(7)));
        assert_eq!(s.fetch("g2", "u", 3).unwrap().metadata, None);
        assert_eq!(s.fetch("g2", "u", 4), None);
        let mut g = s.groups();
        g.sort();
        assert_eq!(g, vec!["g2".to_string(), "group with spaces/ü".to_string()]);
    }

    #[test]
    fn a_corrupt_file_is_a_typed_error() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("6162.offsets"), "zz 0 1 -\n").unwrap();
        assert!(matches!(
            OffsetStore::open(dir.path()),
            Err(BrokerError::CorruptFile { .. })
        ));
    }
}
