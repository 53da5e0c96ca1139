//! CONNECT: login, the session it resumes or starts, its queue and consumers.

use super::*;

impl Session {
    pub(super) fn connect(&mut self, c: ConnectInfo) {
        let level = c.level;
        self.level = Some(level);
        if c.auth_method.is_some() {
            return self.refuse(
                level,
                ReasonCode::BadAuthenticationMethod,
                "enhanced authentication is not supported",
            );
        }
        // RabbitMQ's `vhost:user` login form. Without credentials: the verified client
        // certificate's user when certificate login is on (`ssl_cert_login`), else guest.
        let certificate = self.ctx.tls.as_deref().and_then(|t| t.login_user());
        let (login, password) = match (c.login.clone(), certificate) {
            (Some((l, p)), _) => (l, Some(p)),
            (None, Some(user)) => (user.to_string(), None),
            (None, None) => ("guest".into(), Some("guest".into())),
        };
        let (vhost_name, user) = match login.split_once(':') {
            Some((v, u)) if !v.is_empty() && password.is_some() => (v.to_string(), u.to_string()),
            _ => (self.ctx.broker.default_vhost().to_string(), login.clone()),
        };
        let auth = self.ctx.broker.auth().clone();
        let peer = Some(self.ctx.peer);
        let checked = match &password {
            Some(p) => auth.authenticate(&user, p, peer, "MQTT"),
            None => auth.authenticate_certificate(&user, peer, "MQTT"),
        };
        if checked.is_err() {
            return self.refuse(
                level,
                ReasonCode::BadUserNameOrPassword,
                "bad user name or password",
            );
        }
        match self
            .ctx
            .broker
            .admit(&user, &vhost_name, Some(self.ctx.peer.ip()))
        {
            Ok(()) => {}
            Err(CoreError::NotAllowed(why)) => {
                return self.refuse(level, ReasonCode::QuotaExceeded, &why);
            }
            Err(_) => {
                return self.refuse(
                    level,
                    ReasonCode::NotAuthorized,
                    "not authorized for this vhost",
                );
            }
        }
        let Ok(vhost) = self.ctx.broker.vhost(&vhost_name) else {
            return self.refuse(level, ReasonCode::NotAuthorized, "no such vhost");
        };
        let mut assigned = None;
        let client_id = if c.client_id.is_empty() {
            if level == Level::V4 && !c.clean_start {
                return self.refuse(
                    level,
                    ReasonCode::ClientIdentifierNotValid,
                    "an empty client id needs a clean session",
                );
            }
            let id = format!("junction-{}", self.ctx.connection_id);
            assigned = Some(id.clone());
            id
        } else {
            c.client_id.clone()
        };
        let permit = Permit::new(
            self.ctx.broker.clone(),
            Identity {
                user: user.clone(),
                vhost: vhost_name.clone(),
                client_id: Some(client_id.clone()),
            },
        );
        let mut vhost = Authorized::new(vhost, permit);
        if let Some(w) = &c.will {
            // A will the user could not publish is refused now, not when it would fire.
            let (exchange, key) = route_of(&w.topic);
            if let Err(e) = vhost.check_publish(exchange, &key) {
                return self.refuse(level, ReasonCode::NotAuthorized, &e.to_string());
            }
        }
        self.client_id = client_id;
        self.user = user;
        self.vhost = Some(vhost);
        self.keep_alive = c.keep_alive;
        self.will = c.will.map(Box::new);
        self.receive_maximum = if level == Level::V5 {
            c.receive_maximum
        } else {
            V4_INFLIGHT
        };
        self.max_packet_out = c.max_packet_size;
        self.alias_max_out = c.topic_alias_max;
        let claim = self.registry.claim(
            &vhost_name,
            &self.client_id,
            self.ctx.connection_id,
            c.clean_start,
        );
        self.generation = claim.generation;
        self.kicked = Some(claim.kicked);
        let session_present = claim.resumed.is_some();
        self.resumed = session_present;
        self.session = claim.resumed.unwrap_or_default();
        self.session.expiry = c.session_expiry;
        self.dirty = true;
        self.state = State::Open;
        let info = ConnAckInfo {
            // MQTT 3.1's CONNACK has no Session Present flag (its first byte is reserved).
            session_present: session_present && !c.legacy_31,
            assigned_client_id: assigned.filter(|_| level == Level::V5),
            receive_maximum: Some(u16::MAX),
            topic_alias_max: Some(TOPIC_ALIAS_MAX),
            max_packet_size: Some(self.max_packet() as u32),
            ..Default::default()
        };
        codec::connack(level, ReasonCode::Success, &info, self.outbox.out.buf());
        let protocol = if level == Level::V5 {
            "MQTT 5.0"
        } else {
            "MQTT 3.1.1"
        };
        let client = [(
            "client_id".to_string(),
            junction_core::FieldValue::string(self.client_id.clone()),
        )]
        .into_iter()
        .collect();
        let label = match level {
            Level::V5 => "mqtt50",
            _ if c.legacy_31 => "mqtt310",
            _ => "mqtt311",
        };
        self.counts =
            Some(
                self.ctx
                    .describe(protocol, label, &self.user.clone(), &vhost_name, client),
            );
        if c.clean_start || !session_present {
            // A clean start throws away a stored durable queue too.
            let _ = self
                .vh()
                .delete_queue(&self.durable_queue_name(), None, false, false);
        }
        if session_present {
            if let Err(e) = self.resume() {
                tracing::warn!(client = %self.client_id, error = %e, "could not resume session");
            }
        }
    }

