//! keel-cache (in progress).
