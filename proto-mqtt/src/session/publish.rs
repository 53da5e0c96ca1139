//! PUBLISH both ways: a client's publish into the core with its acknowledgement, and a core
//! delivery out as a PUBLISH within the client's in-flight window.

use super::*;
use junction_core::message_counts::Count;

impl Session {
    /// A publish the user's permissions refuse: MQTT 5 answers a QoS 1 or 2 publish with
    /// PUBACK/PUBREC 0x87 and a QoS 0 publish with DISCONNECT 0x87; MQTT 3.1.1 has no way to
    /// say it but closing the connection, as RabbitMQ does.
    fn publish_refused(&mut self, level: Level, qos: u8, pkid: u16, why: &str) {
        match (level, qos) {
            (Level::V5, 1 | 2) => self.negative_ack(qos, pkid, ReasonCode::NotAuthorized),
            _ => self.disconnect(ReasonCode::NotAuthorized, why),
        }
    }

    /// An MQTT 5 PUBACK (QoS 1) or PUBREC (QoS 2) with a failure `reason`, in its place
    /// behind acknowledgements still held.
    fn negative_ack(&mut self, qos: u8, pkid: u16, reason: ReasonCode) {
        let level = self.lv();
        let kind = if qos == 1 { Ack::PubAck } else { Ack::PubRec };
        let reply = Reply::Ack(kind, pkid, reason);
        if self.outbox.held.is_holding() {
            self.outbox.held.hold(reply);
        } else {
            codec::ack(level, kind, pkid, reason, self.outbox.out.buf());
        }
    }

    /// Whether a retained publish may keep its retain flag: past the vhost's retained
    /// message limit it may not (counted and logged); MQTT 5 then refuses a QoS 1 or 2
    /// publish with 0x97 (true is returned when the publish goes on, without retain or with).
    fn retain_allowed(&mut self, p: &mut Publish) -> bool {
        if !p.retain || p.payload.is_empty() {
            return true;
        }
        let vhost = self.vh().name.clone();
        if self.registry.may_retain(&vhost, &p.topic) {
            return true;
        }
        if self.ctx.broker.refusals().count(Refusal::RetainedLimit) {
            tracing::warn!(client = %self.client_id, vhost, topic = %p.topic, "retained message limit of the vhost reached: not retained");
        }
        if self.lv() == Level::V5 && p.qos > 0 {
            self.negative_ack(p.qos, p.pkid, ReasonCode::QuotaExceeded);
            return false;
        }
        p.retain = false;
        true
    }

    pub(super) fn publish_in(&mut self, mut p: Publish) {
        let level = self.lv();
        if let Some(alias) = p.props.topic_alias.take() {
            if alias == 0 || alias > TOPIC_ALIAS_MAX {
                return self.disconnect(ReasonCode::TopicAliasInvalid, "topic alias out of range");
            }
            if p.topic.is_empty() {
                match self.aliases_in.get(&alias) {
                    Some(t) => p.topic = t.clone(),
                    None => {
                        return self.disconnect(ReasonCode::ProtocolError, "unknown topic alias")
                    }
                }
            } else {
                self.aliases_in.insert(alias, p.topic.clone());
            }
        }
        if !valid_topic(&p.topic) {
            return self.disconnect(
                ReasonCode::TopicNameInvalid,
                "invalid topic name in PUBLISH",
            );
        }
        if p.qos > 2 {
            return self.disconnect(ReasonCode::MalformedPacket, "invalid QoS");
        }
        if p.qos == 2 && self.session.incoming_qos2.contains(&p.pkid) {
            // A resend of a message already taken: acknowledge, do not route it again.
            codec::ack(
                level,
                Ack::PubRec,
                p.pkid,
                ReasonCode::Success,
                self.outbox.out.buf(),
            );
            return;
        }
        if !self.retain_allowed(&mut p) {
            return;
        }
        let properties = self.properties_for(p.qos, p.retain, &p.props);
        // A retained message is stored by the registry's tap on amq.topic.
        let (exchange, msg) = Self::message_with(&p.topic, properties, p.payload);
        let routed = match self.guarded().publish(exchange, msg) {
            Ok(r) => r,
            Err(CoreError::AccessRefused(why)) => {
                return self.publish_refused(level, p.qos, p.pkid, &why)
            }
            Err(e) => {
                tracing::warn!(error = %e, "MQTT publish failed");
                return self.disconnect(ReasonCode::UnspecifiedError, "publish failed");
            }
        };
        self.count(|c| c.published(&routed, false));
        let reason = if routed.unroutable() && level == Level::V5 {
            ReasonCode::NoMatchingSubscribers
        } else {
            ReasonCode::Success
        };
        let kind = match p.qos {
            0 => return,
            1 => Ack::PubAck,
            _ => {
                self.session.incoming_qos2.insert(p.pkid);
                self.dirty = true;
                Ack::PubRec
            }
        };
        self.count(|c| c.add(Count::Confirmed, 1));
        // Stored messages, and the QoS 2 packet ids of a persistent session, are
        // acknowledged once the stores have them; other acks keep their place behind those.
        if routed.stored > 0 || (p.qos == 2 && self.persistent()) || self.outbox.held.is_holding() {
            self.outbox.held.hold(Reply::Ack(kind, p.pkid, reason));
        } else {
            codec::ack(level, kind, p.pkid, reason, self.outbox.out.buf());
        }
    }

