"""`junction ctl` for the interop tests: the binary and config run-all.sh exports."""
import os
import subprocess

TIMEOUT = 15


def ctl(*args):
    """Runs `junction ctl ARGS` against the node of JUNCTION_CONFIG; returns stdout and
    fails the test unless it exits 0."""
    run = subprocess.run([os.environ["JUNCTION_BIN"], "ctl", "--config",
                          os.environ["JUNCTION_CONFIG"], *args],
                         capture_output=True, text=True, timeout=TIMEOUT)
    assert run.returncode == 0, f"{args}: {run.returncode} {run.stderr}"
    return run.stdout
