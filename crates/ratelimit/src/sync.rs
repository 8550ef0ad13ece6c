//! The `loom` shim for the hand-written lock-free code (GCRA's CAS loop):
//! `RUSTFLAGS="--cfg loom"` swaps the atomic for loom's model-checked one.

#[cfg(loom)]
pub(crate) use loom::sync::atomic::{AtomicU64, Ordering};
#[cfg(not(loom))]
pub(crate) use std::sync::atomic::{AtomicU64, Ordering};
