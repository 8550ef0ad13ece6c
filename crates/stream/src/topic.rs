//! Topic configuration and a topic: `partitions` independent [`PartitionLog`]s.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use crate::clock::SharedClock;
use crate::error::{BuildError, StreamError};
use crate::log::PartitionLog;

/// When appended batches are fsynced.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Durability {
    /// fsync after every batch, before acknowledging: an acknowledged record survives power
    /// loss. Cost: one `fdatasync` per batch (batching amortises it).
    EveryBatch,
    /// fsync when this long has passed since the last one (checked on append and by
    /// [`Stream::flush_due`](crate::Stream::flush_due)): a crash of the *machine* may lose up
    /// to that window; a crash of the *process* loses nothing (the page cache survives).
    Interval(Duration),
    /// Leave it to the OS (Kafka's default, which relies on replication instead).
    Never,
}

/// Per-topic settings. Build with [`TopicConfig::builder`].
#[derive(Debug, Clone)]
pub struct TopicConfig {
    pub(crate) partitions: u32,
    pub(crate) segment_bytes: u64,
    pub(crate) segment_age: Duration,
    pub(crate) retention_bytes: Option<u64>,
    pub(crate) retention: Option<Duration>,
    pub(crate) durability: Durability,
    pub(crate) max_batch_bytes: usize,
    pub(crate) producer_state_ttl: Duration,
    pub(crate) compact: bool,
    pub(crate) tombstone_retention: Duration,
}

impl Default for TopicConfig {
    fn default() -> Self {
        Self {
            partitions: 1,
            segment_bytes: 64 << 20,
            segment_age: Duration::from_secs(7 * 24 * 3600),
            retention_bytes: None,
            retention: Some(Duration::from_secs(7 * 24 * 3600)),
            durability: Durability::EveryBatch,
            max_batch_bytes: 1 << 20,
            producer_state_ttl: Duration::from_secs(24 * 3600),
            compact: false,
            tombstone_retention: Duration::from_secs(24 * 3600),
        }
    }
}

impl TopicConfig {
    /// Starts from the defaults: 1 partition, 64 MiB / 7-day segments, 7-day retention,
    /// fsync every batch, 1 MiB max batch.
    ///
    /// ```
    /// use keel_stream::{Durability, TopicConfig};
    /// let c = TopicConfig::builder().partitions(8).durability(Durability::Never).build().unwrap();
    /// assert_eq!(c.partitions(), 8);
    /// assert!(TopicConfig::builder().partitions(0).build().is_err());
    /// ```
    pub fn builder() -> TopicConfigBuilder {
        TopicConfigBuilder {
            config: Self::default(),
        }
    }

    /// Number of partitions.
    pub fn partitions(&self) -> u32 {
        self.partitions
    }

    /// Durability policy.
    pub fn durability(&self) -> Durability {
        self.durability
    }

    /// Largest accepted batch in bytes.
    pub fn max_batch_bytes(&self) -> usize {
        self.max_batch_bytes
    }

    /// Whether the topic is compacted by key.
    pub fn is_compacted(&self) -> bool {
        self.compact
    }

    fn to_text(&self) -> String {
        let d = match self.durability {
            Durability::EveryBatch => "every_batch".to_string(),
            Durability::Interval(d) => format!("interval_ms:{}", d.as_millis()),
            Durability::Never => "never".to_string(),
        };
        let opt = |v: Option<u128>| v.map_or("none".to_string(), |v| v.to_string());
        format!(
            "partitions={}\nsegment_bytes={}\nsegment_age_ms={}\nretention_bytes={}\nretention_ms={}\ndurability={}\nmax_batch_bytes={}\nproducer_state_ttl_ms={}\ncompact={}\ntombstone_retention_ms={}\n",
            self.partitions,
            self.segment_bytes,
            self.segment_age.as_millis(),
            opt(self.retention_bytes.map(u128::from)),
            opt(self.retention.map(|d| d.as_millis())),
            d,
            self.max_batch_bytes,
            self.producer_state_ttl.as_millis(),
            self.compact,
            self.tombstone_retention.as_millis(),
        )
    }

