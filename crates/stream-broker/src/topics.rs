//! Topics on disk: one folder per topic holding its settings (`topic.settings`, Kafka config
//! names) and one [`PartitionLog`] folder per partition.
//!
//! The registry is a map behind a `RwLock`; requests clone the `Arc<TopicEntry>` and drop
//! the lock before any I/O, so a slow append never blocks a metadata request.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use keel_stream::{Clock, Durability, PartitionLog, TopicConfig};
use parking_lot::RwLock;

use crate::error::BrokerError;

const SETTINGS_FILE: &str = "topic.settings";

/// What happens to old data: Kafka's `cleanup.policy`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CleanupPolicy {
    /// `delete`: whole segments past the retention time or size are deleted.
    Delete,
    /// `compact`: sealed segments keep only the latest record per key (tombstones expire
    /// after `delete.retention.ms`); nothing is deleted by age or size — a changelog topic.
    Compact,
    /// `compact,delete`: both — compacted, and whole segments past retention deleted.
    CompactDelete,
}

impl CleanupPolicy {
    /// Kafka's spelling of the policy.
    pub fn as_kafka(self) -> &'static str {
        match self {
            Self::Delete => "delete",
            Self::Compact => "compact",
            Self::CompactDelete => "compact,delete",
        }
    }

    /// Whether sealed segments are compacted by key.
    pub fn compacts(self) -> bool {
        matches!(self, Self::Compact | Self::CompactDelete)
    }

    /// Whether retention by time and size deletes whole segments.
    pub fn deletes(self) -> bool {
        matches!(self, Self::Delete | Self::CompactDelete)
    }
}

/// One topic's settings, with Kafka's config names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TopicSettings {
    /// Number of partitions.
    pub partitions: u32,
    /// `segment.bytes`.
    pub segment_bytes: u64,
    /// `retention.ms` (`None` = keep forever, Kafka's `-1`).
    pub retention_ms: Option<u64>,
    /// `retention.bytes` per partition (`None` = no limit).
    pub retention_bytes: Option<u64>,
    /// `max.message.bytes`: largest accepted record batch.
    pub max_message_bytes: usize,
    /// `cleanup.policy`.
    pub cleanup: CleanupPolicy,
    /// `delete.retention.ms`: how long a compacted topic keeps a tombstone (Kafka's default,
    /// one day), so a consumer that is behind still sees the delete.
    pub delete_retention_ms: u64,
    /// When appends are fsynced (`flush.messages=1` → every batch, `flush.ms=N` → interval).
    pub durability: Durability,
}

impl Default for TopicSettings {
    fn default() -> Self {
        Self {
            partitions: 1,
            segment_bytes: 64 << 20,
            retention_ms: Some(7 * 24 * 3600 * 1000),
            retention_bytes: None,
            max_message_bytes: 1 << 20,
            cleanup: CleanupPolicy::Delete,
            delete_retention_ms: 24 * 3600 * 1000,
            durability: Durability::EveryBatch,
        }
    }
}

fn invalid(name: &str, reason: impl Into<String>) -> BrokerError {
    BrokerError::InvalidTopicConfig {
        name: name.to_string(),
        reason: reason.into(),
    }
}

