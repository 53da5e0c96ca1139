//! Match bits: each subscription's binding marks what it routes with a bit of its own
//! ([`junction_core::MATCH_BIT`]), so a delivery names the subscriptions it came for. A delivery
//! without bits (recovered from disk, or routed by a binding that has none) is matched by topic.
//!
//! A bit freed by an unsubscribe is taken again as late as possible (bits go round), since a
//! message queued for the old subscription would be delivered under the new one (MQTT lets a
//! server finish delivering what was queued when the UNSUBSCRIBE came).

use super::*;
use crate::topic::hides_dollar_topic;

/// Bits a session can hand out (a delivery carries 32).
const BITS: u8 = 32;

impl Session {
    /// The binding of the session queue `queue` for the binding key `key`, marked with `bit`.
    pub(super) fn subscription_binding(queue: &str, key: String, bit: Option<u8>) -> Binding {
        let mut arguments = FieldTable::new();
        if let Some(b) = bit {
            arguments.insert(junction_core::MATCH_BIT, FieldValue::I64(i64::from(b)));
        }
        Binding {
            source: "amq.topic".into(),
            destination: Destination::Queue(queue.to_string()),
            routing_key: key,
            arguments,
        }
    }

    /// The bit for a new subscription with binding key `key`: the one of a subscription with
    /// the same key (they share the binding), else a free one, else none.
    pub(super) fn bit_for(&mut self, key: &str) -> Option<u8> {
        let subs = &self.session.subscriptions;
        let own = |s: &&Subscription| s.group.is_none();
        if let Some(s) = subs
            .iter()
            .filter(own)
            .find(|s| filter_to_binding(&s.req.filter) == key)
        {
            return s.bit;
        }
        let used: u32 = subs
            .iter()
            .filter(own)
            .filter_map(|s| s.bit)
            .fold(0, |m, b| m | 1 << b);
        let free = (0..BITS)
            .map(|i| (self.next_bit + i) % BITS)
            .find(|b| used & 1 << b == 0)?;
        self.next_bit = (free + 1) % BITS;
        Some(free)
    }

    /// Gives a resumed session's subscriptions the bits their bindings carry.
    pub(super) fn restore_bits(&mut self, queue: &Queue) {
        let Ok(topic) = self.vh().exchange("amq.topic") else {
            return;
        };
        let bindings = topic.bindings_to(&Destination::Queue(queue.name().to_string()));
        for s in self.session.subscriptions.iter_mut() {
            if s.group.is_some() {
                continue;
            }
            let key = filter_to_binding(&s.req.filter);
            s.bit = bindings
                .iter()
                .filter(|b| b.routing_key == key)
                .map(|b| b.match_bits())
                .find(|m| *m != 0)
                .map(|m| m.trailing_zeros() as u8);
        }
        // Bits go on round from the highest one in use, as they would have in one connection.
        if let Some(top) = self
            .session
            .subscriptions
            .iter()
            .filter_map(|s| s.bit)
            .max()
        {
            self.next_bit = (top + 1) % BITS;
        }
    }

    /// Whether a delivery with `matched` bits on `topic` came for subscription `s`.
    pub(super) fn came_for(s: &Subscription, matched: u32, topic: &str) -> bool {
        match s.bit {
            Some(b) if matched != 0 => {
                matched & 1 << b != 0 && !hides_dollar_topic(topic, &s.req.filter)
            }
            _ => matches(topic, &s.req.filter),
        }
    }
}
