"""RabbitMQ's pika tutorials, unchanged in substance, against Junction."""
import threading
import uuid

import pika
import pytest

TIMEOUT = 15


def connect(port):
    params = pika.ConnectionParameters(host="127.0.0.1", port=port, blocked_connection_timeout=TIMEOUT)
    return pika.BlockingConnection(params)


def drain(channel, queue, expected):
    """Consumes `expected` messages with manual acks; returns their bodies."""
    bodies = []
    for method, _props, body in channel.consume(queue, inactivity_timeout=TIMEOUT):
        assert method is not None, f"timed out after {len(bodies)} of {expected}"
        bodies.append(body)
        channel.basic_ack(method.delivery_tag)
        if len(bodies) == expected:
            break
    channel.cancel()
    return bodies


def test_hello_world_10000(amqp_port):
    conn = connect(amqp_port)
    ch = conn.channel()
    ch.queue_declare(queue="py_hello")
    for i in range(10_000):
        ch.basic_publish(exchange="", routing_key="py_hello", body=str(i).encode())
    conn.close()

    conn = connect(amqp_port)
    ch = conn.channel()
    ch.queue_declare(queue="py_hello")
    bodies = drain(ch, "py_hello", 10_000)
    assert bodies == [str(i).encode() for i in range(10_000)]
    assert ch.queue_declare(queue="py_hello", passive=True).method.message_count == 0
    conn.close()


def test_work_queues_fair_dispatch_and_redelivery(amqp_port):
    setup = connect(amqp_port)
    ch = setup.channel()
    ch.queue_declare(queue="py_tasks", durable=True)
    for i in range(4):
        ch.basic_publish(
            exchange="",
            routing_key="py_tasks",
            body=f"task{i}".encode(),
            properties=pika.BasicProperties(delivery_mode=pika.DeliveryMode.Persistent),
        )
    worker_a = connect(amqp_port)
    cha = worker_a.channel()
    cha.basic_qos(prefetch_count=1)
    method, _props, body = next(cha.consume("py_tasks", inactivity_timeout=TIMEOUT))
    assert body == b"task0"
    # With prefetch 1 and no ack, nothing more arrives for worker A.
    extra = next(cha.consume("py_tasks", inactivity_timeout=0.3))
    assert extra == (None, None, None)

    worker_b = connect(amqp_port)
    chb = worker_b.channel()
    chb.basic_qos(prefetch_count=1)
    got = drain(chb, "py_tasks", 3)
    assert got == [b"task1", b"task2", b"task3"]
    # Worker A dies with task0 unacked: B gets it, marked redelivered.
    worker_a.close()
    method, _props, body = next(chb.consume("py_tasks", inactivity_timeout=TIMEOUT))
    assert body == b"task0" and method.redelivered
    chb.basic_ack(method.delivery_tag)
    for c in (worker_b, setup):
        c.close()


@pytest.mark.parametrize("kind", ["fanout", "direct", "topic"])
def test_exchanges(amqp_port, kind):
    conn = connect(amqp_port)
    ch = conn.channel()
    ex = f"py_{kind}"
    ch.exchange_declare(exchange=ex, exchange_type=kind)
    q = ch.queue_declare(queue="", exclusive=True).method.queue
    assert q.startswith("amq.gen-")
    key = {"fanout": "", "direct": "error", "topic": "*.critical.#"}[kind]
    ch.queue_bind(exchange=ex, queue=q, routing_key=key)
    sends = {
        "fanout": [("x", True), ("y", True)],
        "direct": [("error", True), ("info", False)],
        "topic": [("kern.critical", True), ("kern.critical.disk.full", True), ("kern.info", False)],
    }[kind]
    for rk, _ in sends:
        ch.basic_publish(exchange=ex, routing_key=rk, body=rk.encode())
    expected = [rk.encode() for rk, hit in sends if hit]
    assert drain(ch, q, len(expected)) == expected
    extra = next(ch.consume(q, inactivity_timeout=0.3))
    assert extra == (None, None, None)
    conn.close()


