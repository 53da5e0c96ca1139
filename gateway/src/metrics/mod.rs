//! The Prometheus exporter (RabbitMQ's `rabbitmq_prometheus`, port 15692): `/metrics` with
//! node-wide figures under rabbitmq_prometheus's names, so RabbitMQ's Grafana dashboards read
//! Junction, plus Junction's own (`junction_*`); `/metrics/per-object` adds one series per
//! queue. Everything is read at scrape time from counters the broker keeps anyway: a scrape
//! takes each queue's lock once, the publish path pays nothing for it.

mod text;

use crate::disk_monitor;
use crate::memory_monitor;
use crate::node::{Node, NODE_NAME as NODE};
use axum::extract::State;
use axum::http::header;
use axum::response::IntoResponse;
use axum::routing::get;
use axum::Router;
use junction_core::connections::Alarm;
use junction_core::message_counts::Count;
use junction_core::{QueueCounters, QueueSnapshot};
use std::sync::Arc;
use text::{Exposition, Kind};
use tokio::net::TcpListener;

/// What the exporter reads: the node.
#[derive(Clone)]
pub(crate) struct Metrics(Arc<Node>);

impl std::ops::Deref for Metrics {
    type Target = Node;
    fn deref(&self) -> &Node {
        &self.0
    }
}

/// Serves `/metrics` and `/metrics/per-object` on `listener` until the task is dropped.
pub(crate) async fn serve(listener: TcpListener, of: Arc<Node>) {
    let metrics = Metrics(of);
    let app = Router::new()
        .route("/metrics", get(node))
        .route("/metrics/per-object", get(per_object))
        .with_state(metrics);
    if let Err(e) = axum::serve(listener, app).await {
        tracing::error!(error = %e, "the Prometheus listener stopped");
    }
}

fn respond(body: String) -> impl IntoResponse {
    (
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        body,
    )
}

async fn node(State(m): State<Metrics>) -> impl IntoResponse {
    respond(m.render(false))
}

async fn per_object(State(m): State<Metrics>) -> impl IntoResponse {
    respond(m.render(true))
}

/// A per-queue series: its name, help text, and how to read it.
type Series<T, V> = (&'static str, &'static str, fn(&T) -> V);

/// RabbitMQ's names for the global message counters, in [`Count::ALL`] order.
const GLOBAL: [(&str, &str); 11] = [
    ("received", "Messages received from publishers"),
    ("routed", "Messages routed to at least one queue"),
    (
        "unroutable_dropped",
        "Messages published that no queue took, dropped",
    ),
    (
        "unroutable_returned",
        "Messages published that no queue took, returned to the publisher",
    ),
    ("confirmed", "Messages confirmed to publishers"),
    (
        "delivered_consume_manual_ack",
        "Messages delivered to consumers that acknowledge",
    ),
    (
        "delivered_consume_auto_ack",
        "Messages delivered to consumers that do not acknowledge",
    ),
    (
        "delivered_get_manual_ack",
        "Messages fetched (basic.get) to be acknowledged",
    ),
    (
        "delivered_get_auto_ack",
        "Messages fetched (basic.get) without acknowledgement",
    ),
    ("redelivered", "Messages delivered again after a requeue"),
    ("acknowledged", "Deliveries acknowledged by consumers"),
];

/// rabbitmq_prometheus's channel counters, in [`Count::ALL`] order ("" where it has none).
const CHANNEL: [(&str, &str); 11] = [
    (
        "rabbitmq_channel_messages_published_total",
        "Messages published into an exchange",
    ),
    ("", ""),
    (
        "rabbitmq_channel_messages_unroutable_dropped_total",
        "Messages published as non-mandatory and dropped as unroutable",
    ),
    (
        "rabbitmq_channel_messages_unroutable_returned_total",
        "Messages published as mandatory and returned as unroutable",
    ),
    (
        "rabbitmq_channel_messages_confirmed_total",
        "Messages published and confirmed",
    ),
    (
        "rabbitmq_channel_messages_delivered_ack_total",
        "Messages delivered to consumers that acknowledge",
    ),
    (
        "rabbitmq_channel_messages_delivered_total",
        "Messages delivered to consumers that do not acknowledge",
    ),
    (
        "rabbitmq_channel_get_ack_total",
        "Messages fetched with basic.get, to be acknowledged",
    ),
    (
        "rabbitmq_channel_get_total",
        "Messages fetched with basic.get, without acknowledgement",
    ),
    (
        "rabbitmq_channel_messages_redelivered_total",
        "Messages redelivered to consumers",
    ),
    (
        "rabbitmq_channel_messages_acked_total",
        "Messages acknowledged by consumers",
    ),
];

