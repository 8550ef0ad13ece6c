//! A frame fuzzer: random bytes and random headers into the request decoder. No input may
//! panic or allocate without bound (the decoder's arrays are bounded by the bytes left;
//! a run that tried to reserve gigabytes would abort this test process).

use bytes::Bytes;
use keel_stream_broker::api::versions::SUPPORTED;
use keel_stream_broker::codec::{check_length, decode_request};
use proptest::prelude::*;

proptest! {
    #![proptest_config(ProptestConfig { cases: 4096, ..ProptestConfig::default() })]

    #[test]
    fn random_bytes_never_panic(frame in proptest::collection::vec(any::<u8>(), 0..256)) {
        let _ = decode_request(Bytes::from(frame));
    }

    #[test]
    fn random_bodies_of_every_served_api_and_version_never_panic(
        which in 0..SUPPORTED.len(),
        version_pick in any::<u16>(),
        body in proptest::collection::vec(any::<u8>(), 0..512),
        big_counts in any::<bool>(),
    ) {
        let (key, lo, hi) = SUPPORTED[which];
        let version = lo + (version_pick % (hi - lo + 1) as u16) as i16;
        let mut frame = Vec::with_capacity(10 + body.len());
        frame.extend_from_slice(&(key as i16).to_be_bytes());
        frame.extend_from_slice(&version.to_be_bytes());
        frame.extend_from_slice(&7i32.to_be_bytes());
        frame.extend_from_slice(&(-1i16).to_be_bytes()); // null client id
        if big_counts {
            // Large array counts right after the header, where most bodies start with one.
            frame.extend_from_slice(&[0x7f, 0xff, 0xff, 0xff, 0x0f, 0xff, 0xff, 0xff, 0x7f]);
        }
        frame.extend_from_slice(&body);
        let _ = decode_request(Bytes::from(frame));
    }

    #[test]
    fn length_prefixes_are_checked_before_allocation(prefix in any::<[u8; 4]>()) {
        let len = i32::from_be_bytes(prefix);
        match check_length(prefix, 1 << 20) {
            Ok(n) => prop_assert!((8..=1 << 20).contains(&n) && n as i32 == len),
            Err(_) => prop_assert!(!(8..=1 << 20).contains(&len)),
        }
    }
}
