//! [`StreamStats`] and the `metrics` facade.
//!
//! The append path counts in plain per-partition atomics (one `Relaxed` add each); nothing
//! on the hot path touches the facade. [`Stream::publish_metrics`] sums the atomics and sets
//! absolute `keel_stream_*` counters and gauges — call it from a timer or a scrape handler.

use crate::stream::Stream;

/// A snapshot of a stream's counters.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct StreamStats {
    /// Topics.
    pub topics: u64,
    /// Partitions over all topics.
    pub partitions: u64,
    /// Batches appended since open.
    pub appended_batches: u64,
    /// Records appended since open.
    pub appended_records: u64,
    /// Bytes appended since open.
    pub appended_bytes: u64,
    /// fsyncs of segment files.
    pub fsyncs: u64,
    /// Idempotent-producer retries answered without writing.
    pub duplicate_batches: u64,
    /// Segments rolled.
    pub segments_rolled: u64,
    /// Segments deleted by retention.
    pub segments_deleted: u64,
    /// Bytes cut from torn or corrupt tails when the stream was opened.
    pub recovered_truncated_bytes: u64,
    /// Bytes on disk in topic segments.
    pub log_bytes: u64,
    /// Bytes of the committed-offsets log.
    pub offsets_log_bytes: u64,
    /// Offset commits.
    pub offset_commits: u64,
    /// Consumer groups with members.
    pub groups: u64,
    /// Rebalances started.
    pub rebalances: u64,
    /// Partitions revoked from live members.
    pub revocations: u64,
    /// Members removed for a missed session or poll deadline.
    pub evictions: u64,
    /// Static members that rejoined without a rebalance.
    pub static_rejoins: u64,
}

impl Stream {
    /// Pushes [`StreamStats`] to the `metrics` facade as `keel_stream_*` counters/gauges.
    ///
    /// ```
    /// let dir = tempfile::tempdir().unwrap();
    /// let stream = keel_stream::Stream::builder().dir(dir.path()).build().unwrap();
    /// stream.publish_metrics(); // no recorder installed: a no-op
    /// assert_eq!(stream.stats().topics, 0);
    /// ```
    pub fn publish_metrics(&self) {
        let s = self.stats();
        for (name, v) in [
            ("keel_stream_appended_batches_total", s.appended_batches),
            ("keel_stream_appended_records_total", s.appended_records),
            ("keel_stream_appended_bytes_total", s.appended_bytes),
            ("keel_stream_fsyncs_total", s.fsyncs),
            ("keel_stream_duplicate_batches_total", s.duplicate_batches),
            ("keel_stream_segments_rolled_total", s.segments_rolled),
            ("keel_stream_segments_deleted_total", s.segments_deleted),
            ("keel_stream_offset_commits_total", s.offset_commits),
            ("keel_stream_rebalances_total", s.rebalances),
            ("keel_stream_revocations_total", s.revocations),
            ("keel_stream_evictions_total", s.evictions),
        ] {
            metrics::counter!(name).absolute(v);
        }
        metrics::gauge!("keel_stream_log_bytes").set(s.log_bytes as f64);
        metrics::gauge!("keel_stream_groups").set(s.groups as f64);
        for g in self.coordinator().groups() {
            let lag = self.lag(&g);
            metrics::gauge!("keel_stream_group_lag", "group" => g).set(lag.total as f64);
        }
    }
}
