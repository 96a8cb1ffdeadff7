"""Webhooks (issue 14, part 4): a reuser subscribes with their key, each publication is POSTed to a
real receiver on 127.0.0.1, signed with HMAC-SHA256 over the raw body, retried with backoff when
the receiver fails, and every attempt is in the delivery history; on SQLite and PostgreSQL.

The signature is checked here with `hmac` directly, as a subscriber would, not with the catalog's
own signing function. Retries wait 0.2 s, then 0.4 s (webhook_retry_seconds), to keep the run short.
"""

from __future__ import annotations

import dataclasses
import hashlib
import hmac
import json
import logging
import socket
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from dinum_pipelines.catalog import CatalogSettings, Publisher, RunningCatalog, bootstrap_publisher, serve_in_thread
from dinum_pipelines.catalog import notifications
from dinum_pipelines.catalog.store import CatalogStore
from dinum_pipelines.catalog.webhooks import WebhookDeliverer
from dinum_pipelines_tests.catalog.conftest import BACKENDS, Api, settings_for
from dinum_pipelines_tests.catalog.test_openapi import assert_conforms
from dinum_pipelines_tests.httpserver import Reply, ScriptedServer

RETRY_SECONDS = 0.2
ATTEMPTS = 4  # 0.2 + 0.4 + 0.8 s of backoff before a delivery fails
CSV = b"siren,nom\n123456789,Acme\n"


@pytest.fixture(params=BACKENDS)
def catalog_settings(request: pytest.FixtureRequest, tmp_path: Path) -> CatalogSettings:
    """The shared settings, with quick retries and deliveries to loopback allowed (the receiver)."""
    settings = settings_for(request.param, tmp_path / "catalog", request)
    return dataclasses.replace(
        settings, webhook_retry_seconds=RETRY_SECONDS, webhook_attempts=ATTEMPTS, webhook_timeout_seconds=2,
        fetch_private_urls=True,
    )


@pytest.fixture
def receiver() -> Iterator[ScriptedServer]:
    with ScriptedServer() as server:
        yield server


def wait_for(condition: Callable[[], Any], timeout: float = 10) -> Any:
    deadline = time.monotonic() + timeout
    while not (result := condition()):
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.02)
    return result


def subscribe(api: Api, url: str, **target: str) -> dict[str, Any]:
    response = api.post("/me/webhooks/", json={"url": url, **target})
    assert response.status_code == 201, response.text
    return response.json()


def received(receiver: ScriptedServer, path: str) -> list[dict[str, Any]]:
    return [request for request in receiver.requests if request["path"] == path]


def deliveries(api: Api, webhook: dict[str, Any]) -> list[dict[str, Any]]:
    response = api.get(f"/me/webhooks/{webhook['id']}/deliveries/")
    assert response.status_code == 200, response.text
    return response.json()


def expected_signature(secret: str, body: bytes) -> str:
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def test_a_publication_is_posted_to_the_subscriber_signed_over_the_raw_body(
    api: Api, dataset: dict[str, Any], receiver: ScriptedServer, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="dinum_pipelines.catalog")
    receiver.plan(Reply(204))
    webhook = subscribe(api, f"{receiver.url}/hook", dataset=dataset["slug"])
    secret = webhook["secret"]
    assert webhook["dataset"] == dataset["id"] and webhook["organization"] is None and len(secret) == 64
    assert_conforms(webhook, "NewWebhook")

    uploaded = api.upload(dataset["id"], "sirene.csv", CSV)
    assert uploaded.status_code == 201, uploaded.text
    [request] = wait_for(lambda: received(receiver, "/hook"))

    assert request["x-dinum-signature"] == expected_signature(secret, request["body"])
    assert request["x-dinum-signature"] != expected_signature("another secret", request["body"])
    assert request["x-dinum-event"] == "resource.created" and request["content-type"] == "application/json"
    body = json.loads(request["body"])
    resource = uploaded.json()
    assert body["event"] == "resource.created"
    assert body["dataset"] == {
        "id": dataset["id"], "slug": dataset["slug"], "title": dataset["title"], "page": dataset["page"],
        "uri": dataset["uri"], "organization": dataset["organization"]["id"],
    }
    assert body["resource"] == {name: resource[name] for name in ("id", "title", "url", "latest", "format", "checksum", "filesize")}
    assert body["resource"]["checksum"]["value"] == hashlib.sha1(CSV).hexdigest() and body["resource"]["filesize"] == len(CSV)

    [delivery] = wait_for(lambda: [d for d in deliveries(api, webhook) if d["status"] == "delivered"])
    assert delivery["id"] == request["x-dinum-delivery"]
    assert delivery["event"] == "resource.created" and delivery["attempts"] == 1 and delivery["last_status_code"] == 204
    assert delivery["next_attempt_at"] is None and delivery["delivered_at"] is not None
    # The secret is shown once: not in the listing, the history, nor the log.
    listed = api.get("/me/webhooks/").json()
    assert [item["id"] for item in listed] == [webhook["id"]] and "secret" not in listed[0]
    assert_conforms(listed[0], "Webhook")
    assert_conforms(delivery, "WebhookDelivery")
    assert secret not in api.get(f"/me/webhooks/{webhook['id']}/deliveries/").text
    assert secret not in caplog.text and f"delivery {delivery['id']}" in caplog.text


