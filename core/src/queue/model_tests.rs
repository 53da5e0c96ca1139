//! The queue machine against a model of the world around it: random commands applied to a
//! [`QueueState`] on a test clock, its effects performed into an in-memory store and
//! consumers whose sinks fill up. Checked after every step: each published message has
//! exactly one fate (waiting, delivered and unacked, acked, sent no-ack, dead-lettered, purged,
//! refused), no consumer holds more than its prefetch, first deliveries reach a consumer in
//! queue order within a priority level, nothing expired is delivered, the counters add up, and
//! the store holds exactly the copies the queue still needs.

use super::command::{Bounce, Effect, QueueCommand, Reply};
use super::state::{QueueState, Rules, StoredAs};
use super::DeathReason;
use crate::consumer::{sink, ConsumerSpec, Credit, DeliveryReceiver};
use crate::message::{Message, Properties};
use crate::queue_args::{Overflow, QueueArgs};
use crate::storage::MemoryWindow;
use bytes::Bytes;
use proptest::prelude::*;
use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Arc;

/// What became of a published message.
#[derive(Debug, Clone, PartialEq)]
enum Fate {
    Waiting,
    /// Delivered to consumer `key` (or a get when None) with this delivery id, not settled.
    Unacked(Option<u64>, u64),
    Acked,
    SentNoAck,
    DeadLettered(DeathReason),
    Purged,
    Refused,
}

#[derive(Debug, Clone)]
enum Op {
    Publish {
        persistent: bool,
        priority: u8,
        ttl: Option<u64>,
        page_transient: bool,
    },
    Consume {
        no_ack: bool,
        prefetch: u32,
    },
    Cancel(usize),
    Ack(usize),
    Reject(usize, bool),
    RequeueConsumer(usize),
    Get(bool),
    /// A consumer's sink fills up (true) or drains (false, and the queue is woken).
    Sink(usize, bool),
    Advance(u64),
    Expire,
    Purge,
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        6 => (any::<bool>(), 0u8..3, prop::option::weighted(0.2, 0u64..50), any::<bool>())
            .prop_map(|(persistent, priority, ttl, page_transient)| Op::Publish {
                persistent,
                priority,
                ttl,
                page_transient
            }),
        1 => (any::<bool>(), 0u32..4).prop_map(|(no_ack, prefetch)| Op::Consume { no_ack, prefetch }),
        1 => (0usize..4).prop_map(Op::Cancel),
        3 => (0usize..4).prop_map(Op::Ack),
        1 => ((0usize..4), any::<bool>()).prop_map(|(c, r)| Op::Reject(c, r)),
        1 => (0usize..4).prop_map(Op::RequeueConsumer),
        1 => any::<bool>().prop_map(Op::Get),
        4 => ((0usize..4), any::<bool>()).prop_map(|(c, f)| Op::Sink(c, f)),
        1 => (0u64..40).prop_map(Op::Advance),
        1 => Just(Op::Expire),
        1 => Just(Op::Purge),
    ]
}

fn rules() -> impl Strategy<Value = Rules> {
    (
        prop::option::of(1u64..30),
        prop::option::of(2u64..12),
        0usize..3,
        prop::option::of(1u8..3),
        any::<bool>(),
    )
        .prop_map(|(ttl, max_length, overflow, max_priority, single)| Rules {
            args: QueueArgs {
                message_ttl: ttl,
                dead_letter_exchange: Some("dlx".into()),
                max_length,
                overflow: [
                    Overflow::DropHead,
                    Overflow::RejectPublish,
                    Overflow::RejectPublishDlx,
                ][overflow],
                max_priority,
                single_active_consumer: single,
                ..QueueArgs::default()
            },
            auto_delete: false,
            durable_store: true,
            has_store: true,
            window: Some(MemoryWindow {
                messages: 3,
                bytes: 1 << 20,
            }),
        })
}

struct Consumer {
    key: u64,
    no_ack: bool,
    prefetch: u32,
    full: bool,
    /// Kept so the sink stays open.
    _receiver: DeliveryReceiver,
    /// Per level, the last seq first-delivered.
    last_first: HashMap<u8, u64>,
}

/// The world the queue runs in.
struct World {
    state: QueueState,
    env: Env,
}

