//! Queue arguments (`x-message-ttl`, `x-max-length`, …) parsed and checked once at declare time.

use crate::error::{CoreError, CoreResult};
use crate::value::{FieldTable, FieldValue};

/// What happens when a queue is over its length limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Overflow {
    /// Drop (or dead-letter) the oldest ready message.
    #[default]
    DropHead,
    /// Refuse the new message (a publisher confirm is a nack).
    RejectPublish,
    /// Refuse the new message and dead-letter it.
    RejectPublishDlx,
}

/// The parsed queue arguments.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct QueueArgs {
    /// `x-message-ttl`: ms a message may wait.
    pub message_ttl: Option<u64>,
    /// `x-expires`: ms the queue may go unused before it is deleted.
    pub expires: Option<u64>,
    /// `x-dead-letter-exchange`.
    pub dead_letter_exchange: Option<String>,
    /// `x-dead-letter-routing-key` (default: the message's own key).
    pub dead_letter_routing_key: Option<String>,
    /// `x-max-length`: ready messages at most.
    pub max_length: Option<u64>,
    /// `x-max-length-bytes`: ready body bytes at most.
    pub max_length_bytes: Option<u64>,
    /// `x-overflow`: what happens at the length limit.
    pub overflow: Overflow,
    /// `x-max-priority`: priority levels (1-255).
    pub max_priority: Option<u8>,
    /// `x-max-transient-length` (a Junction extension): ready transient messages beyond this
    /// are dropped on arrival and counted, while persistent ones are kept. MQTT clean sessions
    /// use it as Mosquitto's `max_queued_messages` for a subscriber that stops reading.
    pub max_transient_length: Option<u64>,
    /// `x-single-active-consumer` (RabbitMQ 3.8+): only the oldest consumer receives; the next
    /// takes over when it cancels or its connection goes.
    pub single_active_consumer: bool,
}

fn bad(arg: &str, why: &str) -> CoreError {
    CoreError::PreconditionFailed(format!("invalid arg '{arg}': {why}"))
}

fn non_negative(args: &FieldTable, key: &str) -> CoreResult<Option<u64>> {
    match args.get(key) {
        None => Ok(None),
        Some(v) => match v.as_i64() {
            Some(n) if n >= 0 => Ok(Some(n as u64)),
            Some(_) => Err(bad(key, "must be non-negative")),
            None => Err(bad(key, "must be an integer")),
        },
    }
}

fn string(args: &FieldTable, key: &str) -> CoreResult<Option<String>> {
    match args.get(key) {
        None => Ok(None),
        Some(FieldValue::LongString(b)) => Ok(Some(String::from_utf8_lossy(b).into_owned())),
        Some(_) => Err(bad(key, "must be a string")),
    }
}

impl QueueArgs {
    /// Validates arguments the way RabbitMQ does (unknown `x-` arguments are kept and ignored).
    pub fn parse(args: &FieldTable) -> CoreResult<Self> {
        let expires = non_negative(args, "x-expires")?;
        if expires == Some(0) {
            return Err(bad("x-expires", "must be positive"));
        }
        let max_priority = match non_negative(args, "x-max-priority")? {
            None => None,
            Some(p) if p <= 255 => Some(p as u8),
            Some(_) => return Err(bad("x-max-priority", "must be at most 255")),
        };
        let overflow = match string(args, "x-overflow")?.as_deref() {
            None | Some("drop-head") => Overflow::DropHead,
            Some("reject-publish") => Overflow::RejectPublish,
            Some("reject-publish-dlx") => Overflow::RejectPublishDlx,
            Some(other) => return Err(bad("x-overflow", &format!("unknown value '{other}'"))),
        };
        let dead_letter_routing_key = string(args, "x-dead-letter-routing-key")?;
        let dead_letter_exchange = string(args, "x-dead-letter-exchange")?;
        if dead_letter_routing_key.is_some() && dead_letter_exchange.is_none() {
            return Err(bad(
                "x-dead-letter-routing-key",
                "requires x-dead-letter-exchange",
            ));
        }
        Ok(QueueArgs {
            message_ttl: non_negative(args, "x-message-ttl")?,
            expires,
            dead_letter_exchange,
            dead_letter_routing_key,
            max_length: non_negative(args, "x-max-length")?,
            max_length_bytes: non_negative(args, "x-max-length-bytes")?,
            overflow,
            max_priority,
            max_transient_length: non_negative(args, "x-max-transient-length")?,
            single_active_consumer: match args.get("x-single-active-consumer") {
                None => false,
                Some(FieldValue::Bool(b)) => *b,
                Some(_) => return Err(bad("x-single-active-consumer", "must be a boolean")),
            },
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(entries: &[(&str, FieldValue)]) -> FieldTable {
        entries
            .iter()
            .map(|(k, v)| (k.to_string(), v.clone()))
            .collect()
    }

    #[test]
    fn parses_known_arguments() {
        let a = QueueArgs::parse(&t(&[
            ("x-message-ttl", FieldValue::I32(1000)),
            ("x-expires", FieldValue::I64(5000)),
            ("x-dead-letter-exchange", FieldValue::string("dlx")),
            ("x-max-length", FieldValue::U16(3)),
            ("x-overflow", FieldValue::string("reject-publish")),
            ("x-max-priority", FieldValue::U8(10)),
            ("x-max-transient-length", FieldValue::I64(100)),
            ("x-unknown", FieldValue::Bool(true)),
        ]))
        .unwrap();
        assert_eq!(a.max_transient_length, Some(100));
        assert_eq!(a.message_ttl, Some(1000));
        assert_eq!(a.expires, Some(5000));
        assert_eq!(a.dead_letter_exchange.as_deref(), Some("dlx"));
        assert_eq!(a.max_length, Some(3));
        assert_eq!(a.overflow, Overflow::RejectPublish);
        assert_eq!(a.max_priority, Some(10));
    }

    #[test]
    fn refuses_bad_values_with_406() {
        for args in [
            t(&[("x-message-ttl", FieldValue::I32(-1))]),
            t(&[("x-message-ttl", FieldValue::string("10"))]),
            t(&[("x-expires", FieldValue::I32(0))]),
            t(&[("x-overflow", FieldValue::string("explode"))]),
            t(&[("x-max-priority", FieldValue::I32(300))]),
            t(&[("x-dead-letter-routing-key", FieldValue::string("k"))]),
            t(&[("x-single-active-consumer", FieldValue::string("yes"))]),
        ] {
            assert_eq!(
                QueueArgs::parse(&args).unwrap_err().name(),
                "PRECONDITION_FAILED",
                "{args:?}"
            );
        }
    }
}
