//! Message rates as RabbitMQ's management API shows them (`message_stats` with
//! `*_details.rate`, `messages_details.rate`).
//!
//! The core only counts (a queue's counters under the lock it takes anyway, an exchange's in
//! two atomics); nothing here touches the publish path. Every `collect_statistics_interval` a
//! sampler reads every queue's and exchange's counters once and keeps, per object, the last
//! sample and the rates between it and the one before. Totals per vhost and for the node add
//! up each object's growth between samples, so they never fall when a queue is deleted; the
//! node's totals keep a short history for the console's charts (`msg_rates_age`).
//!
//! [`Samples::record`] is the whole computation and takes the time as an argument: the tests
//! drive it on made-up times.

use junction_core::{Broker, ExchangeCounters, QueueCounters, QueueSnapshot};
use serde_json::{json, Value};
use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

/// The message counters of a queue, in the order of [`QUEUE_STATS`].
type QueueValues = [u64; QUEUE_STATS.len()];

/// RabbitMQ's names for a queue's counters; `deliver_get` is the sum of the four before it.
pub(crate) const QUEUE_STATS: [&str; 8] = [
    "publish",
    "deliver",
    "deliver_no_ack",
    "get",
    "get_no_ack",
    "deliver_get",
    "redeliver",
    "ack",
];

/// RabbitMQ's names for an exchange's counters.
const EXCHANGE_STATS: [&str; 2] = ["publish_in", "publish_out"];

/// The depths whose change per second is shown (`messages_details` and the others).
const DEPTHS: [&str; 3] = ["messages", "messages_ready", "messages_unacknowledged"];

/// Node history kept for charts: 10 minutes at the default interval.
const HISTORY: usize = 120;

/// A queue's counters as an array.
fn queue_values(c: &QueueCounters) -> QueueValues {
    [
        c.publish,
        c.deliver,
        c.deliver_no_ack,
        c.get,
        c.get_no_ack,
        c.deliver + c.deliver_no_ack + c.get + c.get_no_ack,
        c.redeliver,
        c.ack,
    ]
}

/// A queue's depths as an array, in the order of [`DEPTHS`].
fn depths(s: &QueueSnapshot) -> [u64; 3] {
    [
        (s.ready + s.unacked) as u64,
        s.ready as u64,
        s.unacked as u64,
    ]
}

/// One object's last sample and the rates (per second) that led to it.
#[derive(Debug, Clone)]
struct Tracked<const N: usize> {
    at: u64,
    values: [u64; N],
    rates: [f64; N],
    /// The sampling round that last saw it (objects not seen are gone).
    round: u64,
}

impl<const N: usize> Tracked<N> {
    fn new(at: u64, values: [u64; N], round: u64) -> Self {
        Tracked {
            at,
            values,
            rates: [0.0; N],
            round,
        }
    }

    /// Takes a new sample; returns how much each value grew since the last one.
    fn update(&mut self, at: u64, values: [u64; N], round: u64) -> [u64; N] {
        let dt = at.saturating_sub(self.at);
        let mut grown = [0; N];
        for i in 0..N {
            grown[i] = values[i].saturating_sub(self.values[i]);
            if dt > 0 {
                self.rates[i] = (values[i] as f64 - self.values[i] as f64) * 1000.0 / dt as f64;
            }
        }
        (self.at, self.values, self.round) = (at, values, round);
        grown
    }
}

/// Counters that only grow: each object's growth between samples, added up.
#[derive(Debug, Clone, Default)]
struct Totals {
    queue: QueueValues,
    exchange: [u64; 2],
}

/// What was sampled: per object, per vhost and for the node.
#[derive(Debug, Default)]
pub(crate) struct Samples {
    round: u64,
    queues: HashMap<String, HashMap<String, (Tracked<8>, Tracked<3>)>>,
    exchanges: HashMap<String, HashMap<String, Tracked<2>>>,
    vhosts: HashMap<String, (Totals, Tracked<8>, Tracked<3>)>,
    node: Option<(Tracked<8>, Tracked<3>)>,
    node_totals: Totals,
    /// The node's totals at each sample, oldest first: (time, counters, depths).
    history: VecDeque<(u64, QueueValues, [u64; 3])>,
}

