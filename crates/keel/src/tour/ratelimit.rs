//! Tour scenario for ratelimit (being written).

use super::{SystemReport, Tour};

pub(crate) fn run(_tour: &Tour) -> anyhow::Result<SystemReport> {
    anyhow::bail!("the ratelimit tour scenario is not written yet")
}
