//! `keel-bench cache` (being written).

use crate::{Config, Report};

/// Runs the cache benchmark.
pub fn run(_cfg: &Config, _report: &mut Report) -> anyhow::Result<()> {
    anyhow::bail!("the cache benchmark is not written yet")
}
