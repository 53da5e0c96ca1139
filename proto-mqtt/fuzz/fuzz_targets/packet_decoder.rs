//! Feeds arbitrary bytes to the MQTT packet decoder (before CONNECT, and as 3.1.1 and 5.0).
#![no_main]

use bytes::BytesMut;
use junction_mqtt::codec::{decode, Level};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    for level in [None, Some(Level::V4), Some(Level::V5)] {
        let mut buf = BytesMut::from(data);
        while let Ok(Some(_)) = decode(&mut buf, level, 1 << 20) {}
    }
});
