"""TLS with the clients users run: pika (ssl_options, and EXTERNAL with a client certificate),
paho-mqtt (tls_set), stomp.py (set_ssl) and HTTPS for the management API, against the shared
Junction whose [tls] section run-all.sh writes (verify = "peer", cert_login = true, a test PKI
made by junction-test-certs). An expired client certificate and a TLS 1.1 client are refused
and counted; SIGHUP and `junction ctl reload_certificates` swap the certificate for new
connections while an open one carries on."""
import base64
import json
import os
import queue
import re
import shutil
import signal
import socket
import ssl
import subprocess
import tempfile
import time
import urllib.request
import warnings

import paho.mqtt.client as mqtt
import pika
import pytest
import stomp
from junction_ctl import ctl
from paho.mqtt.enums import CallbackAPIVersion

TIMEOUT = 15
PKI = os.environ["JUNCTION_TLS_DIR"]
AMQPS = int(os.environ["JUNCTION_AMQPS_PORT"])
STOMPS = int(os.environ["JUNCTION_STOMPS_PORT"])
MQTTS = int(os.environ["JUNCTION_MQTTS_PORT"])
HTTPS = int(os.environ["JUNCTION_HTTPS_PORT"])
MGMT = int(os.environ["JUNCTION_MANAGEMENT_PORT"])


def pki(name, base=PKI):
    return os.path.join(base, name)


def context(ca=pki("ca.pem"), client=None, base=PKI):
    ctx = ssl.create_default_context(cafile=ca)
    if client:
        ctx.load_cert_chain(pki(f"{client}.pem", base), pki(f"{client}.key", base))
    return ctx


def api(path):
    req = urllib.request.Request(f"http://127.0.0.1:{MGMT}{path}")
    req.add_header("Authorization", "Basic " + base64.b64encode(b"guest:guest").decode())
    return json.load(urllib.request.urlopen(req, timeout=TIMEOUT))


def tls_refusals():
    url = f"http://127.0.0.1:{os.environ['JUNCTION_PROMETHEUS_PORT']}/metrics"
    text = urllib.request.urlopen(url, timeout=TIMEOUT).read().decode()
    m = re.search(r'^junction_refusals_total\{kind="tls_handshake"\} (\S+)$', text, re.M)
    return float(m.group(1))


def wait_for(cond, what):
    deadline = time.monotonic() + TIMEOUT
    while time.monotonic() < deadline:
        if cond():
            return
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


@pytest.fixture(scope="module", autouse=True)
def cert_user():
    """The user the client certificate's CN names."""
    ctl("add_user", "cert-user", "not-used-with-certificates")
    ctl("set_permissions", "-p", "/", "cert-user", ".*", ".*", ".*")
    yield
    ctl("delete_user", "cert-user")


def amqps(credentials=None, client=None, ca=pki("ca.pem"), base=PKI):
    params = pika.ConnectionParameters(
        "localhost", AMQPS,
        credentials=credentials or pika.PlainCredentials("guest", "guest"),
        ssl_options=pika.SSLOptions(context(ca, client, base), "localhost"),
        socket_timeout=TIMEOUT, blocked_connection_timeout=TIMEOUT)
    return pika.BlockingConnection(params)


def round_trip(conn, queue_name, body):
    ch = conn.channel()
    ch.queue_declare(queue_name, auto_delete=True)
    ch.basic_publish("", queue_name, body)
    deadline = time.monotonic() + TIMEOUT
    while time.monotonic() < deadline:
        _, _, got = ch.basic_get(queue_name, auto_ack=True)
        if got is not None:
            return got
        time.sleep(0.02)
    raise AssertionError("message not back")


def test_pika_over_amqps_and_the_connection_listing():
    conn = amqps()
    assert round_trip(conn, "tls-pika", b"secret") == b"secret"
    listed = [c for c in api("/api/connections") if c["port"] == AMQPS]
    assert listed and all(c["ssl"] for c in listed), listed
    assert listed[0]["ssl_protocol"] in ("TLSv1.3", "TLSv1.2")
    assert listed[0]["ssl_cipher"]
    conn.close()


def test_pika_external_logs_in_as_the_certificate_cn():
    conn = amqps(pika.credentials.ExternalCredentials(), client="client")
    assert round_trip(conn, "tls-external", b"as cert-user") == b"as cert-user"
    users = [c["user"] for c in api("/api/connections") if c["port"] == AMQPS]
    assert "cert-user" in users, users
    subjects = [c["peer_cert_subject"] for c in api("/api/connections") if c["user"] == "cert-user"]
    assert any("CN=cert-user" in s for s in subjects), subjects
    conn.close()
    # Without a certificate EXTERNAL is not even offered.
    with pytest.raises(pika.exceptions.AMQPConnectionError):
        amqps(pika.credentials.ExternalCredentials())


def test_expired_client_certificate_and_tls11_are_refused_and_counted():
    before = tls_refusals()
    with pytest.raises((pika.exceptions.AMQPConnectionError, ssl.SSLError, OSError)):
        conn = amqps(client="expired")
        conn.channel()
    # A client that offers TLS 1.1 only (allowed on this side with SECLEVEL=0).
    old = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    old.check_hostname = False
    old.verify_mode = ssl.CERT_NONE
    old.set_ciphers("DEFAULT@SECLEVEL=0")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        old.minimum_version = ssl.TLSVersion.TLSv1_1
        old.maximum_version = ssl.TLSVersion.TLSv1_1
    with socket.create_connection(("127.0.0.1", STOMPS), timeout=TIMEOUT) as raw:
        with pytest.raises((ssl.SSLError, ConnectionResetError)):
            old.wrap_socket(raw, server_hostname="localhost")
    # Both reached the broker as refused handshakes.
    wait_for(lambda: tls_refusals() >= before + 2, "two tls_handshake refusals")


