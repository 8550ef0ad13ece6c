//! Tour scenario for queue (being written).

use super::{SystemReport, Tour};

pub(crate) fn run(_tour: &Tour) -> anyhow::Result<SystemReport> {
    anyhow::bail!("the queue tour scenario is not written yet")
}