impl TopicSettings {
    /// Applies one Kafka topic config (`CreateTopics` configs and the settings file).
    ///
    /// # Errors
    /// [`BrokerError::InvalidTopicConfig`] for an unknown name or a bad value.
    pub fn apply(&mut self, name: &str, value: &str) -> Result<(), BrokerError> {
        let num = |v: &str| {
            v.trim()
                .parse::<i64>()
                .map_err(|_| invalid(name, "not an integer"))
        };
        let opt = |v: i64| -> Result<Option<u64>, BrokerError> {
            match v {
                -1 => Ok(None),
                v if v > 0 => Ok(Some(v as u64)),
                _ => Err(invalid(name, "must be positive or -1")),
            }
        };
        match name {
            "partitions" => {
                self.partitions =
                    u32::try_from(num(value)?).map_err(|_| invalid(name, "out of range"))?
            }
            "segment.bytes" => {
                self.segment_bytes =
                    opt(num(value)?)?.ok_or_else(|| invalid(name, "must be positive"))?
            }
            "retention.ms" => self.retention_ms = opt(num(value)?)?,
            "retention.bytes" => self.retention_bytes = opt(num(value)?)?,
            "max.message.bytes" => {
                self.max_message_bytes =
                    usize::try_from(num(value)?).map_err(|_| invalid(name, "must be positive"))?
            }
            "cleanup.policy" => {
                self.cleanup = match value.trim() {
                    "delete" => CleanupPolicy::Delete,
                    "compact" => CleanupPolicy::Compact,
                    "compact,delete" | "delete,compact" => CleanupPolicy::CompactDelete,
                    _ => return Err(invalid(name, "must be delete, compact or compact,delete")),
                }
            }
            "delete.retention.ms" => {
                self.delete_retention_ms =
                    u64::try_from(num(value)?).map_err(|_| invalid(name, "must not be negative"))?
            }
            "flush.messages" => match num(value)? {
                1 => self.durability = Durability::EveryBatch,
                v if v > 1 || v == i64::MAX => self.durability = Durability::Never,
                _ => return Err(invalid(name, "must be positive")),
            },
            "flush.ms" => match num(value)? {
                v if v > 0 && v < i64::MAX => {
                    self.durability = Durability::Interval(Duration::from_millis(v as u64))
                }
                i64::MAX => self.durability = Durability::Never,
                _ => return Err(invalid(name, "must be positive")),
            },
            "durability" => {
                self.durability = match value.trim() {
                    "every_batch" => Durability::EveryBatch,
                    "never" => Durability::Never,
                    other => other
                        .strip_prefix("interval_ms:")
                        .and_then(|v| v.parse::<u64>().ok())
                        .filter(|&v| v > 0)
                        .map(|v| Durability::Interval(Duration::from_millis(v)))
                        .ok_or_else(|| invalid(name, "unknown durability"))?,
                }
            }
            _ => return Err(invalid(name, "unknown or unsupported topic config")),
        }
        Ok(())
    }

    /// The settings as Kafka config pairs (what `CreateTopics` v5+ reports back).
    pub fn to_configs(&self) -> Vec<(&'static str, String)> {
        let opt = |v: Option<u64>| v.map_or("-1".to_string(), |v| v.to_string());
        let (fm, fms) = match self.durability {
            Durability::EveryBatch => ("1".to_string(), i64::MAX.to_string()),
            Durability::Interval(d) => (i64::MAX.to_string(), d.as_millis().to_string()),
            Durability::Never => (i64::MAX.to_string(), i64::MAX.to_string()),
        };
        vec![
            ("cleanup.policy", self.cleanup.as_kafka().to_string()),
            ("delete.retention.ms", self.delete_retention_ms.to_string()),
            ("segment.bytes", self.segment_bytes.to_string()),
            ("retention.ms", opt(self.retention_ms)),
            ("retention.bytes", opt(self.retention_bytes)),
            ("max.message.bytes", self.max_message_bytes.to_string()),
            ("flush.messages", fm),
            ("flush.ms", fms),
        ]
    }

    fn to_text(&self) -> String {
        let d = match self.durability {
            Durability::EveryBatch => "every_batch".to_string(),
            Durability::Interval(d) => format!("interval_ms:{}", d.as_millis()),
            Durability::Never => "never".to_string(),
        };
        let mut s = format!("partitions={}\ndurability={d}\n", self.partitions);
        for (k, v) in self.to_configs() {
            if !k.starts_with("flush.") {
                // "compact,delete" holds a comma, which the line format keeps as it is.
                s.push_str(&format!("{k}={v}\n"));
            }
        }
        s
    }

    fn from_text(text: &str) -> Result<Self, String> {
        let mut s = Self::default();
        for line in text.lines().filter(|l| !l.trim().is_empty()) {
            let (k, v) = line
                .split_once('=')
                .ok_or_else(|| format!("bad line {line:?}"))?;
            s.apply(k, v).map_err(|e| e.to_string())?;
        }
        Ok(s)
    }

