"""paho-mqtt (3.1, 3.1.1 and 5) against Junction: QoS 2, a persistent session across a restart, and MQTT 5 subscription options."""
import os
import queue
import threading

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

TIMEOUT = 15
PORT = int(os.environ.get("JUNCTION_MQTT_PORT", "1883"))


def client(client_id, protocol, clean=True):
    kwargs = {"client_id": client_id, "protocol": protocol}
    if protocol in (mqtt.MQTTv31, mqtt.MQTTv311):
        kwargs["clean_session"] = clean
    c = mqtt.Client(CallbackAPIVersion.VERSION2, **kwargs)
    c.inbox = queue.Queue()
    c.on_message = lambda cl, userdata, msg: cl.inbox.put(msg)
    return c


def subscribe(c, topic, qos):
    """Subscribes and waits for the SUBACK, so later publishes cannot race the subscription."""
    done = threading.Event()
    c.on_subscribe = lambda *args: done.set()
    result, _ = c.subscribe(topic, qos=qos)
    assert result == mqtt.MQTT_ERR_SUCCESS
    assert done.wait(TIMEOUT), "no SUBACK"


def start(c, clean=True, expiry=None):
    if c.protocol == mqtt.MQTTv5:
        props = None
        if expiry is not None:
            props = Properties(PacketTypes.CONNECT)
            props.SessionExpiryInterval = expiry
        c.connect("127.0.0.1", PORT, clean_start=clean, properties=props)
    else:
        c.connect("127.0.0.1", PORT)
    c.loop_start()


def stop(c):
    c.disconnect()
    c.loop_stop()


@pytest.mark.parametrize("protocol", [mqtt.MQTTv31, mqtt.MQTTv311, mqtt.MQTTv5])
def test_qos2_exactly_once(protocol):
    sub = client(f"paho-sub-{protocol}", protocol)
    start(sub)
    subscribe(sub, "paho/qos2", 2)
    pub = client(f"paho-pub-{protocol}", protocol)
    start(pub)
    pub.publish("paho/qos2", b"probe", qos=1).wait_for_publish(TIMEOUT)
    assert sub.inbox.get(timeout=TIMEOUT).payload == b"probe"
    for i in range(20):
        pub.publish("paho/qos2", f"m{i}".encode(), qos=2).wait_for_publish(TIMEOUT)
    got = [sub.inbox.get(timeout=TIMEOUT) for _ in range(20)]
    assert sorted(m.payload for m in got) == sorted(f"m{i}".encode() for i in range(20))
    assert all(m.qos == 2 for m in got)
    with pytest.raises(queue.Empty):
        sub.inbox.get(timeout=0.3)
    stop(pub)
    stop(sub)


@pytest.mark.parametrize("protocol", [mqtt.MQTTv311, mqtt.MQTTv5])
def test_persistent_session_across_client_restart(protocol):
    cid = f"paho-persist-{protocol}"
    first = client(cid, protocol, clean=False)
    start(first, clean=False, expiry=300)
    subscribe(first, "paho/persist", 1)
    probe = client(f"paho-probe-{protocol}", protocol)
    start(probe)
    probe.publish("paho/persist", b"probe", qos=1).wait_for_publish(TIMEOUT)
    assert first.inbox.get(timeout=TIMEOUT).payload == b"probe"
    stop(first)
    probe.publish("paho/persist", b"while away", qos=1).wait_for_publish(TIMEOUT)
    stop(probe)
    second = client(cid, protocol, clean=False)
    start(second, clean=False, expiry=300)
    msg = second.inbox.get(timeout=TIMEOUT)
    assert msg.payload == b"while away"
    stop(second)


def subscribe_with(c, topic, options):
    """Subscribes with MQTT 5 subscription options and waits for the SUBACK."""
    done = threading.Event()
    c.on_subscribe = lambda *args: done.set()
    result, _ = c.subscribe(topic, options=options)
    assert result == mqtt.MQTT_ERR_SUCCESS
    assert done.wait(TIMEOUT), "no SUBACK"