    pub(super) fn persistent(&self) -> bool {
        self.session.expiry > 0
    }

    pub(super) fn durable_queue_name(&self) -> String {
        format!("mqtt-subscription-{}", self.client_id)
    }

    /// Re-attaches a resumed session: its queue, its shared subscriptions, and PUBRELs in flight.
    pub(super) fn resume(&mut self) -> Result<(), junction_core::CoreError> {
        if self.session.subscriptions.iter().any(|s| s.group.is_none()) {
            let q = self.ensure_queue()?;
            self.restore_bits(&q);
        }
        let shared: Vec<Subscription> = self
            .session
            .subscriptions
            .iter()
            .filter(|s| s.group.is_some())
            .cloned()
            .collect();
        for s in shared {
            self.consume_shared(&s)?;
        }
        for pkid in self.session.outgoing_rel.clone() {
            codec::ack(
                self.lv(),
                Ack::PubRel,
                pkid,
                ReasonCode::Success,
                self.outbox.out.buf(),
            );
        }
        Ok(())
    }

    /// The session's own queue, declared and consumed on first need.
    pub(super) fn ensure_queue(&mut self) -> Result<Arc<Queue>, junction_core::CoreError> {
        if let Some(q) = &self.queue {
            return Ok(q.clone());
        }
        let vh = self.vh();
        if self.resumed {
            // The resumed session's queue holds what arrived while the client was away, whatever
            // expiry this connection asks for now (an expiry of 0 ends the session, and the
            // queue, with this connection).
            if let Ok(q) = vh.queue(&self.durable_queue_name(), None) {
                self.consume(q.clone(), None)?;
                self.queue = Some(q.clone());
                return Ok(q);
            }
        }
        let persistent = self.persistent();
        let mut args = FieldTable::new();
        if persistent && self.session.expiry != u32::MAX {
            args.insert(
                "x-expires",
                FieldValue::I64(i64::from(self.session.expiry.max(1)) * 1000),
            );
        }
        let max_queued = self.ctx.limits.mqtt.max_queued_messages;
        if !persistent && max_queued > 0 {
            // A client that stops reading loses new QoS 0 messages past the limit, as with
            // Mosquitto, instead of growing the broker without bound.
            args.insert("x-max-transient-length", FieldValue::I64(max_queued as i64));
        }
        let def = QueueDef {
            name: if persistent {
                self.durable_queue_name()
            } else {
                format!(
                    "mqtt-subscription-{}-{}",
                    self.client_id, self.ctx.connection_id
                )
            },
            durable: persistent,
            exclusive: !persistent,
            auto_delete: false,
            arguments: args,
        };
        let conn = self.ctx.connection_id;
        let d = match self.guarded().declare_queue(def.clone(), false, conn) {
            Ok(d) => d,
            Err(CoreError::PreconditionFailed(_)) => {
                // Declared earlier with another expiry: start it afresh.
                vh.delete_queue(&def.name, None, false, false)?;
                self.guarded().declare_queue(def, false, conn)?
            }
            Err(e) => return Err(e),
        };
        if d.stored {
            // The SUBACK that follows waits for the store.
            self.outbox.held.want_sync();
        }
        let q = self.guarded().readable_queue(&d.name, Some(conn))?;
        self.consume(q.clone(), None)?;
        self.queue = Some(q.clone());
        Ok(q)
    }

    pub(super) fn consume(
        &mut self,
        q: Arc<Queue>,
        shared_filter: Option<String>,
    ) -> Result<(), junction_core::CoreError> {
        let key = self.next_key;
        self.next_key += 1;
        q.add_consumer(ConsumerSpec {
            key,
            tag: format!("mqtt-{}", self.client_id),
            connection: self.ctx.connection_id,
            channel: 1,
            no_ack: false,
            exclusive: false,
            priority: 0,
            credit: Some(Credit::new(u32::from(self.receive_maximum))),
            shared_credit: None,
            sink: self.sink.clone(),
        })?;
        self.consumers.insert(
            key,
            ConsumerRef {
                queue: q,
                shared_filter,
            },
        );
        Ok(())
    }

    pub(super) fn shared_queue_name(group: &str, filter: &str) -> String {
        format!("mqtt-shared-{group}-{}", filter_to_binding(filter))
    }

    pub(super) fn consume_shared(
        &mut self,
        s: &Subscription,
    ) -> Result<(), junction_core::CoreError> {
        let group = s.group.clone().unwrap_or_default();
        let name = Self::shared_queue_name(&group, &s.req.filter);
        let conn = self.ctx.connection_id;
        let vh = self.guarded();
        let def = QueueDef {
            name: name.clone(),
            durable: false,
            exclusive: false,
            auto_delete: true,
            arguments: FieldTable::new(),
        };
        vh.declare_queue(def, false, conn)?;
        vh.bind(
            Binding {
                source: "amq.topic".into(),
                destination: Destination::Queue(name.clone()),
                routing_key: filter_to_binding(&s.req.filter),
                arguments: FieldTable::new(),
            },
            None,
        )?;
        let q = vh.readable_queue(&name, None)?;
        self.consume(q, Some(s.req.filter.clone()))
    }
}
