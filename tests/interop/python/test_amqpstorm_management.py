"""The management API driven by amqpstorm's ManagementApi, as a Python script written for
RabbitMQ would drive it."""
import pika
import pytest
from amqpstorm.management import ApiError, ManagementApi


def test_overview_whoami_and_aliveness(management_url):
    api = ManagementApi(management_url, "guest", "guest", timeout=10)
    assert api.whoami()["name"] == "guest"
    assert api.overview()["product_name"] == "Junction"
    assert api.aliveness_test("/")["status"] == "ok"


def test_vhosts_and_users_round_trip(management_url, amqp_port):
    api = ManagementApi(management_url, "guest", "guest", timeout=10)
    api.virtual_host.create("storm")
    assert "storm" in [v["name"] for v in api.virtual_host.list()]
    api.user.create("storm-user", "storm-pass", tags="management")
    assert api.user.get("storm-user")["tags"] == ["management"]
    # The new user logs in to the API with its password...
    as_user = ManagementApi(management_url, "storm-user", "storm-pass", timeout=10)
    assert as_user.whoami()["name"] == "storm-user"
    # ...and AMQP knows it too, though it may open no vhost yet (no permissions).
    params = pika.ConnectionParameters(
        "127.0.0.1", amqp_port, "/", pika.PlainCredentials("storm-user", "storm-pass")
    )
    with pytest.raises(pika.exceptions.ProbableAccessDeniedError):
        pika.BlockingConnection(params)
    with pytest.raises(ApiError) as refused:
        as_user.virtual_host.create("not-mine")
    assert refused.value.error_code == 403
    api.user.delete("storm-user")
    api.virtual_host.delete("storm")
    assert "storm" not in [v["name"] for v in api.virtual_host.list()]
    with pytest.raises(ApiError) as gone:
        api.virtual_host.get("storm")
    assert gone.value.error_code == 404