    pub(super) fn alloc_pkid(&mut self) -> Option<u16> {
        for _ in 0..u16::MAX {
            let id = self.next_pkid;
            self.next_pkid = if id == u16::MAX { 1 } else { id + 1 };
            if !self.inflight.contains_key(&id) && !self.session.outgoing_rel.contains(&id) {
                return Some(id);
            }
        }
        None
    }

    pub(super) fn deliver(&mut self, d: Delivery) {
        let Some(consumer) = self.consumers.get(&d.consumer) else {
            d.queue.reject(&[d.id], true);
            return;
        };
        let topic = key_to_topic(&d.message.routing_key);
        let headers = d.message.properties.headers.as_ref();
        let from_self = headers.and_then(|h| h.get_str(H_CLIENT)) == Some(self.client_id.as_str());
        // The subscriptions of this session the message came for: the highest QoS among them,
        // whether one keeps the retain flag, and their MQTT 5 subscription identifiers.
        let (mut any, mut granted, mut keep_retain, mut ids) = (false, 0, false, Vec::new());
        for s in self.session.subscriptions.iter() {
            let ours = match &consumer.shared_filter {
                Some(f) => s.group.is_some() && s.req.filter == *f,
                None => s.group.is_none(),
            };
            if ours && Self::came_for(s, d.matched, &topic) && !(s.req.no_local && from_self) {
                any = true;
                granted = granted.max(s.req.qos);
                keep_retain |= s.req.retain_as_published;
                ids.extend(s.id);
            }
        }
        if !any {
            d.queue.ack(&[d.id]);
            return;
        }
        let qos = qos_of_message(&d.message).min(granted);
        let was_retained =
            headers.is_some_and(|h| h.get(H_RETAIN) == Some(&FieldValue::Bool(true)));
        let sent = self.send_publish(
            topic,
            &d.message,
            qos,
            was_retained && keep_retain,
            d.redelivered,
            ids,
            Some((&d.queue, d.id)),
        );
        if sent {
            self.count(|c| c.delivered(false, qos > 0, d.redelivered));
        }
        if !sent || qos == 0 {
            d.queue.ack(&[d.id]);
        }
    }

    /// Sends a PUBLISH; for QoS 1/2 with `track`, remembers it until acknowledged. Returns false
    /// if nothing was sent (too large for the client, or no packet id free).
    #[allow(clippy::too_many_arguments)]
    pub(super) fn send_publish(
        &mut self,
        topic: String,
        m: &Message,
        qos: u8,
        retain: bool,
        dup: bool,
        subscription_ids: Vec<usize>,
        track: Option<(&Arc<dyn DeliveryQueue>, u64)>,
    ) -> bool {
        let level = self.lv();
        let pkid = if qos > 0 {
            match self.alloc_pkid() {
                Some(p) => p,
                None => return false,
            }
        } else {
            0
        };
        let mut p = Publish {
            dup: dup && qos > 0,
            qos,
            retain,
            topic,
            pkid,
            props: PubProps::default(),
            payload: m.body.clone(),
        };
        if level == Level::V5 {
            p.props = self.publish_properties(m);
            p.props.subscription_ids = subscription_ids;
            if self.alias_max_out > 0 {
                match self.aliases_out.get(&p.topic) {
                    Some(&a) => {
                        p.props.topic_alias = Some(a);
                        p.topic.clear();
                    }
                    None if (self.aliases_out.len() as u16) < self.alias_max_out => {
                        let a = self.aliases_out.len() as u16 + 1;
                        self.aliases_out.insert(p.topic.clone(), a);
                        p.props.topic_alias = Some(a);
                    }
                    None => {}
                }
            }
        }
        if !codec::publish(level, &p, self.max_packet_out, &mut self.outbox.out) {
            // The client cannot take it: the spec says drop it as if delivered.
            return false;
        }
        if let (true, Some((q, id))) = (qos > 0, track) {
            self.inflight.insert(
                pkid,
                Inflight {
                    queue: q.clone(),
                    id,
                },
            );
        }
        true
    }
}
