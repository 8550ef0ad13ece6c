//! [`GroupConsumer`]: a member of a consumer group — heartbeats, fetches from its partitions,
//! commits. At-least-once when the application commits after processing.
//!
//! `poll` first heartbeats: revoked partitions get their consumed position committed before
//! they are released (so the next owner starts where this one stopped), newly assigned ones
//! start at the committed offset or the reset policy. Then it reads up to `max_records` from
//! the owned partitions, taking turns so no partition starves.

use std::collections::BTreeMap;

use crate::assignor::TopicPartition;
use crate::batch::StoredRecord;
use crate::error::{BuildError, GroupError, StreamError};
use crate::stream::{OffsetSpec, Stream};

/// Where a partition with no committed offset starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum OffsetReset {
    /// The oldest record still in the log (Kafka's `auto.offset.reset=earliest`).
    #[default]
    Earliest,
    /// Only new records.
    Latest,
}

/// A record with the partition it came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConsumedRecord {
    /// Topic.
    pub topic: String,
    /// Partition.
    pub partition: u32,
    /// The record.
    pub record: StoredRecord,
}

/// Builder of [`GroupConsumer`].
#[derive(Debug)]
#[must_use]
pub struct GroupConsumerBuilder {
    stream: Stream,
    group: String,
    topics: Vec<String>,
    instance_id: Option<String>,
    reset: OffsetReset,
    max_fetch_bytes: usize,
}

impl GroupConsumerBuilder {
    /// Topics to consume.
    pub fn subscribe<I: IntoIterator<Item = S>, S: Into<String>>(mut self, topics: I) -> Self {
        self.topics = topics.into_iter().map(Into::into).collect();
        self
    }
    /// Static membership (KIP-345): a restart with the same id inside the session timeout
    /// keeps the partitions without a rebalance.
    pub fn instance_id(mut self, id: impl Into<String>) -> Self {
        self.instance_id = Some(id.into());
        self
    }
    /// Start of partitions without a committed offset.
    pub fn offset_reset(mut self, r: OffsetReset) -> Self {
        self.reset = r;
        self
    }
    /// Bytes read per partition per fetch (default 1 MiB).
    pub fn max_fetch_bytes(mut self, n: usize) -> Self {
        self.max_fetch_bytes = n;
        self
    }

    /// Joins the group.
    ///
    /// # Errors
    /// [`BuildError::Invalid`] for no topics or zero fetch size; [`BuildError::Open`] for an
    /// unknown topic or a rejected join.
    pub fn build(self) -> Result<GroupConsumer, BuildError> {
        if self.topics.is_empty() {
            return Err(BuildError::Invalid {
                name: "topics",
                reason: "subscribe to at least one topic",
            });
        }
        if self.max_fetch_bytes == 0 {
            return Err(BuildError::Invalid {
                name: "max_fetch_bytes",
                reason: "must be positive",
            });
        }
        let mut c = GroupConsumer {
            stream: self.stream,
            group: self.group,
            topics: self.topics,
            instance_id: self.instance_id,
            reset: self.reset,
            max_fetch_bytes: self.max_fetch_bytes,
            member_id: String::new(),
            positions: BTreeMap::new(),
            cursor: 0,
            revoked_total: 0,
        };
        c.join().map_err(BuildError::Open)?;
        Ok(c)
    }
}

/// A consumer-group member. Not `Sync`: one thread polls it.
#[derive(Debug)]
pub struct GroupConsumer {
    stream: Stream,
    group: String,
    topics: Vec<String>,
    instance_id: Option<String>,
    reset: OffsetReset,
    max_fetch_bytes: usize,
    member_id: String,
    /// Owned partitions → next offset to read.
    positions: BTreeMap<TopicPartition, i64>,
    cursor: usize,
    revoked_total: u64,
}

impl GroupConsumer {
    /// A builder for a member of `group`.
    ///
    /// ```
    /// use keel_stream::{GroupConsumer, Record, Stream, TopicConfig};
    /// let dir = tempfile::tempdir().unwrap();
    /// let stream = Stream::builder().dir(dir.path()).build().unwrap();
    /// stream.create_topic("t", TopicConfig::builder().partitions(2).build().unwrap()).unwrap();
    /// stream.append("t", 1, &[Record::new("x")]).unwrap();
    /// let mut c = GroupConsumer::builder(&stream, "g").subscribe(["t"]).build().unwrap();
    /// let got = c.poll(10).unwrap();
    /// assert_eq!(got.len(), 1);
    /// c.commit().unwrap();
    /// assert_eq!(stream.committed("g", "t", 1), Some(1));
    /// ```
    pub fn builder(stream: &Stream, group: impl Into<String>) -> GroupConsumerBuilder {
        GroupConsumerBuilder {
            stream: stream.clone(),
            group: group.into(),
            topics: Vec::new(),
            instance_id: None,
            reset: OffsetReset::Earliest,
            max_fetch_bytes: 1 << 20,
        }
    }

    fn join(&mut self) -> Result<(), StreamError> {
        let mut sub = Vec::with_capacity(self.topics.len());
        for t in &self.topics {
            sub.push((t.clone(), self.stream.partition_count(t)?));
        }
        let j = self
            .stream
            .coordinator()
            .join(&self.group, self.instance_id.as_deref(), &sub)?;
        self.member_id = j.member_id;
        Ok(())
    }

    /// Heartbeats without polling; applies revocations and assignments.
    ///
    /// # Errors
    /// [`StreamError::Group`] when fenced; commit errors.
    pub fn heartbeat(&mut self) -> Result<(), StreamError> {
        self.sync(false)
    }

