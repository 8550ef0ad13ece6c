//! Child process for the kill -9 test (filled in below).
fn main() {}
