//! The basic class without publishing: qos, consumers, gets, acks, rejects, recover.

use super::*;
use junction_core::message_counts::Count;

impl Session {
    /// basic.* methods other than basic.publish.
    pub(in crate::session) fn basic_method(&mut self, ch: u16, method: Method) -> AmqpResult<()> {
        let ids = method.ids();
        let conn = self.ctx.connection_id;
        let core = |e| AmqpError::core(e, ids);
        match method {
            Method::BasicQos {
                prefetch_size,
                prefetch_count,
                global,
            } => {
                if prefetch_size != 0 {
                    return Err(AmqpError::connection(
                        code::NOT_IMPLEMENTED,
                        format!("prefetch_size!=0 ({prefetch_size})"),
                        ids,
                    ));
                }
                let c = self.channel(ch);
                if global {
                    match &c.global {
                        Some(g) => g.set_limit(prefetch_count.into()),
                        None if prefetch_count > 0 => {
                            c.global = Some(Credit::new(prefetch_count.into()))
                        }
                        None => {}
                    }
                } else {
                    c.prefetch = prefetch_count;
                }
                let queues: Vec<Arc<Queue>> =
                    c.consumers.values().map(|r| r.queue.clone()).collect();
                for q in queues {
                    q.dispatch();
                }
                self.send(ch, &Method::BasicQosOk);
            }
            Method::BasicConsume {
                queue,
                consumer_tag,
                no_ack,
                exclusive,
                no_wait,
                arguments,
                ..
            } => self.basic_consume(
                ch,
                queue,
                consumer_tag,
                no_ack,
                exclusive,
                no_wait,
                arguments,
                ids,
            )?,
            Method::BasicCancel {
                consumer_tag,
                no_wait,
            } => {
                if let Some(r) = self.channel(ch).consumers.remove(&consumer_tag) {
                    self.consumers.remove(&r.key);
                    r.queue.cancel_consumer(r.key, conn);
                }
                if !no_wait {
                    self.send(ch, &Method::BasicCancelOk { consumer_tag });
                }
            }
            Method::BasicGet { queue, no_ack } => {
                let queue = self.resolve_queue(ch, queue, ids)?;
                let q = self
                    .guarded()
                    .readable_queue(&queue, Some(conn))
                    .map_err(core)?;
                match q.get(no_ack) {
                    None => self.send(ch, &Method::BasicGetEmpty),
                    Some(f) => {
                        let c = self.channel(ch);
                        c.next_tag += 1;
                        let tag = c.next_tag;
                        if !no_ack {
                            c.unacked.insert(
                                tag,
                                Unacked {
                                    queue: q.clone(),
                                    id: f.id,
                                },
                            );
                        }
                        self.count(|c| c.delivered(true, !no_ack, f.redelivered));
                        self.send(
                            ch,
                            &Method::BasicGetOk {
                                delivery_tag: tag,
                                redelivered: f.redelivered,
                                exchange: f.message.exchange.clone(),
                                routing_key: f.message.routing_key.clone(),
                                message_count: f.remaining as u32,
                            },
                        );
                        encode_content(
                            ch,
                            60,
                            &f.message.properties,
                            &f.message.body,
                            self.frame_max,
                            &mut self.outbox.out,
                        );
                    }
                }
            }
            Method::BasicAck {
                delivery_tag,
                multiple,
            } => self.ack_op(
                ch,
                AckOp::Ack {
                    tag: delivery_tag,
                    multiple,
                },
                ids,
            )?,
            Method::BasicNack {
                delivery_tag,
                multiple,
                requeue,
            } => self.ack_op(
                ch,
                AckOp::Nack {
                    tag: delivery_tag,
                    multiple,
                    requeue,
                },
                ids,
            )?,
            Method::BasicReject {
                delivery_tag,
                requeue,
            } => self.ack_op(
                ch,
                AckOp::Nack {
                    tag: delivery_tag,
                    multiple: false,
                    requeue,
                },
                ids,
            )?,
            Method::BasicRecover { .. } | Method::BasicRecoverAsync { .. } => {
                let all = std::mem::take(&mut self.channel(ch).unacked);
                for (q, ids) in by_queue(all.into_values().collect()) {
                    q.reject(&ids, true);
                }
                if matches!(method, Method::BasicRecover { .. }) {
                    self.send(ch, &Method::BasicRecoverOk);
                }
            }
            other => return Err(not_from_client(&other, ids)),
        }
        Ok(())
    }

