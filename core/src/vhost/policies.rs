//! A vhost's policies and limits: policies kept compiled beside its maps, applied to every
//! queue and exchange they match whenever they change, and to each new one as it is declared.

use super::*;
use crate::policy::{Policy, PolicySet};

impl VHost {
    /// Adds or replaces a policy of this vhost (validated first; durable once
    /// [`crate::Broker::sync`] resolves).
    pub fn put_policy(&self, mut p: Policy) -> CoreResult<Outcome> {
        p.vhost = self.name.clone();
        p.validate()?;
        self.commit(MetaCommand::PutPolicy(p))
    }

    /// Deletes a policy (404 if there is none).
    pub fn delete_policy(&self, name: &str) -> CoreResult<Outcome> {
        self.commit(MetaCommand::DeletePolicy {
            vhost: self.name.clone(),
            name: name.to_string(),
        })
    }

    /// What the vhost says of itself (description, tags, default queue type).
    pub fn metadata(&self) -> crate::meta::VHostMetadata {
        read(&self.metadata).clone()
    }

    /// The vhost's limits (`max-connections`, `max-queues`; empty: none).
    pub fn limits(&self) -> crate::limits::LimitTable {
        read(&self.limits).clone()
    }

    /// The vhost's policies, highest priority first.
    pub fn policies(&self) -> Vec<Policy> {
        read(&self.policies).list()
    }

    /// The policy that applies to a queue declared as `def`, and its effective arguments
    /// (its own if the merged ones do not parse, which is logged).
    pub(super) fn queue_args_for(
        &self,
        def: &QueueDef,
        policies: &PolicySet,
    ) -> (Option<Arc<Policy>>, QueueArgs) {
        let own = QueueArgs::parse(&def.arguments).unwrap_or_default();
        let Some(p) = policies.for_queue(&def.name) else {
            return (None, own);
        };
        match QueueArgs::parse(&p.queue_arguments(&def.arguments)) {
            Ok(args) => (Some(p), args),
            Err(e) => {
                tracing::warn!(queue = %def.name, vhost = %self.name, policy = %p.name, error = %e, "policy not applied");
                (None, own)
            }
        }
    }

    /// Follows a policy command: the set changes, then every queue and exchange is put under
    /// the policy that now applies to it.
    pub(super) fn change_policies(&self, change: impl FnOnce(&mut PolicySet)) {
        change(&mut write(&self.policies));
        let policies = read(&self.policies);
        let queues: Vec<Arc<Queue>> = read(&self.queues).values().cloned().collect();
        for q in queues {
            let (policy, args) = self.queue_args_for(&q.def, &policies);
            q.set_policy(policy, args);
        }
        for ex in read(&self.exchanges).values() {
            ex.set_policy(policies.for_exchange(&ex.def.name));
        }
    }
}
