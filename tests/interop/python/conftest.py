"""Where the Junction under test listens (set by tests/run-all.sh)."""
import os

import pytest


@pytest.fixture
def amqp_port():
    return int(os.environ["JUNCTION_AMQP_PORT"])


@pytest.fixture
def amqp_url(amqp_port):
    return f"amqp://guest:guest@127.0.0.1:{amqp_port}/%2f"


@pytest.fixture
def management_port():
    return int(os.environ["JUNCTION_MANAGEMENT_PORT"])


@pytest.fixture
def management_url():
    return f"http://127.0.0.1:{int(os.environ['JUNCTION_MANAGEMENT_PORT'])}"


@pytest.fixture
def prometheus_url():
    return f"http://127.0.0.1:{int(os.environ['JUNCTION_PROMETHEUS_PORT'])}"
