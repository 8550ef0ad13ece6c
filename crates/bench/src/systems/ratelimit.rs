//! `keel-bench ratelimit` (being written).

use crate::{Config, Report};

/// Runs the ratelimit benchmark.
pub fn run(_cfg: &Config, _report: &mut Report) -> anyhow::Result<()> {
    anyhow::bail!("the ratelimit benchmark is not written yet")
}