impl Metrics {
    fn render(&self, per_object: bool) -> String {
        let mut e = Exposition::default();
        self.identity(&mut e);
        self.objects(&mut e, per_object);
        self.messages(&mut e);
        self.resources(&mut e);
        self.junction(&mut e);
        e.finish()
    }

    fn identity(&self, e: &mut Exposition) {
        let version = env!("CARGO_PKG_VERSION");
        e.family(
            "rabbitmq_identity_info",
            Kind::Gauge,
            "The node and cluster this is",
        );
        e.sample(
            "rabbitmq_identity_info",
            &[
                ("rabbitmq_node", NODE),
                ("rabbitmq_cluster", NODE),
                ("rabbitmq_cluster_permanent_id", NODE),
            ],
            1.0,
        );
        e.family("rabbitmq_build_info", Kind::Gauge, "What is running");
        e.sample(
            "rabbitmq_build_info",
            &[
                ("rabbitmq_version", version),
                ("product", "Junction"),
                ("prometheus_plugin_version", version),
            ],
            1.0,
        );
        e.single(
            "rabbitmq_erlang_uptime_seconds",
            Kind::Gauge,
            "Seconds since the node started",
            self.started.elapsed().as_secs_f64(),
        );
    }

    /// Connections, channels, queues, consumers and queued messages; per queue when asked.
    fn objects(&self, e: &mut Exposition, per_object: bool) {
        let b = &self.broker;
        e.single(
            "rabbitmq_connections",
            Kind::Gauge,
            "Open client connections",
            b.connection_count() as f64,
        );
        e.family(
            "junction_connections",
            Kind::Gauge,
            "Logged-in client connections by protocol",
        );
        for (protocol, n) in b.connections_by_protocol() {
            e.sample("junction_connections", &[("protocol", &protocol)], n as f64);
        }
        e.single(
            "rabbitmq_channels",
            Kind::Gauge,
            "Open AMQP channels",
            b.channel_total() as f64,
        );
        let churn = b.churn();
        for (name, help, v) in [
            (
                "rabbitmq_connections_opened_total",
                "Connections opened",
                churn.connections_opened,
            ),
            (
                "rabbitmq_connections_closed_total",
                "Connections closed",
                churn.connections_closed,
            ),
            (
                "rabbitmq_channels_opened_total",
                "Channels opened",
                churn.channels_opened,
            ),
            (
                "rabbitmq_channels_closed_total",
                "Channels closed",
                churn.channels_closed,
            ),
        ] {
            e.single(name, Kind::Counter, help, v as f64);
        }
        let mut queues = Vec::new();
        for vname in b.vhost_names() {
            if let Ok(v) = b.vhost(&vname) {
                for q in v.queues() {
                    queues.push((vname.clone(), q.name().to_string(), q.snapshot()));
                }
            }
        }
        e.single(
            "rabbitmq_queues",
            Kind::Gauge,
            "Queues",
            queues.len() as f64,
        );
        let sum = |f: fn(&QueueSnapshot) -> usize| -> f64 {
            queues.iter().map(|(_, _, s)| f(s)).sum::<usize>() as f64
        };
        let gauges: [Series<QueueSnapshot, usize>; 5] = [
            (
                "rabbitmq_queue_messages",
                "Messages ready and unacknowledged",
                |s| s.ready + s.unacked,
            ),
            (
                "rabbitmq_queue_messages_ready",
                "Messages ready for delivery",
                |s| s.ready,
            ),
            (
                "rabbitmq_queue_messages_unacked",
                "Messages delivered and not yet acknowledged",
                |s| s.unacked,
            ),
            ("rabbitmq_queue_consumers", "Consumers on queues", |s| {
                s.consumers
            }),
            (
                "rabbitmq_queue_messages_ready_bytes",
                "Body bytes of ready messages",
                |s| s.ready_bytes,
            ),
        ];
        e.single(
            "rabbitmq_consumers",
            Kind::Gauge,
            "Consumers",
            sum(|s| s.consumers),
        );
        e.single(
            "rabbitmq_channel_consumers",
            Kind::Gauge,
            "Consumers on channels",
            sum(|s| s.consumers),
        );
        let published = "rabbitmq_queue_messages_published_total";
        e.family(published, Kind::Counter, "Messages published to queues");
        if per_object {
            for (v, q, s) in &queues {
                e.sample(
                    published,
                    &[("vhost", v), ("queue", q)],
                    s.counters.publish as f64,
                );
            }
        } else {
            let all: u64 = queues.iter().map(|(_, _, s)| s.counters.publish).sum();
            e.sample(published, &[], all as f64);
        }
        for (name, help, f) in gauges {
            e.family(name, Kind::Gauge, help);
            if per_object {
                for (v, q, s) in &queues {
                    e.sample(name, &[("vhost", v), ("queue", q)], f(s) as f64);
                }
            } else {
                e.sample(name, &[], sum(f));
            }
        }
        if per_object {
            let counters: [Series<QueueCounters, u64>; 4] = [
                (
                    "junction_queue_messages_published_total",
                    "Messages the queue took",
                    |c| c.publish,
                ),
                (
                    "junction_queue_messages_delivered_total",
                    "Deliveries and gets",
                    |c| c.deliver + c.deliver_no_ack + c.get + c.get_no_ack,
                ),
                (
                    "junction_queue_messages_redelivered_total",
                    "Redeliveries",
                    |c| c.redeliver,
                ),
                (
                    "junction_queue_messages_acked_total",
                    "Acknowledgements",
                    |c| c.ack,
                ),
            ];
            for (name, help, f) in counters {
                e.family(name, Kind::Counter, help);
                for (v, q, s) in &queues {
                    e.sample(name, &[("vhost", v), ("queue", q)], f(&s.counters) as f64);
                }
            }
        }
    }