    /// The keel-stream config for these settings.
    ///
    /// # Errors
    /// [`BrokerError::InvalidTopicConfig`] when keel-stream rejects a value (its message says which).
    pub fn log_config(&self) -> Result<TopicConfig, BrokerError> {
        self.stream_config()
            .map_err(|e| invalid("topic", e.to_string()))
    }

    /// The keel-stream config, with keel-stream's own error.
    pub(crate) fn stream_config(&self) -> Result<TopicConfig, keel_stream::BuildError> {
        // A compact-only topic keeps its data however old or large (Kafka's rule): retention
        // deletes segments only when the policy includes `delete`.
        let deletes = self.cleanup.deletes();
        TopicConfig::builder()
            .partitions(self.partitions)
            .segment_bytes(self.segment_bytes)
            .retention(
                self.retention_ms
                    .filter(|_| deletes)
                    .map(Duration::from_millis),
            )
            .retention_bytes(self.retention_bytes.filter(|_| deletes))
            .max_batch_bytes(self.max_message_bytes)
            .durability(self.durability)
            .compact(self.cleanup.compacts())
            .tombstone_retention(Duration::from_millis(self.delete_retention_ms))
            .build()
    }
}

/// A topic: its settings and one log per partition.
#[derive(Debug)]
pub(crate) struct TopicEntry {
    pub(crate) name: String,
    pub(crate) logs: Vec<Arc<PartitionLog>>,
    /// Whether housekeeping compacts this topic's sealed segments.
    compacts: bool,
    /// Per partition: the segment count at its last compaction, so housekeeping compacts a
    /// partition again only after a segment was sealed since (each pass reads the whole log).
    compacted_at_segments: Vec<AtomicUsize>,
}

impl TopicEntry {
    pub(crate) fn partition(&self, p: i32) -> Option<&Arc<PartitionLog>> {
        usize::try_from(p).ok().and_then(|p| self.logs.get(p))
    }
}

/// Kafka's rule: 1–249 of `[A-Za-z0-9._-]`, not `.` or `..`.
pub(crate) fn valid_topic_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 249
        && name != "."
        && name != ".."
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'.' || b == b'_' || b == b'-')
}

/// All topics of the broker.
#[derive(Debug)]
pub(crate) struct TopicRegistry {
    dir: PathBuf,
    clock: Arc<dyn Clock>,
    max_topics: usize,
    topics: RwLock<BTreeMap<String, Arc<TopicEntry>>>,
}

impl TopicRegistry {
    /// Opens every topic under `dir` (recovering each partition log).
    pub(crate) fn open(
        dir: &Path,
        clock: Arc<dyn Clock>,
        max_topics: usize,
    ) -> Result<Self, BrokerError> {
        std::fs::create_dir_all(dir)?;
        let mut topics = BTreeMap::new();
        for entry in std::fs::read_dir(dir)? {
            let entry = entry?;
            let name = entry.file_name().to_string_lossy().into_owned();
            if !entry.file_type()?.is_dir() || !valid_topic_name(&name) {
                continue; // e.g. a deleted topic's folder being removed
            }
            let path = entry.path().join(SETTINGS_FILE);
            let Ok(text) = std::fs::read_to_string(&path) else {
                continue;
            };
            let settings =
                TopicSettings::from_text(&text).map_err(|reason| BrokerError::CorruptFile {
                    path: path.clone(),
                    reason,
                })?;
            let t = open_logs(&entry.path(), &name, settings, &clock)?;
            topics.insert(name, Arc::new(t));
        }
        Ok(Self {
            dir: dir.to_path_buf(),
            clock,
            max_topics,
            topics: RwLock::new(topics),
        })
    }

    pub(crate) fn get(&self, name: &str) -> Option<Arc<TopicEntry>> {
        self.topics.read().get(name).cloned()
    }

    pub(crate) fn all(&self) -> Vec<Arc<TopicEntry>> {
        self.topics.read().values().cloned().collect()
    }

