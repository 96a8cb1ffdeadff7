"""Contract: who may call each write endpoint, and the exact udata status and body otherwise.

One row per write endpoint, one column per kind of caller. udata's answers (research note §1):
no key 401, a revoked or expired key 401 with its own message, a valid key of someone who is not a
member of the owning organization 403 "You do not have the permission to modify that object.",
a member 2xx. Then the other error bodies the research note names, one case each.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import pytest
import requests

from dinum_pipelines.catalog import Publisher, RunningCatalog, bootstrap_publisher
from dinum_pipelines.catalog.accounts import EXPIRED_TOKEN, REVOKED_TOKEN
from dinum_pipelines.catalog.db import utcnow
from dinum_pipelines.catalog.errors import AUTHENTICATION_REQUIRED, PERMISSION_DENIED
from dinum_pipelines_tests.catalog.conftest import Api

CSV = b"code_commune;nom\n01001;L'Abergement-Clemenciat\n"
NOT_A_MEMBER_OF_THE_ORGANIZATION = {"errors": {"organization": ["Permission denied for this organization"]}, "message": "Validation error"}


@dataclass(frozen=True)
class Target:
    """What the write endpoints act on: a dataset of Insee with one hosted resource, and a token."""

    organization_id: str
    dataset_id: str
    resource_id: str
    token_id: str  # a spare token of the member, to revoke

    @property
    def dataset(self) -> str:
        return f"/datasets/{self.dataset_id}"

    @property
    def resource(self) -> str:
        return f"/datasets/{self.dataset_id}/resources/{self.resource_id}"


@dataclass(frozen=True)
class WriteEndpoint:
    name: str
    call: Callable[[Api, Target], requests.Response]
    success: int
    # The answer to a valid key of a user outside the organization, when it is not udata's 403.
    outsider: tuple[int, dict[str, Any] | None] = (403, {"message": PERMISSION_DENIED})


WRITE_ENDPOINTS = [
    WriteEndpoint(
        "dataset create",
        lambda api, t: api.post("/datasets/", json={"title": "Nouveau", "description": "d", "organization": t.organization_id}),
        201,
        # Publishing "as" an organization one does not belong to is a form error in udata, not a 403.
        outsider=(400, NOT_A_MEMBER_OF_THE_ORGANIZATION),
    ),
    WriteEndpoint("dataset update", lambda api, t: api.put(f"{t.dataset}/", json={"title": "Nouveau titre"}), 200),
    WriteEndpoint("dataset delete", lambda api, t: api.delete(f"{t.dataset}/"), 204),
    WriteEndpoint("upload", lambda api, t: api.upload(t.dataset_id, "b.csv", CSV), 201),
    WriteEndpoint("reupload", lambda api, t: api.upload(t.dataset_id, "a.csv", CSV + b"75056;Paris\n", t.resource_id), 200),
    WriteEndpoint(
        "remote resource create",
        lambda api, t: api.post(f"{t.dataset}/resources/", json={"title": "API", "url": "https://example.org/api", "filetype": "remote"}),
        201,
    ),
    WriteEndpoint("resource update", lambda api, t: api.put(f"{t.resource}/", json={"description": "Une ligne par commune."}), 200),
    WriteEndpoint("resource delete", lambda api, t: api.delete(f"{t.resource}/"), 204),
    WriteEndpoint("reorder", lambda api, t: api.put(f"{t.dataset}/resources/", json=[t.resource_id]), 200),
    WriteEndpoint("dataset extras put (v2)", lambda api, t: api.put(f"/api/2{t.dataset}/extras/", json={"k": 1}), 200),
    WriteEndpoint("dataset extras delete (v2)", lambda api, t: api.delete(f"/api/2{t.dataset}/extras/", json=["k"]), 204),
    WriteEndpoint("resource extras put (v2)", lambda api, t: api.put(f"/api/2{t.resource}/extras/", json={"k": 1}), 200),
    WriteEndpoint("resource extras delete (v2)", lambda api, t: api.delete(f"/api/2{t.resource}/extras/", json=["k"]), 204),
    # Tokens belong to users, not organizations: any valid user may create one for themselves...
    WriteEndpoint("token create", lambda api, t: api.post("/me/api_tokens/", json={"name": "ci"}), 201, outsider=(201, None)),
    # ...and only its owner may revoke one: someone else's token does not exist for them.
    WriteEndpoint(
        "token revoke", lambda api, t: api.delete(f"/me/api_tokens/{t.token_id}/"), 204,
        outsider=(404, {"message": "Unknown API token {!r}."}),
    ),
]
CALLERS = ("anonymous", "non-member", "member", "revoked token", "expired token")


@pytest.fixture
def target(catalog: RunningCatalog, api: Api, publisher: Publisher, dataset: dict[str, Any]) -> Target:
    resource = api.upload(dataset["id"], "a.csv", CSV).json()
    _token, record = catalog.store.accounts.create_token(publisher.user_id, "spare")
    return Target(publisher.organization_id, dataset["id"], resource["id"], record["id"])


def client_for(caller: str, catalog: RunningCatalog, publisher: Publisher) -> Api:
    accounts = catalog.store.accounts
    if caller == "anonymous":
        return Api(catalog)
    if caller == "non-member":
        other = bootstrap_publisher(catalog.store, org_slug="dgfip", org_name="DGFiP", email="bot@dgfip.fr", name="DGFiP Bot")
        return Api(catalog, other.token)
    if caller == "member":
        return Api(catalog, publisher.token)
    if caller == "revoked token":
        token, record = accounts.create_token(publisher.user_id, "revoked")
        accounts.revoke_token(record["id"])
        return Api(catalog, token)
    if caller == "expired token":
        token, _record = accounts.create_token(publisher.user_id, "expired", expires_at=utcnow() - timedelta(seconds=1))
        return Api(catalog, token)
    raise ValueError(caller)


def expected(endpoint: WriteEndpoint, caller: str, target: Target) -> tuple[int, dict[str, Any] | None]:
    """(status, exact body, or None when the body is the success document)."""
    if caller == "anonymous":
        return 401, {"message": AUTHENTICATION_REQUIRED}
    if caller == "revoked token":
        return 401, {"message": REVOKED_TOKEN}
    if caller == "expired token":
        return 401, {"message": EXPIRED_TOKEN}
    if caller == "non-member":
        status, body = endpoint.outsider
        if body is not None and "message" in body:
            body = {**body, "message": body["message"].format(target.token_id)}
        return status, body
    return endpoint.success, None


@pytest.mark.parametrize("caller", CALLERS)
@pytest.mark.parametrize("endpoint", WRITE_ENDPOINTS, ids=lambda endpoint: endpoint.name)
def test_write_endpoint_access(
    catalog: RunningCatalog, publisher: Publisher, target: Target, endpoint: WriteEndpoint, caller: str
) -> None:
    before = catalog.store.datasets.require(target.dataset_id)
    response = endpoint.call(client_for(caller, catalog, publisher), target)

    status, body = expected(endpoint, caller, target)
    assert response.status_code == status, response.text
    if body is not None:
        assert response.json() == body
    elif status != 204:
        assert "message" not in response.json()
    if status >= 400:  # a refused write changes nothing
        assert catalog.store.datasets.require(target.dataset_id) == before


# The other status codes and bodies of the research note.


def test_deleted_dataset_is_410_with_udata_message(api: Api, anonymous: Api, dataset: dict[str, Any]) -> None:
    api.delete(f"/datasets/{dataset['id']}/")
    for response in (anonymous.get(f"/datasets/{dataset['id']}/"), api.put(f"/datasets/{dataset['id']}/", json={"title": "x"})):
        assert (response.status_code, response.json()) == (410, {"message": "Dataset has been deleted"})


def test_unknown_dataset_is_404_with_a_message(api: Api, anonymous: Api) -> None:
    for response in (anonymous.get("/datasets/000000000000000000000000/"), api.put("/datasets/unknown/", json={"title": "x"})):
        assert (response.status_code, response.json()) == (404, {"message": "Dataset not found"})


def test_invalid_key_is_401_on_writes_too(catalog: RunningCatalog, dataset: dict[str, Any]) -> None:
    response = Api(catalog, "udata_forged").post("/datasets/", json={"title": "t", "description": "d"})
    assert (response.status_code, response.json()) == (401, {"message": "Invalid API token"})


def test_validation_errors_name_the_field(api: Api) -> None:
    response = api.post("/datasets/", json={"description": "sans titre"})
    assert response.status_code == 400
    body = response.json()
    assert set(body) == {"errors", "message"} and list(body["errors"]) == ["title"]
    assert isinstance(body["errors"]["title"], list) and body["errors"]["title"]


def test_json_writes_need_the_json_content_type(api: Api) -> None:
    response = api.post("/datasets/", data='{"title": "t", "description": "d"}', headers={"Content-Type": "text/plain"})
    assert response.status_code == 400
    assert response.json()["errors"] == {"Content-Type": ["expecting application/json"]}


@pytest.mark.parametrize("params", [{"page": "0"}, {"page_size": "0"}])
def test_page_and_page_size_must_be_at_least_one(anonymous: Api, params: dict[str, str]) -> None:
    response = anonymous.get("/datasets/", params=params)
    name = next(iter(params))
    assert (response.status_code, response.json()["errors"]) == (400, {name: [f"{name} must be an integer greater than or equal to 1."]})


def test_resource_endpoint_accepts_only_remote_resources(api: Api, dataset: dict[str, Any]) -> None:
    response = api.post(f"/datasets/{dataset['id']}/resources/", json={"title": "x", "url": "https://example.org/x.csv", "filetype": "file"})
    assert response.status_code == 400
    assert response.json() == {
        "errors": {"filetype": ["This endpoint only supports remote resources"]},
        "message": "This endpoint only supports remote resources",
    }


def test_reorder_must_list_every_resource(api: Api, target: Target) -> None:
    api.post(f"{target.dataset}/resources/", json={"title": "API", "url": "https://example.org/api", "filetype": "remote"})
    response = api.put(f"{target.dataset}/resources/", json=[target.resource_id])
    assert response.status_code == 400
    assert response.json()["message"] == "Resources reordering failed" and "resources" in response.json()["errors"]


def test_changing_a_remote_resource_filetype_is_400(api: Api, dataset: dict[str, Any]) -> None:
    remote = api.post(
        f"/datasets/{dataset['id']}/resources/", json={"title": "API", "url": "https://example.org/api", "filetype": "remote"}
    ).json()
    response = api.put(f"/datasets/{dataset['id']}/resources/{remote['id']}/", json={"filetype": "file"})
    assert response.status_code == 400
    assert response.json()["errors"] == {"filetype": ["The filetype of a resource cannot be changed."]}


def test_html_upload_is_415_with_a_message(api: Api, dataset: dict[str, Any]) -> None:
    response = api.upload(dataset["id"], "export.csv", b"<!DOCTYPE html><html><body>Erreur</body></html>")
    assert response.status_code == 415
    assert set(response.json()) == {"message"} and "HTML" in response.json()["message"]
