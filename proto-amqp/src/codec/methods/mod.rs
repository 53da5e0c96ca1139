//! AMQP 0-9-1 methods (with RabbitMQ's extensions), generated from one table: the [`Method`]
//! enum, its class and method ids, and the decoding and encoding of its arguments.
//!
//! Each row of the table is a method's ids, its name in the spec, its variant, and its
//! arguments in wire order. `{ … }` rows are struct variants: a named argument is a field of
//! the variant, an unnamed one (`: short`) is an argument the spec reserves — read and
//! ignored, written as its zero value. `[ … ]` rows are unit variants, with the types of their
//! reserved arguments. Argument types are the spec's: `octet`, `short`, `long`, `longlong`,
//! `bit` (consecutive bits share an octet), `shortstr`, `longstr`, `table`.

mod args;

use args::{Arg, ArgError, Reader, Writer};
use bytes::{Bytes, BytesMut};
use junction_core::FieldTable;

/// The Rust type of an argument type.
macro_rules! arg_type {
    (octet) => {
        u8
    };
    (short) => {
        u16
    };
    (long) => {
        u32
    };
    (longlong) => {
        u64
    };
    (bit) => {
        bool
    };
    (shortstr) => {
        String
    };
    (longstr) => {
        Bytes
    };
    (table) => {
        FieldTable
    };
}

/// Writes one argument: a named one from its binding, a reserved one as its zero value.
macro_rules! write_arg {
    ($w:ident, $name:ident, $kind:ident) => {
        Arg::write($name, $w)
    };
    ($w:ident, , $kind:ident) => {
        <arg_type!($kind) as Arg>::reserved().write($w)
    };
}

macro_rules! methods {
    ( $(
        ($c:literal, $m:literal, $spec:literal) $v:ident
            $({ $( $($name:ident)? : $kind:ident ),* $(,)? })?
            $([ $($rkind:ident),* ])?
    ;)* ) => {
        /// Every method of the classes connection, channel, exchange, queue, basic, confirm
        /// and tx; fields are the spec's arguments, by the spec's names.
        #[derive(Debug, Clone, PartialEq)]
        pub enum Method {
            $(
                #[doc = concat!("`", $spec, "` (", $c, "/", $m, ").")]
                $v $({ $( $(
                    #[doc = concat!("The `", stringify!($name), "` argument.")]
                    $name: arg_type!($kind),
                )? )* })?,
            )*
        }

        impl Method {
            /// (class id, method id).
            pub fn ids(&self) -> (u16, u16) {
                match self {
                    $( Method::$v { .. } => ($c, $m), )*
                }
            }

            /// The method's name in the spec (`queue.declare`).
            pub fn spec_name(&self) -> &'static str {
                match self {
                    $( Method::$v { .. } => $spec, )*
                }
            }
        }

        /// The arguments of method `ids`; `None` for ids no row has.
        fn read_args<'a>(ids: (u16, u16), r: &mut Reader<'a>) -> Option<Result<Method, ArgError<'a>>> {
            Some((|| -> Result<Method, ArgError<'a>> {
                Ok(match ids {
                    $(
                        ($c, $m) => {
                            $( $( $( let $name = )? <arg_type!($kind) as Arg>::read(r)?; )* )?
                            $( $( <arg_type!($rkind) as Arg>::read(r)?; )* )?
                            Method::$v $({ $( $( $name, )? )* })?
                        }
                    )*
                    _ => return Err(nom::Err::Failure(nom::error::Error::new(
                        r.rest(),
                        nom::error::ErrorKind::Tag,
                    ))),
                })
            })())
            .filter(|res| !matches!(res, Err(nom::Err::Failure(e)) if e.code == nom::error::ErrorKind::Tag))
        }

        fn write_args(m: &Method, w: &mut Writer<'_>) {
            match m {
                $(
                    Method::$v $({ $( $( $name, )? )* })? => {
                        $( $( write_arg!(w, $($name)?, $kind); )* )?
                        $( $( <arg_type!($rkind) as Arg>::reserved().write(w); )* )?
                    }
                )*
            }
        }
    };
}