def next_except_marker(c, marker_from, topic):
    """Publishes a marker on `topic` from `marker_from` and returns what `c` receives first.

    One session's deliveries come in order, so anything that should not have arrived would
    arrive before the marker: no fixed wait is needed to see that nothing did.
    """
    marker_from.publish(topic, b"marker", qos=1).wait_for_publish(TIMEOUT)
    return c.inbox.get(timeout=TIMEOUT)


def test_mqtt5_subscription_options_as_the_paho_interop_suite_uses_them():
    from paho.mqtt.subscribeoptions import SubscribeOptions

    me = client("paho-opts-me", mqtt.MQTTv5)
    other = client("paho-opts-other", mqtt.MQTTv5)
    start(me)
    start(other)
    # No Local: my own publishes do not come back; others' do.
    subscribe_with(me, "paho/opts/local", SubscribeOptions(qos=1, noLocal=True))
    subscribe_with(me, "paho/opts/marker", SubscribeOptions(qos=1))
    me.publish("paho/opts/local", b"mine", qos=1).wait_for_publish(TIMEOUT)
    assert next_except_marker(me, other, "paho/opts/marker").payload == b"marker"
    other.publish("paho/opts/local", b"theirs", qos=1).wait_for_publish(TIMEOUT)
    assert me.inbox.get(timeout=TIMEOUT).payload == b"theirs"

    # Retain As Published: a live retained message keeps its retain flag only when asked.
    other.publish("paho/opts/rap/yes", b"r1", qos=1, retain=True).wait_for_publish(TIMEOUT)
    other.publish("paho/opts/rap/no", b"r2", qos=1, retain=True).wait_for_publish(TIMEOUT)
    never = SubscribeOptions.RETAIN_DO_NOT_SEND
    subscribe_with(me, "paho/opts/rap/yes", SubscribeOptions(qos=1, retainAsPublished=True, retainHandling=never))
    subscribe_with(me, "paho/opts/rap/no", SubscribeOptions(qos=1, retainAsPublished=False, retainHandling=never))
    assert next_except_marker(me, other, "paho/opts/marker").payload == b"marker", "Retain Handling 2 sent nothing"
    other.publish("paho/opts/rap/yes", b"live1", qos=1, retain=True).wait_for_publish(TIMEOUT)
    got = me.inbox.get(timeout=TIMEOUT)
    assert (got.payload, got.retain) == (b"live1", True)
    other.publish("paho/opts/rap/no", b"live2", qos=1, retain=True).wait_for_publish(TIMEOUT)
    got = me.inbox.get(timeout=TIMEOUT)
    assert (got.payload, got.retain) == (b"live2", False)

    # Retain Handling 1: retained messages on a new subscription only, not on a repeat;
    # Retain Handling 0: on every subscribe.
    other.publish("paho/opts/rh", b"kept", qos=1, retain=True).wait_for_publish(TIMEOUT)
    if_new = SubscribeOptions(qos=1, retainHandling=SubscribeOptions.RETAIN_SEND_IF_NEW_SUB)
    subscribe_with(me, "paho/opts/rh", if_new)
    got = me.inbox.get(timeout=TIMEOUT)
    assert (got.payload, got.retain) == (b"kept", True)
    subscribe_with(me, "paho/opts/rh", if_new)
    assert next_except_marker(me, other, "paho/opts/marker").payload == b"marker", "not sent again"
    subscribe_with(me, "paho/opts/rh", SubscribeOptions(qos=1, retainHandling=SubscribeOptions.RETAIN_SEND_ON_SUBSCRIBE))
    got = me.inbox.get(timeout=TIMEOUT)
    assert (got.payload, got.retain) == (b"kept", True)

    # Clean up the retained messages for other runs.
    for t in ("paho/opts/rap/yes", "paho/opts/rap/no", "paho/opts/rh"):
        other.publish(t, b"", qos=1, retain=True).wait_for_publish(TIMEOUT)
    stop(me)
    stop(other)


