"""One permission model on every protocol, set up at run time with `junction ctl` and
exercised with pika, stomp.py and paho-mqtt (3.1.1 and 5): for each operation the allowed
case works and the refused case gets the protocol's exact refusal (AMQP 403 on the channel,
530 for a vhost without permissions; a STOMP ERROR naming the resource; MQTT 3.1.1 SUBACK
0x80 and a closed connection for a publish; MQTT 5 SUBACK/PUBACK 0x87 and DISCONNECT 0x87).
Topic permissions with {client_id} confine each device to its own topics."""
import os
import queue
import re
import time
import urllib.request

import paho.mqtt.client as mqtt
import pika
import pytest
import stomp
from junction_ctl import ctl
from paho.mqtt.enums import CallbackAPIVersion

TIMEOUT = 15
AMQP = int(os.environ["JUNCTION_AMQP_PORT"])
STOMP = int(os.environ["JUNCTION_STOMP_PORT"])
MQTT = int(os.environ["JUNCTION_MQTT_PORT"])


def refusals():
    url = f"http://127.0.0.1:{os.environ['JUNCTION_PROMETHEUS_PORT']}/metrics"
    text = urllib.request.urlopen(url, timeout=TIMEOUT).read().decode()
    m = re.search(r'^junction_refusals_total\{kind="access_refused"\} (\S+)$', text, re.M)
    return float(m.group(1))


@pytest.fixture(scope="module", autouse=True)
def users():
    """`limited` may configure, write and read only `lim-*` objects; `stranger` has no
    permissions in `/`; `device` may do anything but publish and subscribe only under
    devices/{client_id}/."""
    ctl("add_user", "limited", "pw")
    ctl("set_permissions", "-p", "/", "limited", "^lim-", "^lim-", "^lim-")
    ctl("add_user", "stranger", "pw")
    ctl("add_user", "device", "pw")
    ctl("set_permissions", "-p", "/", "device", ".*", ".*", ".*")
    ctl("set_topic_permissions", "-p", "/", "device", "amq.topic",
        r"^devices\.{client_id}\.", r"^devices\.{client_id}\.")
    # Objects the limited user may not touch, made by guest.
    c = pika.BlockingConnection(pika.ConnectionParameters("127.0.0.1", AMQP))
    ch = c.channel()
    ch.queue_declare("perm-other")
    ch.exchange_declare("perm-x", "direct")
    c.close()
    yield
    for u in ("limited", "stranger", "device"):
        ctl("delete_user", u)


def amqp(user):
    creds = pika.PlainCredentials(user, "pw")
    return pika.BlockingConnection(pika.ConnectionParameters("127.0.0.1", AMQP, credentials=creds))


def assert_channel_403(action, *what):
    c = amqp("limited")
    ch = c.channel()
    with pytest.raises(pika.exceptions.ChannelClosedByBroker) as e:
        action(ch)
    assert e.value.reply_code == 403, e.value
    for w in what:
        assert w in e.value.reply_text, e.value.reply_text
    assert c.is_open, "a refusal closes the channel, not the connection"
    c.close()


# --- AMQP --------------------------------------------------------------------------------


def test_amqp_vhost_without_permissions_is_530():
    with pytest.raises(pika.exceptions.AMQPConnectionError) as e:
        amqp("stranger")
    assert "530" in repr(e.value) or getattr(e.value, "reply_code", None) == 530, repr(e.value)


def test_amqp_allowed_operations():
    c = amqp("limited")
    ch = c.channel()
    ch.confirm_delivery()
    ch.exchange_declare("lim-x", "fanout")
    ch.queue_declare("lim-q")
    ch.queue_bind("lim-q", "lim-x")
    ch.basic_publish("lim-x", "", b"hello")
    method, _, body = ch.basic_get("lim-q", auto_ack=True)
    assert body == b"hello"
    ch.queue_purge("lim-q")
    ch.queue_delete("lim-q")
    ch.exchange_delete("lim-x")
    c.close()