    fn from_text(text: &str) -> Option<Self> {
        let mut b = Self::builder();
        let ms = |v: &str| v.parse::<u64>().ok().map(Duration::from_millis);
        for line in text.lines().filter(|l| !l.trim().is_empty()) {
            let (k, v) = line.split_once('=')?;
            b = match k {
                "partitions" => b.partitions(v.parse().ok()?),
                "segment_bytes" => b.segment_bytes(v.parse().ok()?),
                "segment_age_ms" => b.segment_age(ms(v)?),
                "retention_bytes" => b.retention_bytes(if v == "none" {
                    None
                } else {
                    Some(v.parse().ok()?)
                }),
                "retention_ms" => b.retention(if v == "none" { None } else { Some(ms(v)?) }),
                "durability" => b.durability(match v {
                    "every_batch" => Durability::EveryBatch,
                    "never" => Durability::Never,
                    other => Durability::Interval(ms(other.strip_prefix("interval_ms:")?)?),
                }),
                "max_batch_bytes" => b.max_batch_bytes(v.parse().ok()?),
                "producer_state_ttl_ms" => b.producer_state_ttl(ms(v)?),
                "compact" => b.compact(v.parse().ok()?),
                "tombstone_retention_ms" => b.tombstone_retention(ms(v)?),
                _ => return None,
            };
        }
        b.build().ok()
    }
}

/// Builder of [`TopicConfig`].
#[derive(Debug, Clone)]
#[must_use]
pub struct TopicConfigBuilder {
    config: TopicConfig,
}

impl TopicConfigBuilder {
    /// Number of partitions (1..=10 000).
    pub fn partitions(mut self, n: u32) -> Self {
        self.config.partitions = n;
        self
    }
    /// Roll a segment when it would exceed this size (4 KiB..=1 GiB).
    pub fn segment_bytes(mut self, n: u64) -> Self {
        self.config.segment_bytes = n;
        self
    }
    /// Roll a segment this long after its first append.
    pub fn segment_age(mut self, d: Duration) -> Self {
        self.config.segment_age = d;
        self
    }
    /// Delete the oldest segments while the rest still hold at least this many bytes.
    pub fn retention_bytes(mut self, n: Option<u64>) -> Self {
        self.config.retention_bytes = n;
        self
    }
    /// Delete segments whose newest record is older than this.
    pub fn retention(mut self, d: Option<Duration>) -> Self {
        self.config.retention = d;
        self
    }
    /// fsync policy.
    pub fn durability(mut self, d: Durability) -> Self {
        self.config.durability = d;
        self
    }
    /// Largest accepted batch (128 B..=64 MiB).
    pub fn max_batch_bytes(mut self, n: usize) -> Self {
        self.config.max_batch_bytes = n;
        self
    }
    /// Forget an idempotent producer this long after its last write.
    pub fn producer_state_ttl(mut self, d: Duration) -> Self {
        self.config.producer_state_ttl = d;
        self
    }

    /// Log compaction by key ([`PartitionLog::compact`](crate::PartitionLog::compact)): keep
    /// the latest record per key in sealed segments. Size/time retention still apply unless
    /// set to `None` (a pure changelog topic sets both to `None`).
    pub fn compact(mut self, on: bool) -> Self {
        self.config.compact = on;
        self
    }
    /// How long a tombstone (null value) survives compaction, by its timestamp (default 24 h).
    pub fn tombstone_retention(mut self, d: Duration) -> Self {
        self.config.tombstone_retention = d;
        self
    }

    /// Validates the settings.
    ///
    /// # Errors
    /// [`BuildError::ZeroPartitions`] or [`BuildError::Invalid`] naming the setting.
    pub fn build(self) -> Result<TopicConfig, BuildError> {
        let c = self.config;
        let invalid = |name, reason| Err(BuildError::Invalid { name, reason });
        if c.partitions == 0 {
            return Err(BuildError::ZeroPartitions);
        }
        if c.partitions > 10_000 {
            return invalid("partitions", "at most 10000");
        }
        if !(4096..=1 << 30).contains(&c.segment_bytes) {
            return invalid("segment_bytes", "must be between 4 KiB and 1 GiB");
        }
        if !(128..=64 << 20).contains(&c.max_batch_bytes) {
            return invalid("max_batch_bytes", "must be between 128 B and 64 MiB");
        }
        if c.segment_age.is_zero() {
            return invalid("segment_age", "must be positive");
        }
        if c.retention.is_some_and(|d| d.is_zero()) || c.retention_bytes == Some(0) {
            return invalid(
                "retention",
                "must be positive (use None to keep everything)",
            );
        }
        if matches!(c.durability, Durability::Interval(d) if d.is_zero()) {
            return invalid("durability", "interval must be positive (use EveryBatch)");
        }
        Ok(c)
    }
}

