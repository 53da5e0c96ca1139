"""README's worked example, run exactly as written: its three code blocks (backend.py with pika,
browser.mjs with @stomp/stompjs over WebSocket, the mosquitto_pub device) against a `junction`
started with its embedded defaults (default ports, a fresh data directory)."""
import pathlib
import re
import signal
import socket
import subprocess
import sys
import tempfile
import time

ROOT = pathlib.Path(__file__).resolve().parents[3]
NODE_DIR = ROOT / "tests" / "interop" / "node"
DEADLINE = 30


def readme_blocks():
    """The fenced blocks of the worked example, keyed by their first line."""
    text = (ROOT / "README.md").read_text()
    section = text.split("### Worked example", 1)[1].split("\n## ", 1)[0]
    blocks = {}
    for body in re.findall(r"```[a-z]*\n(.*?)```", section, flags=re.S):
        blocks[body.splitlines()[0]] = body
    return blocks


def wait_port(port):
    end = time.monotonic() + DEADLINE
    while time.monotonic() < end:
        try:
            socket.create_connection(("127.0.0.1", port), 0.2).close()
            return
        except OSError:
            time.sleep(0.05)
    raise AssertionError(f"nothing listens on {port}")


def wait_line(proc, out_path, needle):
    end = time.monotonic() + DEADLINE
    while time.monotonic() < end:
        text = out_path.read_text()
        if needle in text:
            return text
        if proc.poll() is not None and needle not in out_path.read_text():
            raise AssertionError(f"exited before printing {needle!r}:\n{out_path.read_text()}")
        time.sleep(0.05)
    raise AssertionError(f"no {needle!r} within {DEADLINE}s:\n{out_path.read_text()}")


def test_worked_example_runs_as_written():
    blocks = readme_blocks()
    backend = blocks["# backend.py: a queue bound to every room's temperature"]
    browser = blocks["// browser.mjs: the page's code; in a browser, drop the ws import and webSocketFactory"]
    device = blocks["# device"]
    with tempfile.TemporaryDirectory() as tmp:
        tmp = pathlib.Path(tmp)
        broker = subprocess.Popen(
            [str(ROOT / "target" / "debug" / "junction"), "--data-dir", str(tmp / "data")],
            stderr=open(tmp / "junction.log", "w"),
        )
        procs = [broker]
        browser_file = NODE_DIR / ".readme-example-browser.mjs"
        try:
            for port in (5672, 15674, 1883):
                wait_port(port)
            (tmp / "backend.py").write_text(backend)
            browser_file.write_text(browser)
            backend_out, browser_out = tmp / "backend.out", tmp / "browser.out"
            b = subprocess.Popen(
                [sys.executable, str(tmp / "backend.py")],
                stdout=open(backend_out, "w"), stderr=subprocess.STDOUT,
            )
            w = subprocess.Popen(
                ["node", str(browser_file)], cwd=NODE_DIR,
                stdout=open(browser_out, "w"), stderr=subprocess.STDOUT,
            )
            procs += [b, w]
            wait_line(b, backend_out, "backend: waiting")
            wait_line(w, browser_out, "browser: subscribed")
            subprocess.run(["bash", "-c", device], check=True, timeout=DEADLINE)
            assert b.wait(timeout=DEADLINE) == 0, backend_out.read_text()
            assert w.wait(timeout=DEADLINE) == 0, browser_out.read_text()
            assert "backend: sensors.kitchen.temp = 21.5 from kitchen-sensor" in backend_out.read_text()
            assert "browser: /topic/sensors.kitchen.temp = 21.5" in browser_out.read_text()
        finally:
            browser_file.unlink(missing_ok=True)
            for p in procs[1:]:
                if p.poll() is None:
                    p.kill()
                    p.wait()
            broker.send_signal(signal.SIGTERM)
            assert broker.wait(timeout=DEADLINE) == 0
