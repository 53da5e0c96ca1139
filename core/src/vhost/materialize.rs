//! The vhost as the metadata state machine and its queues see it: the live maps follow each
//! applied command, and queues reach back for dead-lettering and deletion.

use super::*;

impl QueueHost for VHost {
    fn dead_letter(&self, queue: &Queue, msg: &Message, reason: DeathReason) {
        self.route_dead_letter(queue, msg, reason);
    }

    fn auto_delete(&self, queue: &Queue) {
        let _ = VHost::delete_queue(self, queue.name(), None, false, false);
    }
}

impl Materialize for VHost {
    /// The vhost's maps follow the state machine: no I/O here beyond telling a deleted
    /// queue's consumers and store.
    fn materialize(&self, cmd: &MetaCommand) {
        match cmd {
            MetaCommand::PutExchange { def, .. } => {
                let policy = read(&self.policies).for_exchange(&def.name);
                write(&self.exchanges)
                    .entry(def.name.clone())
                    .or_insert_with(|| {
                        let ex = Exchange::new(def.clone());
                        ex.set_policy(policy);
                        Arc::new(ex)
                    });
            }
            MetaCommand::DeleteExchange { name, .. } => {
                write(&self.exchanges).remove(name);
                let dest = Destination::Exchange(name.clone());
                for other in read(&self.exchanges).values() {
                    other.unbind_destination(&dest);
                }
            }
            MetaCommand::PutQueue { def, owner, .. } => {
                let (policy, args) = self.queue_args_for(def, &read(&self.policies));
                let q = self.build_queue(def.clone(), args.clone(), *owner);
                if policy.is_some() {
                    q.set_policy(policy, args);
                }
                write(&self.queues).insert(def.name.clone(), q);
            }
            MetaCommand::DeleteQueue { name, .. } => {
                let q = write(&self.queues).remove(name);
                let dest = Destination::Queue(name.clone());
                for ex in read(&self.exchanges).values() {
                    ex.unbind_destination(&dest);
                }
                if let Some(q) = q {
                    q.mark_deleted();
                }
            }
            MetaCommand::PutBinding { binding, .. } => {
                if let Ok(ex) = self.exchange(&binding.source) {
                    // Limits were checked before the command was made.
                    let _ = ex.bind(binding.clone());
                }
            }
            MetaCommand::DeleteBinding { binding, .. } => {
                if let Ok(ex) = self.exchange(&binding.source) {
                    ex.unbind(binding);
                }
            }
            MetaCommand::PutVHostLimits { limits, .. } => *write(&self.limits) = limits.clone(),
            MetaCommand::PutVHostMetadata { metadata, .. } => {
                *write(&self.metadata) = metadata.clone()
            }
            MetaCommand::PutPolicy(p) => self.change_policies(|set| set.put(p.clone())),
            MetaCommand::DeletePolicy { name, .. } => self.change_policies(|set| {
                set.remove(name);
            }),
            _ => {}
        }
    }
}
