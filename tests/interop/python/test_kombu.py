"""kombu (Celery's transport) against Junction: SimpleQueue and Producer/Consumer."""
import socket

from kombu import Connection, Consumer, Exchange, Producer, Queue


def test_simple_queue_put_get(amqp_url):
    with Connection(amqp_url, connect_timeout=15) as conn:
        q = conn.SimpleQueue("kombu_simple")
        for i in range(20):
            q.put({"n": i}, serializer="json")
        got = []
        for _ in range(20):
            msg = q.get(block=True, timeout=15)
            got.append(msg.payload["n"])
            msg.ack()
        assert got == list(range(20))
        assert q.qsize() == 0
        q.close()


def test_producer_consumer_with_declare_lists(amqp_url):
    media = Exchange("kombu_media", type="direct", durable=True)
    video = Queue("kombu_video", exchange=media, routing_key="video", durable=True)
    images = Queue("kombu_images", exchange=media, routing_key="images", durable=True)
    received = []
    with Connection(amqp_url, connect_timeout=15) as conn:
        producer = Producer(conn.channel(), exchange=media)
        for key in ["video", "images", "video", "audio"]:
            producer.publish({"kind": key}, routing_key=key, declare=[video, images], serializer="json")

        def on_message(body, message):
            received.append((message.delivery_info["routing_key"], body["kind"]))
            message.ack()

        with Consumer(conn.channel(), queues=[video, images], callbacks=[on_message]):
            while len(received) < 3:
                try:
                    conn.drain_events(timeout=15)
                except socket.timeout:
                    break
    assert sorted(received) == [("images", "images"), ("video", "video"), ("video", "video")]
