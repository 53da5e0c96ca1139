"""The Prometheus exporter read by prometheus_client's own text parser: the names RabbitMQ's
Grafana dashboards query, and the global counters moving by exactly what was published and
delivered over AMQP (pika), MQTT (paho) and STOMP (stomp.py)."""
import queue as stdqueue
import threading
import time
import urllib.request

import paho.mqtt.client as mqtt
import pika
import stomp
from paho.mqtt.enums import CallbackAPIVersion
from prometheus_client.parser import text_string_to_metric_families

TIMEOUT = 15


def scrape(url, path="/metrics"):
    with urllib.request.urlopen(url + path, timeout=TIMEOUT) as r:
        assert r.headers["Content-Type"].startswith("text/plain; version=0.0.4")
        text = r.read().decode()
    return {f.name: f for f in text_string_to_metric_families(text)}


def value(families, family, **labels):
    """The sample of `family` with exactly these labels (counters: the `_total` sample)."""
    for s in families[family].samples:
        if s.name.endswith("_created"):
            continue
        if s.labels == labels:
            return s.value
    return 0.0


def global_counter(families, what, protocol):
    return value(families, f"rabbitmq_global_messages_{what}", protocol=protocol)


def wait_until(cond, what):
    deadline = time.monotonic() + TIMEOUT
    while not cond():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.05)


def test_the_names_rabbitmqs_dashboards_query_are_there_with_their_types(prometheus_url):
    f = scrape(prometheus_url)
    gauges = [
        "rabbitmq_identity_info", "rabbitmq_build_info", "rabbitmq_connections",
        "rabbitmq_channels", "rabbitmq_queues", "rabbitmq_consumers", "rabbitmq_queue_messages",
        "rabbitmq_queue_messages_ready", "rabbitmq_queue_messages_unacked",
        "rabbitmq_process_resident_memory_bytes", "rabbitmq_resident_memory_limit_bytes",
        "rabbitmq_disk_space_available_bytes", "rabbitmq_disk_space_available_limit_bytes",
        "rabbitmq_alarms_memory_used_watermark", "rabbitmq_alarms_free_disk_space_watermark",
        "rabbitmq_alarms_file_descriptor_limit", "rabbitmq_process_open_fds",
        "rabbitmq_process_max_fds", "junction_message_log_segments",
    ]
    counters = [
        "rabbitmq_global_messages_received", "rabbitmq_global_messages_delivered",
        "rabbitmq_global_messages_confirmed", "rabbitmq_global_messages_routed",
        "rabbitmq_global_messages_unroutable_dropped",
        "rabbitmq_global_messages_unroutable_returned",
        "rabbitmq_global_messages_redelivered", "rabbitmq_global_messages_acknowledged",
        "rabbitmq_connections_opened", "rabbitmq_connections_closed",
        "junction_message_log_fsyncs", "junction_refusals", "junction_auth_failures",
    ]
    for name in gauges:
        assert f[name].type == "gauge", name
    for name in counters:
        assert f[name].type == "counter", name
    identity = f["rabbitmq_identity_info"].samples[0].labels
    assert identity["rabbitmq_node"] and identity["rabbitmq_cluster"]
    assert value(f, "rabbitmq_process_resident_memory_bytes") > 0
    assert {s.labels["kind"] for s in f["junction_refusals"].samples} >= {
        "handshake_timeout", "connection_limit", "malformed_frame"}


# Every metric RabbitMQ's "RabbitMQ-Overview" Grafana dashboard (rabbitmq_prometheus's own,
# deps/rabbitmq_prometheus/docker/grafana/dashboards/RabbitMQ-Overview.json) queries and that
# has a meaning here; each must be on /metrics so its panels show live numbers.
OVERVIEW_DASHBOARD = [
    "rabbitmq_identity_info", "rabbitmq_build_info", "rabbitmq_queue_messages_ready",
    "rabbitmq_queue_messages_unacked", "rabbitmq_channel_messages_published_total",
    "rabbitmq_channel_messages_confirmed_total", "rabbitmq_queue_messages_published_total",
    "rabbitmq_channel_messages_unroutable_dropped_total",
    "rabbitmq_channel_messages_unroutable_returned_total",
    "rabbitmq_channel_messages_redelivered_total", "rabbitmq_channel_messages_delivered_total",
    "rabbitmq_channel_messages_delivered_ack_total", "rabbitmq_channel_messages_acked_total",
    "rabbitmq_channel_get_total", "rabbitmq_channel_get_ack_total", "rabbitmq_channels",
    "rabbitmq_channel_consumers", "rabbitmq_connections", "rabbitmq_queues",
    "rabbitmq_resident_memory_limit_bytes", "rabbitmq_process_resident_memory_bytes",
    "rabbitmq_disk_space_available_bytes", "rabbitmq_disk_space_available_limit_bytes",
    "rabbitmq_process_max_fds", "rabbitmq_process_open_fds", "rabbitmq_process_max_tcp_sockets",
    "rabbitmq_process_open_tcp_sockets", "rabbitmq_channels_opened_total",
    "rabbitmq_channels_closed_total", "rabbitmq_connections_opened_total",
    "rabbitmq_connections_closed_total",
]


def sample_names(url, path="/metrics"):
    with urllib.request.urlopen(url + path, timeout=TIMEOUT) as r:
        text = r.read().decode()
    return {s.name for f in text_string_to_metric_families(text) for s in f.samples}