def queue_counts(name):
    """messages_ready and messages_unacknowledged of a queue of vhost `/`, from the management API."""
    import json
    import urllib.parse
    import urllib.request

    port = int(os.environ["JUNCTION_MANAGEMENT_PORT"])
    url = f"http://127.0.0.1:{port}/api/queues/%2f/{urllib.parse.quote(name, safe='')}"
    req = urllib.request.Request(url)
    req.add_header("Authorization", "Basic Z3Vlc3Q6Z3Vlc3Q=")
    with urllib.request.urlopen(req, timeout=TIMEOUT) as r:
        q = json.load(r)
    return q["messages_ready"], q["messages_unacknowledged"]


def wait_for(condition, what):
    """Polls `condition` until it holds or TIMEOUT passes."""
    import time

    deadline = time.monotonic() + TIMEOUT
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.05)


def test_mqtt5_flow_control_toward_a_client_that_stops_acknowledging():
    """Receive Maximum 2 with manual acks: the server sends two QoS 1 messages, no more, until
    the client acknowledges one; then one more for each PUBACK (the Paho suite's flow control)."""
    cid = "paho-flow"
    slow = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=cid, protocol=mqtt.MQTTv5, manual_ack=True)
    slow.inbox = queue.Queue()
    slow.on_message = lambda cl, userdata, msg: cl.inbox.put(msg)
    props = Properties(PacketTypes.CONNECT)
    props.ReceiveMaximum = 2
    props.SessionExpiryInterval = 300
    slow.connect("127.0.0.1", PORT, clean_start=True, properties=props)
    slow.loop_start()
    subscribe(slow, "paho/flow", 1)
    pub = client("paho-flow-pub", mqtt.MQTTv5)
    start(pub)
    for i in range(5):
        pub.publish("paho/flow", f"f{i}".encode(), qos=1).wait_for_publish(TIMEOUT)
    first = [slow.inbox.get(timeout=TIMEOUT) for _ in range(2)]
    assert [m.payload for m in first] == [b"f0", b"f1"]
    # The other three wait in the session's queue, not on the wire to the client.
    wait_for(lambda: queue_counts(f"mqtt-subscription-{cid}") == (3, 2), "3 ready, 2 unacked")
    assert slow.inbox.empty(), "a third message was sent beyond Receive Maximum"
    slow.ack(first[0].mid, 1)
    third = slow.inbox.get(timeout=TIMEOUT)
    assert third.payload == b"f2"
    wait_for(lambda: queue_counts(f"mqtt-subscription-{cid}") == (2, 2), "2 ready, 2 unacked")
    assert slow.inbox.empty()
    for m in (first[1], third):
        slow.ack(m.mid, 1)
    rest = [slow.inbox.get(timeout=TIMEOUT) for _ in range(2)]
    for m in rest:
        slow.ack(m.mid, 1)
    wait_for(lambda: queue_counts(f"mqtt-subscription-{cid}") == (0, 0), "all acknowledged")
    assert [m.payload for m in rest] == [b"f3", b"f4"]
    stop(pub)
    stop(slow)
    # Leave no session behind for other runs.
    cleanup = client(cid, mqtt.MQTTv5)
    start(cleanup, clean=True, expiry=0)
    stop(cleanup)


