//! Tour scenario for cache (being written).

use super::{SystemReport, Tour};

pub(crate) fn run(_tour: &Tour) -> anyhow::Result<SystemReport> {
    anyhow::bail!("the cache tour scenario is not written yet")
}
