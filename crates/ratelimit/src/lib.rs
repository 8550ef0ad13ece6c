//! keel-ratelimit (in progress).
