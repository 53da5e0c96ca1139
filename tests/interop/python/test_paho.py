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