/// One queue as seen at a sample: its vhost, name and numbers.
pub(crate) struct QueueSample<'a> {
    /// Its vhost.
    pub(crate) vhost: &'a str,
    /// Its name.
    pub(crate) name: &'a str,
    /// Its numbers.
    pub(crate) snapshot: QueueSnapshot,
}

fn add<const N: usize>(into: &mut [u64; N], what: &[u64; N]) {
    for (a, b) in into.iter_mut().zip(what) {
        *a += b;
    }
}

impl Samples {
    /// Records one sampling round taken at `now` (ms): every queue and exchange that exists.
    pub(crate) fn record<'a>(
        &mut self,
        now: u64,
        queues: impl IntoIterator<Item = QueueSample<'a>>,
        exchanges: impl IntoIterator<Item = (&'a str, &'a str, ExchangeCounters)>,
    ) {
        self.round += 1;
        let round = self.round;
        let mut vhost_grown: HashMap<String, (Totals, [u64; 3])> = HashMap::new();
        let mut node_depths = [0u64; 3];
        for q in queues {
            let (values, depth) = (queue_values(&q.snapshot.counters), depths(&q.snapshot));
            let of_vhost = self.queues.entry(q.vhost.to_string()).or_default();
            let grown = match of_vhost.get_mut(q.name) {
                Some((c, d)) => {
                    d.update(now, depth, round);
                    c.update(now, values, round)
                }
                None => {
                    let entry = (
                        Tracked::new(now, values, round),
                        Tracked::new(now, depth, round),
                    );
                    of_vhost.insert(q.name.to_string(), entry);
                    // What it did before its first sample counts towards the totals too.
                    values
                }
            };
            let v = vhost_grown.entry(q.vhost.to_string()).or_default();
            add(&mut v.0.queue, &grown);
            add(&mut v.1, &depth);
            add(&mut self.node_totals.queue, &grown);
            add(&mut node_depths, &depth);
        }
        for (vhost, name, c) in exchanges {
            let values = [c.publish_in, c.publish_out];
            let of_vhost = self.exchanges.entry(vhost.to_string()).or_default();
            let grown = match of_vhost.get_mut(name) {
                Some(t) => t.update(now, values, round),
                None => {
                    of_vhost.insert(name.to_string(), Tracked::new(now, values, round));
                    values
                }
            };
            add(
                &mut vhost_grown.entry(vhost.to_string()).or_default().0.exchange,
                &grown,
            );
            add(&mut self.node_totals.exchange, &grown);
        }
        // Gone objects are forgotten (a queue declared again starts afresh).
        for of_vhost in self.queues.values_mut() {
            of_vhost.retain(|_, (c, _)| c.round == round);
        }
        for of_vhost in self.exchanges.values_mut() {
            of_vhost.retain(|_, t| t.round == round);
        }
        self.queues.retain(|_, m| !m.is_empty());
        self.exchanges.retain(|_, m| !m.is_empty());
        for (vhost, (grown, depth)) in vhost_grown {
            let (totals, c, d) = self.vhosts.entry(vhost).or_insert_with(|| {
                (
                    Totals::default(),
                    Tracked::new(now, [0; 8], round),
                    Tracked::new(now, [0; 3], round),
                )
            });
            add(&mut totals.queue, &grown.queue);
            add(&mut totals.exchange, &grown.exchange);
            c.update(now, node_counters(totals), round);
            d.update(now, depth, round);
        }
        self.vhosts.retain(|_, (_, c, _)| c.round == round);
        let counters = node_counters(&self.node_totals);
        match &mut self.node {
            Some((c, d)) => {
                c.update(now, counters, round);
                d.update(now, node_depths, round);
            }
            None => {
                self.node = Some((
                    Tracked::new(now, counters, round),
                    Tracked::new(now, node_depths, round),
                ))
            }
        }
        if self.history.len() == HISTORY {
            self.history.pop_front();
        }
        self.history.push_back((now, counters, node_depths));
    }

    /// A queue's `message_stats` and depth rates, given its live counters.
    pub(crate) fn queue(
        &self,
        vhost: &str,
        name: &str,
        live: &QueueSnapshot,
    ) -> (Counts<8>, Counts<3>) {
        let t = self.queues.get(vhost).and_then(|m| m.get(name));
        (
            queue_counts(&queue_values(&live.counters), t.map(|t| &t.0.rates)),
            depth_counts(t.map(|t| &t.1.rates)),
        )
    }

    /// An exchange's `message_stats`, given its live counters.
    pub(crate) fn exchange(&self, vhost: &str, name: &str, live: ExchangeCounters) -> Value {
        let t = self.exchanges.get(vhost).and_then(|m| m.get(name));
        Counts {
            names: &EXCHANGE_STATS,
            details: &EXCHANGE_DETAILS,
            values: Some([live.publish_in, live.publish_out]),
            rates: t.map_or([0.0; 2], |t| t.rates),
        }
        .value()
    }

    /// A vhost's `message_stats` and depth rates (totals as of the last sample).
    pub(crate) fn vhost(&self, vhost: &str) -> (Value, Value) {
        match self.vhosts.get(vhost) {
            Some((_, c, d)) => (
                stats(&c.values, Some(&c.rates)),
                depth_details(Some(&d.rates)),
            ),
            None => (json!({}), depth_details(None)),
        }
    }

    /// The `message_stats` and depth rates of `vhosts` together: what the overview shows a
    /// user who may see only those (no history).
    pub(crate) fn vhosts<'a>(&self, vhosts: impl IntoIterator<Item = &'a str>) -> (Value, Value) {
        let (mut values, mut rates, mut depth_rates) = ([0u64; 8], [0f64; 8], [0f64; 3]);
        for name in vhosts {
            if let Some((_, c, d)) = self.vhosts.get(name) {
                add(&mut values, &c.values);
                for (r, x) in rates.iter_mut().zip(&c.rates) {
                    *r += x;
                }
                for (r, x) in depth_rates.iter_mut().zip(&d.rates) {
                    *r += x;
                }
            }
        }
        (
            stats(&values, Some(&rates)),
            depth_details(Some(&depth_rates)),
        )
    }

    /// The node's `message_stats` and depth rates; with `age` seconds of history, each
    /// `*_details` also carries RabbitMQ's `samples` (newest first).
    pub(crate) fn node(&self, age: Option<u64>) -> (Value, Value) {
        let Some((c, d)) = &self.node else {
            return (json!({}), depth_details(None));
        };
        let (mut s, mut dd) = (
            stats(&c.values, Some(&c.rates)),
            depth_details(Some(&d.rates)),
        );
        if let Some(age) = age {
            let since = c.at.saturating_sub(age * 1000);
            let recent: Vec<_> = self.history.iter().rev().filter(|h| h.0 >= since).collect();
            for (i, name) in QUEUE_STATS.iter().enumerate() {
                let points = recent.iter().map(|h| (h.0, h.1[i]));
                attach_samples(&mut s, name, points);
            }
            for (i, name) in DEPTHS.iter().enumerate() {
                attach_samples(&mut dd, name, recent.iter().map(|h| (h.0, h.2[i])));
            }
        }
        (s, dd)
    }
}

