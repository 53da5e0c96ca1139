//! AMQP 0-9-1 field types: short/long strings, field tables and arrays (with RabbitMQ's type
//! tags, per the 0-9-1 errata), and bit packing.

use bytes::{BufMut, Bytes, BytesMut};
use junction_core::{FieldTable, FieldValue};
use nom::bytes::complete::take;
use nom::error::{Error, ErrorKind};
use nom::number::complete::{
    be_f32, be_f64, be_i16, be_i32, be_i64, be_i8, be_u16, be_u32, be_u64, be_u8,
};
use nom::IResult;

/// A nom parse result over bytes.
pub type Res<'a, T> = IResult<&'a [u8], T>;

fn fail<T>(input: &[u8]) -> Res<'_, T> {
    Err(nom::Err::Error(Error::new(input, ErrorKind::Verify)))
}

/// shortstr: u8 length + bytes (taken as UTF-8, invalid sequences replaced).
pub fn short_string(input: &[u8]) -> Res<'_, String> {
    let (input, len) = be_u8(input)?;
    let (input, raw) = take(len)(input)?;
    Ok((input, String::from_utf8_lossy(raw).into_owned()))
}

/// longstr: u32 length + bytes. The length is checked against the input before anything is kept.
pub fn long_string(input: &[u8]) -> Res<'_, Bytes> {
    let (input, len) = be_u32(input)?;
    let (input, raw) = take(len)(input)?;
    Ok((input, Bytes::copy_from_slice(raw)))
}

/// A field table nested at most `depth` levels further.
pub fn field_table(input: &[u8], depth: usize) -> Res<'_, FieldTable> {
    let (input, len) = be_u32(input)?;
    let (rest, mut body) = take(len)(input)?;
    let mut entries = Vec::new();
    while !body.is_empty() {
        let (b, name) = short_string(body)?;
        let (b, value) = field_value(b, depth)?;
        entries.push((name, value));
        body = b;
    }
    Ok((rest, FieldTable(entries)))
}

fn field_array(input: &[u8], depth: usize) -> Res<'_, Vec<FieldValue>> {
    let (input, len) = be_u32(input)?;
    let (rest, mut body) = take(len)(input)?;
    let mut values = Vec::new();
    while !body.is_empty() {
        let (b, v) = field_value(body, depth)?;
        values.push(v);
        body = b;
    }
    Ok((rest, values))
}

/// One tagged value. `depth` bounds table/array nesting.
pub fn field_value(input: &[u8], depth: usize) -> Res<'_, FieldValue> {
    let (input, tag) = be_u8(input)?;
    let nested = |input| {
        if depth == 0 {
            fail(input)
        } else {
            Ok((input, ()))
        }
    };
    Ok(match tag {
        b't' => {
            let (i, v) = be_u8(input)?;
            (i, FieldValue::Bool(v != 0))
        }
        b'b' => {
            let (i, v) = be_i8(input)?;
            (i, FieldValue::I8(v))
        }
        b'B' => {
            let (i, v) = be_u8(input)?;
            (i, FieldValue::U8(v))
        }
        b's' => {
            let (i, v) = be_i16(input)?;
            (i, FieldValue::I16(v))
        }
        b'u' => {
            let (i, v) = be_u16(input)?;
            (i, FieldValue::U16(v))
        }
        b'I' => {
            let (i, v) = be_i32(input)?;
            (i, FieldValue::I32(v))
        }
        b'i' => {
            let (i, v) = be_u32(input)?;
            (i, FieldValue::U32(v))
        }
        b'l' | b'L' => {
            let (i, v) = be_i64(input)?;
            (i, FieldValue::I64(v))
        }
        b'f' => {
            let (i, v) = be_f32(input)?;
            (i, FieldValue::F32(v))
        }
        b'd' => {
            let (i, v) = be_f64(input)?;
            (i, FieldValue::F64(v))
        }
        b'D' => {
            let (i, scale) = be_u8(input)?;
            let (i, value) = be_u32(i)?;
            (i, FieldValue::Decimal { scale, value })
        }
        b'S' => {
            let (i, v) = long_string(input)?;
            (i, FieldValue::LongString(v))
        }
        b'x' => {
            let (i, v) = long_string(input)?;
            (i, FieldValue::ByteArray(v))
        }
        b'A' => {
            let (input, ()) = nested(input)?;
            let (i, v) = field_array(input, depth - 1)?;
            (i, FieldValue::Array(v))
        }
        b'T' => {
            let (i, v) = be_u64(input)?;
            (i, FieldValue::Timestamp(v))
        }
        b'F' => {
            let (input, ()) = nested(input)?;
            let (i, v) = field_table(input, depth - 1)?;
            (i, FieldValue::Table(v))
        }
        b'V' => (input, FieldValue::Void),
        _ => return fail(input),
    })
}