def test_rpc_with_callback_queue(amqp_port):
    server = connect(amqp_port)
    sch = server.channel()
    sch.queue_declare(queue="py_rpc")

    def on_request(ch, method, props, body):
        n = int(body)
        ch.basic_publish(
            exchange="",
            routing_key=props.reply_to,
            properties=pika.BasicProperties(correlation_id=props.correlation_id),
            body=str(n * 2).encode(),
        )
        ch.basic_ack(delivery_tag=method.delivery_tag)

    sch.basic_qos(prefetch_count=1)
    sch.basic_consume(queue="py_rpc", on_message_callback=on_request)
    stop = threading.Event()

    def serve():
        while not stop.is_set():
            server.process_data_events(time_limit=0.05)

    t = threading.Thread(target=serve)
    t.start()
    try:
        client = connect(amqp_port)
        cch = client.channel()
        callback = cch.queue_declare(queue="", exclusive=True).method.queue
        corr = str(uuid.uuid4())
        cch.basic_publish(
            exchange="",
            routing_key="py_rpc",
            properties=pika.BasicProperties(reply_to=callback, correlation_id=corr),
            body=b"21",
        )
        method, props, body = next(cch.consume(callback, auto_ack=True, inactivity_timeout=TIMEOUT))
        assert method is not None and props.correlation_id == corr and body == b"42"
        client.close()
    finally:
        stop.set()
        t.join(TIMEOUT)
    server.close()


def test_direct_reply_to(amqp_port):
    server = connect(amqp_port)
    sch = server.channel()
    sch.queue_declare(queue="py_direct_rpc")
    client = connect(amqp_port)
    cch = client.channel()
    replies = []
    cch.basic_consume("amq.rabbitmq.reply-to", lambda c, m, p, b: replies.append(b), auto_ack=True)
    cch.basic_publish(
        exchange="",
        routing_key="py_direct_rpc",
        properties=pika.BasicProperties(reply_to="amq.rabbitmq.reply-to"),
        body=b"ping",
    )
    method, props, body = next(sch.consume("py_direct_rpc", auto_ack=True, inactivity_timeout=TIMEOUT))
    assert body == b"ping" and props.reply_to.startswith("amq.rabbitmq.reply-to.")
    sch.basic_publish(exchange="", routing_key=props.reply_to, body=b"pong")
    client.process_data_events(time_limit=0)
    deadline = 0
    while not replies and deadline < 300:
        client.process_data_events(time_limit=0.05)
        deadline += 1
    assert replies == [b"pong"]
    client.close()
    server.close()


def test_headers_exchange(amqp_port):
    conn = connect(amqp_port)
    ch = conn.channel()
    q = ch.queue_declare(queue="", exclusive=True).method.queue
    ch.queue_bind(exchange="amq.headers", queue=q, arguments={"x-match": "all", "format": "pdf", "type": "report"})
    for fmt, typ in [("pdf", "report"), ("pdf", "log")]:
        ch.basic_publish(
            exchange="amq.headers",
            routing_key="",
            properties=pika.BasicProperties(headers={"format": fmt, "type": typ}),
            body=f"{fmt}-{typ}".encode(),
        )
    assert drain(ch, q, 1) == [b"pdf-report"]
    conn.close()


def test_errors_reach_pika_with_rabbitmq_codes(amqp_port):
    conn = connect(amqp_port)
    ch = conn.channel()
    with pytest.raises(pika.exceptions.ChannelClosedByBroker) as e:
        ch.queue_declare(queue="py_missing", passive=True)
    assert e.value.reply_code == 404
    ch = conn.channel()
    ch.queue_declare(queue="py_conflict")
    with pytest.raises(pika.exceptions.ChannelClosedByBroker) as e:
        ch.queue_declare(queue="py_conflict", durable=True)
    assert e.value.reply_code == 406
    assert conn.is_open
    conn.close()
    bad = pika.ConnectionParameters(
        host="127.0.0.1", port=amqp_port, credentials=pika.PlainCredentials("guest", "nope")
    )
    with pytest.raises(pika.exceptions.ProbableAuthenticationError):
        pika.BlockingConnection(bad)


def test_publisher_confirms_and_mandatory(amqp_port):
    conn = connect(amqp_port)
    ch = conn.channel()
    ch.confirm_delivery()
    ch.queue_declare(queue="py_confirm")
    ch.basic_publish(exchange="", routing_key="py_confirm", body=b"ok", mandatory=True)
    with pytest.raises(pika.exceptions.UnroutableError):
        ch.basic_publish(exchange="amq.direct", routing_key="nowhere", body=b"lost", mandatory=True)
    conn.close()