    #[allow(clippy::too_many_arguments)]
    pub(super) fn basic_consume(
        &mut self,
        ch: u16,
        queue: String,
        consumer_tag: String,
        no_ack: bool,
        exclusive: bool,
        no_wait: bool,
        arguments: junction_core::FieldTable,
        ids: (u16, u16),
    ) -> AmqpResult<()> {
        let conn = self.ctx.connection_id;
        let reply_to = queue == REPLY_TO;
        let queue = if reply_to {
            if !no_ack {
                return Err(AmqpError::channel(
                    code::PRECONDITION_FAILED,
                    "reply consumer cannot acknowledge",
                    ids,
                ));
            }
            self.reply_queue(ch, ids)?
        } else {
            self.resolve_queue(ch, queue, ids)?
        };
        // The direct reply-to pseudo-queue is the channel's own: it needs no permission.
        let q = if reply_to {
            self.vhost().queue(&queue, Some(conn))
        } else {
            self.guarded().readable_queue(&queue, Some(conn))
        }
        .map_err(|e| AmqpError::core(e, ids))?;
        let tag = if consumer_tag.is_empty() {
            server_tag(conn, self.next_consumer_key)
        } else {
            consumer_tag
        };
        let c = self.channels.get(&ch).expect("open channel");
        if c.consumers.contains_key(&tag) {
            return Err(AmqpError::connection(
                code::NOT_ALLOWED,
                format!("attempt to reuse consumer tag '{tag}'"),
                ids,
            ));
        }
        let credit = Credit::new(if no_ack { 0 } else { c.prefetch.into() });
        credit.set_paused(c.flow_paused);
        let key = self.next_consumer_key;
        self.next_consumer_key += 1;
        let spec = ConsumerSpec {
            key,
            tag: tag.clone(),
            connection: conn,
            channel: ch,
            no_ack,
            exclusive,
            priority: arguments
                .get_i64("x-priority")
                .map_or(0, |p| p.clamp(i32::MIN as i64, i32::MAX as i64) as i32),
            credit: Some(credit.clone()),
            shared_credit: if no_ack { None } else { c.global.clone() },
            sink: self.sink.clone(),
        };
        self.consumers.insert(key, (ch, tag.clone()));
        if !no_wait {
            self.send(
                ch,
                &Method::BasicConsumeOk {
                    consumer_tag: tag.clone(),
                },
            );
        }
        if let Err(e) = q.add_consumer(spec) {
            self.consumers.remove(&key);
            return Err(AmqpError::core(e, ids));
        }
        self.channel(ch).consumers.insert(
            tag,
            ConsumerRef {
                key,
                queue: q,
                credit,
            },
        );
        Ok(())
    }

    /// The channel's direct reply-to queue, created on first use.
    pub(super) fn reply_queue(&mut self, ch: u16, ids: (u16, u16)) -> AmqpResult<String> {
        if let Some(q) = &self.channel(ch).reply_queue {
            return Ok(q.clone());
        }
        let name = format!(
            "{REPLY_TO_PREFIX}{}",
            generate_queue_name().trim_start_matches("amq.gen-")
        );
        let def = QueueDef {
            name: name.clone(),
            durable: false,
            exclusive: true,
            auto_delete: true,
            arguments: Default::default(),
        };
        self.vhost()
            .declare_queue(def, false, self.ctx.connection_id)
            .map_err(|e| AmqpError::core(e, ids))?;
        self.channel(ch).reply_queue = Some(name.clone());
        Ok(name)
    }

    pub(super) fn ack_op(&mut self, ch: u16, op: AckOp, ids: (u16, u16)) -> AmqpResult<()> {
        let c = self.channel(ch);
        if let Some(tx) = &mut c.tx {
            tx.acks.push(op);
            return Ok(());
        }
        self.apply_ack(ch, op, ids)
    }

    pub(super) fn apply_ack(&mut self, ch: u16, op: AckOp, ids: (u16, u16)) -> AmqpResult<()> {
        let (tag, multiple, requeue) = match op {
            AckOp::Ack { tag, multiple } => (tag, multiple, None),
            AckOp::Nack {
                tag,
                multiple,
                requeue,
            } => (tag, multiple, Some(requeue)),
        };
        let c = self.channel(ch);
        let Some(items) = c.take_acked(tag, multiple) else {
            return Err(AmqpError::channel(
                code::PRECONDITION_FAILED,
                format!("unknown delivery tag {tag}"),
                ids,
            ));
        };
        let shared = c.global.is_some();
        for (q, qids) in by_queue(items) {
            match requeue {
                None => {
                    self.count(|c| c.add(Count::Acknowledged, qids.len() as u64));
                    q.ack(&qids)
                }
                Some(r) => q.reject(&qids, r),
            };
        }
        if shared {
            // A channel-wide window freed room for every queue this channel consumes from.
            let queues: Vec<Arc<Queue>> = self
                .channel(ch)
                .consumers
                .values()
                .map(|r| r.queue.clone())
                .collect();
            for q in queues {
                q.dispatch();
            }
        }
        Ok(())
    }
}