methods! {
    (10, 10, "connection.start") ConnectionStart {
        version_major: octet, version_minor: octet, server_properties: table,
        mechanisms: longstr, locales: longstr,
    };
    (10, 11, "connection.start-ok") ConnectionStartOk {
        client_properties: table, mechanism: shortstr, response: longstr, locale: shortstr,
    };
    (10, 20, "connection.secure") ConnectionSecure { challenge: longstr };
    (10, 21, "connection.secure-ok") ConnectionSecureOk { response: longstr };
    (10, 30, "connection.tune") ConnectionTune {
        channel_max: short, frame_max: long, heartbeat: short,
    };
    (10, 31, "connection.tune-ok") ConnectionTuneOk {
        channel_max: short, frame_max: long, heartbeat: short,
    };
    (10, 40, "connection.open") ConnectionOpen { virtual_host: shortstr, : shortstr, : bit };
    (10, 41, "connection.open-ok") ConnectionOpenOk [shortstr];
    (10, 50, "connection.close") ConnectionClose {
        reply_code: short, reply_text: shortstr, class_id: short, method_id: short,
    };
    (10, 51, "connection.close-ok") ConnectionCloseOk [];
    (10, 60, "connection.blocked") ConnectionBlocked { reason: shortstr };
    (10, 61, "connection.unblocked") ConnectionUnblocked [];
    (10, 70, "connection.update-secret") ConnectionUpdateSecret {
        new_secret: longstr, reason: shortstr,
    };
    (10, 71, "connection.update-secret-ok") ConnectionUpdateSecretOk [];

    (20, 10, "channel.open") ChannelOpen [shortstr];
    (20, 11, "channel.open-ok") ChannelOpenOk [longstr];
    (20, 20, "channel.flow") ChannelFlow { active: bit };
    (20, 21, "channel.flow-ok") ChannelFlowOk { active: bit };
    (20, 40, "channel.close") ChannelClose {
        reply_code: short, reply_text: shortstr, class_id: short, method_id: short,
    };
    (20, 41, "channel.close-ok") ChannelCloseOk [];

    (40, 10, "exchange.declare") ExchangeDeclare {
        : short, exchange: shortstr, kind: shortstr, passive: bit, durable: bit,
        auto_delete: bit, internal: bit, no_wait: bit, arguments: table,
    };
    (40, 11, "exchange.declare-ok") ExchangeDeclareOk [];
    (40, 20, "exchange.delete") ExchangeDelete {
        : short, exchange: shortstr, if_unused: bit, no_wait: bit,
    };
    (40, 21, "exchange.delete-ok") ExchangeDeleteOk [];
    (40, 30, "exchange.bind") ExchangeBind {
        : short, destination: shortstr, source: shortstr, routing_key: shortstr,
        no_wait: bit, arguments: table,
    };
    (40, 31, "exchange.bind-ok") ExchangeBindOk [];
    (40, 40, "exchange.unbind") ExchangeUnbind {
        : short, destination: shortstr, source: shortstr, routing_key: shortstr,
        no_wait: bit, arguments: table,
    };
    (40, 51, "exchange.unbind-ok") ExchangeUnbindOk [];

    (50, 10, "queue.declare") QueueDeclare {
        : short, queue: shortstr, passive: bit, durable: bit, exclusive: bit,
        auto_delete: bit, no_wait: bit, arguments: table,
    };
    (50, 11, "queue.declare-ok") QueueDeclareOk {
        queue: shortstr, message_count: long, consumer_count: long,
    };
    (50, 20, "queue.bind") QueueBind {
        : short, queue: shortstr, exchange: shortstr, routing_key: shortstr,
        no_wait: bit, arguments: table,
    };
    (50, 21, "queue.bind-ok") QueueBindOk [];
    (50, 30, "queue.purge") QueuePurge { : short, queue: shortstr, no_wait: bit };
    (50, 31, "queue.purge-ok") QueuePurgeOk { message_count: long };
    (50, 40, "queue.delete") QueueDelete {
        : short, queue: shortstr, if_unused: bit, if_empty: bit, no_wait: bit,
    };
    (50, 41, "queue.delete-ok") QueueDeleteOk { message_count: long };
    (50, 50, "queue.unbind") QueueUnbind {
        : short, queue: shortstr, exchange: shortstr, routing_key: shortstr,
        arguments: table,
    };
    (50, 51, "queue.unbind-ok") QueueUnbindOk [];

    (60, 10, "basic.qos") BasicQos { prefetch_size: long, prefetch_count: short, global: bit };
    (60, 11, "basic.qos-ok") BasicQosOk [];
    (60, 20, "basic.consume") BasicConsume {
        : short, queue: shortstr, consumer_tag: shortstr, no_local: bit, no_ack: bit,
        exclusive: bit, no_wait: bit, arguments: table,
    };
    (60, 21, "basic.consume-ok") BasicConsumeOk { consumer_tag: shortstr };
    (60, 30, "basic.cancel") BasicCancel { consumer_tag: shortstr, no_wait: bit };
    (60, 31, "basic.cancel-ok") BasicCancelOk { consumer_tag: shortstr };
    (60, 40, "basic.publish") BasicPublish {
        : short, exchange: shortstr, routing_key: shortstr, mandatory: bit, immediate: bit,
    };
    (60, 50, "basic.return") BasicReturn {
        reply_code: short, reply_text: shortstr, exchange: shortstr, routing_key: shortstr,
    };
    (60, 60, "basic.deliver") BasicDeliver {
        consumer_tag: shortstr, delivery_tag: longlong, redelivered: bit, exchange: shortstr,
        routing_key: shortstr,
    };
    (60, 70, "basic.get") BasicGet { : short, queue: shortstr, no_ack: bit };
    (60, 71, "basic.get-ok") BasicGetOk {
        delivery_tag: longlong, redelivered: bit, exchange: shortstr, routing_key: shortstr,
        message_count: long,
    };
    (60, 72, "basic.get-empty") BasicGetEmpty [shortstr];
    (60, 80, "basic.ack") BasicAck { delivery_tag: longlong, multiple: bit };
    (60, 90, "basic.reject") BasicReject { delivery_tag: longlong, requeue: bit };
    (60, 100, "basic.recover-async") BasicRecoverAsync { requeue: bit };
    (60, 110, "basic.recover") BasicRecover { requeue: bit };
    (60, 111, "basic.recover-ok") BasicRecoverOk [];
    (60, 120, "basic.nack") BasicNack { delivery_tag: longlong, multiple: bit, requeue: bit };

    (85, 10, "confirm.select") ConfirmSelect { no_wait: bit };
    (85, 11, "confirm.select-ok") ConfirmSelectOk [];

    (90, 10, "tx.select") TxSelect [];
    (90, 11, "tx.select-ok") TxSelectOk [];
    (90, 20, "tx.commit") TxCommit [];
    (90, 21, "tx.commit-ok") TxCommitOk [];
    (90, 30, "tx.rollback") TxRollback [];
    (90, 31, "tx.rollback-ok") TxRollbackOk [];
}

