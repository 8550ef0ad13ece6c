//! keel-ring (in progress).