def test_amqp_refusals_are_403_naming_the_resource():
    before = refusals()
    assert_channel_403(lambda ch: ch.queue_declare("perm-mine"), "configure", "queue 'perm-mine'")
    assert_channel_403(lambda ch: ch.exchange_declare("perm-y", "direct"),
                       "configure", "exchange 'perm-y'")
    assert_channel_403(lambda ch: ch.queue_delete("perm-other"), "configure")
    assert_channel_403(lambda ch: ch.basic_get("perm-other"), "read", "queue 'perm-other'")
    assert_channel_403(lambda ch: ch.queue_purge("perm-other"), "read")

    def consume(ch):
        ch.basic_consume("perm-other", lambda *a: None)
    assert_channel_403(consume, "read")

    def publish(ch):
        ch.confirm_delivery()
        ch.basic_publish("perm-x", "k", b"x")
    assert_channel_403(publish, "write", "exchange 'perm-x'")

    def publish_default(ch):
        ch.confirm_delivery()
        ch.basic_publish("", "perm-other", b"x")
    assert_channel_403(publish_default, "write", "exchange 'amq.default'")

    def bind_read_side(ch):
        ch.queue_declare("lim-bind")
        ch.queue_bind("lim-bind", "perm-x", "k")
    assert_channel_403(bind_read_side, "read", "exchange 'perm-x'")
    assert refusals() >= before + 9, "every refusal is counted"


def test_amqp_permissions_changed_at_run_time_apply_to_open_connections():
    c = amqp("limited")
    ch = c.channel()
    ch.queue_declare("lim-later")
    ctl("set_permissions", "-p", "/", "limited", "^$", "^lim-", "^lim-")
    with pytest.raises(pika.exceptions.ChannelClosedByBroker) as e:
        ch.queue_declare("lim-later-2")
    assert e.value.reply_code == 403
    ctl("set_permissions", "-p", "/", "limited", "^lim-", "^lim-", "^lim-")
    ch = c.channel()
    ch.queue_delete("lim-later")
    c.close()


def test_amqp_user_max_channels_is_530():
    ctl("set_user_limits", "limited", '{"max-channels": 1}')
    try:
        c = amqp("limited")
        c.channel()
        with pytest.raises(pika.exceptions.ConnectionClosedByBroker) as e:
            c.channel()
        assert e.value.reply_code == 530, e.value
        assert "max" in e.value.reply_text or "limit" in e.value.reply_text
    finally:
        ctl("clear_user_limits", "limited", "max-channels")


# --- STOMP -------------------------------------------------------------------------------


class Collector(stomp.ConnectionListener):
    def __init__(self):
        self.errors = queue.Queue()
        self.messages = queue.Queue()

    def on_error(self, frame):
        self.errors.put(frame)

    def on_message(self, frame):
        self.messages.put(frame)


def stomp_conn(user, vhost="/", wait=True):
    conn = stomp.Connection12([("127.0.0.1", STOMP)], vhost=vhost)
    listener = Collector()
    conn.set_listener("c", listener)
    conn.connect(user, "pw", wait=wait)
    return conn, listener


def test_stomp_connect_refusals():
    for user, vhost in (("stranger", "/"), ("limited", "no-such-vhost")):
        conn = stomp.Connection12([("127.0.0.1", STOMP)], vhost=vhost)
        listener = Collector()
        conn.set_listener("c", listener)
        conn.connect(user, "pw", wait=False)
        frame = listener.errors.get(timeout=TIMEOUT)
        assert vhost in frame.body, frame.body
        conn.disconnect()


def test_stomp_allowed_and_refused():
    conn, listener = stomp_conn("limited")
    conn.subscribe("/exchange/perm-x/k", id="1")
    frame = listener.errors.get(timeout=TIMEOUT)
    assert frame.headers["message"] == "access_refused"
    assert "stomp-subscription-" in frame.body or "perm-x" in frame.body, frame.body
    conn.disconnect()

    conn, listener = stomp_conn("limited")
    conn.send(body="x", destination="/queue/perm-other")
    frame = listener.errors.get(timeout=TIMEOUT)
    assert frame.headers["message"] == "access_refused"
    assert "configure access to queue 'perm-other'" in frame.body or \
        "exchange 'amq.default'" in frame.body, frame.body
    conn.disconnect()

    conn, listener = stomp_conn("limited")
    conn.subscribe("/amq/queue/perm-other", id="2")
    frame = listener.errors.get(timeout=TIMEOUT)
    assert "read access to queue 'perm-other'" in frame.body, frame.body
    conn.disconnect()


