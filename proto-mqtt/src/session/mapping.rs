//! The mapping between MQTT publishes and core messages: properties, headers, user properties.

use super::*;

impl Session {
    /// Builds the core message of a will, published by `client_id` as `user` at `now_s`, and
    /// the exchange it is published to.
    pub fn will_message(
        now_s: u64,
        client_id: &str,
        user: &str,
        w: Will,
    ) -> (&'static str, Arc<Message>) {
        let properties =
            Self::message_properties(now_s, client_id, user, w.qos, w.retain, &w.props);
        Self::message_with(&w.topic, Arc::new(properties), w.payload)
    }

    /// The core message of a publish on `topic`, and the exchange it goes to (the topic is
    /// mapped once, here).
    pub(super) fn message_with(
        topic: &str,
        properties: Arc<Properties>,
        payload: Bytes,
    ) -> (&'static str, Arc<Message>) {
        let (exchange, routing_key) = route_of(topic);
        let message = Arc::new(Message {
            exchange: exchange.into(),
            routing_key,
            properties,
            body: payload,
        });
        (exchange, message)
    }

    /// Properties for a publish. Plain ones (no MQTT 5 properties) are shared by every message
    /// of this connection with the same QoS and retain flag: one allocation, not one each.
    pub(super) fn properties_for(
        &mut self,
        qos: u8,
        retain: bool,
        props: &PubProps,
    ) -> Arc<Properties> {
        let plain = *props == PubProps::default();
        if let Some((q, r, p)) = &self.plain_properties {
            if plain && *q == qos && *r == retain {
                return p.clone();
            }
        }
        let p = Arc::new(Self::message_properties(
            self.ctx.broker.clock().unix_seconds(),
            &self.client_id,
            &self.user,
            qos,
            retain,
            props,
        ));
        if plain {
            self.plain_properties = Some((qos, retain, p.clone()));
        }
        p
    }

    /// The core properties of an MQTT publish (RabbitMQ's headers for QoS and retain, the
    /// publisher's client id for no-local, MQTT 5 properties mapped). `now_s`: wall-clock
    /// seconds, the timestamp a message expiry counts from.
    pub(super) fn message_properties(
        now_s: u64,
        client_id: &str,
        user: &str,
        qos: u8,
        retain: bool,
        props: &PubProps,
    ) -> Properties {
        let mut headers = FieldTable::new();
        let mut repeated = false;
        for (k, v) in &props.user_properties {
            if headers.get(k).is_none() {
                headers.insert(k.clone(), FieldValue::string(v.clone()));
            } else {
                repeated = true;
            }
        }
        if repeated {
            // User properties are a list: a key may come more than once. Headers keep the first
            // value of each key (what AMQP and STOMP consumers read); the whole list, in order,
            // travels in H_USER_PROPERTIES as an array of [key, value] pairs.
            let list = props
                .user_properties
                .iter()
                .map(|(k, v)| {
                    FieldValue::Array(vec![
                        FieldValue::string(k.clone()),
                        FieldValue::string(v.clone()),
                    ])
                })
                .collect();
            headers.insert(H_USER_PROPERTIES, FieldValue::Array(list));
        }
        headers.insert(H_QOS, FieldValue::U8(qos));
        if retain {
            headers.insert(H_RETAIN, FieldValue::Bool(true));
        }
        headers.insert(H_CLIENT, FieldValue::string(client_id));
        headers.insert(H_USER, FieldValue::string(user));
        let mut p = Properties {
            delivery_mode: Some(if qos > 0 { 2 } else { 1 }),
            content_type: props.content_type.clone(),
            ..Default::default()
        };
        if let Some(rt) = &props.response_topic {
            headers.insert(H_REPLY_TOPIC, FieldValue::string(rt.clone()));
            // An AMQP responder replies to exchange "" with this routing key; the core
            // routes the address form to amq.topic, where the requester subscribed.
            p.reply_to = Some(match rt.strip_prefix(REPLY_PREFIX) {
                Some(queue) => queue.to_string(),
                None => format!("/topic/{}", topic_to_key(rt)),
            });
        }
        if let Some(cd) = &props.correlation_data {
            match std::str::from_utf8(cd) {
                Ok(s) if s.len() <= 255 => p.correlation_id = Some(s.to_string()),
                _ => headers.insert(H_CORRELATION, FieldValue::ByteArray(cd.clone())),
            }
        }
        if let Some(e) = props.expiry {
            p.expiration = Some((u64::from(e) * 1000).to_string());
            p.timestamp = Some(now_s);
        }
        if let Some(pf) = props.payload_format {
            headers.insert("x-mqtt-payload-format", FieldValue::U8(pf));
        }
        p.headers = Some(headers);
        p
    }

    /// Core properties → MQTT 5 publish properties.
    pub(super) fn publish_properties(&self, m: &Message) -> PubProps {
        let p = &m.properties;
        let mut out = PubProps {
            content_type: p.content_type.clone(),
            correlation_data: p.correlation_id.clone().map(Bytes::from),
            ..Default::default()
        };
        if let Some(ttl) = p.ttl_ms() {
            let now_s = self.ctx.broker.clock().unix_seconds();
            let elapsed = p.timestamp.map_or(0, |t| now_s.saturating_sub(t));
            out.expiry = Some(((ttl / 1000).saturating_sub(elapsed)).max(1) as u32);
        }
        out.response_topic = p
            .reply_to
            .as_deref()
            .and_then(|r| match r.strip_prefix("/topic/") {
                Some(key) => Some(key_to_topic(key)),
                None if r.starts_with('/') => None,
                None => Some(format!("{REPLY_PREFIX}{r}")),
            });
        if let Some(h) = &p.headers {
            // The full list, when a key came more than once; its keys are not repeated below.
            let listed = user_property_list(h.get(H_USER_PROPERTIES));
            if let Some(list) = &listed {
                out.user_properties.extend(list.iter().cloned());
            }
            for (k, v) in h.iter() {
                if listed
                    .as_ref()
                    .is_some_and(|l| l.iter().any(|(lk, _)| lk == k))
                {
                    continue;
                }
                match k {
                    H_QOS | H_RETAIN | H_CLIENT | H_USER | H_USER_PROPERTIES => {}
                    H_REPLY_TOPIC => out.response_topic = v.as_str().map(str::to_string),
                    H_CORRELATION => {
                        if let FieldValue::ByteArray(b) | FieldValue::LongString(b) = v {
                            out.correlation_data = Some(b.clone());
                        }
                    }
                    "x-mqtt-payload-format" => out.payload_format = v.as_i64().map(|n| n as u8),
                    k => out.user_properties.push((k.to_string(), v.to_text())),
                }
            }
        }
        out
    }
}
