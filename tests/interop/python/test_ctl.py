"""`junction ctl` as the tutorials use rabbitmqctl, against the broker of the interop run:
a purge empties a queue pika filled, a policy's max-length bounds it, and a memory watermark
lowered at run time blocks pika, paho-mqtt and stomp.py publishers while consumers drain,
until it is raised again. ctl reaches the node with the local credential (`--config`), as
on the broker's machine, and with `--node` and a user's password, as from elsewhere."""
import json
import os
import subprocess
import threading
import time

import paho.mqtt.client as mqtt
import pika
import stomp
from paho.mqtt.enums import CallbackAPIVersion

TIMEOUT = 15


def ctl(*args, local=True, check=True):
    """Runs `junction ctl ARGS`; returns stdout (check: exit code 0)."""
    if local:
        base = ["ctl", "--config", os.environ["JUNCTION_CONFIG"]]
    else:
        node = f"http://127.0.0.1:{os.environ['JUNCTION_MANAGEMENT_PORT']}"
        base = ["ctl", "--node", node, "--username", "guest", "--password", "guest"]
    run = subprocess.run([os.environ["JUNCTION_BIN"], *base, *args], capture_output=True,
                         text=True, timeout=TIMEOUT)
    if check:
        assert run.returncode == 0, f"{args}: {run.returncode} {run.stderr}"
    return run


def messages(queue):
    out = ctl("-s", "list_queues", "name", "messages").stdout
    for line in out.splitlines():
        name, count = line.split("\t")
        if name == queue:
            return int(count)
    return None


def wait_until(cond, what):
    deadline = time.monotonic() + TIMEOUT
    while not cond():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.05)


def pika_channel(amqp_port):
    c = pika.BlockingConnection(pika.ConnectionParameters("127.0.0.1", amqp_port,
                                                          blocked_connection_timeout=60))
    ch = c.channel()
    ch.confirm_delivery()
    return c, ch


def test_purge_empties_a_queue_pika_filled(amqp_port):
    c, ch = pika_channel(amqp_port)
    ch.queue_declare("ctl-purge", durable=True)
    for i in range(5):
        ch.basic_publish("", "ctl-purge", f"m{i}".encode())
    assert messages("ctl-purge") == 5
    out = ctl("purge_queue", "ctl-purge").stdout
    assert out.startswith("Purging queue 'ctl-purge' in vhost '/' ...")
    assert ch.queue_declare("ctl-purge", passive=True).method.message_count == 0
    ctl("delete_queue", "ctl-purge", local=False)
    c.close()


def test_a_policy_max_length_bounds_a_queue_pika_fills(amqp_port):
    ctl("set_policy", "ctl-cap", "^ctl-capped", '{"max-length": 3}', "--apply-to", "queues",
        local=False)
    c, ch = pika_channel(amqp_port)
    try:
        ch.queue_declare("ctl-capped", durable=True)
        for i in range(10):
            ch.basic_publish("", "ctl-capped", f"m{i}".encode())
        assert messages("ctl-capped") == 3
        # Head drop, as RabbitMQ's default overflow: the newest three are left.
        bodies = [ch.basic_get("ctl-capped", auto_ack=True)[2] for _ in range(3)]
        assert bodies == [b"m7", b"m8", b"m9"]
    finally:
        ctl("clear_policy", "ctl-cap")
        ch.queue_delete("ctl-capped")
        c.close()


def memory_limit():
    status = json.loads(ctl("status", "--formatter", "json").stdout)
    return status["mem_limit"], status["mem_alarm"]


def test_a_low_watermark_blocks_publishers_of_every_protocol_and_consumers_drain(
        amqp_port):
    stomp_port = int(os.environ["JUNCTION_STOMP_PORT"])
    mqtt_port = int(os.environ["JUNCTION_MQTT_PORT"])
    original, alarm = memory_limit()
    assert not alarm
    publisher = pika.BlockingConnection(pika.ConnectionParameters("127.0.0.1", amqp_port))
    blocked = threading.Event()
    unblocked = threading.Event()
    publisher.add_on_connection_blocked_callback(lambda *_: blocked.set())
    publisher.add_on_connection_unblocked_callback(lambda *_: unblocked.set())
    pch = publisher.channel()
    pch.confirm_delivery()
    pch.queue_declare("ctl-alarm")
    for i in range(3):
        pch.basic_publish("", "ctl-alarm", f"before{i}".encode())
    consumer = pika.BlockingConnection(pika.ConnectionParameters("127.0.0.1", amqp_port))
    cch = consumer.channel()

    m = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="ctl-alarm")
    m.username_pw_set("guest", "guest")
    m.connect("127.0.0.1", mqtt_port)
    m.loop_start()
    s = stomp.Connection([("127.0.0.1", stomp_port)])
    receipts = []
    s.set_listener("r", type("R", (stomp.ConnectionListener,), {
        "on_receipt": lambda self, frame: receipts.append(frame.headers["receipt-id"])})())
    s.connect("guest", "guest", wait=True)
    # As in RabbitMQ, the alarm holds connections that publish: each publishes once before.
    m.publish("ctl/alarm", b"first", qos=1).wait_for_publish(TIMEOUT)
    s.send("/queue/ctl-alarm-stomp", "first", receipt="r0")
    wait_until(lambda: receipts == ["r0"], "the first STOMP receipt")
    try:
        ctl("set_vm_memory_high_watermark", "absolute", "1")
        wait_until(lambda: memory_limit()[1], "the memory alarm")
        wait_until(lambda: publisher.process_data_events(0.05) or blocked.is_set(),
                   "connection.blocked")
        # MQTT and STOMP publishers are not read while the alarm lasts: no PUBACK, no RECEIPT.
        info = m.publish("ctl/alarm", b"held", qos=1)
        s.send("/queue/ctl-alarm", "held", receipt="r1")
        # Consumers drain meanwhile.
        got = [cch.basic_get("ctl-alarm", auto_ack=True)[2] for _ in range(3)]
        assert got == [b"before0", b"before1", b"before2"]
        assert not info.is_published() and receipts == ["r0"]

        ctl("set_vm_memory_high_watermark", "absolute", str(original))
        wait_until(lambda: not memory_limit()[1], "the alarm to clear")
        wait_until(lambda: publisher.process_data_events(0.05) or unblocked.is_set(),
                   "connection.unblocked")
        info.wait_for_publish(TIMEOUT)
        assert info.is_published()
        wait_until(lambda: receipts == ["r0", "r1"], "the STOMP receipt")
    finally:
        ctl("set_vm_memory_high_watermark", "absolute", str(original))
        m.loop_stop()
        m.disconnect()
        s.disconnect()
        cch.queue_delete("ctl-alarm")
        cch.queue_delete("ctl-alarm-stomp")
        consumer.close()
        publisher.close()