/// Everything around the queue: the clock, the store, the consumers and what became of each
/// message.
struct Env {
    now: u64,
    store: HashSet<(StoredAs, u64)>,
    bodies: HashMap<u64, Arc<Message>>,
    fates: BTreeMap<u64, Fate>,
    /// Message id by queue seq, and each message's expiry.
    by_seq: HashMap<u64, u64>,
    seq_of: HashMap<u64, u64>,
    expiry: HashMap<u64, Option<u64>>,
    consumers: Vec<Consumer>,
    next_id: u64,
    next_key: u64,
}

fn id_of(m: &Message) -> u64 {
    std::str::from_utf8(&m.body).unwrap().parse().unwrap()
}

impl World {
    fn new(rules: Rules) -> Self {
        World {
            state: QueueState::new(rules, 0),
            env: Env {
                now: 0,
                store: HashSet::new(),
                bodies: HashMap::new(),
                fates: BTreeMap::new(),
                by_seq: HashMap::new(),
                seq_of: HashMap::new(),
                expiry: HashMap::new(),
                consumers: Vec::new(),
                next_id: 0,
                next_key: 1,
            },
        }
    }

    /// Applies a command and everything it leads to, as [`super::Queue::run`] does.
    fn run(&mut self, cmd: QueueCommand<'_>) -> Reply {
        let mut out = Vec::new();
        let mut rounds = 0;
        let env = &mut self.env;
        self.state.drive(cmd, env.now, &mut out, |st, out| {
            rounds += 1;
            assert!(rounds < 10_000, "effects never settle");
            env.perform(st, out)
        })
    }

    fn consumer(&self, i: usize) -> Option<&Consumer> {
        if self.env.consumers.is_empty() {
            None
        } else {
            self.env.consumers.get(i % self.env.consumers.len())
        }
    }

    /// The unacked delivery ids of consumer `i`'s fates.
    fn unacked_of(&self, key: Option<u64>) -> Vec<(u64, u64)> {
        self.env
            .fates
            .iter()
            .filter_map(|(m, f)| match f {
                Fate::Unacked(k, d) if *k == key => Some((*m, *d)),
                _ => None,
            })
            .collect()
    }

