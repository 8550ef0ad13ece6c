//! `keel-bench ring` (being written).

use crate::{Config, Report};

/// Runs the ring benchmark.
pub fn run(_cfg: &Config, _report: &mut Report) -> anyhow::Result<()> {
    anyhow::bail!("the ring benchmark is not written yet")
}
