//! MQTT 5 properties as raw bytes, for the rules mqttbytes does not check: a property other
//! than User Property given twice is a protocol error (5.0 §2.2.2.2, and each property's own
//! "more than once" clause; mqttbytes keeps the last one), as is a Subscription Identifier of
//! 0.

use super::CodecError;

/// How a property's value is encoded, by its identifier (5.0 §2.2.2.2); None: not a property.
fn width(id: u8) -> Option<Value> {
    Some(match id {
        0x01 | 0x17 | 0x19 | 0x24 | 0x25 | 0x28 | 0x29 | 0x2A => Value::Fixed(1),
        0x13 | 0x21 | 0x22 | 0x23 => Value::Fixed(2),
        0x02 | 0x11 | 0x18 | 0x27 => Value::Fixed(4),
        0x0B => Value::VarInt,
        0x03 | 0x08 | 0x09 | 0x12 | 0x15 | 0x16 | 0x1A | 0x1C | 0x1F => Value::Prefixed,
        0x26 => Value::Pair,
        _ => return None,
    })
}

#[derive(Clone, Copy)]
enum Value {
    Fixed(usize),
    VarInt,
    /// A two-byte length and that many bytes (strings, binary data).
    Prefixed,
    /// Two of those (User Property).
    Pair,
}

/// A variable byte integer at the start of `b`: its value and its length.
pub(super) fn varint(b: &[u8]) -> Option<(usize, usize)> {
    let mut value = 0usize;
    for (i, byte) in b.iter().take(4).enumerate() {
        value |= ((byte & 0x7f) as usize) << (7 * i);
        if byte & 0x80 == 0 {
            return Some((value, i + 1));
        }
    }
    None
}

fn prefixed(b: &[u8]) -> Option<usize> {
    let len = b
        .get(..2)
        .map(|l| u16::from_be_bytes([l[0], l[1]]) as usize)?;
    (b.len() >= 2 + len).then_some(2 + len)
}

/// Checks the property list at the start of `b` (its length first) for a property given twice;
/// returns the bytes after the list. Malformed lists are left to mqttbytes (Ok, and what it
/// could not read ends the scan).
pub(super) fn check_unique(b: &[u8]) -> Result<&[u8], CodecError> {
    check_list(b, &[])
}

/// As [`check_unique`], and refuses the properties `forbidden` (a client may not send them
/// in this packet).
fn check_list<'a>(b: &'a [u8], forbidden: &[u8]) -> Result<&'a [u8], CodecError> {
    let Some((len, n)) = varint(b) else {
        return Ok(&[]);
    };
    let Some(mut props) = b.get(n..n + len) else {
        return Ok(&[]);
    };
    let rest = &b[n + len..];
    let mut seen = [false; 64];
    while let Some((&id, after)) = props.split_first() {
        let Some(kind) = width(id) else {
            return Ok(rest);
        };
        if forbidden.contains(&id) {
            return Err(CodecError::Protocol(format!(
                "property {id:#04x} is not allowed here"
            )));
        }
        if id != 0x26 {
            if seen[id as usize] {
                return Err(CodecError::Protocol(format!(
                    "property {id:#04x} given more than once"
                )));
            }
            seen[id as usize] = true;
        }
        let size = match kind {
            Value::Fixed(k) => Some(k),
            Value::VarInt => match varint(after) {
                // A Subscription Identifier of 0 is a protocol error (§3.8.2.1.2, §3.3.2.3.8).
                Some((0, _)) if id == 0x0B => {
                    return Err(CodecError::Protocol("Subscription Identifier of 0".into()))
                }
                v => v.map(|v| v.1),
            },
            Value::Prefixed => prefixed(after),
            Value::Pair => prefixed(after).and_then(|k| Some(k + prefixed(&after[k..])?)),
        };
        match size.and_then(|k| after.get(k..)) {
            Some(next) => props = next,
            None => return Ok(rest),
        }
    }
    Ok(rest)
}

/// The properties of a 5.0 CONNECT (`body`: variable header and payload), and of its will
/// when it has one.
pub(super) fn check_connect(body: &[u8]) -> Result<(), CodecError> {
    let Some(name_len) = body
        .get(..2)
        .map(|b| u16::from_be_bytes([b[0], b[1]]) as usize)
    else {
        return Ok(());
    };
    let Some(&flags) = body.get(3 + name_len) else {
        return Ok(());
    };
    let Some(props) = body.get(6 + name_len..) else {
        return Ok(());
    };
    let after = check_unique(props)?;
    if flags & 0x04 != 0 {
        // The payload: the client id, then the will's properties.
        if let Some(k) = prefixed(after) {
            check_unique(&after[k..])?;
        }
    }
    Ok(())
}

/// The properties of a 5.0 PUBLISH from a client (`flags`: the fixed header's low bits): no
/// property twice, and no Subscription Identifier, which only the server sends
/// [MQTT-3.3.4-6].
pub(super) fn check_publish(flags: u8, body: &[u8]) -> Result<(), CodecError> {
    let Some(k) = prefixed(body) else {
        return Ok(());
    };
    let id = if flags & 0b0110 != 0 { 2 } else { 0 };
    match body.get(k + id..) {
        Some(props) => check_list(props, &[0x0B]).map(|_| ()),
        None => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_repeated_property_is_refused_but_user_properties_may_repeat() {
        // Session Expiry twice.
        let twice = [10, 0x11, 0, 0, 0, 1, 0x11, 0, 0, 0, 2];
        assert!(matches!(check_unique(&twice), Err(CodecError::Protocol(_))));
        // Three User Properties (7 bytes each) and Receive Maximum: fine, and the bytes after
        // the list are returned.
        let user = [0x26, 0, 1, b'k', 0, 1, b'v'];
        let mut list = vec![24];
        for _ in 0..3 {
            list.extend_from_slice(&user);
        }
        list.extend_from_slice(&[0x21, 0, 10, 0xAA]);
        assert_eq!(check_unique(&list).unwrap(), &[0xAA]);
        // Subscription Identifier twice.
        assert!(check_unique(&[4, 0x0B, 1, 0x0B, 2]).is_err());
    }

    #[test]
    fn publish_properties_are_found_after_the_topic_and_packet_id() {
        let twice = [10u8, 0x02, 0, 0, 0, 1, 0x02, 0, 0, 0, 2];
        let qos0 = [&[0, 1, b't'][..], &twice].concat();
        assert!(check_publish(0, &qos0).is_err());
        let qos1 = [&[0, 1, b't', 0, 7][..], &twice].concat();
        assert!(check_publish(0b0010, &qos1).is_err());
        let once = [&[0, 1, b't', 0, 7][..], &twice[..6]].concat();
        let mut once = once;
        once[5] = 5;
        assert!(check_publish(0b0010, &once).is_ok());
        // A Subscription Identifier from a client.
        let with_id = [&[0, 1, b't'][..], &[2, 0x0B, 5]].concat();
        assert!(matches!(
            check_publish(0, &with_id),
            Err(CodecError::Protocol(_))
        ));
    }

    #[test]
    fn truncated_lists_are_left_to_mqttbytes() {
        for bad in [&[5u8, 0x11, 0][..], &[0x80], &[2, 0x26, 0]] {
            assert!(check_unique(bad).is_ok(), "{bad:?}");
        }
    }
}
