//! `keel-bench queue` (being written).

use crate::{Config, Report};

/// Runs the queue benchmark.
pub fn run(_cfg: &Config, _report: &mut Report) -> anyhow::Result<()> {
    anyhow::bail!("the queue benchmark is not written yet")
}
