//! keel-queue (in progress).