/// Unpacks `n` consecutive bit fields from one octet (least significant bit first).
pub fn bits(input: &[u8], n: usize) -> Res<'_, [bool; 8]> {
    let (input, octet) = be_u8(input)?;
    let mut out = [false; 8];
    for (i, slot) in out.iter_mut().enumerate().take(n.min(8)) {
        *slot = octet & (1 << i) != 0;
    }
    Ok((input, out))
}

/// Writes shortstr; text longer than 255 bytes is cut at a character boundary.
pub fn put_short_string(out: &mut BytesMut, s: &str) {
    let mut end = s.len().min(255);
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    out.put_u8(end as u8);
    out.put_slice(&s.as_bytes()[..end]);
}

/// Appends a long string (32-bit length, then the bytes).
pub fn put_long_string(out: &mut BytesMut, b: &[u8]) {
    out.put_u32(b.len() as u32);
    out.put_slice(b);
}

/// Packs bit fields into one octet.
pub fn put_bits(out: &mut BytesMut, flags: &[bool]) {
    let octet = flags
        .iter()
        .enumerate()
        .fold(0u8, |acc, (i, &f)| acc | ((f as u8) << i));
    out.put_u8(octet);
}

/// Appends a field table.
pub fn put_table(out: &mut BytesMut, t: &FieldTable) {
    let at = out.len();
    out.put_u32(0);
    for (k, v) in t.iter() {
        put_short_string(out, k);
        put_value(out, v);
    }
    let len = (out.len() - at - 4) as u32;
    out[at..at + 4].copy_from_slice(&len.to_be_bytes());
}

