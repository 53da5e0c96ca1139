//! AMQP 0-9-1 methods (with RabbitMQ's extensions): decoding and encoding of their arguments.

use super::types::{
    bits, field_table, long_string, put_bits, put_long_string, put_short_string, put_table,
    short_string, Res,
};
use bytes::{BufMut, Bytes, BytesMut};
use junction_core::FieldTable;
use nom::number::complete::{be_u16, be_u32, be_u64, be_u8};

/// Every method of the classes connection, channel, exchange, queue, basic, confirm and tx.
#[derive(Debug, Clone, PartialEq)]
pub enum Method {
    ConnectionStart {
        version_major: u8,
        version_minor: u8,
        server_properties: FieldTable,
        mechanisms: Bytes,
        locales: Bytes,
    },
    ConnectionStartOk {
        client_properties: FieldTable,
        mechanism: String,
        response: Bytes,
        locale: String,
    },
    ConnectionSecure {
        challenge: Bytes,
    },
    ConnectionSecureOk {
        response: Bytes,
    },
    ConnectionTune {
        channel_max: u16,
        frame_max: u32,
        heartbeat: u16,
    },
    ConnectionTuneOk {
        channel_max: u16,
        frame_max: u32,
        heartbeat: u16,
    },
    ConnectionOpen {
        virtual_host: String,
    },
    ConnectionOpenOk,
    ConnectionClose {
        reply_code: u16,
        reply_text: String,
        class_id: u16,
        method_id: u16,
    },
    ConnectionCloseOk,
    ConnectionBlocked {
        reason: String,
    },
    ConnectionUnblocked,
    ConnectionUpdateSecret {
        new_secret: Bytes,
        reason: String,
    },
    ConnectionUpdateSecretOk,
    ChannelOpen,
    ChannelOpenOk,
    ChannelFlow {
        active: bool,
    },
    ChannelFlowOk {
        active: bool,
    },
    ChannelClose {
        reply_code: u16,
        reply_text: String,
        class_id: u16,
        method_id: u16,
    },
    ChannelCloseOk,
    ExchangeDeclare {
        exchange: String,
        kind: String,
        passive: bool,
        durable: bool,
        auto_delete: bool,
        internal: bool,
        no_wait: bool,
        arguments: FieldTable,
    },
    ExchangeDeclareOk,
    ExchangeDelete {
        exchange: String,
        if_unused: bool,
        no_wait: bool,
    },
    ExchangeDeleteOk,
    ExchangeBind {
        destination: String,
        source: String,
        routing_key: String,
        no_wait: bool,
        arguments: FieldTable,
    },
    ExchangeBindOk,
    ExchangeUnbind {
        destination: String,
        source: String,
        routing_key: String,
        no_wait: bool,
        arguments: FieldTable,
    },
    ExchangeUnbindOk,
    QueueDeclare {
        queue: String,
        passive: bool,
        durable: bool,
        exclusive: bool,
        auto_delete: bool,
        no_wait: bool,
        arguments: FieldTable,
    },
    QueueDeclareOk {
        queue: String,
        message_count: u32,
        consumer_count: u32,
    },
    QueueBind {
        queue: String,
        exchange: String,
        routing_key: String,
        no_wait: bool,
        arguments: FieldTable,
    },
    QueueBindOk,
    QueuePurge {
        queue: String,
        no_wait: bool,
    },
    QueuePurgeOk {
        message_count: u32,
    },
    QueueDelete {
        queue: String,
        if_unused: bool,
        if_empty: bool,
        no_wait: bool,
    },
    QueueDeleteOk {
        message_count: u32,
    },
    QueueUnbind {
        queue: String,
        exchange: String,
        routing_key: String,
        arguments: FieldTable,
    },
    QueueUnbindOk,
    BasicQos {
        prefetch_size: u32,
        prefetch_count: u16,
        global: bool,
    },
    BasicQosOk,
    BasicConsume {
        queue: String,
        consumer_tag: String,
        no_local: bool,
        no_ack: bool,
        exclusive: bool,
        no_wait: bool,
        arguments: FieldTable,
    },
    BasicConsumeOk {
        consumer_tag: String,
    },
    BasicCancel {
        consumer_tag: String,
        no_wait: bool,
    },
    BasicCancelOk {
        consumer_tag: String,
    },
    BasicPublish {
        exchange: String,
        routing_key: String,
        mandatory: bool,
        immediate: bool,
    },
    BasicReturn {
        reply_code: u16,
        reply_text: String,
        exchange: String,
        routing_key: String,
    },
    BasicDeliver {
        consumer_tag: String,
        delivery_tag: u64,
        redelivered: bool,
        exchange: String,
        routing_key: String,
    },
    BasicGet {
        queue: String,
        no_ack: bool,
    },
    BasicGetOk {
        delivery_tag: u64,
        redelivered: bool,
        exchange: String,
        routing_key: String,
        message_count: u32,
    },
    BasicGetEmpty,
    BasicAck {
        delivery_tag: u64,
        multiple: bool,
    },
    BasicReject {
        delivery_tag: u64,
        requeue: bool,
    },
    BasicRecoverAsync {
        requeue: bool,
    },
    BasicRecover {
        requeue: bool,
    },
    BasicRecoverOk,
    BasicNack {
        delivery_tag: u64,
        multiple: bool,
        requeue: bool,
    },
    ConfirmSelect {
        no_wait: bool,
    },
    ConfirmSelectOk,
    TxSelect,
    TxSelectOk,
    TxCommit,
    TxCommitOk,
    TxRollback,
    TxRollbackOk,
}

