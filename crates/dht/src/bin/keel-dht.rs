//! `keel-dht` binary (in construction).
fn main() {}
