//! keel-dht (in construction).
