//! Dead-lettering as RabbitMQ does it: the `x-death` history a dead letter carries, and the
//! queues it must not re-enter (a fully automatic cycle).

use crate::message::Message;
use crate::queue::DeathReason;
use crate::value::{FieldTable, FieldValue};

/// Updates `x-death` as RabbitMQ does: one entry per (queue, reason), newest first, with a count.
pub(crate) fn record_death(
    now_s: u64,
    headers: &mut FieldTable,
    queue: &str,
    reason: DeathReason,
    msg: &Message,
    original_expiration: Option<String>,
) {
    let mut deaths = match headers.remove("x-death") {
        Some(FieldValue::Array(a)) => a,
        _ => Vec::new(),
    };
    let same = |t: &FieldTable| {
        t.get_str("queue") == Some(queue) && t.get_str("reason") == Some(reason.as_str())
    };
    let existing = deaths
        .iter()
        .position(|d| matches!(d, FieldValue::Table(t) if same(t)));
    let entry = match existing {
        Some(i) => {
            let FieldValue::Table(mut t) = deaths.remove(i) else {
                unreachable!("position matched a table")
            };
            let count = t.get_i64("count").unwrap_or(0) + 1;
            t.insert("count", FieldValue::I64(count));
            t.insert("time", FieldValue::Timestamp(now_s));
            t
        }
        None => {
            let mut t = FieldTable::new();
            t.insert("count", FieldValue::I64(1));
            t.insert("reason", FieldValue::string(reason.as_str()));
            t.insert("queue", FieldValue::string(queue));
            t.insert("time", FieldValue::Timestamp(now_s));
            t.insert("exchange", FieldValue::string(msg.exchange.clone()));
            t.insert(
                "routing-keys",
                FieldValue::Array(vec![FieldValue::string(msg.routing_key.clone())]),
            );
            if let Some(exp) = original_expiration {
                t.insert("original-expiration", FieldValue::string(exp));
            }
            t
        }
    };
    deaths.insert(0, FieldValue::Table(entry));
    headers.insert("x-death", FieldValue::Array(deaths));
    if headers.get("x-first-death-reason").is_none() {
        headers.insert("x-first-death-reason", FieldValue::string(reason.as_str()));
        headers.insert("x-first-death-queue", FieldValue::string(queue));
        headers.insert(
            "x-first-death-exchange",
            FieldValue::string(msg.exchange.clone()),
        );
    }
    headers.insert("x-last-death-reason", FieldValue::string(reason.as_str()));
    headers.insert("x-last-death-queue", FieldValue::string(queue));
    headers.insert(
        "x-last-death-exchange",
        FieldValue::string(msg.exchange.clone()),
    );
}

/// Queues a dead-lettered message must not re-enter: those in its `x-death` when no death in
/// the history was a rejection (a fully automatic cycle).
pub(crate) fn cycle_queues(headers: Option<&FieldTable>) -> Vec<String> {
    let Some(FieldValue::Array(deaths)) = headers.and_then(|h| h.get("x-death")) else {
        return Vec::new();
    };
    let tables: Vec<&FieldTable> = deaths
        .iter()
        .filter_map(|d| match d {
            FieldValue::Table(t) => Some(t),
            _ => None,
        })
        .collect();
    if tables
        .iter()
        .any(|t| t.get_str("reason") == Some("rejected"))
    {
        return Vec::new();
    }
    // The newest entry is the queue the message just died in; a cycle means reaching any
    // queue already in the history.
    tables
        .iter()
        .filter_map(|t| t.get_str("queue").map(str::to_string))
        .collect()
}
