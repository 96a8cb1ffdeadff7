"""Atom feeds (RFC 4287) of the publications: the whole catalog's, an organization's, a dataset's.

A reuser's feed reader, or a script, follows `/feed.atom`, `/organizations/{slug}/feed.atom` or
`/datasets/{slug}/feed.atom` (an id works too) instead of polling the API: one entry per change of
the change log (notifications.py), newest first, FEED_SIZE a document, the older ones behind the
`rel="next"` link. Feeds are public: a private or deleted dataset is never in one (its feed is a 404,
410 once deleted, as its page), and the catalog's and an organization's feeds leave its changes out.

Entry ids are `urn:uuid:`s derived from the change, so they stay the same when the catalog moves to
another address; the links are those the publishing request gave (the dataset's page, the file).
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from datetime import datetime
from typing import Any
from xml.etree import ElementTree

from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from dinum_pipelines.catalog.db import utcnow
from dinum_pipelines.catalog.errors import NotFound
from dinum_pipelines.catalog.notifications import (
    DATASET_CREATED,
    DATASET_DELETED,
    DATASET_PUBLISHED,
    DATASET_UPDATED,
    FEED_SIZE,
    RESOURCE_CREATED,
    RESOURCE_UPDATED,
)
from dinum_pipelines.catalog.pages import (
    SECURITY_HEADERS,
    PageRequest,
    human_size,
    page_endpoint,
    public_dataset,
    public_organization,
)
from dinum_pipelines.catalog.render import iso

ATOM = "http://www.w3.org/2005/Atom"
MEDIA_TYPE = "application/atom+xml"
BEFORE = "before"  # the paging parameter: entries of changes older than this one
CATALOG_NAME = "Catalogue de données publiques"
# The namespace of the entries' UUIDs (uuid5 of "{dataset id}/{change id}").
_ENTRY_NAMESPACE = uuid.UUID("6f1c8f3e-4d0b-5a57-9d8e-1c0a7d2b9e41")
ENTRY_TITLES = {
    DATASET_CREATED: "Nouveau jeu de données : {dataset}",
    DATASET_UPDATED: "Jeu de données modifié : {dataset}",
    DATASET_PUBLISHED: "Jeu de données rendu public : {dataset}",
    DATASET_DELETED: "Jeu de données supprimé : {dataset}",
    RESOURCE_CREATED: "Nouveau fichier « {resource} » : {dataset}",
    RESOURCE_UPDATED: "Fichier « {resource} » mis à jour : {dataset}",
}

ElementTree.register_namespace("", ATOM)


def _element(parent: ElementTree.Element, name: str, text: str | None = None, **attributes: str) -> ElementTree.Element:
    element = ElementTree.SubElement(parent, f"{{{ATOM}}}{name}", attributes)
    element.text = text
    return element


def entry_id(dataset_id: str, change_id: int) -> str:
    return f"urn:uuid:{uuid.uuid5(_ENTRY_NAMESPACE, f'{dataset_id}/{change_id}')}"


def entry_title(body: Mapping[str, Any]) -> str:
    resource = body.get("resource") or {}
    return ENTRY_TITLES[body["event"]].format(dataset=body["dataset"]["title"], resource=resource.get("title") or "sans titre")


def entry_summary(body: Mapping[str, Any]) -> str:
    """What changed, in French: the file (its size and checksum), or the dataset."""
    resource = body.get("resource")
    if resource is None:
        return entry_title(body) + "."
    checksum = resource.get("checksum") or {}
    parts = [f"Fichier « {resource.get('title') or 'sans titre'} »"]
    if resource.get("format"):
        parts.append(f"format {resource['format']}")
    if resource.get("filesize") is not None:
        parts.append(human_size(resource["filesize"]))
    if checksum.get("value"):
        parts.append(f"somme de contrôle {checksum.get('type')} {checksum['value']}")
    parts.append(f"adresse {resource['url']}")
    return ", ".join(parts) + "."


def atom_feed(
    *, feed_id: str, title: str, self_url: str, page_url: str, rows: list[Mapping[str, Any]], next_url: str | None,
    updated: datetime,
) -> bytes:
    """The feed document; `rows` are changes (id, occurred_at, dataset_id, payload), newest first."""
    feed = ElementTree.Element(f"{{{ATOM}}}feed", {"{http://www.w3.org/XML/1998/namespace}lang": "fr"})
    _element(feed, "id", feed_id)
    _element(feed, "title", title)
    _element(feed, "updated", iso(rows[0]["occurred_at"] if rows else updated))
    _element(_element(feed, "author"), "name", CATALOG_NAME)
    _element(feed, "link", rel="self", type=MEDIA_TYPE, href=self_url)
    _element(feed, "link", rel="alternate", type="text/html", href=page_url)
    if next_url is not None:
        _element(feed, "link", rel="next", type=MEDIA_TYPE, href=next_url)
    for row in rows:
        body = row["payload"]
        entry = _element(feed, "entry")
        _element(entry, "id", entry_id(row["dataset_id"], row["id"]))
        _element(entry, "title", entry_title(body))
        _element(entry, "updated", iso(row["occurred_at"]))
        _element(entry, "category", term=body["event"])
        _element(entry, "link", rel="alternate", type="text/html", href=body["dataset"]["page"])
        resource = body.get("resource")
        if resource is not None and resource.get("url"):
            enclosure = {"rel": "enclosure", "href": resource["url"], "title": resource.get("title") or ""}
            if resource.get("filesize") is not None:
                enclosure["length"] = str(resource["filesize"])
            _element(entry, "link", **enclosure)
        _element(entry, "summary", entry_summary(body), type="text")
    return ElementTree.tostring(feed, encoding="utf-8", xml_declaration=True)


def _feed_response(
    page: PageRequest, *, path: str, title: str, page_path: str, updated: datetime,
    dataset_id: str | None = None, organization_id: str | None = None,
) -> Response:
    before_text = page.request.query_params.get(BEFORE)
    if before_text is not None and not (before_text.isdigit() and len(before_text) <= 18):
        raise NotFound("Cette page du flux n'existe pas.")
    before = int(before_text) if before_text is not None else None
    rows = page.store.notifications.feed(dataset_id=dataset_id, organization_id=organization_id, before=before, limit=FEED_SIZE)
    base = page.render.base_url
    next_url = f"{base}{path}?{BEFORE}={rows[-1]['id']}" if len(rows) == FEED_SIZE else None
    document = atom_feed(
        feed_id=f"{base}{path}", title=title, self_url=f"{base}{path}" + (f"?{BEFORE}={before}" if before else ""),
        page_url=f"{base}{page_path}", rows=rows, next_url=next_url, updated=updated,
    )
    return Response(document, media_type=f"{MEDIA_TYPE}; charset=utf-8", headers=SECURITY_HEADERS)


def catalog_feed(page: PageRequest) -> Response:
    return _feed_response(page, path="/feed.atom", title=f"{CATALOG_NAME} : publications", page_path="/", updated=utcnow())


def dataset_feed(page: PageRequest) -> Response:
    dataset = public_dataset(page)
    return _feed_response(
        page, path=f"/datasets/{dataset['id']}/feed.atom", title=f"Publications : {dataset['title']}",
        page_path=f"/datasets/{dataset['slug']}/", updated=dataset["last_modified"], dataset_id=dataset["id"],
    )


def organization_feed(page: PageRequest) -> Response:
    org = public_organization(page)
    return _feed_response(
        page, path=f"/organizations/{org['id']}/feed.atom", title=f"Publications : {org['name']}",
        page_path=f"/organizations/{org['slug']}/", updated=org["created_at"], organization_id=org["id"],
    )


def feed_routes() -> list[BaseRoute]:
    return [
        Route("/feed.atom", page_endpoint(catalog_feed), methods=["GET"]),
        Route("/datasets/{dataset}/feed.atom", page_endpoint(dataset_feed), methods=["GET"]),
        Route("/organizations/{org}/feed.atom", page_endpoint(organization_feed), methods=["GET"]),
    ]