/// The node's counters, as a queue's: what queues did, with `publish` as what exchanges took
/// in (a message published to an exchange that routes it nowhere is still published).
fn node_counters(t: &Totals) -> QueueValues {
    let mut v = t.queue;
    v[0] = t.exchange[0];
    v
}

/// Counters with their rates as RabbitMQ writes them: `{name: count, name_details: {rate}}`
/// for each (or only the `_details` for depths), serialized without building JSON values.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Counts<const N: usize> {
    names: &'static [&'static str; N],
    details: &'static [&'static str; N],
    values: Option<[u64; N]>,
    rates: [f64; N],
}

impl<const N: usize> serde::Serialize for Counts<N> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        #[derive(serde::Serialize)]
        struct Rate {
            rate: f64,
        }
        let mut m = s.serialize_map(None)?;
        for i in 0..N {
            if let Some(values) = &self.values {
                m.serialize_entry(self.names[i], &values[i])?;
            }
            m.serialize_entry(
                self.details[i],
                &Rate {
                    rate: round(self.rates[i]),
                },
            )?;
        }
        m.end()
    }
}

impl<const N: usize> Counts<N> {
    /// As a JSON value.
    fn value(&self) -> Value {
        serde_json::to_value(self).unwrap_or(Value::Null)
    }
}