def test_stomp_subscription_queues_are_named_for_regexes():
    ctl("set_permissions", "-p", "/", "limited", "^(lim-|stomp-subscription-)",
        "^(lim-|stomp-subscription-)", "^(lim-|stomp-subscription-|amq\\.topic)")
    try:
        conn, listener = stomp_conn("limited")
        conn.subscribe("/topic/perm.news", id="t", receipt="r1")
        guest = pika.BlockingConnection(pika.ConnectionParameters("127.0.0.1", AMQP))
        gch = guest.channel()
        deadline = time.monotonic() + TIMEOUT
        while listener.messages.empty():
            assert time.monotonic() < deadline, "no message for the topic subscription"
            assert listener.errors.empty(), listener.errors.get().body
            gch.basic_publish("amq.topic", "perm.news", b"n")
            try:
                frame = listener.messages.get(timeout=0.2)
                listener.messages.put(frame)
            except queue.Empty:
                pass
        assert listener.messages.get().body == "n"
        guest.close()
        conn.disconnect()
    finally:
        ctl("set_permissions", "-p", "/", "limited", "^lim-", "^lim-", "^lim-")


# --- MQTT --------------------------------------------------------------------------------


class Device:
    """A paho client recording what the broker answered."""

    def __init__(self, client_id, user="device", v5=False):
        proto = mqtt.MQTTv5 if v5 else mqtt.MQTTv311
        self.c = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=client_id, protocol=proto)
        self.c.username_pw_set(user, "pw")
        self.connack = queue.Queue()
        self.subacks = queue.Queue()
        self.pubacks = queue.Queue()
        self.disconnects = queue.Queue()
        self.messages = queue.Queue()
        self.c.on_connect = lambda c, u, f, rc, p: self.connack.put(rc)
        self.c.on_subscribe = lambda c, u, mid, rcs, p: self.subacks.put(rcs)
        self.c.on_publish = lambda c, u, mid, rc, p: self.pubacks.put(rc)
        self.c.on_disconnect = lambda c, u, f, rc, p: self.disconnects.put(rc)
        self.c.on_message = lambda c, u, m: self.messages.put(m)
        self.c.connect("127.0.0.1", MQTT, keepalive=30)
        self.c.loop_start()

    def connected(self):
        return self.connack.get(timeout=TIMEOUT)

    def close(self):
        self.c.disconnect()
        self.c.loop_stop()


@pytest.mark.parametrize("v5", [False, True])
def test_mqtt_vhost_without_permissions_is_refused(v5):
    d = Device(f"stranger-{v5}", user="stranger", v5=v5)
    rc = d.connected()
    # 3.1.1: CONNACK 5 (not authorised); paho reports it as reason 0x87 either way.
    assert rc.value == 0x87 or rc == 5, rc
    d.close()


@pytest.mark.parametrize("v5", [False, True])
def test_mqtt_topic_permissions_confine_a_device(v5):
    cid = f"d{int(v5)}"
    d = Device(cid, v5=v5)
    assert not d.connected().is_failure
    d.c.subscribe([(f"devices/{cid}/#", 1), ("devices/other/#", 1)])
    codes = [r.value for r in d.subacks.get(timeout=TIMEOUT)]
    assert codes == [1, 0x87 if v5 else 0x80], codes
    d.c.publish(f"devices/{cid}/temp", b"21", qos=1)
    assert d.pubacks.get(timeout=TIMEOUT).value == 0
    assert d.messages.get(timeout=TIMEOUT).payload == b"21"
    if v5:
        # QoS 1 refused: PUBACK 0x87 and the connection stays.
        d.c.publish("devices/other/temp", b"x", qos=1)
        assert d.pubacks.get(timeout=TIMEOUT).value == 0x87
        assert d.disconnects.empty()
        # QoS 0 refused: DISCONNECT 0x87.
        d.c.publish("devices/other/temp", b"x", qos=0)
        assert d.disconnects.get(timeout=TIMEOUT).value == 0x87
    else:
        d.c.publish("devices/other/temp", b"x", qos=1)
        rc = d.disconnects.get(timeout=TIMEOUT)
        assert rc.value != 0, "3.1.1: a refused publish closes the connection"
    d.close()


def test_mqtt_will_on_a_forbidden_topic_is_refused_at_connect():
    c = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="willful", protocol=mqtt.MQTTv5)
    c.username_pw_set("device", "pw")
    c.will_set("devices/other/status", b"gone")
    got = queue.Queue()
    c.on_connect = lambda cl, u, f, rc, p: got.put(rc)
    c.connect("127.0.0.1", MQTT)
    c.loop_start()
    assert got.get(timeout=TIMEOUT).value == 0x87
    c.loop_stop()
