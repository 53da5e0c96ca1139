"""What the console test asks of pika, one verb per run, against the Junction under test.

  declare QUEUE N        declare QUEUE (durable) and publish N messages to it
  receive QUEUE SECONDS  print "ready", then the body of the first message consumed
  login USER PASSWORD    open an AMQP connection as USER on vhost /, exit 0 if it opened
  many PREFIX N          declare N queues PREFIX-00000 ... (transient)
  unmany PREFIX N        delete them
"""
import os
import sys

import pika

PORT = int(os.environ["JUNCTION_AMQP_PORT"])


def params(user="guest", password="guest"):
    return pika.ConnectionParameters(
        "127.0.0.1", PORT, "/", pika.PlainCredentials(user, password),
        socket_timeout=10, blocked_connection_timeout=10,
    )


def main(verb, *args):
    if verb == "login":
        user, password = args
        try:
            pika.BlockingConnection(params(user, password)).close()
        except pika.exceptions.AMQPError as e:
            print(f"refused: {e!r}")
            return 1
        print("opened")
        return 0
    conn = pika.BlockingConnection(params())
    ch = conn.channel()
    if verb == "declare":
        queue, n = args[0], int(args[1])
        ch.queue_declare(queue, durable=True)
        ch.confirm_delivery()
        for i in range(n):
            ch.basic_publish("", queue, f"order {i}".encode())
        conn.close()
        return 0
    if verb in ("many", "unmany"):
        prefix, n = args[0], int(args[1])
        for i in range(n):
            name = f"{prefix}-{i:05d}"
            if verb == "many":
                ch.queue_declare(name)
            else:
                ch.queue_delete(name)
        conn.close()
        return 0
    if verb == "receive":
        queue, seconds = args[0], float(args[1])
        ch.queue_declare(queue, durable=True)
        print("ready", flush=True)
        for method, _props, body in ch.consume(queue, inactivity_timeout=seconds):
            if method is None:
                print("nothing arrived")
                return 1
            ch.basic_ack(method.delivery_tag)
            print(body.decode(), flush=True)
            conn.close()
            return 0
    print(f"unknown verb {verb}")
    return 64


if __name__ == "__main__":
    sys.exit(main(*sys.argv[1:]))