/// A named topic: its config and one log per partition.
#[derive(Debug)]
pub struct Topic {
    name: String,
    config: TopicConfig,
    partitions: Vec<Arc<PartitionLog>>,
}

pub(crate) const CONFIG_FILE: &str = "topic.conf";

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

impl Topic {
    pub(crate) fn create(
        dir: &Path,
        name: &str,
        config: TopicConfig,
        clock: &SharedClock,
    ) -> Result<Self, StreamError> {
        crate::log::create_dir_durable(dir)?;
        let tmp = dir.join("topic.conf.tmp");
        std::fs::write(&tmp, config.to_text())?;
        std::fs::File::open(&tmp)?.sync_all()?;
        std::fs::rename(&tmp, dir.join(CONFIG_FILE))?;
        // Without this a crash can keep the topic directory but lose `topic.conf`, and then
        // the whole stream fails to open.
        crate::log::sync_dir(dir)?;
        Self::open_with(dir, name, config, clock)
    }

    pub(crate) fn open(dir: &Path, name: &str, clock: &SharedClock) -> Result<Self, StreamError> {
        let path = dir.join(CONFIG_FILE);
        let text = std::fs::read_to_string(&path)?;
        let config = TopicConfig::from_text(&text).ok_or(StreamError::CorruptSegment {
            path,
            position: 0,
            reason: "unreadable topic config",
        })?;
        Self::open_with(dir, name, config, clock)
    }

    fn open_with(
        dir: &Path,
        name: &str,
        config: TopicConfig,
        clock: &SharedClock,
    ) -> Result<Self, StreamError> {
        let partitions = (0..config.partitions)
            .map(|p| {
                PartitionLog::open(&dir.join(p.to_string()), config.clone(), clock.clone())
                    .map(Arc::new)
            })
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Self {
            name: name.to_string(),
            config,
            partitions,
        })
    }

    /// Topic name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Its config.
    pub fn config(&self) -> &TopicConfig {
        &self.config
    }

    /// Number of partitions.
    pub fn partition_count(&self) -> u32 {
        self.partitions.len() as u32
    }

    /// The log of partition `p`.
    ///
    /// # Errors
    /// [`StreamError::UnknownPartition`].
    pub fn partition(&self, p: u32) -> Result<&Arc<PartitionLog>, StreamError> {
        self.partitions
            .get(p as usize)
            .ok_or_else(|| StreamError::UnknownPartition {
                topic: self.name.clone(),
                partition: p,
            })
    }

    pub(crate) fn logs(&self) -> &[Arc<PartitionLog>] {
        &self.partitions
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn config_text_roundtrip() {
        let c = TopicConfig::builder()
            .partitions(3)
            .durability(Durability::Interval(Duration::from_millis(250)))
            .retention(None)
            .retention_bytes(Some(1 << 20))
            .build()
            .unwrap();
        let back = TopicConfig::from_text(&c.to_text()).unwrap();
        assert_eq!(back.to_text(), c.to_text());
    }

    #[test]
    fn rejects_bad_settings() {
        assert!(matches!(
            TopicConfig::builder().partitions(0).build(),
            Err(BuildError::ZeroPartitions)
        ));
        assert!(
            TopicConfig::builder()
                .segment_bytes(u64::MAX)
                .build()
                .is_err()
        );
        assert!(
            TopicConfig::builder()
                .max_batch_bytes(usize::MAX)
                .build()
                .is_err()
        );
        assert!(
            TopicConfig::builder()
                .segment_age(Duration::ZERO)
                .build()
                .is_err()
        );
        assert!(
            TopicConfig::builder()
                .durability(Durability::Interval(Duration::ZERO))
                .build()
                .is_err()
        );
        assert!(
            TopicConfig::builder()
                .segment_age(Duration::MAX)
                .retention(Some(Duration::MAX))
                .build()
                .is_ok()
        );
        assert!(
            !valid_topic_name("../etc") && !valid_topic_name("") && valid_topic_name("orders.v1")
        );
    }
}