/// Class ids.
pub mod class {
    /// connection
    pub const CONNECTION: u16 = 10;
    /// channel
    pub const CHANNEL: u16 = 20;
    /// exchange
    pub const EXCHANGE: u16 = 40;
    /// queue
    pub const QUEUE: u16 = 50;
    /// basic
    pub const BASIC: u16 = 60;
    /// confirm (RabbitMQ's extension)
    pub const CONFIRM: u16 = 85;
    /// tx
    pub const TX: u16 = 90;
}

impl Method {
    /// Methods followed by a content header and body.
    pub fn has_content(&self) -> bool {
        matches!(
            self,
            Method::BasicPublish { .. }
                | Method::BasicReturn { .. }
                | Method::BasicDeliver { .. }
                | Method::BasicGetOk { .. }
        )
    }
}

/// Parses a method's arguments. `None` = unknown class/method; `Err` = malformed arguments.
pub fn decode_method(
    class_id: u16,
    method_id: u16,
    i: &[u8],
    depth: usize,
) -> Option<super::types::Res<'_, Method>> {
    let mut r = Reader::new(i, depth);
    let m = read_args((class_id, method_id), &mut r)?;
    Some(m.map(|m| (r.rest(), m)))
}

/// Writes a method's class id, method id and arguments.
pub fn encode_method(m: &Method, out: &mut BytesMut) {
    use bytes::BufMut;
    let (c, id) = m.ids();
    out.put_u16(c);
    out.put_u16(id);
    write_args(m, &mut Writer::new(out));
}