def test_a_failing_receiver_is_retried_with_backoff_until_it_recovers(
    api: Api, publisher: Publisher, receiver: ScriptedServer
) -> None:
    receiver.plan(Reply(500), Reply(500), Reply(200))
    webhook = subscribe(api, f"{receiver.url}/flaky", organization=publisher.organization_slug)
    dataset = api.create_dataset(organization=publisher.organization_id)  # dataset.created, to the organization's subscribers

    requests_ = wait_for(lambda: len(received(receiver, "/flaky")) >= 3 and received(receiver, "/flaky"))
    [delivery] = wait_for(lambda: [d for d in deliveries(api, webhook) if d["status"] != "pending"])

    assert delivery["status"] == "delivered" and delivery["attempts"] == 3
    assert [attempt["status_code"] for attempt in delivery["history"]] == [500, 500, 200]
    assert_conforms(delivery, "WebhookDelivery")
    assert [attempt["error"] for attempt in delivery["history"]] == ["HTTP 500", "HTTP 500", None]
    # One delivery, attempted three times: the same id, the same signed body each time.
    assert {request["x-dinum-delivery"] for request in requests_} == {delivery["id"]}
    assert len({request["body"] for request in requests_}) == 1
    assert json.loads(requests_[0]["body"])["dataset"]["id"] == dataset["id"]
    first_wait = requests_[1]["received_at"] - requests_[0]["received_at"]
    second_wait = requests_[2]["received_at"] - requests_[1]["received_at"]
    assert first_wait >= RETRY_SECONDS and second_wait >= 2 * RETRY_SECONDS  # exponential backoff
    time.sleep(3 * RETRY_SECONDS)
    assert len(received(receiver, "/flaky")) == 3  # delivered once: no attempt after the 200


