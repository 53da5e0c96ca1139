"""stomp.py over TCP against Junction's STOMP listener."""
import os
import queue

import stomp

TIMEOUT = 15


class Collector(stomp.ConnectionListener):
    def __init__(self):
        self.messages = queue.Queue()
        self.errors = queue.Queue()

    def on_message(self, frame):
        self.messages.put(frame)

    def on_error(self, frame):
        self.errors.put(frame)


def connect(**kwargs):
    port = int(os.environ["JUNCTION_STOMP_PORT"])
    # stomp.py sends the server's host name as `host` unless told the vhost; RabbitMQ and
    # Junction take `host` as the vhost and refuse one that does not exist.
    kwargs.setdefault("vhost", "/")
    conn = stomp.Connection12([("127.0.0.1", port)], **kwargs)
    listener = Collector()
    conn.set_listener("collector", listener)
    conn.connect("guest", "guest", wait=True)
    return conn, listener


def test_queue_round_trip_with_headers_and_client_ack():
    conn, listener = connect()
    conn.subscribe(destination="/queue/py_stomp", id="1", ack="client-individual", headers={"receipt": "s1"})
    conn.send(body="hello stomp", destination="/queue/py_stomp", headers={"x-tenant": "acme", "persistent": "true"}, receipt="r1")
    frame = listener.messages.get(timeout=TIMEOUT)
    assert frame.body == "hello stomp"
    assert frame.headers["x-tenant"] == "acme"
    assert frame.headers["persistent"] == "true"
    conn.ack(frame.headers["ack"], "1")
    conn.disconnect(receipt="bye")


def test_topic_and_transaction():
    conn, listener = connect()
    conn.subscribe(destination="/topic/py.events.#", id="t", ack="auto")
    conn.send(body="probe", destination="/queue/py_probe", receipt="ready")
    tx = conn.begin()
    conn.send(body="in tx", destination="/topic/py.events.created", transaction=tx)
    try:
        listener.messages.get(timeout=0.3)
        raise AssertionError("delivered before COMMIT")
    except queue.Empty:
        pass
    conn.commit(tx)
    frame = listener.messages.get(timeout=TIMEOUT)
    assert frame.body == "in tx"
    assert frame.headers["destination"] == "/topic/py.events.created"
    conn.disconnect()


def test_error_frame_for_bad_destination():
    conn, listener = connect()
    conn.send(body="x", destination="/bogus/dest")
    frame = listener.errors.get(timeout=TIMEOUT)
    assert frame.headers["message"] == "Bad destination"
