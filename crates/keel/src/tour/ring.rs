//! Tour scenario for ring (being written).

use super::{SystemReport, Tour};

pub(crate) fn run(_tour: &Tour) -> anyhow::Result<SystemReport> {
    anyhow::bail!("the ring tour scenario is not written yet")
}
