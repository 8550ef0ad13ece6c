//! keel-jobs (in progress)