def test_a_receiver_that_cannot_be_reached_gets_every_attempt_then_a_failure(
    catalog: RunningCatalog, api: Api, dataset: dict[str, Any]
) -> None:
    """Nothing listens on the port: each attempt fails at once, and after webhook_attempts the delivery fails."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    webhook = subscribe(api, f"http://127.0.0.1:{port}/gone", dataset=dataset["id"])
    api.put(f"/datasets/{dataset['id']}/", json={"description": "Autre description"})

    [delivery] = wait_for(
        lambda: [d for d in deliveries(api, webhook) if d["status"] == "failed"]
    )
    assert delivery["event"] == "dataset.updated" and delivery["attempts"] == catalog.settings.webhook_attempts == ATTEMPTS
    assert [attempt["error"] for attempt in delivery["history"]] == ["connection failed"] * ATTEMPTS
    assert all(attempt["status_code"] is None for attempt in delivery["history"])
    assert delivery["next_attempt_at"] is None and delivery["delivered_at"] is None
    assert_conforms(delivery, "WebhookDelivery")


def test_a_delivery_survives_a_restart(catalog_settings: CatalogSettings, receiver: ScriptedServer) -> None:
    """Deliveries wait in the database: a catalog stopped between two attempts leaves the retry to
    the next catalog started on the same database."""
    receiver.plan(Reply(503), Reply(200))
    slow_retry = dataclasses.replace(catalog_settings, webhook_retry_seconds=1)
    with serve_in_thread(slow_retry) as first:
        publisher = bootstrap_publisher(first.store, org_slug="insee", org_name="Insee", email="bot@insee.fr", name="Bot")
        api = Api(first, publisher.token)
        webhook = subscribe(api, f"{receiver.url}/restart", organization="insee")
        api.create_dataset(organization=publisher.organization_id)
        wait_for(lambda: received(receiver, "/restart"))
    assert len(received(receiver, "/restart")) == 1  # stopped before the retry was due
    with serve_in_thread(catalog_settings) as second:
        api = Api(second, publisher.token)
        [delivery] = wait_for(lambda: [d for d in deliveries(api, webhook) if d["status"] == "delivered"])
    assert [attempt["status_code"] for attempt in delivery["history"]] == [503, 200]
    assert len({request["x-dinum-delivery"] for request in received(receiver, "/restart")}) == 1


def test_unsubscribing_stops_the_deliveries(api: Api, dataset: dict[str, Any], receiver: ScriptedServer) -> None:
    receiver.plan(Reply(200), Reply(200))
    kept = subscribe(api, f"{receiver.url}/kept", dataset=dataset["id"])
    dropped = subscribe(api, f"{receiver.url}/dropped", dataset=dataset["id"])
    assert api.delete(f"/me/webhooks/{dropped['id']}/").status_code == 204

    api.upload(dataset["id"], "sirene.csv", CSV)
    wait_for(lambda: received(receiver, "/kept"))
    assert received(receiver, "/dropped") == []
    assert [item["id"] for item in api.get("/me/webhooks/").json()] == [kept["id"]]
    assert api.get(f"/me/webhooks/{dropped['id']}/deliveries/").status_code == 404
    assert api.delete(f"/me/webhooks/{dropped['id']}/").status_code == 404


def test_a_subscription_is_its_owners_only(api: Api, outsider: Api, anonymous: Api, dataset: dict[str, Any]) -> None:
    webhook = subscribe(api, "http://127.0.0.1:9/hook", dataset=dataset["id"])
    assert outsider.get("/me/webhooks/").json() == []
    for response in (
        outsider.get(f"/me/webhooks/{webhook['id']}/deliveries/"), outsider.delete(f"/me/webhooks/{webhook['id']}/"),
    ):
        assert response.status_code == 404 and response.json()["message"] == "Webhook not found"
    assert [item["id"] for item in api.get("/me/webhooks/").json()] == [webhook["id"]]  # still there
    assert anonymous.get("/me/webhooks/").status_code == 401
    assert anonymous.post("/me/webhooks/", json={"url": "http://127.0.0.1:9/", "dataset": dataset["id"]}).status_code == 401


def test_a_private_dataset_is_subscribed_to_and_heard_of_by_its_editors_only(
    api: Api, outsider: Api, publisher: Publisher, receiver: ScriptedServer
) -> None:
    private = api.create_dataset(organization=publisher.organization_id, private=True)
    refused = outsider.post("/me/webhooks/", json={"url": f"{receiver.url}/outsider", "dataset": private["slug"]})
    assert refused.status_code == 400 and list(refused.json()["errors"]) == ["dataset"]
    # Worded as for a dataset that does not exist: the refusal does not tell that it does.
    unknown = outsider.post("/me/webhooks/", json={"url": f"{receiver.url}/outsider", "dataset": "no-such-dataset"})
    assert unknown.json()["errors"]["dataset"] == ["Unknown dataset 'no-such-dataset'."]
    assert refused.json()["errors"]["dataset"] == [f"Unknown dataset '{private['slug']}'."]
    subscribe(api, f"{receiver.url}/editor", dataset=private["id"])

    # Both follow the organization: the outsider hears of its public datasets only.
    receiver.plan(*[Reply(200)] * 4)
    subscribe(api, f"{receiver.url}/editor", organization=publisher.organization_id)
    subscribe(outsider, f"{receiver.url}/outsider", organization=publisher.organization_slug)
    api.upload(private["id"], "secret.csv", CSV)
    public = api.create_dataset(organization=publisher.organization_id)

    wait_for(lambda: received(receiver, "/outsider"))
    wait_for(lambda: len(received(receiver, "/editor")) == 3)
    heard = {path: [json.loads(r["body"])["dataset"]["id"] for r in received(receiver, path)] for path in ("/editor", "/outsider")}
    assert heard["/outsider"] == [public["id"]]
    assert sorted(heard["/editor"]) == sorted([private["id"], private["id"], public["id"]])  # via the dataset and the organization


BAD_SUBSCRIPTIONS = [
    ({"url": "http://127.0.0.1:9/"}, "dataset"),  # neither a dataset nor an organization
    ({"url": "http://127.0.0.1:9/", "dataset": "x", "organization": "y"}, "dataset"),  # both
    ({"dataset": "x"}, "url"),
    ({"url": "ftp://127.0.0.1/", "dataset": "x"}, "url"),
    ({"url": "http://127.0.0.1:9/\u0000", "dataset": "x"}, "url"),
    ({"url": "http://127.0.0.1:9/" + "a" * 2000, "dataset": "x"}, "url"),
    ({"url": 12, "dataset": "x"}, "url"),
    ({"url": "http://127.0.0.1:9/", "organization": "no-such-organization"}, "organization"),
    ([], "payload"),
]


def test_a_bad_subscription_is_a_400_naming_the_field(api: Api) -> None:
    for body, field in BAD_SUBSCRIPTIONS:
        response = api.post("/me/webhooks/", json=body)
        assert response.status_code == 400, (body, response.text)
        assert field in response.json()["errors"], (body, response.text)
    assert api.get("/me/webhooks/").json() == []


def test_a_user_has_a_bounded_number_of_subscriptions(
    api: Api, dataset: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(notifications, "MAX_SUBSCRIPTIONS", 2)  # the catalog is served by this process
    for number in range(2):
        subscribe(api, f"http://127.0.0.1:9/{number}", dataset=dataset["id"])
    refused = api.post("/me/webhooks/", json={"url": "http://127.0.0.1:9/2", "dataset": dataset["id"]})
    assert refused.status_code == 400 and refused.json()["errors"]["url"] == ["At most 2 subscriptions per user: delete one first."]
    api.delete(f"/me/webhooks/{api.get('/me/webhooks/').json()[0]['id']}/")
    subscribe(api, "http://127.0.0.1:9/2", dataset=dataset["id"])


def test_a_deployment_refuses_private_addresses(catalog: RunningCatalog, publisher: Publisher, dataset: dict[str, Any]) -> None:
    """fetch_private_urls off (a deployment's default): no subscription to the catalog's own network."""
    with serve_in_thread(dataclasses.replace(catalog.settings, fetch_private_urls=False)) as deployed:
        api = Api(deployed, publisher.token)
        for url in ("http://127.0.0.1:9/", "http://localhost/hook", "http://10.1.2.3/hook", "http://[::1]/hook"):
            response = api.post("/me/webhooks/", json={"url": url, "dataset": dataset["id"]})
            assert response.status_code == 400 and list(response.json()["errors"]) == ["url"], (url, response.text)


def test_two_catalog_processes_on_one_database_deliver_each_change_once(
    catalog: RunningCatalog, api: Api, dataset: dict[str, Any], receiver: ScriptedServer, caplog: pytest.LogCaptureFixture
) -> None:
    """A second store and delivery thread on the same database (another node): the claims share
    the work (the receiver is slow, so both threads deliver), and no change is sent twice."""
    caplog.set_level(logging.INFO, logger="dinum_pipelines.catalog.webhooks")
    changes = 8
    receiver.plan(*[Reply(200, delay=0.25)] * changes)
    webhook = subscribe(api, f"{receiver.url}/once", dataset=dataset["id"])
    other_node = CatalogStore(catalog.settings)
    deliverer = WebhookDeliverer(other_node)
    deliverer.start()
    try:
        for number in range(changes):
            api.put(f"/datasets/{dataset['id']}/", json={"description": f"Version {number}"})
        wait_for(lambda: all(d["status"] == "delivered" for d in deliveries(api, webhook)) and len(deliveries(api, webhook)) == changes)
    finally:
        deliverer.stop()
        other_node.close()
    delivery_ids = [request["x-dinum-delivery"] for request in received(receiver, "/once")]
    assert len(delivery_ids) == changes and len(set(delivery_ids)) == changes
    history = deliveries(api, webhook)
    assert [d["attempts"] for d in history] == [1] * changes and {d["status"] for d in history} == {"delivered"}
    threads = {record.thread for record in caplog.records if record.getMessage().startswith("webhook delivery")}
    assert len(threads) == 2, "both nodes delivered"
