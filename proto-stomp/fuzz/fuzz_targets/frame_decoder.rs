//! Feeds arbitrary bytes to the STOMP frame decoder (all versions): frames or errors, never a
//! panic, never a buffer past the limits.
#![no_main]

use bytes::BytesMut;
use junction_stomp::codec::{decode, Limits, Version};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let limits = Limits {
        max_headers: 100,
        max_header_length: 4096,
        max_body: 1 << 20,
    };
    for v in [Version::V1_0, Version::V1_1, Version::V1_2] {
        let mut buf = BytesMut::from(data);
        while let Ok(Some(_)) = decode(&mut buf, &limits, v) {}
    }
});
