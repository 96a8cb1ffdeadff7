"""Drives datagouv-client (the data.gouv.fr team's Python client) against a catalog, step by step.

Run by test_datagouv_client.py with the Python of datagouv-client's own virtualenv (the client
replaces urllib3 with urllib3-future, which breaks libraries beside it), never imported by the
test suite. It is a publisher's and a reuser's workflow through every method of `Client`,
`Organization`, `Dataset` and `Resource` that touches organizations, datasets or resources, and
prints one JSON line per step: {"step", "ok", "detail"}. A step fails on the first error: the
client's retries are switched off so that a flaky answer cannot hide behind a second attempt.

    python datagouv_client_driver.py BASE_URL API_KEY WORK_DIR
"""

from __future__ import annotations

import json
import sys
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import Any

import tenacity
from datagouv import Client, Dataset, Organization, Resource
from datagouv.api import client as client_module
from datagouv.api import dataset as dataset_module
from datagouv.api import organization as organization_module
from datagouv.api import resource as resource_module
from datagouv.api import topic as topic_module
from datagouv.utils import base_object


def disable_retries() -> None:
    """Each method the client decorates with tenacity has its own Retrying: switch them all off."""
    for module in (client_module, dataset_module, organization_module, resource_module, topic_module, base_object):
        for cls in [value for value in vars(module).values() if isinstance(value, type)]:
            for attribute in vars(cls).values():
                retrying = getattr(attribute, "retry", None)
                if isinstance(retrying, tenacity.BaseRetrying):
                    retrying.enabled = False


disable_retries()


class Steps:
    def __init__(self) -> None:
        self.failed = False

    def run(self, name: str, action: Callable[[], Any]) -> Any:
        """Run one step; its return value (or "ok") is the detail printed."""
        try:
            result = action()
        except Exception as exc:  # noqa: BLE001 - every failure is reported, none stops the others
            self.failed = True
            detail = f"{type(exc).__name__}: {exc}"[:2000] + "\n" + traceback.format_exc(limit=3)[-1500:]
            print(json.dumps({"step": name, "ok": False, "detail": detail}), flush=True)
            return None
        shown = getattr(result, "id", result)  # an object's repr is its whole __dict__
        print(json.dumps({"step": name, "ok": True, "detail": str(shown if shown is not None else "ok")[:300]}), flush=True)
        return result


def check(condition: bool, message: str) -> None:
    if not condition:
        raise AssertionError(message)


def udata_error(action: Callable[[], Any], status_hint: str) -> str:
    """`action` must fail with the catalog's JSON error body (udata's `{"message": ...}`)."""
    try:
        action()
    except Exception as exc:  # noqa: BLE001
        body = json.loads(str(exc))
        check(isinstance(body, dict) and isinstance(body.get("message"), str), f"not udata's error body: {exc}")
        return f"{status_hint}: {body['message']}"
    raise AssertionError("expected the catalog to refuse")


def point_metrics_at(obj: Organization | Dataset | Resource, base_url: str) -> None:
    """The metric API of this catalog, with the path data.gouv.fr's has (the client only knows www)."""
    kind = type(obj).__name__.lower()
    obj._base_metrics_url = f"{base_url}/api/{kind}s/data/?{kind}_id__exact={obj.id}"