/// Appends a field value with its type octet.
pub fn put_value(out: &mut BytesMut, v: &FieldValue) {
    match v {
        FieldValue::Bool(b) => {
            out.put_u8(b't');
            out.put_u8(*b as u8)
        }
        FieldValue::I8(x) => {
            out.put_u8(b'b');
            out.put_i8(*x)
        }
        FieldValue::U8(x) => {
            out.put_u8(b'B');
            out.put_u8(*x)
        }
        FieldValue::I16(x) => {
            out.put_u8(b's');
            out.put_i16(*x)
        }
        FieldValue::U16(x) => {
            out.put_u8(b'u');
            out.put_u16(*x)
        }
        FieldValue::I32(x) => {
            out.put_u8(b'I');
            out.put_i32(*x)
        }
        FieldValue::U32(x) => {
            out.put_u8(b'i');
            out.put_u32(*x)
        }
        FieldValue::I64(x) => {
            out.put_u8(b'l');
            out.put_i64(*x)
        }
        FieldValue::F32(x) => {
            out.put_u8(b'f');
            out.put_f32(*x)
        }
        FieldValue::F64(x) => {
            out.put_u8(b'd');
            out.put_f64(*x)
        }
        FieldValue::Decimal { scale, value } => {
            out.put_u8(b'D');
            out.put_u8(*scale);
            out.put_u32(*value)
        }
        FieldValue::LongString(b) => {
            out.put_u8(b'S');
            put_long_string(out, b)
        }
        FieldValue::ByteArray(b) => {
            out.put_u8(b'x');
            put_long_string(out, b)
        }
        FieldValue::Array(a) => {
            out.put_u8(b'A');
            let at = out.len();
            out.put_u32(0);
            for x in a {
                put_value(out, x);
            }
            let len = (out.len() - at - 4) as u32;
            out[at..at + 4].copy_from_slice(&len.to_be_bytes());
        }
        FieldValue::Timestamp(t) => {
            out.put_u8(b'T');
            out.put_u64(*t)
        }
        FieldValue::Table(t) => {
            out.put_u8(b'F');
            put_table(out, t)
        }
        FieldValue::Void => out.put_u8(b'V'),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_fixture_round_trips() {
        // A table as RabbitMQ's Java client writes it: {"a": S"b", "n": I 1}.
        let bytes: &[u8] = &[
            0, 0, 0, 15, 1, b'a', b'S', 0, 0, 0, 1, b'b', 1, b'n', b'I', 0, 0, 0, 1,
        ];
        let (rest, t) = field_table(bytes, 4).unwrap();
        assert!(rest.is_empty());
        assert_eq!(t.get_str("a"), Some("b"));
        assert_eq!(t.get("n"), Some(&FieldValue::I32(1)));
        let mut out = BytesMut::new();
        put_table(&mut out, &t);
        assert_eq!(&out[..], bytes);
    }

    #[test]
    fn every_type_round_trips() {
        let mut inner = FieldTable::new();
        inner.insert(
            "deep",
            FieldValue::Array(vec![FieldValue::Void, FieldValue::I8(-1)]),
        );
        let t: FieldTable = vec![
            ("t".into(), FieldValue::Bool(true)),
            ("b".into(), FieldValue::I8(-5)),
            ("B".into(), FieldValue::U8(250)),
            ("s".into(), FieldValue::I16(-300)),
            ("u".into(), FieldValue::U16(60000)),
            ("I".into(), FieldValue::I32(-70000)),
            ("i".into(), FieldValue::U32(4_000_000_000)),
            ("l".into(), FieldValue::I64(-1 << 40)),
            ("f".into(), FieldValue::F32(1.5)),
            ("d".into(), FieldValue::F64(-2.25)),
            (
                "D".into(),
                FieldValue::Decimal {
                    scale: 2,
                    value: 12345,
                },
            ),
            (
                "S".into(),
                FieldValue::LongString(Bytes::from_static(b"\x00bin\xff")),
            ),
            (
                "x".into(),
                FieldValue::ByteArray(Bytes::from_static(b"\x01\x02")),
            ),
            ("T".into(), FieldValue::Timestamp(1_700_000_000)),
            ("F".into(), FieldValue::Table(inner)),
            ("V".into(), FieldValue::Void),
        ]
        .into_iter()
        .collect();
        let mut out = BytesMut::new();
        put_table(&mut out, &t);
        let (rest, back) = field_table(&out, 4).unwrap();
        assert!(rest.is_empty());
        assert_eq!(back, t);
    }

    #[test]
    fn nesting_and_lengths_are_bounded() {
        // Nested three deep, allowed depth 2.
        let mut t = FieldTable::new();
        t.insert("x", FieldValue::I8(1));
        for _ in 0..3 {
            let mut outer = FieldTable::new();
            outer.insert("n", FieldValue::Table(t));
            t = outer;
        }
        let mut out = BytesMut::new();
        put_table(&mut out, &t);
        assert!(field_table(&out, 2).is_err());
        assert!(field_table(&out, 3).is_ok());
        // A table claiming 4 GiB with 3 bytes present.
        assert!(field_table(&[0xff, 0xff, 0xff, 0xff, 1, 2, 3], 4).is_err());
        // An unknown type tag.
        assert!(field_table(&[0, 0, 0, 3, 1, b'k', b'?'], 4).is_err());
    }
}
