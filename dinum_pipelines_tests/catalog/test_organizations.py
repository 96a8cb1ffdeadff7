"""Organizations with their members, and the udata `metrics` and `quality` fields in every response."""

from __future__ import annotations

from typing import Any

from dinum_pipelines.catalog import Publisher, RunningCatalog
from dinum_pipelines.catalog.quality_score import CRITERIA
from dinum_pipelines.catalog.render import DATASET_METRICS, ORGANIZATION_METRICS
from dinum_pipelines_tests.catalog.conftest import Api


def test_organization_lists_its_members_with_their_role(
    catalog: RunningCatalog, anonymous: Api, publisher: Publisher, dataset: dict[str, Any]
) -> None:
    colleague = catalog.store.accounts.create_user("jeanne@insee.fr", "Jeanne", "Dupont")
    catalog.store.accounts.set_member(publisher.organization_id, colleague["id"], "admin")

    org = anonymous.get("/organizations/insee/").json()
    members = {member["user"]["id"]: member for member in org["members"]}
    assert {user_id: member["role"] for user_id, member in members.items()} == {
        publisher.user_id: "editor", colleague["id"]: "admin",
    }
    jeanne = members[colleague["id"]]
    assert (jeanne["user"]["first_name"], jeanne["user"]["last_name"]) == ("Jeanne", "Dupont")
    assert jeanne["since"] is not None
    assert "email" not in jeanne["user"]  # members are public, their emails are not
    assert org["metrics"] == {**ORGANIZATION_METRICS, "datasets": 1, "members": 2}


def test_unknown_organization_is_404(anonymous: Api) -> None:
    response = anonymous.get("/organizations/nobody/")
    assert (response.status_code, response.json()) == (404, {"message": "Organization not found"})


def test_metrics_are_always_present_and_stored_values_win(
    catalog: RunningCatalog, api: Api, anonymous: Api, dataset: dict[str, Any]
) -> None:
    resource = api.upload(dataset["id"], "communes.csv", b"code\n01001\n").json()
    fresh = anonymous.get(f"/datasets/{dataset['id']}/").json()
    assert fresh["metrics"] == DATASET_METRICS
    assert fresh["resources"][0]["metrics"] == {"views": 0}

    # What the metrics pipeline does: write the objects' `metrics` dicts.
    by_months = {"2026-09": 4, "2026-10": 7}
    catalog.store.datasets.transform_doc_field(
        dataset["id"], "metrics", lambda _old: {"views": 12, "resources_downloads": 11, "resources_downloads_by_months": by_months}
    )
    catalog.store.datasets.transform_resource_doc_field(resource["id"], "metrics", lambda _old: {"views": 11})

    shown = anonymous.get(f"/datasets/{dataset['id']}/").json()
    assert shown["metrics"] == {
        **DATASET_METRICS, "views": 12, "resources_downloads": 11, "resources_downloads_by_months": by_months,
    }
    assert shown["resources"][0]["metrics"] == {"views": 11}
    listed = anonymous.get("/datasets/").json()["data"][0]
    assert listed["metrics"]["views"] == 12


def test_quality_is_in_every_dataset_document(api: Api, anonymous: Api, dataset: dict[str, Any]) -> None:
    assert set(CRITERIA) <= set(dataset["quality"])  # creation response
    assert dataset["quality"]["score"] == 0  # short description, no licence, no resource...

    updated = api.put(
        f"/datasets/{dataset['id']}/",
        json={"license": "lov2", "frequency": "monthly", "temporal_coverage": {"start": "2020-01-01", "end": None}},
    ).json()
    met = {name for name in CRITERIA if updated["quality"][name]}
    assert met == {"license", "update_frequency", "update_fulfilled_in_time", "temporal_coverage"}
    assert updated["quality"]["score"] == 4 / 9

    api.upload(dataset["id"], "communes.csv", b"code\n01001\n")
    read = anonymous.get(f"/datasets/{dataset['slug']}/").json()
    assert read["quality"]["has_open_format"] is True
    assert read["quality"]["all_resources_available"] is True
    assert read["quality"]["score"] == 6 / 9
    assert anonymous.get("/datasets/").json()["data"][0]["quality"] == read["quality"]