    pub(crate) fn len(&self) -> usize {
        self.topics.read().len()
    }

    /// Creates a topic (settings file first, fsynced, then the partition folders).
    pub(crate) fn create(
        &self,
        name: &str,
        settings: TopicSettings,
    ) -> Result<Arc<TopicEntry>, BrokerError> {
        if !valid_topic_name(name) {
            return Err(BrokerError::InvalidTopicName(name.to_string()));
        }
        settings.log_config()?;
        let mut topics = self.topics.write();
        if topics.contains_key(name) {
            return Err(BrokerError::TopicExists(name.to_string()));
        }
        if topics.len() >= self.max_topics {
            return Err(BrokerError::TooManyTopics(self.max_topics));
        }
        let dir = self.dir.join(name);
        std::fs::create_dir_all(&dir)?;
        let tmp = dir.join("topic.settings.tmp");
        std::fs::write(&tmp, settings.to_text())?;
        std::fs::File::open(&tmp)?.sync_all()?;
        std::fs::rename(&tmp, dir.join(SETTINGS_FILE))?;
        std::fs::File::open(&self.dir)?.sync_all()?;
        let entry = Arc::new(open_logs(&dir, name, settings, &self.clock)?);
        topics.insert(name.to_string(), entry.clone());
        Ok(entry)
    }

    /// Deletes a topic: out of the map first (new requests see it gone), then its folder is
    /// renamed away and removed. Readers still holding a log keep reading their open files.
    pub(crate) fn delete(&self, name: &str) -> Result<(), BrokerError> {
        let removed = self.topics.write().remove(name);
        let Some(entry) = removed else {
            return Err(BrokerError::UnknownTopic(name.to_string()));
        };
        drop(entry);
        let dir = self.dir.join(name);
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos());
        let gone = self.dir.join(format!("{name}.{nanos}.deleted"));
        std::fs::rename(&dir, &gone)?;
        std::fs::remove_dir_all(&gone)?;
        Ok(())
    }

    /// Retention, compaction and interval fsyncs for every partition (the broker's
    /// housekeeping tick). A compacted partition is compacted again only once a segment was
    /// sealed since its last pass.
    pub(crate) fn housekeeping(&self) {
        for t in self.all() {
            for (log, compacted_at) in t.logs.iter().zip(&t.compacted_at_segments) {
                if let Err(e) = log.enforce_retention().and_then(|_| log.flush_if_due()) {
                    log::warn!("housekeeping of topic {} failed: {e}", t.name);
                }
                let segments = log.segment_count();
                if t.compacts && segments > 1 && compacted_at.load(Ordering::Relaxed) != segments {
                    match log.compact() {
                        Ok(_) => compacted_at.store(segments, Ordering::Relaxed),
                        Err(e) => log::warn!("compaction of topic {} failed: {e}", t.name),
                    }
                }
            }
        }
    }
}