def main(base_url: str, api_key: str, work_dir: Path) -> int:
    client = Client(environment="dev", api_key=api_key)
    client.base_url = base_url
    anonymous = Client(environment="dev")
    anonymous.base_url = base_url
    steps = Steps()
    csv_v1 = work_dir / "communes.csv"
    csv_v1.write_text("code_insee;nom\n01001;L'Abergement-Clémenciat\n", encoding="utf-8")
    csv_v2 = work_dir / "communes-v2.csv"
    csv_v2.write_text("code_insee;nom\n01001;L'Abergement-Clémenciat\n01002;L'Abergement-de-Varey\n", encoding="utf-8")

    # Organizations
    org = steps.run("Client.create_organization", lambda: client.create_organization({"name": "Direction du numérique", "acronym": "DINUM"}))
    if org is None:
        return 1
    steps.run("Client.organization", lambda: check(client.organization(org.id).name == "Direction du numérique", "name"))
    steps.run("Organization.update", lambda: (org.update({"description": "Une direction."}), check(org.description == "Une direction.", org.description)))
    steps.run("Organization.update_extras", lambda: (org.update_extras({"siren": "130025265"}), check(org.extras == {"siren": "130025265"}, str(org.extras))))
    steps.run("Organization.delete_extras", lambda: (org.delete_extras(["siren"]), check(org.extras == {}, str(org.extras))))
    steps.run("Organization.refresh", lambda: org.refresh()["slug"])

    # Datasets
    payload = {"title": "Communes", "description": "Les communes.", "license": "lov2", "frequency": "annual", "tags": ["communes"]}
    dataset = steps.run("Organization.create_dataset", lambda: org.create_dataset(payload))
    if dataset is None:
        return 1
    steps.run("Client.create_dataset", lambda: client.create_dataset({**payload, "title": "Communes (brouillon)", "organization": org.id, "private": True}).id)
    steps.run("Client.dataset", lambda: check(client.dataset(dataset.id).title == "Communes", "title"))
    steps.run("Dataset.organization", lambda: check(dataset.organization.id == org.id, "organization"))
    steps.run("Dataset.update", lambda: (dataset.update({"description": "Les communes de France."}), check(dataset.description == "Les communes de France.", dataset.description)))
    steps.run("Dataset.update_extras", lambda: (dataset.update_extras({"source": "insee"}), check(dataset.extras == {"source": "insee"}, str(dataset.extras))))
    steps.run("Dataset.delete_extras", lambda: (dataset.delete_extras(["source"]), check(dataset.extras == {}, str(dataset.extras))))
    steps.run("Organization.datasets", lambda: check(sorted(d.title for d in client.organization(org.id).datasets) == ["Communes", "Communes (brouillon)"], "datasets"))

    # Resources
    static = steps.run("Dataset.create_static", lambda: dataset.create_static(str(csv_v1), {"title": "Communes (CSV)", "description": "Le fichier."}))
    remote = steps.run("Dataset.create_remote", lambda: dataset.create_remote({"title": "Communes (API)", "url": "https://geo.api.gouv.fr/communes", "format": "json", "type": "api"}))
    steps.run("Client.create_static_resource", lambda: client.create_static_resource(str(csv_v1), {"title": "Copie"}, dataset.id).title)
    steps.run("Client.create_remote_resource", lambda: client.create_remote_resource({"title": "Lien", "url": "https://example.org/communes.csv", "type": "documentation"}, dataset.id).filetype)
    if static is None or remote is None:
        return 1
    steps.run("Client.resource (by its id alone)", lambda: check(client.resource(static.id).dataset_id == dataset.id, "dataset_id"))
    steps.run("Client.resource (with its dataset)", lambda: check(client.resource(static.id, dataset_id=dataset.id).title == "Communes (CSV)", "title"))
    steps.run("Resource.dataset", lambda: check(static.dataset.id == dataset.id, "dataset"))
    steps.run("Resource.refresh", lambda: static.refresh()["checksum"])
    steps.run("Resource.update", lambda: (remote.update({"description": "L'API Géo."}), check(remote.description == "L'API Géo.", str(remote.description))))
    checksum_before = static.checksum
    steps.run("Resource.update (new file)", lambda: (
        static.update({"title": "Communes (CSV, v2)"}, file_to_upload=str(csv_v2)),
        check(static.title == "Communes (CSV, v2)" and static.checksum != checksum_before, f"{static.title} {static.checksum}"),
    ))
    steps.run("Resource.update_extras", lambda: (static.update_extras({"check": "ok"}), check(static.extras.get("check") == "ok", str(static.extras))))
    steps.run("Resource.delete_extras", lambda: (static.delete_extras(["check"]), check("check" not in static.extras, str(static.extras))))
    steps.run("Resource.download", lambda: check((work_dir / "dl").mkdir() or static.download(work_dir / "dl" / "x.csv").read_bytes() == csv_v2.read_bytes(), "content"))
    steps.run("Resource.download_buffer", lambda: check(static.download_buffer().read() == csv_v2.read_bytes(), "content"))
    steps.run("Resource.check_if_more_recent_update", lambda: static.check_if_more_recent_update(dataset.id))
    steps.run("Dataset.refresh", lambda: (dataset.refresh(), check(len(dataset.resources) == 4, "resources"))[1])
    steps.run("Dataset.download_resources", lambda: (dataset.download_resources(work_dir / "all"), check(len(list((work_dir / "all").iterdir())) == 2, "files"))[1])
    steps.run("Dataset.sort_resources (by)", lambda: (dataset.sort_resources(by="title.asc"), dataset.refresh(), [r.title for r in dataset.resources])[2])
    steps.run("Dataset.sort_resources (function)", lambda: (dataset.sort_resources(sort_function=lambda rs: list(reversed(rs))), dataset.refresh(), [r.title for r in dataset.resources])[2])

    # Search and pagination, anonymously, as a reuser does
    steps.run("Client.get_all_from_api_query (search, pages of 1)", lambda: check(
        [d.id for d in anonymous.get_all_from_api_query("api/1/datasets/?q=communes&page_size=1", cast_as=Dataset)] == [dataset.id], "search"))
    steps.run("Client.get_all_from_api_query (mask)", lambda: check(
        list(anonymous.get_all_from_api_query(f"api/1/organizations/{org.id}/datasets/?page_size=1", mask="data{id,title}")) == [{"id": dataset.id, "title": "Communes"}], "mask"))

    # Usage metrics, from the catalog's metric API (the client only knows data.gouv.fr's host)
    for obj in (org, dataset, static):
        point_metrics_at(obj, base_url)
        steps.run(f"{type(obj).__name__}.get_monthly_traffic_metrics", lambda obj=obj: len(list(obj.get_monthly_traffic_metrics(start_month="2024-01"))))

    # What the catalog does not have answers with udata's error body
    steps.run("Client.topic (no topics here)", lambda: udata_error(lambda: client.topic("5e8f4a3b2c1d0e9f8a7b6c5d"), "404"))
    steps.run("Client.create_topic (no topics here)", lambda: udata_error(lambda: client.create_topic({"name": "Communes"}), "404/405"))
    steps.run("Client.create_remote_resource (community)", lambda: udata_error(
        lambda: client.create_remote_resource({"title": "c", "url": "https://example.org/c.csv"}, dataset.id, is_communautary=True), "405"))
    steps.run("Client.create_static_resource (community)", lambda: udata_error(
        lambda: client.create_static_resource(str(csv_v1), {"title": "c"}, dataset.id, is_communautary=True), "404"))

    # Deleting, and what editors still see
    extra = client.resource(static.id, dataset_id=dataset.id)
    steps.run("Resource.delete", lambda: (extra.delete().status_code, udata_error(lambda: client.resource(static.id), "404"))[1])
    steps.run("Dataset.delete", lambda: dataset.delete().status_code)
    steps.run("Client.dataset (deleted, seen by its editor)", lambda: check(client.dataset(dataset.id).deleted is not None, "deleted"))
    steps.run("Client.dataset (deleted, anonymously)", lambda: udata_error(lambda: anonymous.dataset(dataset.id), "410"))
    steps.run("Dataset.update (restore)", lambda: (dataset.update({"deleted": None}), check(dataset.deleted is None, str(dataset.deleted))))
    steps.run("Organization.delete", lambda: org.delete().status_code)
    steps.run("Client.organization (deleted, anonymously)", lambda: udata_error(lambda: anonymous.organization(org.id), "410"))
    return 1 if steps.failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1], sys.argv[2], Path(sys.argv[3])))
