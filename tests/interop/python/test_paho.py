"""paho-mqtt (3.1, 3.1.1 and 5) against Junction: QoS 2 and a persistent session across a restart."""
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