def test_the_overview_dashboards_queries_find_their_metrics(prometheus_url, amqp_url):
    conn = pika.BlockingConnection(pika.URLParameters(amqp_url))
    ch = conn.channel()
    ch.queue_declare("prom-dashboard")
    ch.confirm_delivery()
    ch.basic_publish("", "prom-dashboard", b"x")
    before = scrape(prometheus_url)
    names = sample_names(prometheus_url)
    missing = [m for m in OVERVIEW_DASHBOARD if m not in names]
    assert not missing, f"the dashboard would show no data for {missing}"
    # The channel totals are the global counters summed over protocols.
    received = sum(s.value for s in before["rabbitmq_global_messages_received"].samples
                   if s.name.endswith("_total"))
    published = value(before, "rabbitmq_channel_messages_published")
    assert published == received and published >= 1
    assert value(before, "rabbitmq_channel_consumers") == value(before, "rabbitmq_consumers")
    ch.queue_delete("prom-dashboard")
    conn.close()


def test_amqp_counters_move_by_exactly_what_was_published_and_delivered(prometheus_url, amqp_url):
    n = 25
    before = scrape(prometheus_url)
    conn = pika.BlockingConnection(pika.URLParameters(amqp_url))
    ch = conn.channel()
    ch.queue_declare("prom-amqp")
    ch.confirm_delivery()
    for i in range(n):
        ch.basic_publish("", "prom-amqp", f"m{i}".encode())
    # One unroutable, returned to its mandatory publisher; one unroutable dropped.
    try:
        ch.basic_publish("", "no-such-queue", b"x", mandatory=True)
    except pika.exceptions.UnroutableError:
        pass
    ch.basic_publish("", "no-such-queue", b"y")
    got = 0
    for method, _props, _body in ch.consume("prom-amqp", inactivity_timeout=TIMEOUT):
        assert method is not None, "a message did not arrive"
        ch.basic_ack(method.delivery_tag)
        got += 1
        if got == n:
            break
    ch.cancel()
    ch.queue_delete("prom-amqp")
    after = scrape(prometheus_url)
    conn.close()

    def moved(what):
        return global_counter(after, what, "amqp091") - global_counter(before, what, "amqp091")

    assert moved("received") == n + 2
    assert moved("routed") == n
    assert moved("unroutable_returned") == 1
    assert moved("unroutable_dropped") == 1
    assert moved("confirmed") == n + 2
    assert moved("delivered_consume_manual_ack") == n
    assert moved("delivered") == n
    assert moved("acknowledged") == n
    assert value(after, "rabbitmq_connections") >= 1


def test_mqtt_and_stomp_counters_carry_their_protocol_label(prometheus_url, amqp_port):
    import os

    n = 10
    before = scrape(prometheus_url)
    port = int(os.environ["JUNCTION_MQTT_PORT"])
    inbox = stdqueue.Queue()
    sub = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="prom-sub", protocol=mqtt.MQTTv311)
    sub.on_message = lambda c, u, m: inbox.put(m)
    subscribed = threading.Event()
    sub.on_subscribe = lambda *a: subscribed.set()
    sub.connect("127.0.0.1", port)
    sub.loop_start()
    sub.subscribe("prom/mqtt", qos=1)
    assert subscribed.wait(TIMEOUT)
    pub = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="prom-pub", protocol=mqtt.MQTTv311)
    pub.connect("127.0.0.1", port)
    pub.loop_start()
    for i in range(n):
        pub.publish("prom/mqtt", f"m{i}".encode(), qos=1).wait_for_publish(TIMEOUT)
    for _ in range(n):
        inbox.get(timeout=TIMEOUT)

    stomp_port = int(os.environ["JUNCTION_STOMP_PORT"])
    s = stomp.Connection([("127.0.0.1", stomp_port)])
    s.connect("guest", "guest", wait=True)
    for i in range(n):
        s.send("/queue/prom-stomp", f"s{i}")
    s.disconnect()

    # The subscriber's PUBACKs reach the broker after paho handed the messages over, and
    # stomp.py does not wait for its SENDs to be read before it closes the socket.
    def arrived(what, protocol):
        f = scrape(prometheus_url)
        return global_counter(f, what, protocol) - global_counter(before, what, protocol) == n
    wait_until(lambda: arrived("acknowledged", "mqtt311"), "the subscriber's PUBACKs")
    wait_until(lambda: arrived("received", "stomp"), "the STOMP SENDs")
    after = scrape(prometheus_url)
    for c in (pub, sub):
        c.disconnect()
        c.loop_stop()

    def moved(what, protocol):
        return global_counter(after, what, protocol) - global_counter(before, what, protocol)

    assert moved("received", "mqtt311") == n
    assert moved("confirmed", "mqtt311") == n
    assert moved("delivered_consume_manual_ack", "mqtt311") == n
    assert moved("received", "stomp") == n
    assert moved("routed", "stomp") == n
    # Connections by protocol: the two MQTT clients were open at the scrape.
    assert value(after, "junction_connections", protocol="mqtt311") >= 2


def test_per_object_metrics_list_each_queue(prometheus_url, amqp_url):
    conn = pika.BlockingConnection(pika.URLParameters(amqp_url))
    ch = conn.channel()
    ch.queue_declare("prom-depth")
    ch.queue_purge("prom-depth")
    for i in range(7):
        ch.basic_publish("", "prom-depth", b"x")
    wait_until(lambda: value(scrape(prometheus_url, "/metrics/per-object"),
                             "rabbitmq_queue_messages_ready", vhost="/", queue="prom-depth") == 7,
               "7 ready in prom-depth")
    f = scrape(prometheus_url, "/metrics/per-object")
    assert value(f, "rabbitmq_queue_messages", vhost="/", queue="prom-depth") == 7
    assert value(f, "junction_queue_messages_published", vhost="/", queue="prom-depth") == 7
    # The aggregated endpoint has one unlabelled sample per family instead.
    agg = scrape(prometheus_url)
    assert [s.labels for s in agg["rabbitmq_queue_messages_ready"].samples] == [{}]
    ch.queue_delete("prom-depth")
    conn.close()
