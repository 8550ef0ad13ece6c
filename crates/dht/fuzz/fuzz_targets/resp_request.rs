//! Feeds arbitrary bytes to the RESP request parser with small limits: it must never
//! panic, never consume zero bytes for a complete request, and never read past the input.
#![no_main]

use keel_dht::resp::{Limits, parse_request};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let limits = Limits { max_bulk_len: 1024, max_array_len: 64, max_inline_len: 256, max_request_len: 4096 };
    let mut rest = data;
    while let Ok(Some((_, used))) = parse_request(rest, &limits) {
        assert!(used > 0 && used <= rest.len());
        rest = &rest[used..];
    }
});
