//! Publishing: basic.publish and its content, confirms, transactions.

use super::*;
use junction_core::message_counts::Count;

impl Session {
    /// basic.publish, confirm.select and the tx class.
    pub(in crate::session) fn publish_method(&mut self, ch: u16, method: Method) -> AmqpResult<()> {
        let ids = method.ids();
        match method {
            Method::BasicPublish {
                exchange,
                routing_key,
                mandatory,
                immediate,
            } => {
                self.note_published();
                if immediate {
                    return Err(AmqpError::connection(
                        code::NOT_IMPLEMENTED,
                        "immediate=true",
                        ids,
                    ));
                }
                self.channel(ch).pending = Some(Pending {
                    exchange,
                    routing_key,
                    mandatory,
                    header: None,
                    parts: Vec::new(),
                    received: 0,
                });
            }
            Method::ConfirmSelect { no_wait } => {
                let c = self.channel(ch);
                if c.tx.is_some() {
                    return Err(AmqpError::channel(
                        code::PRECONDITION_FAILED,
                        "cannot switch from tx to confirm mode",
                        ids,
                    ));
                }
                c.confirm = true;
                if !no_wait {
                    self.send(ch, &Method::ConfirmSelectOk);
                }
            }
            Method::TxSelect => {
                let c = self.channel(ch);
                if c.confirm {
                    return Err(AmqpError::channel(
                        code::PRECONDITION_FAILED,
                        "cannot switch from confirm to tx mode",
                        ids,
                    ));
                }
                c.tx.get_or_insert_with(Tx::default);
                self.send(ch, &Method::TxSelectOk);
            }
            Method::TxCommit | Method::TxRollback => {
                let commit = matches!(method, Method::TxCommit);
                let Some(tx) = self.channel(ch).tx.replace(Tx::default()) else {
                    return Err(AmqpError::channel(
                        code::PRECONDITION_FAILED,
                        "channel is not transactional",
                        ids,
                    ));
                };
                if commit {
                    for p in tx.publishes {
                        self.route(ch, p, ids)?;
                    }
                    for op in tx.acks {
                        self.apply_ack(ch, op, ids)?;
                    }
                    self.send(ch, &Method::TxCommitOk);
                } else {
                    self.send(ch, &Method::TxRollbackOk);
                }
            }
            other => return Err(not_from_client(&other, ids)),
        }
        Ok(())
    }

    pub(in crate::session) fn content_header(
        &mut self,
        ch: u16,
        header: ContentHeader,
    ) -> AmqpResult<()> {
        let max = self.limits().max_message_size;
        let Some(c) = self.channels.get_mut(&ch) else {
            return Err(AmqpError::connection(
                code::CHANNEL_ERROR,
                format!("content header on channel {ch} that is not open"),
                (60, 40),
            ));
        };
        if c.closing {
            return Ok(());
        }
        let Some(p) = c.pending.as_mut().filter(|p| p.header.is_none()) else {
            return Err(AmqpError::connection(
                code::UNEXPECTED_FRAME,
                "content header without basic.publish",
                (60, 40),
            ));
        };
        if header.class_id != 60 {
            return Err(AmqpError::connection(
                code::FRAME_ERROR,
                format!("content header for class {}", header.class_id),
                (60, 40),
            ));
        }
        if header.body_size > max {
            c.pending = None;
            return Err(AmqpError::channel(
                code::PRECONDITION_FAILED,
                format!(
                    "message size {} is larger than configured max size {max}",
                    header.body_size
                ),
                (60, 40),
            ));
        }
        p.header = Some((header.body_size, header.properties));
        if header.body_size == 0 {
            self.complete_publish(ch)?;
        }
        Ok(())
    }