    fn step(&mut self, op: Op) {
        match op {
            Op::Publish {
                persistent,
                priority,
                ttl,
                page_transient,
            } => {
                let id = self.env.next_id;
                self.env.next_id += 1;
                let props = Properties {
                    delivery_mode: Some(if persistent { 2 } else { 1 }),
                    priority: Some(priority),
                    expiration: ttl.map(|t| t.to_string()),
                    ..Properties::default()
                };
                let message = Message::new("", "q", props, Bytes::from(id.to_string()));
                let ttl = self.state.rules.ttl_for(ttl);
                self.env.expiry.insert(id, ttl.map(|t| self.env.now + t));
                self.env.fates.insert(id, Fate::Waiting);
                let seq = self.state.next_seq;
                self.env.by_seq.insert(seq, id);
                self.env.seq_of.insert(id, seq);
                let reply = self.run(QueueCommand::Enqueue {
                    message,
                    matched: 0,
                    page_transient,
                });
                if let Reply::Enqueued(super::Enqueued::Rejected) = reply {
                    self.env.by_seq.remove(&seq);
                    let was = self.env.fates.insert(id, Fate::Refused);
                    // reject-publish-dlx dead-letters it in the same step.
                    assert!(matches!(
                        was,
                        Some(Fate::Waiting) | Some(Fate::DeadLettered(DeathReason::MaxLen))
                    ));
                    if was == Some(Fate::DeadLettered(DeathReason::MaxLen)) {
                        self.env
                            .fates
                            .insert(id, Fate::DeadLettered(DeathReason::MaxLen));
                    }
                }
            }
            Op::Consume { no_ack, prefetch } => {
                let key = self.env.next_key;
                self.env.next_key += 1;
                let (tx, rx) = sink(1_000_000);
                let spec = ConsumerSpec {
                    key,
                    tag: format!("c{key}"),
                    connection: 1,
                    channel: 0,
                    no_ack,
                    exclusive: false,
                    priority: 0,
                    credit: Some(Credit::new(prefetch)),
                    shared_credit: None,
                    sink: tx,
                };
                self.env.consumers.push(Consumer {
                    key,
                    no_ack,
                    prefetch,
                    full: false,
                    _receiver: rx,
                    last_first: HashMap::new(),
                });
                let reply = self.run(QueueCommand::AddConsumer(spec));
                assert!(matches!(reply, Reply::Done), "{reply:?}");
            }
            Op::Cancel(i) => {
                let Some(key) = self.consumer(i).map(|c| c.key) else {
                    return;
                };
                let reply = self.run(QueueCommand::CancelConsumer { key, connection: 1 });
                assert!(matches!(reply, Reply::Yes(true)));
                self.env.consumers.retain(|c| c.key != key);
                // Its connection goes too: what it held comes back (and may go straight out
                // again, so it is waiting before the command runs).
                self.requeued(Some(key));
                self.run(QueueCommand::RequeueConsumer(key));
            }
            Op::Ack(i) | Op::Reject(i, _) => {
                let key = self.consumer(i).map(|c| c.key);
                let held = self.unacked_of(key);
                let Some(&(msg, id)) = held.first() else {
                    return;
                };
                let reply = match op {
                    Op::Reject(_, requeue) => {
                        // Requeued, it may go straight out again; else the dead-letter effect
                        // sets its fate.
                        if requeue {
                            self.env.fates.insert(msg, Fate::Waiting);
                        }
                        self.run(QueueCommand::Reject {
                            ids: &[id],
                            requeue,
                        })
                    }
                    _ => {
                        let reply = self.run(QueueCommand::Ack(&[id]));
                        if matches!(self.env.fates[&msg], Fate::Unacked(..)) {
                            self.env.fates.insert(msg, Fate::Acked);
                        }
                        reply
                    }
                };
                assert!(
                    matches!(reply, Reply::Unknown(ref u) if u.is_empty()),
                    "{reply:?}"
                );
                // An unknown id is reported, not acted on.
                let reply = self.run(QueueCommand::Ack(&[u64::MAX]));
                assert!(matches!(reply, Reply::Unknown(ref u) if u == &[u64::MAX]));
            }
            Op::RequeueConsumer(i) => {
                let Some(key) = self.consumer(i).map(|c| c.key) else {
                    return;
                };
                // Mark them waiting first: the requeue may hand them straight out again.
                self.requeued(Some(key));
                self.run(QueueCommand::RequeueConsumer(key));
            }
            Op::Get(no_ack) => {
                if let Reply::Taken(Some(t)) = self.run(QueueCommand::Get { no_ack }) {
                    let id = id_of(&t.message);
                    assert!(self.env.expiry[&id].is_none_or(|x| x >= self.env.now));
                    let fate = if no_ack {
                        Fate::SentNoAck
                    } else {
                        Fate::Unacked(None, t.id)
                    };
                    self.env.set_fate(id, fate);
                    assert_eq!(t.remaining, self.state.ready());
                }
            }
            Op::Sink(i, full) => {
                let n = self.env.consumers.len();
                if n == 0 {
                    return;
                }
                self.env.consumers[i % n].full = full;
                if !full {
                    self.run(QueueCommand::Wake);
                }
            }
            Op::Advance(ms) => self.env.now += ms,
            Op::Expire => {
                self.run(QueueCommand::Expire);
                // Nothing expired is left at a level's head.
                for level in &self.state.levels {
                    if let Some(e) = level.front() {
                        assert!(e.expires_at.is_none_or(|t| t > self.env.now));
                    }
                }
            }
            Op::Purge => {
                let ready: Vec<u64> = self
                    .state
                    .levels
                    .iter()
                    .flatten()
                    .map(|e| self.env.by_seq[&e.seq])
                    .collect();
                let reply = self.run(QueueCommand::Purge);
                assert!(matches!(reply, Reply::Count(n) if n == ready.len()));
                for id in ready {
                    self.env.set_fate(id, Fate::Purged);
                }
            }
        }
    }

    /// Every unacked delivery of `key` is back to waiting (about to be requeued).
    fn requeued(&mut self, key: Option<u64>) {
        for (m, _) in self.unacked_of(key) {
            self.env.fates.insert(m, Fate::Waiting);
        }
    }

