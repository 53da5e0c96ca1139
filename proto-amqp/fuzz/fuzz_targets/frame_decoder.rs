//! Feeds arbitrary bytes to the AMQP frame decoder: it must return frames or errors, never panic.
#![no_main]

use bytes::BytesMut;
use junction_amqp::codec::{decode, Limits};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let limits = Limits {
        frame_max: 131_072,
        table_depth: 16,
    };
    let mut buf = BytesMut::from(data);
    while let Ok(Some(_)) = decode(&mut buf, &limits) {}
});