    pub(in crate::session) fn content_body(&mut self, ch: u16, payload: Bytes) -> AmqpResult<()> {
        let Some(c) = self.channels.get_mut(&ch) else {
            return Err(AmqpError::connection(
                code::CHANNEL_ERROR,
                format!("content body on channel {ch} that is not open"),
                (60, 40),
            ));
        };
        if c.closing {
            return Ok(());
        }
        let Some(p) = c.pending.as_mut().filter(|p| p.header.is_some()) else {
            return Err(AmqpError::connection(
                code::UNEXPECTED_FRAME,
                "content body without content header",
                (60, 40),
            ));
        };
        let size = p.header.as_ref().map_or(0, |h| h.0);
        p.received += payload.len() as u64;
        if p.received > size {
            return Err(AmqpError::connection(
                code::FRAME_ERROR,
                format!("content body exceeds declared size {size}"),
                (60, 40),
            ));
        }
        p.parts.push(payload);
        if p.received == size {
            self.complete_publish(ch)?;
        }
        Ok(())
    }

    pub(super) fn complete_publish(&mut self, ch: u16) -> AmqpResult<()> {
        let ids = (60, 40);
        let c = self.channel(ch);
        let Some(p) = c.pending.take() else {
            return Ok(());
        };
        let (_, mut properties) = p.header.unwrap_or_default();
        let body = match p.parts.len() {
            0 => Bytes::new(),
            1 => p.parts.into_iter().next().unwrap_or_default(),
            _ => {
                let mut b = BytesMut::with_capacity(p.received as usize);
                for part in &p.parts {
                    b.extend_from_slice(part);
                }
                b.freeze()
            }
        };
        if let Some(uid) = &properties.user_id {
            let user = self.user.as_ref().map(|u| u.name.as_str()).unwrap_or("");
            if uid != user {
                return Err(AmqpError::channel(
                    code::PRECONDITION_FAILED,
                    format!("user_id property set to '{uid}' but authenticated user was '{user}'"),
                    ids,
                ));
            }
        }
        if properties.reply_to.as_deref() == Some(REPLY_TO) {
            let Some(q) = self.channel(ch).reply_queue.clone() else {
                return Err(AmqpError::channel(
                    code::PRECONDITION_FAILED,
                    "fast reply consumer does not exist",
                    ids,
                ));
            };
            properties.reply_to = Some(q);
        }
        let properties = self.channel(ch).last_properties.share(properties);
        let message = Arc::new(Message {
            exchange: p.exchange.clone(),
            routing_key: p.routing_key,
            properties,
            body,
        });
        let pm = PendingMessage {
            exchange: p.exchange,
            mandatory: p.mandatory,
            message,
        };
        let c = self.channel(ch);
        if let Some(tx) = &mut c.tx {
            tx.publishes.push(pm);
            return Ok(());
        }
        self.route(ch, pm, ids)
    }

    pub(super) fn route(&mut self, ch: u16, p: PendingMessage, ids: (u16, u16)) -> AmqpResult<()> {
        let routed = self
            .guarded()
            .publish(&p.exchange, p.message.clone())
            .map_err(|e| AmqpError::core(e, ids))?;
        let returned = p.mandatory && routed.unroutable();
        self.count(|c| c.published(&routed, returned));
        if returned {
            self.send(
                ch,
                &Method::BasicReturn {
                    reply_code: code::NO_ROUTE,
                    reply_text: "NO_ROUTE".into(),
                    exchange: p.message.exchange.clone(),
                    routing_key: p.message.routing_key.clone(),
                },
            );
            encode_content(
                ch,
                60,
                &p.message.properties,
                &p.message.body,
                self.frame_max,
                &mut self.outbox.out,
            );
        }
        let c = self.channel(ch);
        if c.confirm {
            c.publish_seq += 1;
            let tag = c.publish_seq;
            let confirm = if routed.rejected > 0 && routed.queues == 0 {
                Method::BasicNack {
                    delivery_tag: tag,
                    multiple: false,
                    requeue: false,
                }
            } else {
                Method::BasicAck {
                    delivery_tag: tag,
                    multiple: false,
                }
            };
            if matches!(confirm, Method::BasicAck { .. }) {
                self.count(|c| c.add(Count::Confirmed, 1));
            }
            if routed.stored > 0 || self.outbox.held.is_holding() {
                // Stored: confirmed only once the store has synced (group commit); others
                // keep their place behind held ones.
                self.outbox.held.hold((ch, confirm));
            } else if let Method::BasicAck { delivery_tag, .. } = confirm {
                self.confirm(ch, delivery_tag);
            } else {
                self.send(ch, &confirm);
            }
        }
        Ok(())
    }
}