const QUEUE_DETAILS: [&str; 8] = [
    "publish_details",
    "deliver_details",
    "deliver_no_ack_details",
    "get_details",
    "get_no_ack_details",
    "deliver_get_details",
    "redeliver_details",
    "ack_details",
];
const EXCHANGE_DETAILS: [&str; 2] = ["publish_in_details", "publish_out_details"];
const DEPTH_DETAILS: [&str; 3] = [
    "messages_details",
    "messages_ready_details",
    "messages_unacknowledged_details",
];

fn queue_counts(values: &QueueValues, rates: Option<&[f64; 8]>) -> Counts<8> {
    Counts {
        names: &QUEUE_STATS,
        details: &QUEUE_DETAILS,
        values: Some(*values),
        rates: rates.copied().unwrap_or_default(),
    }
}

fn depth_counts(rates: Option<&[f64; 3]>) -> Counts<3> {
    Counts {
        names: &DEPTHS,
        details: &DEPTH_DETAILS,
        values: None,
        rates: rates.copied().unwrap_or_default(),
    }
}

/// `{name: count, name_details: {rate}}` for each of a queue's (or the node's) counters.
fn stats(values: &QueueValues, rates: Option<&[f64; 8]>) -> Value {
    queue_counts(values, rates).value()
}

/// `{messages_details: {rate}, ...}`.
fn depth_details(rates: Option<&[f64; 3]>) -> Value {
    depth_counts(rates).value()
}

fn attach_samples(into: &mut Value, name: &str, points: impl Iterator<Item = (u64, u64)>) {
    let samples: Vec<Value> = points
        .map(|(t, v)| json!({ "timestamp": t, "sample": v }))
        .collect();
    if let Some(d) = into.get_mut(format!("{name}_details")) {
        d["samples"] = Value::Array(samples);
    }
}

/// Rates to one decimal place, as RabbitMQ shows them.
fn round(r: f64) -> f64 {
    (r * 10.0).round() / 10.0
}

/// The shared samples and the task that takes them.
#[derive(Debug, Default)]
pub(crate) struct Stats {
    samples: Mutex<Samples>,
}

impl Stats {
    /// The samples, to read.
    pub(crate) fn read(&self) -> MutexGuard<'_, Samples> {
        self.samples.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Samples `broker` once, at its clock's time.
    pub(crate) fn sample(&self, broker: &Broker) {
        let now = broker.clock().unix_ms();
        let vhosts: Vec<_> = broker
            .vhost_names()
            .iter()
            .filter_map(|n| broker.vhost(n).ok())
            .collect();
        let mut queues = Vec::new();
        let mut exchanges = Vec::new();
        for v in &vhosts {
            for q in v.queues() {
                queues.push((v.clone(), q.clone(), q.snapshot()));
            }
            for name in v.exchange_names() {
                if let Ok(e) = v.exchange(&name) {
                    exchanges.push((v.clone(), name, e.counters()));
                }
            }
        }
        self.read().record(
            now,
            queues.iter().map(|(v, q, s)| QueueSample {
                vhost: &v.name,
                name: q.name(),
                snapshot: *s,
            }),
            exchanges
                .iter()
                .map(|(v, n, c)| (v.name.as_str(), n.as_str(), *c)),
        );
    }