class Collector(stomp.ConnectionListener):
    def __init__(self):
        self.messages = queue.Queue()

    def on_message(self, frame):
        self.messages.put(frame.body)


def stomps(client=None, **connect):
    conn = stomp.Connection([("localhost", STOMPS)], timeout=TIMEOUT)
    kwargs = {"for_hosts": [("localhost", STOMPS)], "ca_certs": pki("ca.pem")}
    if client:
        kwargs.update(cert_file=pki(f"{client}.pem"), key_file=pki(f"{client}.key"))
    conn.set_ssl(**kwargs)
    got = Collector()
    conn.set_listener("c", got)
    conn.connect(wait=True, **connect)
    return conn, got


def test_stomp_py_over_tls_with_a_password_and_with_a_certificate():
    conn, got = stomps(username="guest", passcode="guest")
    conn.subscribe("/queue/tls-stomp", id="1", ack="auto")
    conn.send("/queue/tls-stomp", "over stomps")
    assert got.messages.get(timeout=TIMEOUT) == "over stomps"
    conn.disconnect()
    # No login header: the certificate's CN is the user.
    conn, got = stomps(client="client")
    users = [c["user"] for c in api("/api/connections") if c["port"] == STOMPS]
    assert users == ["cert-user"], users
    conn.disconnect()


def test_paho_over_mqtts_with_a_password_and_with_a_certificate():
    received = queue.Queue()
    c = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="tls-paho")
    c.tls_set(ca_certs=pki("ca.pem"))
    c.username_pw_set("guest", "guest")
    subscribed = queue.Queue()
    c.on_message = lambda _c, _u, m: received.put(m.payload)
    c.on_subscribe = lambda _c, _u, mid, _codes, _p: subscribed.put(mid)
    c.connect("localhost", MQTTS)
    c.loop_start()
    wait_for(c.is_connected, "paho connected")
    _, mid = c.subscribe("tls/paho", qos=1)
    assert subscribed.get(timeout=TIMEOUT) == mid
    info = c.publish("tls/paho", b"over mqtts", qos=1)
    info.wait_for_publish(timeout=TIMEOUT)
    assert received.get(timeout=TIMEOUT) == b"over mqtts"
    c.loop_stop()
    c.disconnect()
    # No user name: logged in as the certificate's CN.
    d = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="tls-paho-cert")
    d.tls_set(ca_certs=pki("ca.pem"), certfile=pki("client.pem"), keyfile=pki("client.key"))
    codes = queue.Queue()
    d.on_connect = lambda _c, _u, _f, rc, _p: codes.put(rc)
    d.connect("localhost", MQTTS)
    d.loop_start()
    assert not codes.get(timeout=TIMEOUT).is_failure
    users = [c["user"] for c in api("/api/connections") if c["port"] == MQTTS]
    assert users == ["cert-user"], users
    d.loop_stop()
    d.disconnect()


def test_management_api_over_https():
    req = urllib.request.Request(f"https://localhost:{HTTPS}/api/overview")
    req.add_header("Authorization", "Basic " + base64.b64encode(b"guest:guest").decode())
    overview = json.load(urllib.request.urlopen(req, timeout=TIMEOUT, context=context()))
    protocols = {l["protocol"] for l in overview["listeners"]}
    assert {"amqp/ssl", "mqtt/ssl", "stomp/ssl", "https"} <= protocols, protocols
    bad = urllib.request.Request(f"https://localhost:{HTTPS}/api/overview")
    with pytest.raises(urllib.error.HTTPError) as e:
        urllib.request.urlopen(bad, timeout=TIMEOUT, context=context())
    assert e.value.code == 401


def handshake_ok(ctx):
    try:
        with socket.create_connection(("127.0.0.1", STOMPS), timeout=TIMEOUT) as raw:
            with ctx.wrap_socket(raw, server_hostname="localhost"):
                return True
    except (ssl.SSLError, OSError):
        return False


def test_sighup_and_ctl_reload_the_certificate_for_new_connections_only():
    fresh = tempfile.mkdtemp()
    saved = tempfile.mkdtemp()
    try:
        subprocess.run([os.environ["JUNCTION_CERTS_BIN"], fresh, "reloaded-server"],
                       check=True, capture_output=True, timeout=TIMEOUT)
        old_trust, new_trust = context(), context(pki("ca.pem", fresh))
        open_conn = amqps()
        for f in ("server.pem", "server.key"):
            shutil.copy(pki(f), pki(f, saved))
            shutil.copy(pki(f, fresh), pki(f))
        os.kill(int(os.environ["JUNCTION_PID"]), signal.SIGHUP)
        wait_for(lambda: handshake_ok(new_trust), "the new certificate after SIGHUP")
        assert not handshake_ok(old_trust)
        # The connection made before the reload carries on.
        assert round_trip(open_conn, "tls-reload", b"still open") == b"still open"
        # Back to the first certificate, with junction ctl this time (synchronous).
        for f in ("server.pem", "server.key"):
            shutil.copy(pki(f, saved), pki(f))
        ctl("reload_certificates")
        assert handshake_ok(old_trust)
        assert round_trip(open_conn, "tls-reload", b"still open") == b"still open"
        open_conn.close()
    finally:
        for f in ("server.pem", "server.key"):
            if os.path.exists(pki(f, saved)):
                shutil.copy(pki(f, saved), pki(f))
        ctl("reload_certificates")
        shutil.rmtree(fresh)
        shutil.rmtree(saved)