    fn check(&self) {
        let st = &self.state;
        let entries: Vec<_> = st.levels.iter().flatten().collect();
        assert_eq!(st.ready, entries.len());
        assert_eq!(
            st.loaded,
            entries.iter().filter(|e| e.msg.is_some()).count()
        );
        assert_eq!(
            st.ready_bytes,
            entries.iter().map(|e| e.size as usize).sum::<usize>()
        );
        for level in &st.levels {
            assert!(level
                .iter()
                .zip(level.iter().skip(1))
                .all(|(a, b)| a.seq < b.seq));
        }
        // What waits in the queue is what the fates say waits.
        let waiting: HashSet<u64> = entries.iter().map(|e| self.env.by_seq[&e.seq]).collect();
        let said: HashSet<u64> = self
            .env
            .fates
            .iter()
            .filter(|(_, f)| **f == Fate::Waiting)
            .map(|(m, _)| *m)
            .collect();
        assert_eq!(waiting, said, "ready list and fates disagree");
        let unacked: HashSet<u64> = st
            .unacked
            .values()
            .map(|u| self.env.by_seq[&u.entry.seq])
            .collect();
        let said: HashSet<u64> = self
            .env
            .fates
            .iter()
            .filter(|(_, f)| matches!(f, Fate::Unacked(..)))
            .map(|(m, _)| *m)
            .collect();
        assert_eq!(unacked, said, "unacked set and fates disagree");
        // The store holds exactly the copies of what the queue still has.
        let needed: HashSet<(StoredAs, u64)> = entries
            .iter()
            .copied()
            .chain(st.unacked.values().map(|u| &u.entry))
            .filter_map(|e| e.stored_as().map(|at| (at, e.seq)))
            .collect();
        assert_eq!(needed, self.env.store, "store and queue disagree");
        // Prefetch windows hold.
        for c in &self.env.consumers {
            let held = self.unacked_of(Some(c.key)).len() as u32;
            if !c.no_ack && c.prefetch > 0 {
                assert!(
                    held <= c.prefetch,
                    "consumer {} holds {held} > {}",
                    c.key,
                    c.prefetch
                );
            }
        }
        if let (Some(m), Overflow::DropHead) = (st.rules.args.max_length, st.rules.args.overflow) {
            assert!(
                st.ready as u64 <= m,
                "{} ready beyond max-length {m}",
                st.ready
            );
        }
    }
}

impl Env {
    fn perform(&mut self, st: &QueueState, out: &mut Vec<Effect>) -> Option<QueueCommand<'static>> {
        let mut bounces: Vec<Bounce> = Vec::new();
        let mut follow = None;
        for effect in std::mem::take(out) {
            match effect {
                Effect::Store { seq, message, at } => {
                    assert!(self.store.insert((at, seq)), "stored twice: {seq}");
                    self.bodies.insert(seq, message);
                }
                Effect::Settle { seq, at } => {
                    assert!(
                        self.store.remove(&(at, seq)),
                        "settled what is not stored: {seq}"
                    );
                }
                Effect::MarkDelivered { seq } => {
                    assert!(self.store.contains(&(StoredAs::Durable, seq)));
                }
                Effect::Deliver(h) => {
                    let c = self
                        .consumers
                        .iter_mut()
                        .find(|c| c.key == h.key)
                        .expect("delivered to a consumer that is gone");
                    if c.full || !bounces.is_empty() {
                        bounces.push(h.bounce());
                        continue;
                    }
                    let id = id_of(&h.message);
                    let expiry = self.expiry[&id];
                    assert!(
                        expiry.is_none_or(|t| t >= self.now),
                        "delivered {id} expired at {expiry:?}, now {}",
                        self.now
                    );
                    assert_eq!(c.no_ack, h.id == 0);
                    if !h.redelivered {
                        let level = st.level_for(h.message.properties.priority);
                        let seq = self.seq_of[&id];
                        if let Some(last) = c.last_first.insert(level, seq) {
                            assert!(
                                last < seq,
                                "first deliveries out of order: {last} then {seq}"
                            );
                        }
                    }
                    let fate = if h.id == 0 {
                        if let Some(e) = &h.entry {
                            if let Some(at) = e.stored_as() {
                                assert!(self.store.remove(&(at, e.seq)));
                            }
                        }
                        Fate::SentNoAck
                    } else {
                        Fate::Unacked(Some(h.key), h.id)
                    };
                    self.set_fate(id, fate);
                }
                Effect::DeadLetter {
                    message,
                    seq,
                    at,
                    reason,
                } => {
                    let message = message.or_else(|| {
                        let at = at.expect("a message neither in memory nor stored");
                        assert!(self.store.contains(&(at, seq)), "dead letter lost: {seq}");
                        self.bodies.get(&seq).cloned()
                    });
                    let id = id_of(&message.expect("dead letter without a body"));
                    self.set_fate(id, Fate::DeadLettered(reason));
                }
                Effect::PageIn { level, seqs } => {
                    let found = seqs
                        .iter()
                        .map(|&(s, at)| {
                            assert!(self.store.contains(&(at, s)), "paged in what is not stored");
                            (s, self.bodies.get(&s).cloned())
                        })
                        .collect();
                    follow = Some(QueueCommand::Loaded { level, found });
                }
                Effect::Lost(n) => panic!("{n} messages lost by a store that loses nothing"),
                Effect::Continue => follow = Some(QueueCommand::Dispatch),
                Effect::Cancel(_) | Effect::DropStore { .. } | Effect::AutoDelete => {}
            }
        }
        if !bounces.is_empty() {
            return Some(QueueCommand::Bounced(bounces));
        }
        follow
    }

    fn set_fate(&mut self, id: u64, fate: Fate) {
        let old = self
            .fates
            .insert(id, fate.clone())
            .expect("unknown message");
        let allowed = matches!(
            (&old, &fate),
            (
                Fate::Waiting,
                Fate::Unacked(..) | Fate::SentNoAck | Fate::DeadLettered(_) | Fate::Purged
            ) | (
                Fate::Unacked(..),
                Fate::Acked | Fate::Waiting | Fate::DeadLettered(DeathReason::Rejected)
            )
        );
        assert!(allowed, "message {id}: {old:?} then {fate:?}");
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 1024, ..ProptestConfig::default() })]

    #[test]
    fn every_message_has_one_fate(rules in rules(), ops in prop::collection::vec(op(), 1..120)) {
        let mut w = World::new(rules);
        for op in ops {
            w.step(op);
            w.check();
        }
        // Drain: every consumer drains and acks until nothing is left but what expired.
        for c in &mut w.env.consumers {
            c.full = false;
        }
        w.run(QueueCommand::Wake);
        for _ in 0..10_000 {
            let any = w.env.consumers.iter().map(|c| Some(c.key)).chain([None]).find_map(|k| {
                w.unacked_of(k).first().copied()
            });
            match any {
                Some((msg, id)) => {
                    w.run(QueueCommand::Ack(&[id]));
                    w.env.fates.insert(msg, Fate::Acked);
                }
                None => match w.run(QueueCommand::Get { no_ack: true }) {
                    Reply::Taken(Some(t)) => w.env.set_fate(id_of(&t.message), Fate::SentNoAck),
                    _ => break,
                },
            }
            w.check();
        }
        prop_assert_eq!(w.state.ready(), 0);
        prop_assert_eq!(w.state.unacked(), 0);
        prop_assert!(w.env.store.is_empty());
        for (id, fate) in &w.env.fates {
            prop_assert!(
                !matches!(fate, Fate::Waiting | Fate::Unacked(..)),
                "message {} left {:?}", id, fate
            );
        }
    }
}