    /// Samples `broker` every `interval` until the task is aborted.
    pub(crate) fn spawn(
        self: &Arc<Self>,
        broker: Arc<Broker>,
        interval: Duration,
    ) -> tokio::task::JoinHandle<()> {
        let me = self.clone();
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(interval);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tick.tick().await;
                me.sample(&broker);
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn snap(publish: u64, ack: u64, ready: usize) -> QueueSnapshot {
        QueueSnapshot {
            ready,
            counters: QueueCounters {
                publish,
                deliver: ack,
                ack,
                ..QueueCounters::default()
            },
            ..QueueSnapshot::default()
        }
    }

    fn record(s: &mut Samples, now: u64, qs: &[(&str, QueueSnapshot)], published: u64) {
        s.record(
            now,
            qs.iter().map(|(name, snapshot)| QueueSample {
                vhost: "/",
                name,
                snapshot: *snapshot,
            }),
            [(
                "/",
                "",
                ExchangeCounters {
                    publish_in: published,
                    publish_out: published,
                },
            )],
        );
    }

    fn rate(v: &Value, name: &str) -> f64 {
        v[format!("{name}_details")]["rate"].as_f64().unwrap()
    }

    #[test]
    fn rates_are_growth_per_second_between_the_last_two_samples() {
        let mut s = Samples::default();
        record(&mut s, 10_000, &[("q", snap(0, 0, 0))], 0);
        record(&mut s, 15_000, &[("q", snap(50, 10, 40))], 50);
        let live = snap(60, 10, 50);
        let (ms, depth) = s.queue("/", "q", &live);
        let (ms, depth) = (ms.value(), depth.value());
        assert_eq!(ms["publish"], 60, "counts are live");
        assert_eq!(rate(&ms, "publish"), 10.0, "50 in 5 s");
        assert_eq!(rate(&ms, "ack"), 2.0);
        assert_eq!(rate(&ms, "deliver_get"), 2.0);
        assert_eq!(rate(&depth, "messages_ready"), 8.0);
        let (node, _) = s.node(None);
        assert_eq!(node["publish"], 50);
        assert_eq!(rate(&node, "publish"), 10.0);
        let e = s.exchange("/", "", ExchangeCounters::default());
        assert_eq!(rate(&e, "publish_in"), 10.0);
    }

    #[test]
    fn totals_do_not_fall_when_a_queue_is_deleted() {
        let mut s = Samples::default();
        record(
            &mut s,
            0,
            &[("a", snap(10, 10, 0)), ("b", snap(5, 5, 0))],
            15,
        );
        record(&mut s, 1000, &[("a", snap(20, 20, 0))], 25);
        let (node, _) = s.node(None);
        assert_eq!(node["ack"], 25, "b's 5 acks stay counted");
        assert_eq!(rate(&node, "ack"), 10.0);
        let (vhost, _) = s.vhost("/");
        assert_eq!(vhost["ack"], 25);
        // b declared again starts from nothing, and its new acks count.
        record(
            &mut s,
            2000,
            &[("a", snap(20, 20, 0)), ("b", snap(3, 3, 0))],
            28,
        );
        let (node, _) = s.node(None);
        assert_eq!(node["ack"], 28);
        let b = s.queue("/", "b", &snap(3, 3, 0)).0.value();
        assert_eq!(rate(&b, "ack"), 0.0, "one sample is no rate yet");
    }

    #[test]
    fn a_set_of_vhosts_adds_up_to_their_own_totals() {
        let mut s = Samples::default();
        let round = |n: u64, ready: usize| {
            ["a", "b"].map(|vhost| QueueSample {
                vhost,
                name: "q",
                // b does ten times what a does.
                snapshot: snap(0, if vhost == "a" { n } else { 10 * n }, ready),
            })
        };
        s.record(0, round(0, 0), []);
        s.record(1000, round(4, 2), []);
        let (a, depth) = s.vhosts(["a"]);
        assert_eq!((a["ack"].as_u64(), rate(&a, "ack")), (Some(4), 4.0));
        assert_eq!(rate(&depth, "messages_ready"), 2.0);
        let (both, depth) = s.vhosts(["a", "b", "missing"]);
        assert_eq!((both["ack"].as_u64(), rate(&both, "ack")), (Some(44), 44.0));
        assert_eq!(rate(&depth, "messages_ready"), 4.0);
    }

    #[test]
    fn the_node_history_answers_msg_rates_age_newest_first() {
        let mut s = Samples::default();
        for i in 0..(HISTORY as u64 + 5) {
            record(&mut s, i * 5000, &[("q", snap(i * 10, 0, 0))], i * 10);
        }
        let (node, depth) = s.node(Some(60));
        let samples = node["publish_details"]["samples"].as_array().unwrap();
        assert_eq!(samples.len(), 13, "60 s at 5 s, both ends included");
        let newest = (HISTORY as u64 + 4) * 5000;
        assert_eq!(samples[0]["timestamp"], newest);
        assert_eq!(samples[1]["timestamp"], newest - 5000);
        assert!(depth["messages_details"]["samples"].is_array());
        assert!(s.history.len() <= HISTORY);
    }
}
