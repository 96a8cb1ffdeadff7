"""API keys and permissions: who may read and write what."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from typing import Any

import pytest

from dinum_pipelines.catalog import Publisher, RunningCatalog
from dinum_pipelines.catalog.db import utcnow
from dinum_pipelines_tests.catalog.conftest import Api

WRITE_PAYLOAD = {"title": "Nouveau titre"}


def test_writes_need_a_key(anonymous: Api, dataset: dict[str, Any]) -> None:
    path = f"/datasets/{dataset['id']}/"
    responses = [
        anonymous.post("/datasets/", json={"title": "t", "description": "d"}),
        anonymous.put(path, json=WRITE_PAYLOAD),
        anonymous.delete(path),
        anonymous.upload(dataset["id"], "a.csv", b"a\n1\n"),
    ]
    assert [response.status_code for response in responses] == [401] * 4
    assert all("message" in response.json() for response in responses)


def test_anonymous_reads_are_allowed(anonymous: Api, dataset: dict[str, Any]) -> None:
    assert anonymous.get("/datasets/").status_code == 200
    assert anonymous.get(f"/datasets/{dataset['id']}/").status_code == 200
    assert anonymous.get("/organizations/insee/").status_code == 200


@pytest.mark.parametrize("method", ["GET", "PUT"])
def test_unknown_key_is_401_even_on_reads(catalog: RunningCatalog, dataset: dict[str, Any], method: str) -> None:
    response = Api(catalog, "udata_not-a-real-token").request(method, f"/datasets/{dataset['id']}/", json=WRITE_PAYLOAD)
    assert response.status_code == 401
    assert response.json() == {"message": "Invalid API token"}


def test_revoked_key(catalog: RunningCatalog, publisher: Publisher, dataset: dict[str, Any]) -> None:
    token, record = catalog.store.accounts.create_token(publisher.user_id, "temporary")
    client = Api(catalog, token)
    assert client.put(f"/datasets/{dataset['id']}/", json=WRITE_PAYLOAD).status_code == 200
    catalog.store.accounts.revoke_token(record["id"])
    response = client.put(f"/datasets/{dataset['id']}/", json=WRITE_PAYLOAD)
    assert (response.status_code, response.json()) == (401, {"message": "Revoked API token"})


def test_keys_are_checked_side_by_side(catalog: RunningCatalog, api: Api, monkeypatch: pytest.MonkeyPatch) -> None:
    """Two requests check their keys at the same time: each waits inside the check until the
    other is there too (the check of a key once held a lock for every request of the process)."""
    both_inside = threading.Barrier(2, timeout=10)
    authenticate = catalog.store.accounts.authenticate

    def meeting(token: str, *args: Any) -> dict[str, Any]:
        both_inside.wait()
        return authenticate(token, *args)

    monkeypatch.setattr(catalog.store.accounts, "authenticate", meeting)
    with ThreadPoolExecutor(2) as pool:
        answers = list(pool.map(lambda _: api.get("/me/"), range(2)))
    assert [answer.status_code for answer in answers] == [200, 200]


def test_expired_key(catalog: RunningCatalog, publisher: Publisher, dataset: dict[str, Any]) -> None:
    token, _ = catalog.store.accounts.create_token(publisher.user_id, "old", expires_at=utcnow() - timedelta(seconds=1))
    response = Api(catalog, token).put(f"/datasets/{dataset['id']}/", json=WRITE_PAYLOAD)
    assert (response.status_code, response.json()) == (401, {"message": "Expired API token"})


def test_non_member_gets_403(outsider: Api, dataset: dict[str, Any]) -> None:
    path = f"/datasets/{dataset['id']}/"
    responses = [
        outsider.put(path, json=WRITE_PAYLOAD),
        outsider.delete(path),
        outsider.upload(dataset["id"], "a.csv", b"a\n1\n"),
        outsider.put(f"/api/2/datasets/{dataset['id']}/extras/", json={"a": 1}),
    ]
    assert [response.status_code for response in responses] == [403] * 4
    assert responses[0].json() == {"message": "You do not have the permission to modify that object."}


def test_any_member_may_write(catalog: RunningCatalog, api: Api, dataset: dict[str, Any]) -> None:
    """The fixture's publisher is an editor; a second member (admin) may edit the same dataset."""
    colleague = catalog.store.accounts.create_user("jeanne@insee.fr", "Jeanne", "Dupont")
    org = catalog.store.accounts.require_organization("insee")
    catalog.store.accounts.set_member(org["id"], colleague["id"], "admin")
    token, _ = catalog.store.accounts.create_token(colleague["id"])
    response = Api(catalog, token).put(f"/datasets/{dataset['id']}/", json=WRITE_PAYLOAD)
    assert response.status_code == 200
    assert response.json()["title"] == "Nouveau titre"


def test_personal_datasets_belong_to_their_owner(api: Api, outsider: Api) -> None:
    mine = api.create_dataset(title="Personnel")
    assert outsider.put(f"/datasets/{mine['id']}/", json=WRITE_PAYLOAD).status_code == 403
    assert api.put(f"/datasets/{mine['id']}/", json=WRITE_PAYLOAD).status_code == 200


def test_me(api: Api, anonymous: Api, publisher: Publisher) -> None:
    me = api.get("/me/").json()
    assert me["id"] == publisher.user_id
    assert me["email"] == "bot@insee.fr"
    assert [org["slug"] for org in me["organizations"]] == ["insee"]
    assert anonymous.get("/me/").status_code == 401


def test_token_management_api(catalog: RunningCatalog, api: Api) -> None:
    created = api.post("/me/api_tokens/", json={"name": "ci", "expires_at": "2099-01-01T00:00:00+00:00"})
    assert created.status_code == 201
    body = created.json()
    assert body["token"].startswith("udata_") and body["expires_at"].startswith("2099-01-01")
    listed = api.get("/me/api_tokens/").json()
    assert {item["name"] for item in listed} == {"publisher", "ci"}
    assert all("token" not in item for item in listed)  # shown once, at creation only

    assert Api(catalog, body["token"]).get("/me/").status_code == 200
    assert api.delete(f"/me/api_tokens/{body['id']}/").status_code == 204
    assert Api(catalog, body["token"]).get("/me/").json() == {"message": "Revoked API token"}


def test_tokens_are_stored_hashed(catalog: RunningCatalog, publisher: Publisher) -> None:
    for record in catalog.store.accounts.tokens_of(publisher.user_id):
        assert publisher.token not in record.values()
        assert len(record["token_hash"]) == 64


def test_a_keys_last_use_is_recorded_once_a_minute_without_moving_the_data_version(
    catalog: RunningCatalog, publisher: Publisher, api: Api, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Recording when a key was last used is not a change to what the API shows: anonymous answers
    stay cached (their key is the data version). Within a minute, a second use writes nothing."""
    accounts, db = catalog.store.accounts, catalog.store.db

    def last_used() -> Any:
        return next(t["last_used_at"] for t in accounts.tokens_of(publisher.user_id) if t["name"] == "publisher")

    version = db.data_version()
    assert api.get("/me/").status_code == 200
    first = last_used()
    assert first is not None and db.data_version() == version
    assert api.get("/me/").status_code == 200
    assert last_used() == first and db.data_version() == version
    later = utcnow() + timedelta(minutes=2)
    monkeypatch.setattr("dinum_pipelines.catalog.accounts.utcnow", lambda: later)
    assert api.get("/me/").status_code == 200
    assert last_used() == later and db.data_version() == version
