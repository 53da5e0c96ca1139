//! The exchange and queue classes: declarations, bindings, purges and deletions.

use super::*;

impl Session {
    /// exchange.* and queue.* methods.
    pub(in crate::session) fn declare_method(&mut self, ch: u16, method: Method) -> AmqpResult<()> {
        let ids = method.ids();
        let conn = self.ctx.connection_id;
        let core = |e| AmqpError::core(e, ids);
        match method {
            Method::ExchangeDeclare {
                exchange,
                kind,
                passive,
                durable,
                auto_delete,
                internal,
                no_wait,
                arguments,
            } => {
                let kind = match ExchangeKind::parse(&kind) {
                    Ok(k) => k,
                    Err(_) if passive => ExchangeKind::Direct,
                    Err(_) => {
                        return Err(AmqpError::connection(
                            code::COMMAND_INVALID,
                            format!("unknown exchange type '{kind}'"),
                            ids,
                        ))
                    }
                };
                let def = ExchangeDef {
                    name: exchange,
                    kind,
                    durable,
                    auto_delete,
                    internal,
                    arguments,
                };
                let done = self
                    .guarded()
                    .declare_exchange(def, passive)
                    .map_err(core)?;
                let reply = (!no_wait).then_some(Method::ExchangeDeclareOk);
                self.reply_after_store(ch, reply, done.stored());
            }
            Method::ExchangeDelete {
                exchange,
                if_unused,
                no_wait,
            } => {
                let done = self
                    .guarded()
                    .delete_exchange(&exchange, if_unused)
                    .map_err(core)?;
                let reply = (!no_wait).then_some(Method::ExchangeDeleteOk);
                self.reply_after_store(ch, reply, done.stored());
            }
            Method::ExchangeBind {
                destination,
                source,
                routing_key,
                no_wait,
                arguments,
            }
            | Method::ExchangeUnbind {
                destination,
                source,
                routing_key,
                no_wait,
                arguments,
            } => {
                let b = Binding {
                    source,
                    destination: Destination::Exchange(destination),
                    routing_key,
                    arguments,
                };
                let bind = ids.1 == 30;
                let done = if bind {
                    self.guarded().bind(b, Some(conn)).map_err(core)?
                } else {
                    self.guarded().unbind(&b, Some(conn)).map_err(core)?
                };
                let reply = (!no_wait).then_some(if bind {
                    Method::ExchangeBindOk
                } else {
                    Method::ExchangeUnbindOk
                });
                self.reply_after_store(ch, reply, done.stored());
            }
            Method::QueueDeclare {
                queue,
                passive,
                durable,
                exclusive,
                auto_delete,
                no_wait,
                arguments,
            } => {
                let def = QueueDef {
                    name: queue,
                    durable,
                    exclusive,
                    auto_delete,
                    arguments,
                };
                let d = self
                    .guarded()
                    .declare_queue(def, passive, conn)
                    .map_err(core)?;
                self.channel(ch).last_queue = Some(d.name.clone());
                let reply = (!no_wait).then(|| Method::QueueDeclareOk {
                    queue: d.name,
                    message_count: d.messages as u32,
                    consumer_count: d.consumers as u32,
                });
                self.reply_after_store(ch, reply, d.stored);
            }
            Method::QueueBind {
                queue,
                exchange,
                routing_key,
                no_wait,
                arguments,
            } => {
                let rk_default = queue.is_empty() && routing_key.is_empty();
                let queue = self.resolve_queue(ch, queue, ids)?;
                let routing_key = if rk_default {
                    queue.clone()
                } else {
                    routing_key
                };
                let b = Binding {
                    source: exchange,
                    destination: Destination::Queue(queue),
                    routing_key,
                    arguments,
                };
                let done = self.guarded().bind(b, Some(conn)).map_err(core)?;
                let reply = (!no_wait).then_some(Method::QueueBindOk);
                self.reply_after_store(ch, reply, done.stored());
            }
            Method::QueueUnbind {
                queue,
                exchange,
                routing_key,
                arguments,
            } => {
                let queue = self.resolve_queue(ch, queue, ids)?;
                let b = Binding {
                    source: exchange,
                    destination: Destination::Queue(queue),
                    routing_key,
                    arguments,
                };
                let done = self.guarded().unbind(&b, Some(conn)).map_err(core)?;
                self.reply_after_store(ch, Some(Method::QueueUnbindOk), done.stored());
            }
            Method::QueuePurge { queue, no_wait } => {
                let queue = self.resolve_queue(ch, queue, ids)?;
                let n = self
                    .guarded()
                    .purge_queue(&queue, Some(conn))
                    .map_err(core)?;
                if !no_wait {
                    self.send(
                        ch,
                        &Method::QueuePurgeOk {
                            message_count: n as u32,
                        },
                    );
                }
            }
            Method::QueueDelete {
                queue,
                if_unused,
                if_empty,
                no_wait,
            } => {
                let queue = self.resolve_queue(ch, queue, ids)?;
                let d = self
                    .guarded()
                    .delete_queue(&queue, Some(conn), if_unused, if_empty)
                    .map_err(core)?;
                let reply = (!no_wait).then_some(Method::QueueDeleteOk {
                    message_count: d.messages as u32,
                });
                self.reply_after_store(ch, reply, d.stored);
            }
            other => return Err(not_from_client(&other, ids)),
        }
        Ok(())
    }

    /// An empty queue name means the channel's last declared queue.
    pub(super) fn resolve_queue(
        &mut self,
        ch: u16,
        queue: String,
        ids: (u16, u16),
    ) -> AmqpResult<String> {
        if !queue.is_empty() {
            return Ok(queue);
        }
        self.channel(ch)
            .last_queue
            .clone()
            .ok_or_else(|| AmqpError::channel(code::NOT_FOUND, "no previously declared queue", ids))
    }
}
