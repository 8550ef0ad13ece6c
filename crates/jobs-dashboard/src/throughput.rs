//! Throughput from samples: the dashboard samples the store's counters (and each queue's
//! finished-job counts) on every overview and every few seconds while serving, and
//! reports the rate over the last minute.
//!
//! Time comes from the store's clock ([`Store::now`](keel_jobs::Store::now)), so a test
//! with a mock clock sees exact rates.

use std::collections::{BTreeMap, VecDeque};

use keel_jobs::{JobsStats, QueueCounts, Timestamp};
use serde::Serialize;

/// The window rates are computed over.
const WINDOW_MS: u64 = 60_000;
/// Samples closer together than this replace the newest instead of adding one.
const MIN_GAP_MS: u64 = 1_000;
/// Samples kept (a minute at one per second, plus slack).
const MAX_SAMPLES: usize = 64;

#[derive(Debug, Clone)]
struct Sample {
    at: Timestamp,
    completed: u64,
    failed: u64,
    enqueued: u64,
    /// succeeded + dead per queue.
    finished: BTreeMap<String, u64>,
}

/// Rates per second over the sampled window (`None` until two samples a second apart).
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct Throughput {
    /// Seconds the rates cover.
    pub window_secs: f64,
    /// Runs acknowledged per second (this process's store handle).
    pub completed_per_sec: Option<f64>,
    /// Failed runs per second (this process's store handle).
    pub failed_per_sec: Option<f64>,
    /// Jobs enqueued per second (this process's store handle).
    pub enqueued_per_sec: Option<f64>,
}

#[derive(Debug, Default)]
pub(crate) struct Sampler {
    samples: VecDeque<Sample>,
}

impl Sampler {
    pub(crate) fn record(
        &mut self,
        at: Timestamp,
        stats: &JobsStats,
        counts: &BTreeMap<String, QueueCounts>,
    ) {
        let sample = Sample {
            at,
            completed: stats.completed,
            failed: stats.failed,
            enqueued: stats.enqueued,
            finished: counts
                .iter()
                .map(|(q, c)| (q.clone(), c.succeeded + c.dead))
                .collect(),
        };
        let close = self
            .samples
            .back()
            .is_some_and(|last| at.0.saturating_sub(last.at.0) < MIN_GAP_MS);
        // Keep the older of two close samples as the base, replace only a newest one that
        // is itself close to its predecessor.
        if close && self.samples.len() >= 2 {
            let prev = &self.samples[self.samples.len() - 2];
            if at.0.saturating_sub(prev.at.0) < MIN_GAP_MS {
                self.samples.pop_back();
            }
        }
        self.samples.push_back(sample);
        while self.samples.len() > MAX_SAMPLES
            || self
                .samples
                .front()
                .is_some_and(|s| at.0.saturating_sub(s.at.0) > 2 * WINDOW_MS)
        {
            self.samples.pop_front();
        }
    }

    /// The oldest sample inside the window and the newest, if at least a second apart.
    fn span(&self) -> Option<(&Sample, &Sample, f64)> {
        let last = self.samples.back()?;
        let mut i = self
            .samples
            .iter()
            .position(|s| last.at.0.saturating_sub(s.at.0) <= WINDOW_MS)?;
        // Nothing else inside the window (an idle minute between views): the sample just
        // before it still gives a fair average.
        if i + 1 == self.samples.len() && i > 0 {
            i -= 1;
        }
        let base = &self.samples[i];
        let secs = last.at.0.saturating_sub(base.at.0) as f64 / 1000.0;
        (secs >= MIN_GAP_MS as f64 / 1000.0).then_some((base, last, secs))
    }

    pub(crate) fn throughput(&self) -> Throughput {
        let Some((base, last, secs)) = self.span() else {
            return Throughput::default();
        };
        let rate = |a: u64, b: u64| Some(b.saturating_sub(a) as f64 / secs);
        Throughput {
            window_secs: secs,
            completed_per_sec: rate(base.completed, last.completed),
            failed_per_sec: rate(base.failed, last.failed),
            enqueued_per_sec: rate(base.enqueued, last.enqueued),
        }
    }

    /// Jobs of `queue` that finished (succeeded and retained, or died) per second.
    pub(crate) fn finished_per_sec(&self, queue: &str) -> Option<f64> {
        let (base, last, secs) = self.span()?;
        let now = *last.finished.get(queue)?;
        let then = base.finished.get(queue).copied().unwrap_or(0);
        Some(now.saturating_sub(then) as f64 / secs)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rates_come_from_the_window_of_samples() {
        let mut s = Sampler::default();
        let counts = |dead| {
            BTreeMap::from([(
                "q".to_owned(),
                QueueCounts {
                    dead,
                    ..QueueCounts::default()
                },
            )])
        };
        let stats = |completed| JobsStats {
            completed,
            ..JobsStats::default()
        };
        s.record(Timestamp(0), &stats(0), &counts(0));
        assert_eq!(s.throughput().completed_per_sec, None);
        s.record(Timestamp(500), &stats(5), &counts(1));
        assert_eq!(s.throughput().completed_per_sec, None, "under a second");
        s.record(Timestamp(10_000), &stats(100), &counts(20));
        assert_eq!(s.throughput().completed_per_sec, Some(10.0));
        assert_eq!(s.finished_per_sec("q"), Some(2.0));
        assert_eq!(s.finished_per_sec("other"), None);
        // Old samples leave the window.
        s.record(Timestamp(80_000), &stats(800), &counts(20));
        assert_eq!(s.throughput().completed_per_sec, Some(10.0));
    }
}
