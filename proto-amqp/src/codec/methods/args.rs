//! Method arguments on the wire: one reader and one writer for every argument type of AMQP
//! 0-9-1, with the spec's bit packing (consecutive `bit` arguments share an octet, least
//! significant bit first; any other argument ends the run).

use crate::codec::types::{
    field_table, long_string, put_long_string, put_short_string, put_table, short_string, Res,
};
use bytes::{BufMut, Bytes, BytesMut};
use junction_core::FieldTable;
use nom::number::complete::{be_u16, be_u32, be_u64, be_u8};

/// A parse failure, as nom reports it.
pub(crate) type ArgError<'a> = nom::Err<nom::error::Error<&'a [u8]>>;

/// Reads a method's arguments in order.
pub(crate) struct Reader<'a> {
    input: &'a [u8],
    /// Nesting allowed in field tables.
    depth: usize,
    /// The octet of the current run of bits and the next bit in it (8: no run).
    bits: u8,
    next_bit: u8,
}

impl<'a> Reader<'a> {
    pub(crate) fn new(input: &'a [u8], depth: usize) -> Self {
        Reader {
            input,
            depth,
            bits: 0,
            next_bit: 8,
        }
    }

    /// What is left after the arguments.
    pub(crate) fn rest(&self) -> &'a [u8] {
        self.input
    }

    fn run<T>(&mut self, parse: impl FnOnce(&'a [u8]) -> Res<'a, T>) -> Result<T, ArgError<'a>> {
        self.next_bit = 8;
        let (rest, v) = parse(self.input)?;
        self.input = rest;
        Ok(v)
    }

    fn bit(&mut self) -> Result<bool, ArgError<'a>> {
        if self.next_bit >= 8 {
            let (rest, octet) = be_u8(self.input)?;
            self.input = rest;
            self.bits = octet;
            self.next_bit = 0;
        }
        let v = self.bits & (1 << self.next_bit) != 0;
        self.next_bit += 1;
        Ok(v)
    }
}

/// Writes a method's arguments in order.
pub(crate) struct Writer<'a> {
    out: &'a mut BytesMut,
    /// Where the octet of the current run of bits is, and the next bit in it (8: no run).
    bits_at: usize,
    next_bit: u8,
}

impl<'a> Writer<'a> {
    pub(crate) fn new(out: &'a mut BytesMut) -> Self {
        Writer {
            out,
            bits_at: 0,
            next_bit: 8,
        }
    }

    fn put(&mut self) -> &mut BytesMut {
        self.next_bit = 8;
        self.out
    }

    fn bit(&mut self, v: bool) {
        if self.next_bit >= 8 {
            self.bits_at = self.out.len();
            self.out.put_u8(0);
            self.next_bit = 0;
        }
        if v {
            self.out[self.bits_at] |= 1 << self.next_bit;
        }
        self.next_bit += 1;
    }
}

/// An argument type: how it is read and written, and its value where the spec reserves the
/// argument (written as that, ignored when read).
pub(crate) trait Arg: Sized {
    fn read<'a>(r: &mut Reader<'a>) -> Result<Self, ArgError<'a>>;
    fn write(&self, w: &mut Writer<'_>);
    fn reserved() -> Self;
}

impl Arg for u8 {
    fn read<'a>(r: &mut Reader<'a>) -> Result<Self, ArgError<'a>> {
        r.run(be_u8)
    }
    fn write(&self, w: &mut Writer<'_>) {
        w.put().put_u8(*self)
    }
    fn reserved() -> Self {
        0
    }
}

impl Arg for u16 {
    fn read<'a>(r: &mut Reader<'a>) -> Result<Self, ArgError<'a>> {
        r.run(be_u16)
    }
    fn write(&self, w: &mut Writer<'_>) {
        w.put().put_u16(*self)
    }
    fn reserved() -> Self {
        0
    }
}

impl Arg for u32 {
    fn read<'a>(r: &mut Reader<'a>) -> Result<Self, ArgError<'a>> {
        r.run(be_u32)
    }
    fn write(&self, w: &mut Writer<'_>) {
        w.put().put_u32(*self)
    }
    fn reserved() -> Self {
        0
    }
}

impl Arg for u64 {
    fn read<'a>(r: &mut Reader<'a>) -> Result<Self, ArgError<'a>> {
        r.run(be_u64)
    }
    fn write(&self, w: &mut Writer<'_>) {
        w.put().put_u64(*self)
    }
    fn reserved() -> Self {
        0
    }
}

impl Arg for bool {
    fn read<'a>(r: &mut Reader<'a>) -> Result<Self, ArgError<'a>> {
        r.bit()
    }
    fn write(&self, w: &mut Writer<'_>) {
        w.bit(*self)
    }
    fn reserved() -> Self {
        false
    }
}

/// shortstr.
impl Arg for String {
    fn read<'a>(r: &mut Reader<'a>) -> Result<Self, ArgError<'a>> {
        r.run(short_string)
    }
    fn write(&self, w: &mut Writer<'_>) {
        put_short_string(w.put(), self)
    }
    fn reserved() -> Self {
        String::new()
    }
}

/// longstr.
impl Arg for Bytes {
    fn read<'a>(r: &mut Reader<'a>) -> Result<Self, ArgError<'a>> {
        r.run(long_string)
    }
    fn write(&self, w: &mut Writer<'_>) {
        put_long_string(w.put(), self)
    }
    fn reserved() -> Self {
        Bytes::new()
    }
}

impl Arg for FieldTable {
    fn read<'a>(r: &mut Reader<'a>) -> Result<Self, ArgError<'a>> {
        let depth = r.depth;
        r.run(|i| field_table(i, depth))
    }
    fn write(&self, w: &mut Writer<'_>) {
        put_table(w.put(), self)
    }
    fn reserved() -> Self {
        FieldTable::new()
    }
}