    fn sync(&mut self, polled: bool) -> Result<(), StreamError> {
        let a = match self
            .stream
            .coordinator()
            .heartbeat(&self.group, &self.member_id, polled)
        {
            Ok(a) => a,
            Err(GroupError::UnknownMember(_)) => {
                // Evicted (session or poll timeout): our partitions already went to others.
                self.positions.clear();
                self.join()?;
                self.stream
                    .coordinator()
                    .heartbeat(&self.group, &self.member_id, polled)?
            }
            Err(e) => return Err(e.into()),
        };
        if !a.revoked.is_empty() {
            let commits: Vec<(String, u32, i64)> = a
                .revoked
                .iter()
                .filter_map(|tp| {
                    self.positions
                        .get(tp)
                        .map(|o| (tp.topic.clone(), tp.partition, *o))
                })
                .collect();
            self.stream.commit(&self.group, &commits)?;
            for tp in &a.revoked {
                self.positions.remove(tp);
            }
            self.revoked_total += a.revoked.len() as u64;
        }
        // `owned` is the truth: it also covers a static member that took its slot back.
        let new: Vec<TopicPartition> = a
            .owned
            .into_iter()
            .filter(|tp| !self.positions.contains_key(tp))
            .collect();
        for tp in new {
            let start = match self.stream.committed(&self.group, &tp.topic, tp.partition) {
                Some(o) => o,
                None => self.reset_offset(&tp)?,
            };
            self.positions.insert(tp, start);
        }
        Ok(())
    }

    fn reset_offset(&self, tp: &TopicPartition) -> Result<i64, StreamError> {
        let spec = match self.reset {
            OffsetReset::Earliest => OffsetSpec::Earliest,
            OffsetReset::Latest => OffsetSpec::Latest,
        };
        self.stream.resolve_offset(&tp.topic, tp.partition, spec)
    }

    /// Heartbeats, then reads up to `max_records` from the owned partitions.
    ///
    /// # Errors
    /// [`StreamError::Group`] when fenced; [`StreamError::CorruptSegment`] on a bad batch.
    pub fn poll(&mut self, max_records: usize) -> Result<Vec<ConsumedRecord>, StreamError> {
        self.sync(true)?;
        let mut out = Vec::new();
        let owned: Vec<TopicPartition> = self.positions.keys().cloned().collect();
        if owned.is_empty() {
            return Ok(out);
        }
        for i in 0..owned.len() {
            if out.len() >= max_records {
                break;
            }
            let tp = &owned[(self.cursor + i) % owned.len()];
            let pos = self.positions[tp];
            let fetched =
                match self
                    .stream
                    .fetch(&tp.topic, tp.partition, pos, self.max_fetch_bytes)
                {
                    Ok(f) => f,
                    Err(StreamError::OffsetOutOfRange { .. }) => {
                        // Retention removed our position (or it is past the end): apply the reset policy.
                        let o = self.reset_offset(tp)?;
                        self.positions.insert(tp.clone(), o);
                        continue;
                    }
                    Err(e) => return Err(e),
                };
            let mut next = pos;
            for r in fetched.records()? {
                if out.len() >= max_records {
                    break;
                }
                next = r.offset + 1;
                out.push(ConsumedRecord {
                    topic: tp.topic.clone(),
                    partition: tp.partition,
                    record: r,
                });
            }
            if next == pos && out.len() < max_records {
                next = fetched.next_offset().max(pos);
            }
            self.positions.insert(tp.clone(), next);
        }
        self.cursor = self.cursor.wrapping_add(1);
        Ok(out)
    }

    /// Commits the position (next offset) of every owned partition — call after processing
    /// what `poll` returned for at-least-once.
    ///
    /// # Errors
    /// [`StreamError::Io`] and lookup errors.
    pub fn commit(&mut self) -> Result<(), StreamError> {
        let offsets: Vec<(String, u32, i64)> = self
            .positions
            .iter()
            .map(|(tp, o)| (tp.topic.clone(), tp.partition, *o))
            .collect();
        self.stream.commit(&self.group, &offsets)
    }

    /// Moves the position of an owned partition.
    ///
    /// # Errors
    /// [`StreamError::OffsetOutOfRange`]; [`StreamError::UnknownPartition`] if not owned.
    pub fn seek(&mut self, tp: &TopicPartition, spec: OffsetSpec) -> Result<(), StreamError> {
        let o = self.stream.resolve_offset(&tp.topic, tp.partition, spec)?;
        match self.positions.get_mut(tp) {
            Some(p) => {
                *p = o;
                Ok(())
            }
            None => Err(StreamError::UnknownPartition {
                topic: tp.topic.clone(),
                partition: tp.partition,
            }),
        }
    }

    /// Partitions owned now.
    pub fn assignment(&self) -> Vec<TopicPartition> {
        self.positions.keys().cloned().collect()
    }

    /// The member id.
    pub fn member_id(&self) -> &str {
        &self.member_id
    }

    /// Partitions this member has had revoked.
    pub fn revoked_total(&self) -> u64 {
        self.revoked_total
    }

    /// Commits and leaves. A static member does not leave (KIP-345): its slot waits for a
    /// restart until the session timeout.
    ///
    /// # Errors
    /// Commit errors.
    pub fn close(mut self) -> Result<(), StreamError> {
        self.commit()?;
        if self.instance_id.is_none() {
            let _ = self
                .stream
                .coordinator()
                .leave(&self.group, &self.member_id);
        }
        Ok(())
    }

    /// Simulates a crash: drops the member without committing or leaving.
    pub fn abandon(self) {}
}
