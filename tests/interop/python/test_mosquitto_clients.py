"""Debian's mosquitto_pub / mosquitto_sub against Junction, including QoS 2 and a persistent
session (-c) across client restarts."""
import os
import select
import subprocess
import time

PORT = os.environ.get("JUNCTION_MQTT_PORT", "1883")
TIMEOUT = 15


def sub(*args):
    return subprocess.Popen(
        ["mosquitto_sub", "-h", "127.0.0.1", "-p", PORT, "-W", str(TIMEOUT), *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def pub(*args):
    subprocess.run(["mosquitto_pub", "-h", "127.0.0.1", "-p", PORT, *args], check=True, timeout=TIMEOUT)


class Lines:
    """Reads a subprocess's stdout line by line from the raw pipe, with deadlines."""

    def __init__(self, proc):
        self.fd = proc.stdout.fileno()
        self.buf = b""

    def next(self, deadline):
        while b"\n" not in self.buf:
            remaining = deadline - time.monotonic()
            ready, _, _ = select.select([self.fd], [], [], max(remaining, 0))
            assert ready, "timed out waiting for mosquitto_sub output"
            chunk = os.read(self.fd, 4096)
            assert chunk, "mosquitto_sub exited"
            self.buf += chunk
        line, self.buf = self.buf.split(b"\n", 1)
        return line.decode()

    def poll(self, seconds):
        """A line if one arrives within `seconds`, else None."""
        try:
            return self.next(time.monotonic() + seconds)
        except AssertionError:
            return None


def test_qos2_publish_and_subscribe():
    s = sub("-t", "mosq/qos2", "-q", "2", "-v")
    lines = Lines(s)
    deadline = time.monotonic() + TIMEOUT
    try:
        # Probe until the subscription is live, then send the real messages.
        while lines.poll(0.2) is None:
            assert time.monotonic() < deadline, "subscription never became live"
            pub("-t", "mosq/qos2", "-q", "2", "-m", "probe")
        pub("-t", "mosq/qos2", "-q", "2", "-m", "hello 1")
        pub("-t", "mosq/qos2", "-q", "2", "-m", "hello 2")
        got = []
        while len(got) < 2:
            line = lines.next(deadline)
            if line != "mosq/qos2 probe":
                got.append(line)
        assert got == ["mosq/qos2 hello 1", "mosq/qos2 hello 2"], got
    finally:
        s.kill()
        s.wait()


def test_persistent_session_with_clean_flag_off():
    # Subscribe with a persistent session and leave at once (-E).
    s = sub("-t", "mosq/persist", "-q", "1", "-c", "-i", "mosq-persist", "-E")
    s.communicate(timeout=TIMEOUT)
    assert s.returncode == 0
    pub("-t", "mosq/persist", "-q", "1", "-m", "queued while away")
    s = sub("-t", "mosq/persist", "-q", "1", "-c", "-i", "mosq-persist", "-C", "1")
    out, err = s.communicate(timeout=TIMEOUT)
    assert s.returncode == 0, err
    assert out.strip() == "queued while away"


def test_retained_message():
    pub("-t", "mosq/retained", "-r", "-q", "1", "-m", "kept")
    s = sub("-t", "mosq/retained", "-C", "1", "-v")
    out, _ = s.communicate(timeout=TIMEOUT)
    assert out.strip() == "mosq/retained kept"
    pub("-t", "mosq/retained", "-r", "-n")