/// Class ids.
pub mod class {
    pub const CONNECTION: u16 = 10;
    pub const CHANNEL: u16 = 20;
    pub const EXCHANGE: u16 = 40;
    pub const QUEUE: u16 = 50;
    pub const BASIC: u16 = 60;
    pub const CONFIRM: u16 = 85;
    pub const TX: u16 = 90;
}

impl Method {
    /// (class id, method id).
    pub fn ids(&self) -> (u16, u16) {
        use Method::*;
        match self {
            ConnectionStart { .. } => (10, 10),
            ConnectionStartOk { .. } => (10, 11),
            ConnectionSecure { .. } => (10, 20),
            ConnectionSecureOk { .. } => (10, 21),
            ConnectionTune { .. } => (10, 30),
            ConnectionTuneOk { .. } => (10, 31),
            ConnectionOpen { .. } => (10, 40),
            ConnectionOpenOk => (10, 41),
            ConnectionClose { .. } => (10, 50),
            ConnectionCloseOk => (10, 51),
            ConnectionBlocked { .. } => (10, 60),
            ConnectionUnblocked => (10, 61),
            ConnectionUpdateSecret { .. } => (10, 70),
            ConnectionUpdateSecretOk => (10, 71),
            ChannelOpen => (20, 10),
            ChannelOpenOk => (20, 11),
            ChannelFlow { .. } => (20, 20),
            ChannelFlowOk { .. } => (20, 21),
            ChannelClose { .. } => (20, 40),
            ChannelCloseOk => (20, 41),
            ExchangeDeclare { .. } => (40, 10),
            ExchangeDeclareOk => (40, 11),
            ExchangeDelete { .. } => (40, 20),
            ExchangeDeleteOk => (40, 21),
            ExchangeBind { .. } => (40, 30),
            ExchangeBindOk => (40, 31),
            ExchangeUnbind { .. } => (40, 40),
            ExchangeUnbindOk => (40, 51),
            QueueDeclare { .. } => (50, 10),
            QueueDeclareOk { .. } => (50, 11),
            QueueBind { .. } => (50, 20),
            QueueBindOk => (50, 21),
            QueuePurge { .. } => (50, 30),
            QueuePurgeOk { .. } => (50, 31),
            QueueDelete { .. } => (50, 40),
            QueueDeleteOk { .. } => (50, 41),
            QueueUnbind { .. } => (50, 50),
            QueueUnbindOk => (50, 51),
            BasicQos { .. } => (60, 10),
            BasicQosOk => (60, 11),
            BasicConsume { .. } => (60, 20),
            BasicConsumeOk { .. } => (60, 21),
            BasicCancel { .. } => (60, 30),
            BasicCancelOk { .. } => (60, 31),
            BasicPublish { .. } => (60, 40),
            BasicReturn { .. } => (60, 50),
            BasicDeliver { .. } => (60, 60),
            BasicGet { .. } => (60, 70),
            BasicGetOk { .. } => (60, 71),
            BasicGetEmpty => (60, 72),
            BasicAck { .. } => (60, 80),
            BasicReject { .. } => (60, 90),
            BasicRecoverAsync { .. } => (60, 100),
            BasicRecover { .. } => (60, 110),
            BasicRecoverOk => (60, 111),
            BasicNack { .. } => (60, 120),
            ConfirmSelect { .. } => (85, 10),
            ConfirmSelectOk => (85, 11),
            TxSelect => (90, 10),
            TxSelectOk => (90, 11),
            TxCommit => (90, 20),
            TxCommitOk => (90, 21),
            TxRollback => (90, 30),
            TxRollbackOk => (90, 31),
        }
    }

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
) -> Option<Res<'_, Method>> {
    use Method::*;
    let table = |i| field_table(i, depth);
    Some((|| -> Res<'_, Method> {
        Ok(match (class_id, method_id) {
            (10, 10) => {
                let (i, version_major) = be_u8(i)?;
                let (i, version_minor) = be_u8(i)?;
                let (i, server_properties) = table(i)?;
                let (i, mechanisms) = long_string(i)?;
                let (i, locales) = long_string(i)?;
                (
                    i,
                    ConnectionStart {
                        version_major,
                        version_minor,
                        server_properties,
                        mechanisms,
                        locales,
                    },
                )
            }
            (10, 11) => {
                let (i, client_properties) = table(i)?;
                let (i, mechanism) = short_string(i)?;
                let (i, response) = long_string(i)?;
                let (i, locale) = short_string(i)?;
                (
                    i,
                    ConnectionStartOk {
                        client_properties,
                        mechanism,
                        response,
                        locale,
                    },
                )
            }
            (10, 20) => {
                let (i, challenge) = long_string(i)?;
                (i, ConnectionSecure { challenge })
            }
            (10, 21) => {
                let (i, response) = long_string(i)?;
                (i, ConnectionSecureOk { response })
            }
            (10, 30) | (10, 31) => {
                let (i, channel_max) = be_u16(i)?;
                let (i, frame_max) = be_u32(i)?;
                let (i, heartbeat) = be_u16(i)?;
                if method_id == 30 {
                    (
                        i,
                        ConnectionTune {
                            channel_max,
                            frame_max,
                            heartbeat,
                        },
                    )
                } else {
                    (
                        i,
                        ConnectionTuneOk {
                            channel_max,
                            frame_max,
                            heartbeat,
                        },
                    )
                }
            }
            (10, 40) => {
                let (i, virtual_host) = short_string(i)?;
                let (i, _capabilities) = short_string(i)?;
                let (i, _insist) = bits(i, 1)?;
                (i, ConnectionOpen { virtual_host })
            }
            (10, 41) => (short_string(i)?.0, ConnectionOpenOk),
            (10, 50) | (20, 40) => {
                let (i, reply_code) = be_u16(i)?;
                let (i, reply_text) = short_string(i)?;
                let (i, cid) = be_u16(i)?;
                let (i, mid) = be_u16(i)?;
                if class_id == 10 {
                    (
                        i,
                        ConnectionClose {
                            reply_code,
                            reply_text,
                            class_id: cid,
                            method_id: mid,
                        },
                    )
                } else {
                    (
                        i,
                        ChannelClose {
                            reply_code,
                            reply_text,
                            class_id: cid,
                            method_id: mid,
                        },
                    )
                }
            }
            (10, 51) => (i, ConnectionCloseOk),
            (10, 60) => {
                let (i, reason) = short_string(i)?;
                (i, ConnectionBlocked { reason })
            }
            (10, 61) => (i, ConnectionUnblocked),
            (10, 70) => {
                let (i, new_secret) = long_string(i)?;
                let (i, reason) = short_string(i)?;
                (i, ConnectionUpdateSecret { new_secret, reason })
            }
            (10, 71) => (i, ConnectionUpdateSecretOk),
            (20, 10) => (short_string(i)?.0, ChannelOpen),
            (20, 11) => (long_string(i)?.0, ChannelOpenOk),
            (20, 20) | (20, 21) => {
                let (i, b) = bits(i, 1)?;
                if method_id == 20 {
                    (i, ChannelFlow { active: b[0] })
                } else {
                    (i, ChannelFlowOk { active: b[0] })
                }
            }
            (20, 41) => (i, ChannelCloseOk),
            (40, 10) => {
                let (i, _) = be_u16(i)?;
                let (i, exchange) = short_string(i)?;
                let (i, kind) = short_string(i)?;
                let (i, b) = bits(i, 5)?;
                let (i, arguments) = table(i)?;
                (
                    i,
                    ExchangeDeclare {
                        exchange,
                        kind,
                        passive: b[0],
                        durable: b[1],
                        auto_delete: b[2],
                        internal: b[3],
                        no_wait: b[4],
                        arguments,
                    },
                )
            }
            (40, 11) => (i, ExchangeDeclareOk),
            (40, 20) => {
                let (i, _) = be_u16(i)?;
                let (i, exchange) = short_string(i)?;
                let (i, b) = bits(i, 2)?;
                (
                    i,
                    ExchangeDelete {
                        exchange,
                        if_unused: b[0],
                        no_wait: b[1],
                    },
                )
            }
            (40, 21) => (i, ExchangeDeleteOk),
            (40, 30) | (40, 40) => {
                let (i, _) = be_u16(i)?;
                let (i, destination) = short_string(i)?;
                let (i, source) = short_string(i)?;
                let (i, routing_key) = short_string(i)?;
                let (i, b) = bits(i, 1)?;
                let (i, arguments) = table(i)?;
                if method_id == 30 {
                    (
                        i,
                        ExchangeBind {
                            destination,
                            source,
                            routing_key,
                            no_wait: b[0],
                            arguments,
                        },
                    )
                } else {
                    (
                        i,
                        ExchangeUnbind {
                            destination,
                            source,
                            routing_key,
                            no_wait: b[0],
                            arguments,
                        },
                    )
                }
            }
            (40, 31) => (i, ExchangeBindOk),
            (40, 51) => (i, ExchangeUnbindOk),
            (50, 10) => {
                let (i, _) = be_u16(i)?;
                let (i, queue) = short_string(i)?;
                let (i, b) = bits(i, 5)?;
                let (i, arguments) = table(i)?;
                (
                    i,
                    QueueDeclare {
                        queue,
                        passive: b[0],
                        durable: b[1],
                        exclusive: b[2],
                        auto_delete: b[3],
                        no_wait: b[4],
                        arguments,
                    },
                )
            }
            (50, 11) => {
                let (i, queue) = short_string(i)?;
                let (i, message_count) = be_u32(i)?;
                let (i, consumer_count) = be_u32(i)?;
                (
                    i,
                    QueueDeclareOk {
                        queue,
                        message_count,
                        consumer_count,
                    },
                )
            }
            (50, 20) => {
                let (i, _) = be_u16(i)?;
                let (i, queue) = short_string(i)?;
                let (i, exchange) = short_string(i)?;
                let (i, routing_key) = short_string(i)?;
                let (i, b) = bits(i, 1)?;
                let (i, arguments) = table(i)?;
                (
                    i,
                    QueueBind {
                        queue,
                        exchange,
                        routing_key,
                        no_wait: b[0],
                        arguments,
                    },
                )
            }
            (50, 21) => (i, QueueBindOk),
            (50, 30) => {
                let (i, _) = be_u16(i)?;
                let (i, queue) = short_string(i)?;
                let (i, b) = bits(i, 1)?;
                (
                    i,
                    QueuePurge {
                        queue,
                        no_wait: b[0],
                    },
                )
            }
            (50, 31) | (50, 41) => {
                let (i, message_count) = be_u32(i)?;
                if method_id == 31 {
                    (i, QueuePurgeOk { message_count })
                } else {
                    (i, QueueDeleteOk { message_count })
                }
            }
            (50, 40) => {
                let (i, _) = be_u16(i)?;
                let (i, queue) = short_string(i)?;
                let (i, b) = bits(i, 3)?;
                (
                    i,
                    QueueDelete {
                        queue,
                        if_unused: b[0],
                        if_empty: b[1],
                        no_wait: b[2],
                    },
                )
            }
            (50, 50) => {
                let (i, _) = be_u16(i)?;
                let (i, queue) = short_string(i)?;
                let (i, exchange) = short_string(i)?;
                let (i, routing_key) = short_string(i)?;
                let (i, arguments) = table(i)?;
                (
                    i,
                    QueueUnbind {
                        queue,
                        exchange,
                        routing_key,
                        arguments,
                    },
                )
            }
            (50, 51) => (i, QueueUnbindOk),
            (60, 10) => {
                let (i, prefetch_size) = be_u32(i)?;
                let (i, prefetch_count) = be_u16(i)?;
                let (i, b) = bits(i, 1)?;
                (
                    i,
                    BasicQos {
                        prefetch_size,
                        prefetch_count,
                        global: b[0],
                    },
                )
            }
            (60, 11) => (i, BasicQosOk),
            (60, 20) => {
                let (i, _) = be_u16(i)?;
                let (i, queue) = short_string(i)?;
                let (i, consumer_tag) = short_string(i)?;
                let (i, b) = bits(i, 4)?;
                let (i, arguments) = table(i)?;
                (
                    i,
                    BasicConsume {
                        queue,
                        consumer_tag,
                        no_local: b[0],
                        no_ack: b[1],
                        exclusive: b[2],
                        no_wait: b[3],
                        arguments,
                    },
                )
            }
            (60, 21) | (60, 31) => {
                let (i, consumer_tag) = short_string(i)?;
                if method_id == 21 {
                    (i, BasicConsumeOk { consumer_tag })
                } else {
                    (i, BasicCancelOk { consumer_tag })
                }
            }
            (60, 30) => {
                let (i, consumer_tag) = short_string(i)?;
                let (i, b) = bits(i, 1)?;
                (
                    i,
                    BasicCancel {
                        consumer_tag,
                        no_wait: b[0],
                    },
                )
            }
            (60, 40) => {
                let (i, _) = be_u16(i)?;
                let (i, exchange) = short_string(i)?;
                let (i, routing_key) = short_string(i)?;
                let (i, b) = bits(i, 2)?;
                (
                    i,
                    BasicPublish {
                        exchange,
                        routing_key,
                        mandatory: b[0],
                        immediate: b[1],
                    },
                )
            }
            (60, 50) => {
                let (i, reply_code) = be_u16(i)?;
                let (i, reply_text) = short_string(i)?;
                let (i, exchange) = short_string(i)?;
                let (i, routing_key) = short_string(i)?;
                (
                    i,
                    BasicReturn {
                        reply_code,
                        reply_text,
                        exchange,
                        routing_key,
                    },
                )
            }
            (60, 60) => {
                let (i, consumer_tag) = short_string(i)?;
                let (i, delivery_tag) = be_u64(i)?;
                let (i, b) = bits(i, 1)?;
                let (i, exchange) = short_string(i)?;
                let (i, routing_key) = short_string(i)?;
                (
                    i,
                    BasicDeliver {
                        consumer_tag,
                        delivery_tag,
                        redelivered: b[0],
                        exchange,
                        routing_key,
                    },
                )
            }
            (60, 70) => {
                let (i, _) = be_u16(i)?;
                let (i, queue) = short_string(i)?;
                let (i, b) = bits(i, 1)?;
                (
                    i,
                    BasicGet {
                        queue,
                        no_ack: b[0],
                    },
                )
            }
            (60, 71) => {
                let (i, delivery_tag) = be_u64(i)?;
                let (i, b) = bits(i, 1)?;
                let (i, exchange) = short_string(i)?;
                let (i, routing_key) = short_string(i)?;
                let (i, message_count) = be_u32(i)?;
                (
                    i,
                    BasicGetOk {
                        delivery_tag,
                        redelivered: b[0],
                        exchange,
                        routing_key,
                        message_count,
                    },
                )
            }
            (60, 72) => (short_string(i)?.0, BasicGetEmpty),
            (60, 80) => {
                let (i, delivery_tag) = be_u64(i)?;
                let (i, b) = bits(i, 1)?;
                (
                    i,
                    BasicAck {
                        delivery_tag,
                        multiple: b[0],
                    },
                )
            }
            (60, 90) => {
                let (i, delivery_tag) = be_u64(i)?;
                let (i, b) = bits(i, 1)?;
                (
                    i,
                    BasicReject {
                        delivery_tag,
                        requeue: b[0],
                    },
                )
            }
            (60, 100) | (60, 110) => {
                let (i, b) = bits(i, 1)?;
                if method_id == 100 {
                    (i, BasicRecoverAsync { requeue: b[0] })
                } else {
                    (i, BasicRecover { requeue: b[0] })
                }
            }
            (60, 111) => (i, BasicRecoverOk),
            (60, 120) => {
                let (i, delivery_tag) = be_u64(i)?;
                let (i, b) = bits(i, 2)?;
                (
                    i,
                    BasicNack {
                        delivery_tag,
                        multiple: b[0],
                        requeue: b[1],
                    },
                )
            }
            (85, 10) => {
                let (i, b) = bits(i, 1)?;
                (i, ConfirmSelect { no_wait: b[0] })
            }
            (85, 11) => (i, ConfirmSelectOk),
            (90, 10) => (i, TxSelect),
            (90, 11) => (i, TxSelectOk),
            (90, 20) => (i, TxCommit),
            (90, 21) => (i, TxCommitOk),
            (90, 30) => (i, TxRollback),
            (90, 31) => (i, TxRollbackOk),
            _ => {
                return Err(nom::Err::Failure(nom::error::Error::new(
                    i,
                    nom::error::ErrorKind::Tag,
                )))
            }
        })
    })())
    .filter(|r| !matches!(r, Err(nom::Err::Failure(e)) if e.code == nom::error::ErrorKind::Tag))
}