def test_mqtt5_server_sends_topic_aliases_when_the_client_accepts_them():
    """With Topic Alias Maximum 2 the server names a topic once, then sends only its alias
    (topic empty); a client that accepts no aliases always gets the topic."""
    taker = client("paho-alias-taker", mqtt.MQTTv5)
    props = Properties(PacketTypes.CONNECT)
    props.TopicAliasMaximum = 2
    taker.connect("127.0.0.1", PORT, clean_start=True, properties=props)
    taker.loop_start()
    plain = client("paho-alias-plain", mqtt.MQTTv5)
    start(plain)
    for c in (taker, plain):
        subscribe(c, "paho/alias/#", 1)
    pub = client("paho-alias-pub", mqtt.MQTTv5)
    start(pub)
    for t in ("paho/alias/a", "paho/alias/a", "paho/alias/b", "paho/alias/a", "paho/alias/c"):
        pub.publish(t, t.encode(), qos=1).wait_for_publish(TIMEOUT)
    got = [taker.inbox.get(timeout=TIMEOUT) for _ in range(5)]
    seen = [(m.topic, getattr(m.properties, "TopicAlias", None), m.payload) for m in got]
    assert seen == [
        ("paho/alias/a", 1, b"paho/alias/a"),
        ("", 1, b"paho/alias/a"),
        ("paho/alias/b", 2, b"paho/alias/b"),
        ("", 1, b"paho/alias/a"),
        # Both aliases are taken: a third topic goes out by name, with no alias.
        ("paho/alias/c", None, b"paho/alias/c"),
    ]
    got = [plain.inbox.get(timeout=TIMEOUT) for _ in range(5)]
    assert all(m.topic == m.payload.decode() for m in got)
    assert all(getattr(m.properties, "TopicAlias", None) is None for m in got)
    for c in (pub, plain, taker):
        stop(c)


def test_mqtt5_offline_queueing_keeps_qos1_and_qos2_drops_nothing_and_expires_stale():
    """The Paho suite's offline queueing: a session with an expiry interval keeps what its
    subscriptions matched while it was away (QoS 1 and 2; QoS 0 as well, as Mosquitto and
    RabbitMQ queue it), and a message whose Message Expiry Interval ran out is not delivered."""
    cid = "paho-offline"
    away = client(cid, mqtt.MQTTv5)
    start(away, clean=True, expiry=300)
    subscribe(away, "paho/offline/#", 2)
    stop(away)
    pub = client("paho-offline-pub", mqtt.MQTTv5)
    start(pub)
    pub.publish("paho/offline/q0", b"zero", qos=0)
    pub.publish("paho/offline/q1", b"one", qos=1).wait_for_publish(TIMEOUT)
    pub.publish("paho/offline/q2", b"two", qos=2).wait_for_publish(TIMEOUT)
    stale = Properties(PacketTypes.PUBLISH)
    stale.MessageExpiryInterval = 1
    pub.publish("paho/offline/stale", b"stale", qos=1, properties=stale).wait_for_publish(TIMEOUT)
    pub.publish("paho/offline/q1", b"last", qos=1).wait_for_publish(TIMEOUT)
    stop(pub)
    wait_for(lambda: queue_counts(f"mqtt-subscription-{cid}")[0] == 5, "5 queued while away")
    import time

    # The interval is a span of real time on the broker's clock: let it run out. (A queue drops
    # expired messages when they reach its head, as RabbitMQ's do, so there is no count to await.)
    time.sleep(1.1)
    back = client(cid, mqtt.MQTTv5)
    connected = queue.Queue()
    back.on_connect = lambda cl, ud, flags, rc, props: connected.put(flags.session_present)
    start(back, clean=False, expiry=0)
    assert connected.get(timeout=TIMEOUT) is True
    got = [back.inbox.get(timeout=TIMEOUT) for _ in range(4)]
    # paho hands a QoS 2 message over at PUBREL, so it may come after a later QoS 1 one.
    assert sorted((m.topic, m.payload, m.qos) for m in got) == [
        ("paho/offline/q0", b"zero", 0),
        ("paho/offline/q1", b"last", 1),
        ("paho/offline/q1", b"one", 1),
        ("paho/offline/q2", b"two", 2),
    ]
    assert [m.payload for m in got if m.qos == 1] == [b"one", b"last"]
    wait_for(lambda: queue_counts(f"mqtt-subscription-{cid}") == (0, 0), "all acknowledged")
    stop(back)
