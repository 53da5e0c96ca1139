//! SUBSCRIBE and UNSUBSCRIBE: bindings of the session queue, shared-subscription queues, retained
//! messages sent on subscribe.

use super::*;

impl Session {
    pub(super) fn subscribe(&mut self, pkid: u16, filters: Vec<FilterReq>, id: Option<usize>) {
        let mut codes = Vec::with_capacity(filters.len());
        let mut retained_to_send = Vec::new();
        for mut req in filters {
            req.qos = req.qos.min(2);
            let (group, filter) = match shared(&req.filter) {
                Some((g, f)) => (Some(g.to_string()), f.to_string()),
                None => (None, req.filter.clone()),
            };
            if !valid_filter(&filter) || (group.is_some() && req.no_local) {
                codes.push(if self.lv() == Level::V5 {
                    ReasonCode::TopicFilterInvalid.code()
                } else {
                    ReasonCode::UnspecifiedError.code()
                });
                continue;
            }
            req.filter = filter.clone();
            let max = self.ctx.limits.mqtt.max_subscriptions;
            let held = &self.session.subscriptions;
            if max > 0
                && held.len() >= max
                && !held
                    .iter()
                    .any(|s| s.req.filter == filter && s.group == group)
            {
                if self.ctx.broker.refusals().count(Refusal::SubscriptionLimit) {
                    tracing::warn!(client = %self.client_id, max, filter, "subscription limit of the session reached: SUBSCRIBE refused");
                }
                codes.push(match self.lv() {
                    Level::V5 => ReasonCode::QuotaExceeded.code(),
                    _ => ReasonCode::UnspecifiedError.code(),
                });
                continue;
            }
            let mut sub = Subscription {
                req: req.clone(),
                id,
                group: group.clone(),
                bit: None,
            };
            let existing = self
                .session
                .subscriptions
                .iter()
                .position(|s| s.req.filter == filter && s.group == group);
            let result = match (&group, existing) {
                (_, Some(i)) => {
                    sub.bit = self.session.subscriptions[i].bit;
                    self.session.subscriptions[i] = sub.clone();
                    self.dirty = true;
                    Ok(())
                }
                (Some(_), None) => self.consume_shared(&sub),
                (None, None) => self.ensure_queue().and_then(|q| {
                    let key = filter_to_binding(&filter);
                    sub.bit = self.bit_for(&key);
                    let conn = self.ctx.connection_id;
                    self.guarded()
                        .bind(
                            Self::subscription_binding(q.name(), key, sub.bit),
                            Some(conn),
                        )
                        .map(|done| {
                            if done.stored() {
                                self.outbox.held.want_sync();
                            }
                        })
                }),
            };
            match result {
                Ok(()) => {
                    if existing.is_none() {
                        self.session.subscriptions.push(sub);
                        self.dirty = true;
                    }
                    codes.push(req.qos);
                    let send = group.is_none()
                        && (req.retain_handling == 0
                            || (req.retain_handling == 1 && existing.is_none()));
                    if send {
                        let vhost = self.vh().name.clone();
                        for (topic, r) in self.registry.retained_matching(&vhost, &filter) {
                            retained_to_send.push((topic, r, req.qos, id));
                        }
                    }
                }
                Err(CoreError::AccessRefused(_)) => {
                    // Logged and counted where it was refused. MQTT 3.1.1 has one failure code.
                    codes.push(match self.lv() {
                        Level::V5 => ReasonCode::NotAuthorized.code(),
                        _ => ReasonCode::UnspecifiedError.code(),
                    });
                }
                Err(e) => {
                    tracing::warn!(client = %self.client_id, filter, error = %e, "subscribe failed");
                    codes.push(ReasonCode::UnspecifiedError.code());
                }
            }
        }
        if self.outbox.held.is_holding() {
            // A durable subscription is acknowledged once the store has it (PUBLISHes of
            // it may come first: MQTT allows that).
            self.outbox.held.hold(Reply::SubAck(pkid, codes));
        } else {
            codec::suback(self.lv(), pkid, &codes, self.outbox.out.buf());
        }
        for (topic, r, granted, id) in retained_to_send {
            let qos = r.qos.min(granted);
            self.send_publish(
                topic,
                &r.message,
                qos,
                true,
                false,
                id.into_iter().collect(),
                None,
            );
        }
    }

    pub(super) fn unsubscribe(&mut self, pkid: u16, filters: Vec<String>) {
        let mut existed = Vec::with_capacity(filters.len());
        for f in filters {
            let (group, filter) = match shared(&f) {
                Some((g, f)) => (Some(g.to_string()), f.to_string()),
                None => (None, f.clone()),
            };
            let pos = self
                .session
                .subscriptions
                .iter()
                .position(|s| s.req.filter == filter && s.group == group);
            existed.push(pos.is_some());
            let Some(i) = pos else { continue };
            let gone = self.session.subscriptions.remove(i);
            self.dirty = true;
            match group {
                None => {
                    if let Some(q) = &self.queue {
                        let key = filter_to_binding(&filter);
                        let still =
                            self.session.subscriptions.iter().any(|s| {
                                s.group.is_none() && filter_to_binding(&s.req.filter) == key
                            });
                        if !still {
                            let _ = self.vh().unbind(
                                &Self::subscription_binding(q.name(), key, gone.bit),
                                Some(self.ctx.connection_id),
                            );
                        }
                    }
                }
                Some(_) => {
                    let doomed: Vec<u64> = self
                        .consumers
                        .iter()
                        .filter(|(_, c)| c.shared_filter.as_deref() == Some(&filter))
                        .map(|(k, _)| *k)
                        .collect();
                    for k in doomed {
                        if let Some(c) = self.consumers.remove(&k) {
                            c.queue.cancel_consumer(k, self.ctx.connection_id);
                            c.queue.requeue_consumer(k);
                        }
                    }
                }
            }
        }
        codec::unsuback(self.lv(), pkid, &existed, self.outbox.out.buf());
    }
}