/// Writes a method's class id, method id and arguments.
pub fn encode_method(m: &Method, out: &mut BytesMut) {
    use Method::*;
    let (c, id) = m.ids();
    out.put_u16(c);
    out.put_u16(id);
    match m {
        ConnectionStart {
            version_major,
            version_minor,
            server_properties,
            mechanisms,
            locales,
        } => {
            out.put_u8(*version_major);
            out.put_u8(*version_minor);
            put_table(out, server_properties);
            put_long_string(out, mechanisms);
            put_long_string(out, locales);
        }
        ConnectionStartOk {
            client_properties,
            mechanism,
            response,
            locale,
        } => {
            put_table(out, client_properties);
            put_short_string(out, mechanism);
            put_long_string(out, response);
            put_short_string(out, locale);
        }
        ConnectionSecure { challenge } => put_long_string(out, challenge),
        ConnectionSecureOk { response } => put_long_string(out, response),
        ConnectionTune {
            channel_max,
            frame_max,
            heartbeat,
        }
        | ConnectionTuneOk {
            channel_max,
            frame_max,
            heartbeat,
        } => {
            out.put_u16(*channel_max);
            out.put_u32(*frame_max);
            out.put_u16(*heartbeat);
        }
        ConnectionOpen { virtual_host } => {
            put_short_string(out, virtual_host);
            put_short_string(out, "");
            put_bits(out, &[false]);
        }
        ConnectionOpenOk => put_short_string(out, ""),
        ConnectionClose {
            reply_code,
            reply_text,
            class_id,
            method_id,
        }
        | ChannelClose {
            reply_code,
            reply_text,
            class_id,
            method_id,
        } => {
            out.put_u16(*reply_code);
            put_short_string(out, reply_text);
            out.put_u16(*class_id);
            out.put_u16(*method_id);
        }
        ConnectionBlocked { reason } => put_short_string(out, reason),
        ConnectionUpdateSecret { new_secret, reason } => {
            put_long_string(out, new_secret);
            put_short_string(out, reason);
        }
        ChannelOpen => put_short_string(out, ""),
        ChannelOpenOk => put_long_string(out, b""),
        ChannelFlow { active } | ChannelFlowOk { active } => put_bits(out, &[*active]),
        ExchangeDeclare {
            exchange,
            kind,
            passive,
            durable,
            auto_delete,
            internal,
            no_wait,
            arguments,
        } => {
            out.put_u16(0);
            put_short_string(out, exchange);
            put_short_string(out, kind);
            put_bits(
                out,
                &[*passive, *durable, *auto_delete, *internal, *no_wait],
            );
            put_table(out, arguments);
        }
        ExchangeDelete {
            exchange,
            if_unused,
            no_wait,
        } => {
            out.put_u16(0);
            put_short_string(out, exchange);
            put_bits(out, &[*if_unused, *no_wait]);
        }
        ExchangeBind {
            destination,
            source,
            routing_key,
            no_wait,
            arguments,
        }
        | ExchangeUnbind {
            destination,
            source,
            routing_key,
            no_wait,
            arguments,
        } => {
            out.put_u16(0);
            put_short_string(out, destination);
            put_short_string(out, source);
            put_short_string(out, routing_key);
            put_bits(out, &[*no_wait]);
            put_table(out, arguments);
        }
        QueueDeclare {
            queue,
            passive,
            durable,
            exclusive,
            auto_delete,
            no_wait,
            arguments,
        } => {
            out.put_u16(0);
            put_short_string(out, queue);
            put_bits(
                out,
                &[*passive, *durable, *exclusive, *auto_delete, *no_wait],
            );
            put_table(out, arguments);
        }
        QueueDeclareOk {
            queue,
            message_count,
            consumer_count,
        } => {
            put_short_string(out, queue);
            out.put_u32(*message_count);
            out.put_u32(*consumer_count);
        }
        QueueBind {
            queue,
            exchange,
            routing_key,
            no_wait,
            arguments,
        } => {
            out.put_u16(0);
            put_short_string(out, queue);
            put_short_string(out, exchange);
            put_short_string(out, routing_key);
            put_bits(out, &[*no_wait]);
            put_table(out, arguments);
        }
        QueuePurge { queue, no_wait } => {
            out.put_u16(0);
            put_short_string(out, queue);
            put_bits(out, &[*no_wait]);
        }
        QueuePurgeOk { message_count } | QueueDeleteOk { message_count } => {
            out.put_u32(*message_count)
        }
        QueueDelete {
            queue,
            if_unused,
            if_empty,
            no_wait,
        } => {
            out.put_u16(0);
            put_short_string(out, queue);
            put_bits(out, &[*if_unused, *if_empty, *no_wait]);
        }
        QueueUnbind {
            queue,
            exchange,
            routing_key,
            arguments,
        } => {
            out.put_u16(0);
            put_short_string(out, queue);
            put_short_string(out, exchange);
            put_short_string(out, routing_key);
            put_table(out, arguments);
        }
        BasicQos {
            prefetch_size,
            prefetch_count,
            global,
        } => {
            out.put_u32(*prefetch_size);
            out.put_u16(*prefetch_count);
            put_bits(out, &[*global]);
        }
        BasicConsume {
            queue,
            consumer_tag,
            no_local,
            no_ack,
            exclusive,
            no_wait,
            arguments,
        } => {
            out.put_u16(0);
            put_short_string(out, queue);
            put_short_string(out, consumer_tag);
            put_bits(out, &[*no_local, *no_ack, *exclusive, *no_wait]);
            put_table(out, arguments);
        }
        BasicConsumeOk { consumer_tag } | BasicCancelOk { consumer_tag } => {
            put_short_string(out, consumer_tag)
        }
        BasicCancel {
            consumer_tag,
            no_wait,
        } => {
            put_short_string(out, consumer_tag);
            put_bits(out, &[*no_wait]);
        }
        BasicPublish {
            exchange,
            routing_key,
            mandatory,
            immediate,
        } => {
            out.put_u16(0);
            put_short_string(out, exchange);
            put_short_string(out, routing_key);
            put_bits(out, &[*mandatory, *immediate]);
        }
        BasicReturn {
            reply_code,
            reply_text,
            exchange,
            routing_key,
        } => {
            out.put_u16(*reply_code);
            put_short_string(out, reply_text);
            put_short_string(out, exchange);
            put_short_string(out, routing_key);
        }
        BasicDeliver {
            consumer_tag,
            delivery_tag,
            redelivered,
            exchange,
            routing_key,
        } => {
            put_short_string(out, consumer_tag);
            out.put_u64(*delivery_tag);
            put_bits(out, &[*redelivered]);
            put_short_string(out, exchange);
            put_short_string(out, routing_key);
        }
        BasicGet { queue, no_ack } => {
            out.put_u16(0);
            put_short_string(out, queue);
            put_bits(out, &[*no_ack]);
        }
        BasicGetOk {
            delivery_tag,
            redelivered,
            exchange,
            routing_key,
            message_count,
        } => {
            out.put_u64(*delivery_tag);
            put_bits(out, &[*redelivered]);
            put_short_string(out, exchange);
            put_short_string(out, routing_key);
            out.put_u32(*message_count);
        }
        BasicGetEmpty => put_short_string(out, ""),
        BasicAck {
            delivery_tag,
            multiple,
        } => {
            out.put_u64(*delivery_tag);
            put_bits(out, &[*multiple]);
        }
        BasicReject {
            delivery_tag,
            requeue,
        } => {
            out.put_u64(*delivery_tag);
            put_bits(out, &[*requeue]);
        }
        BasicRecoverAsync { requeue } | BasicRecover { requeue } => put_bits(out, &[*requeue]),
        BasicNack {
            delivery_tag,
            multiple,
            requeue,
        } => {
            out.put_u64(*delivery_tag);
            put_bits(out, &[*multiple, *requeue]);
        }
        ConfirmSelect { no_wait } => put_bits(out, &[*no_wait]),
        _ => {}
    }
}