fn open_logs(
    dir: &Path,
    name: &str,
    settings: TopicSettings,
    clock: &Arc<dyn Clock>,
) -> Result<TopicEntry, BrokerError> {
    let config = settings.log_config()?;
    let logs = (0..settings.partitions)
        .map(|p| {
            PartitionLog::open(&dir.join(p.to_string()), config.clone(), clock.clone())
                .map(Arc::new)
        })
        .collect::<Result<Vec<_>, _>>()?;
    Ok(TopicEntry {
        name: name.to_string(),
        compacted_at_segments: logs.iter().map(|_| AtomicUsize::new(0)).collect(),
        compacts: settings.cleanup.compacts(),
        logs,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn settings_text_roundtrip_and_bad_values() {
        let mut s = TopicSettings::default();
        s.apply("partitions", "3").unwrap();
        s.apply("retention.ms", "-1").unwrap();
        s.apply("flush.ms", "250").unwrap();
        s.apply("retention.bytes", "1048576").unwrap();
        assert_eq!(TopicSettings::from_text(&s.to_text()).unwrap(), s);
        assert!(s.apply("retention.ms", "0").is_err());
        assert!(s.apply("segment.bytes", "x").is_err());
        assert!(s.apply("cleanup.policy", "compacted").is_err());
        assert!(s.apply("delete.retention.ms", "-5").is_err());
        assert!(s.apply("no.such.config", "1").is_err());
        s.apply("partitions", "0").unwrap();
        assert!(
            s.log_config().is_err(),
            "zero partitions is rejected by keel-stream"
        );
    }

    #[test]
    fn cleanup_policies_round_trip_and_compact_only_keeps_data_past_retention() {
        for (text, policy) in [
            ("delete", CleanupPolicy::Delete),
            ("compact", CleanupPolicy::Compact),
            ("compact,delete", CleanupPolicy::CompactDelete),
            ("delete,compact", CleanupPolicy::CompactDelete),
        ] {
            let mut s = TopicSettings::default();
            s.apply("cleanup.policy", text).unwrap();
            s.apply("delete.retention.ms", "60000").unwrap();
            assert_eq!(s.cleanup, policy);
            assert_eq!(TopicSettings::from_text(&s.to_text()).unwrap(), s);
            let reported = s.to_configs();
            assert!(reported.contains(&("cleanup.policy", policy.as_kafka().to_string())));
            assert!(reported.contains(&("delete.retention.ms", "60000".to_string())));
            assert!(s.log_config().is_ok());
        }
    }

    #[test]
    fn housekeeping_compacts_a_compacted_topic_to_the_latest_value_per_key() {
        use keel_stream::{MockClock, Record};
        let dir = tempfile::tempdir().unwrap();
        let clock: Arc<dyn Clock> = Arc::new(MockClock::new(1_000));
        let registry = TopicRegistry::open(dir.path(), clock, 16).unwrap();
        let mut settings = TopicSettings::default();
        settings.apply("cleanup.policy", "compact").unwrap();
        settings.apply("segment.bytes", "4096").unwrap();
        settings.apply("flush.messages", "1").unwrap();
        let topic = registry.create("changelog", settings).unwrap();
        let log = topic.partition(0).unwrap().clone();
        // 10 keys written 40 times each, in batches of one: many sealed segments.
        for round in 0..40 {
            for key in 0..10 {
                let record = Record::keyed(format!("k{key}"), format!("v{round}"));
                log.append(std::slice::from_ref(&record)).unwrap();
            }
        }
        assert!(log.segment_count() > 3, "segments: {}", log.segment_count());
        let end = log.log_end_offset();
        registry.housekeeping();
        let mut latest = BTreeMap::new();
        let mut seen = 0;
        let mut offset = log.log_start_offset();
        while offset < end {
            let fetched = log.read(offset, 1 << 20).unwrap();
            let records = fetched.records().unwrap();
            if records.is_empty() {
                offset = fetched.next_offset();
                continue;
            }
            for r in records {
                seen += 1;
                let key = String::from_utf8(r.key.clone().unwrap().to_vec()).unwrap();
                let value = String::from_utf8(r.value.clone().unwrap().to_vec()).unwrap();
                latest.insert(key, value);
                offset = r.offset + 1;
            }
        }
        assert!(
            seen < 400,
            "compaction removed superseded records: {seen} of 400 left"
        );
        assert_eq!(latest.len(), 10, "every key is still there");
        assert!(
            latest.values().all(|v| v == "v39"),
            "latest values kept: {latest:?}"
        );
        assert_eq!(log.log_end_offset(), end, "offsets never move");
        // A second tick with no newly sealed segment does not rewrite anything again.
        let again = topic.compacted_at_segments[0].load(Ordering::Relaxed);
        registry.housekeeping();
        assert_eq!(
            topic.compacted_at_segments[0].load(Ordering::Relaxed),
            again
        );
    }

    #[test]
    fn topic_names_follow_kafka() {
        assert!(valid_topic_name("orders.v1-x_y"));
        assert!(!valid_topic_name("..") && !valid_topic_name("a/b") && !valid_topic_name(""));
        assert!(!valid_topic_name(&"x".repeat(250)));
    }
}