    /// RabbitMQ's global message counters, by protocol.
    fn messages(&self, e: &mut Exposition) {
        let totals = self.broker.message_totals();
        let name = |what: &str| format!("rabbitmq_global_messages_{what}_total");
        for (i, (what, help)) in GLOBAL.iter().enumerate() {
            let n = name(what);
            e.family(&n, Kind::Counter, help);
            for (protocol, t) in &totals {
                e.sample(&n, &[("protocol", protocol)], t[i] as f64);
            }
            // rabbitmq_global_messages_delivered_total follows the four kinds of delivery.
            if Count::ALL[i] == Count::DeliveredGetAutoAck {
                let n = name("delivered");
                e.family(
                    &n,
                    Kind::Counter,
                    "Messages delivered to consumers and gets",
                );
                for (protocol, t) in &totals {
                    let d = Count::DeliveredConsumeManualAck as usize;
                    let all: u64 = t[d..=Count::DeliveredGetAutoAck as usize].iter().sum();
                    e.sample(&n, &[("protocol", protocol)], all as f64);
                }
            }
        }
        // The channel families RabbitMQ's Overview dashboard charts, as rabbitmq_prometheus
        // aggregates them on /metrics: node totals over every channel (here: every protocol).
        for (i, (name, help)) in CHANNEL.iter().enumerate() {
            if name.is_empty() {
                continue;
            }
            let total: u64 = totals.values().map(|t| t[i]).sum();
            e.single(name, Kind::Counter, help, total as f64);
        }
    }