#[test]
fn a_store_that_cannot_read_back_loses_the_message_not_the_queue() {
    let mut state = QueueState::new(
        Rules {
            args: QueueArgs::default(),
            auto_delete: false,
            durable_store: true,
            has_store: true,
            window: Some(MemoryWindow {
                messages: 2,
                bytes: 1 << 20,
            }),
        },
        0,
    );
    let mut out = Vec::new();
    for i in 0..4 {
        let props = Properties {
            delivery_mode: Some(2),
            ..Properties::default()
        };
        let message = Message::new("", "q", props, Bytes::from(i.to_string()));
        state.apply(
            QueueCommand::Enqueue {
                message,
                matched: 0,
                page_transient: false,
            },
            0,
            &mut out,
        );
    }
    for _ in 0..2 {
        out.clear();
        let got = state.apply(QueueCommand::Get { no_ack: true }, 0, &mut out);
        assert!(matches!(got, Reply::Taken(Some(_))));
    }
    out.clear();
    // The next two are paged out: the machine asks for them and takes no for an answer.
    let reply = state.apply(QueueCommand::Get { no_ack: true }, 0, &mut out);
    assert!(matches!(reply, Reply::Taken(None)));
    let Some(Effect::PageIn { level, seqs }) = out.pop() else {
        panic!("no page-in: {out:?}");
    };
    assert_eq!(seqs.len(), 2);
    let found = seqs.iter().map(|&(s, _)| (s, None)).collect();
    state.apply(QueueCommand::Loaded { level, found }, 0, &mut out);
    assert!(matches!(out[0], Effect::Lost(2)));
    let settled = out
        .iter()
        .filter(|e| matches!(e, Effect::Settle { .. }))
        .count();
    assert_eq!(settled, 2);
    assert_eq!(state.ready(), 0);
}

#[test]
fn match_bits_cost_a_queue_entry_no_memory() {
    // `Entry::matched` sits in what was padding; a ready message costs what it did before.
    assert!(std::mem::size_of::<super::state::Entry>() <= 48);
}
