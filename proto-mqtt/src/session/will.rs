//! The end of a connection: what it leaves behind, and the will it may publish.

use super::*;

impl Session {
    /// The connection is over: requeue in-flight deliveries, keep or drop the session, and hand
    /// back the will if one is due.
    pub fn finish(&mut self) -> Option<PendingWill> {
        let conn = self.ctx.connection_id;
        for (key, c) in self.consumers.drain() {
            c.queue.cancel_consumer(key, conn);
            c.queue.requeue_consumer(key);
        }
        // Deliveries sent but unacknowledged went back with requeue_consumer.
        self.inflight.clear();
        let vhost = self.vhost.as_ref()?.vhost().clone();
        let keep = self.persistent();
        let expiry = self.session.expiry;
        if !keep {
            if let Some(q) = self.queue.take() {
                let _ = vhost.delete_queue(q.name(), None, false, false);
            }
        }
        self.ctx.broker.connection_closed(conn);
        let state = keep.then(|| std::mem::take(&mut self.session));
        self.registry
            .release(&vhost.name, &self.client_id, conn, state);
        let will = self.will.take().filter(|_| self.publish_will)?;
        Some(PendingWill {
            delay: will.delay.min(expiry),
            vhost,
            will: *will,
            client_id: self.client_id.clone(),
            user: self.user.clone(),
            generation: self.generation,
            clock: self.ctx.broker.clock().clone(),
        })
    }
}

impl PendingWill {
    /// Publishes the will (the registry's tap retains it if asked).
    pub fn publish(self) {
        let (exchange, msg) = Session::will_message(
            self.clock.unix_seconds(),
            &self.client_id,
            &self.user,
            self.will,
        );
        if let Err(e) = self.vhost.publish(exchange, msg) {
            tracing::warn!(error = %e, "will publish failed");
        }
    }
}
