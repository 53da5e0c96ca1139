"""rabbitmqadmin v2 (RabbitMQ's own CLI for the HTTP API, a Rust binary) driving Junction
unchanged: declare, list, publish, get, purge, delete, policies, definitions export/import.
Its effects are checked through the API itself, so a command that "succeeds" without doing
anything fails the test."""
import json
import os
import subprocess
import urllib.request
import base64


def admin(management_port, *args):
    exe = os.environ.get("RABBITMQADMIN", "rabbitmqadmin")
    cmd = [exe, "--host", "127.0.0.1", "--port", str(management_port),
           "--username", "guest", "--password", "guest", "--non-interactive", *args]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=30)
    assert done.returncode == 0, f"{args}: {done.stdout}{done.stderr}"
    return done.stdout


def api(management_url, path):
    req = urllib.request.Request(management_url + path)
    token = base64.b64encode(b"guest:guest").decode()
    req.add_header("Authorization", "Basic " + token)
    with urllib.request.urlopen(req, timeout=10) as r:
        return json.load(r)


def test_queue_life_cycle(management_url, management_port):
    run = lambda *a: admin(management_port, *a)
    run("declare", "queue", "--name", "cli-demo", "--durable", "true")
    assert api(management_url, "/api/queues/%2F/cli-demo")["durable"] is True
    assert "routed" in run("publish", "message", "--routing-key", "cli-demo", "--payload", "hello")
    assert api(management_url, "/api/queues/%2F/cli-demo")["messages"] == 1
    assert "cli-demo" in run("list", "queues")
    got = run("get", "messages", "--queue", "cli-demo", "--count", "1",
              "--ack-mode", "ack_requeue_true")
    assert "hello" in got
    assert api(management_url, "/api/queues/%2F/cli-demo")["messages"] == 1, "requeued"
    run("purge", "queue", "--name", "cli-demo")
    assert api(management_url, "/api/queues/%2F/cli-demo")["messages"] == 0
    run("delete", "queue", "--name", "cli-demo")
    names = [q["name"] for q in api(management_url, "/api/queues")]
    assert "cli-demo" not in names


def test_policy_and_definitions_round_trip(management_url, management_port, tmp_path):
    run = lambda *a: admin(management_port, *a)
    run("declare", "queue", "--name", "cli-capped", "--durable", "true")
    run("declare", "policy", "--name", "cli-cap", "--pattern", "^cli-capped$",
        "--definition", '{"max-length": 1}', "--apply-to", "queues")
    for body in ("one", "two", "three"):
        run("publish", "message", "--routing-key", "cli-capped", "--payload", body)
    q = api(management_url, "/api/queues/%2F/cli-capped")
    assert (q["policy"], q["messages"]) == ("cli-cap", 1)
    assert "cli-cap" in run("list", "policies")

    exported = tmp_path / "definitions.json"
    run("definitions", "export", "--file", str(exported))
    defs = json.loads(exported.read_text())
    assert "cli-capped" in [q["name"] for q in defs["queues"]]
    assert "cli-cap" in [p["name"] for p in defs["policies"]]
    run("delete", "policy", "--name", "cli-cap")
    run("delete", "queue", "--name", "cli-capped")
    assert api(management_url, "/api/policies") == []
    run("definitions", "import", "--file", str(exported))
    q = api(management_url, "/api/queues/%2F/cli-capped")
    assert q["policy"] == "cli-cap", "queue and policy are back from the file"
    run("delete", "policy", "--name", "cli-cap")
    run("delete", "queue", "--name", "cli-capped")


def test_a_refusal_is_an_error_exit(management_port):
    exe = os.environ.get("RABBITMQADMIN", "rabbitmqadmin")
    done = subprocess.run(
        [exe, "--host", "127.0.0.1", "--port", str(management_port), "--username", "guest",
         "--password", "wrong", "--non-interactive", "list", "queues"],
        capture_output=True, text=True, timeout=30)
    assert done.returncode != 0