    /// Memory, disk and the alarms.
    fn resources(&self, e: &mut Exposition) {
        let b = &self.broker;
        e.single(
            "rabbitmq_process_resident_memory_bytes",
            Kind::Gauge,
            "Resident memory of the broker process",
            memory_monitor::resident_bytes().unwrap_or(0) as f64,
        );
        e.single(
            "rabbitmq_resident_memory_limit_bytes",
            Kind::Gauge,
            "The memory high watermark",
            self.memory.get() as f64,
        );
        e.single(
            "rabbitmq_disk_space_available_bytes",
            Kind::Gauge,
            "Free space on the data directory's file system",
            disk_monitor::free_bytes(&self.data_dir).unwrap_or(0) as f64,
        );
        e.single(
            "rabbitmq_disk_space_available_limit_bytes",
            Kind::Gauge,
            "Free space below which publishers are blocked",
            self.disk.free() as f64,
        );
        let raised = |a| f64::from(u8::from(b.resource_alarm_of(a).is_some()));
        e.single(
            "rabbitmq_alarms_memory_used_watermark",
            Kind::Gauge,
            "1 while resident memory is above the high watermark",
            raised(Alarm::Memory),
        );
        e.single(
            "rabbitmq_alarms_free_disk_space_watermark",
            Kind::Gauge,
            "1 while free disk space is below its limit",
            raised(Alarm::Disk),
        );
        e.single(
            "rabbitmq_alarms_file_descriptor_limit",
            Kind::Gauge,
            "1 while file descriptors are exhausted (the connection limit keeps them in reserve)",
            0.0,
        );
        if let Some(open) = crate::descriptors::open_count() {
            e.single(
                "rabbitmq_process_open_fds",
                Kind::Gauge,
                "Open file descriptors",
                open as f64,
            );
        }
        e.single(
            "rabbitmq_process_open_tcp_sockets",
            Kind::Gauge,
            "Open client connections' sockets",
            self.connections.live() as f64,
        );
        e.single(
            "rabbitmq_process_max_tcp_sockets",
            Kind::Gauge,
            "Client connections admitted at once",
            self.connections.limit() as f64,
        );
        if let Some(soft) = crate::descriptors::limit() {
            e.single(
                "rabbitmq_process_max_fds",
                Kind::Gauge,
                "File descriptor limit",
                soft as f64,
            );
        }
    }

    /// Junction's own: the message log, recovery, refusals, logins refused.
    fn junction(&self, e: &mut Exposition) {
        use std::sync::atomic::Ordering::Relaxed;
        let s = self.log.stats();
        for (name, help, v) in [
            (
                "junction_message_log_fsyncs_total",
                "fdatasync calls of the message log",
                &s.fsyncs,
            ),
            (
                "junction_message_log_batches_total",
                "Batches (group commits) written",
                &s.batches,
            ),
            (
                "junction_message_log_published_total",
                "Publish records written",
                &s.published,
            ),
            (
                "junction_message_log_elided_total",
                "Persistent messages settled before they were written",
                &s.elided,
            ),
        ] {
            e.single(name, Kind::Counter, help, v.load(Relaxed) as f64);
        }
        let (segments, bytes) = self.log.disk_usage();
        e.single(
            "junction_message_log_segments",
            Kind::Gauge,
            "Segment files of the message log",
            segments as f64,
        );
        e.single(
            "junction_message_log_bytes",
            Kind::Gauge,
            "Bytes of the message log on disk",
            bytes as f64,
        );
        e.single(
            "junction_recovery_seconds",
            Kind::Gauge,
            "How long opening the data directory took at start",
            self.recovery_seconds,
        );
        e.family(
            "junction_recovery_damage",
            Kind::Gauge,
            "Damage recovery found in the message log at start",
        );
        e.sample(
            "junction_recovery_damage",
            &[("kind", "skipped")],
            self.recovery_damage.0 as f64,
        );
        e.sample(
            "junction_recovery_damage",
            &[("kind", "truncated")],
            self.recovery_damage.1 as f64,
        );
        e.family(
            "junction_refusals_total",
            Kind::Counter,
            "What the broker refused, by kind (each is also logged)",
        );
        for (kind, n) in self.broker.refusals().snapshot() {
            e.sample("junction_refusals_total", &[("kind", kind)], n as f64);
        }
        e.single(
            "junction_auth_failures_total",
            Kind::Counter,
            "Logins refused (every protocol and the management API)",
            self.broker.auth().failures() as f64,
        );
        e.family(
            "junction_listener_accept_errors_total",
            Kind::Counter,
            "Failed accepts, by listener protocol",
        );
        for (protocol, n) in self.connections.accept_errors() {
            e.sample(
                "junction_listener_accept_errors_total",
                &[("protocol", protocol)],
                n as f64,
            );
        }
        let mqtt = self.mqtt.counts();
        e.single(
            "junction_mqtt_sessions",
            Kind::Gauge,
            "MQTT sessions held: connected, or persistent and waiting for their client",
            mqtt.sessions as f64,
        );
        e.single(
            "junction_mqtt_sessions_connected",
            Kind::Gauge,
            "MQTT sessions with a client connected",
            mqtt.connected as f64,
        );
        e.single(
            "junction_mqtt_retained_messages",
            Kind::Gauge,
            "Retained MQTT messages",
            mqtt.retained as f64,
        );
    }
}
