"""The catalog's conformance pages: `/valider/`, where a producer checks a file against a Table
Schema before publishing it, and each dataset's latest conformance report.

Both show the same report (`lib/conformance`, the validator `dinum-validate` and the pipeline
use), grouped by column and code with the rows, so that ten thousand faults of one kind read as
one line to fix. The file is uploaded (streamed to a temporary file by the multipart parser) or
fetched from a URL; the schema is one of the catalog's (`CatalogSettings.schemas_dir`), uploaded,
or fetched. Nothing is kept after the answer.
"""

from __future__ import annotations

import ipaddress
import json
import re
import socket
import shutil
import tempfile
from collections import defaultdict
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

from starlette.concurrency import run_in_threadpool
from starlette.datastructures import UploadFile
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from dinum_pipelines.catalog.errors import NotFound
from dinum_pipelines.catalog.pages import PageRequest, page_endpoint, public_dataset
from dinum_pipelines.lib.conformance import SchemaError, SourceError, guess_format, read_schema_file, validate_file
from dinum_pipelines.lib.conformance.faults import CATALOGUE, HEADER_CODES
from dinum_pipelines.lib.conformance.report import row_ranges
from dinum_pipelines.lib.ingest.http import FetchError, fetch_to_file, make_session
from dinum_pipelines.lib.clean.parsing import ParseError
from dinum_pipelines.lib.publish.publishing import ROLE_EXTRA
from dinum_pipelines.lib.declare.registry import CsvOptions, SourceSpec

CONFORMANCE_ROLE = "conformance"
# Faults listed per (column, code) group on a page; the counts and row ranges cover them all.
FAULTS_SHOWN = 10
FETCH_TIMEOUT = (10.0, 120.0)
FETCH_MAX_BYTES = 2 * 1024**3
_URL = re.compile(r"^https?://", re.IGNORECASE)
_SCHEMA_FILE = re.compile(r"^[\w.-]+\.json$")


@dataclass(frozen=True)
class FaultGroup:
    column: str
    # How the page names where the faults are: a column, the header, or the file.
    where: str
    code: str
    title: str
    count: int
    rows: str
    faults: list[dict[str, Any]]


def fault_groups(document: dict[str, Any]) -> list[FaultGroup]:
    """A report's faults (`ConformanceReport.to_dict()`) grouped by (column, code), in order of appearance."""
    grouped: dict[tuple[str, str], list[dict[str, Any]]] = defaultdict(list)
    for fault in document.get("errors", []):
        grouped[(fault.get("field") or "", fault["code"])].append(fault)
    return [
        FaultGroup(
            column=column,
            where=f"Colonne « {column} »" if column else "En-tête" if code in HEADER_CODES else "Fichier",
            code=code,
            title=CATALOGUE.get(code, (code, ""))[0],
            count=len(faults),
            rows=row_ranges([fault["row"] for fault in faults if fault.get("row") is not None]),
            faults=faults[:FAULTS_SHOWN],
        )
        for (column, code), faults in grouped.items()
    ]


def report_context(document: dict[str, Any]) -> dict[str, Any]:
    return {"report": document, "groups": fault_groups(document), "titles": {code: item[0] for code, item in CATALOGUE.items()}}


# --- /valider/ ------------------------------------------------------------------------------------


class InputError(ValueError):
    """The form cannot be validated as sent; the message is for the producer."""


def known_schemas(page: PageRequest) -> list[str]:
    folder = page.store.settings.schemas_dir
    if folder is None or not folder.is_dir():
        return []
    return sorted(path.name for path in folder.glob("*.json"))


def refuse_private_address(url: str) -> None:
    """InputError when the URL's host resolves to a loopback, private, link-local or reserved
    address: /valider/ must not let a visitor make the catalog read its own network. (The name is
    resolved again when fetching; a deployment that fears DNS rebinding puts an egress proxy in front.)"""
    host = urlsplit(url).hostname or ""
    try:
        addresses = {info[4][0] for info in socket.getaddrinfo(host, None)}
    except (socket.gaierror, UnicodeError):
        raise InputError(f"L'adresse « {host} » est introuvable.") from None
    for address in addresses:
        ip = ipaddress.ip_address(address.split("%")[0])
        if ip.is_private or ip.is_loopback or ip.is_link_local or ip.is_reserved or ip.is_multicast or ip.is_unspecified:
            raise InputError(f"L'adresse « {host} » est celle d'un réseau privé : ce catalogue ne la lit pas.")


def _fetch(url: str, folder: Path, allow_private: bool) -> Path:
    if not allow_private:
        refuse_private_address(url)
    with make_session(retries=1, backoff_factor=0.5) as session:
        download = fetch_to_file(session, url, folder, timeout=FETCH_TIMEOUT, max_bytes=FETCH_MAX_BYTES)
    if download.path is None:
        raise FetchError(f"{url}: the server answered {download.status_code} without a body")
    return download.path


async def _save(upload: UploadFile, folder: Path) -> Path:
    target = folder / "upload"
    with target.open("wb") as handle:
        while chunk := await upload.read(1 << 20):
            handle.write(chunk)
    return target


async def _input(
    form: Mapping[str, Any], upload_field: str, url_field: str, folder: Path, what: str, allow_private: bool
) -> tuple[Path, str] | None:
    """The file the form uploads in `upload_field` or links in `url_field`, saved in `folder`, and
    how to name it in messages; None when the form gives neither."""
    folder.mkdir()
    upload = form.get(upload_field)
    url = str(form.get(url_field) or "").strip()
    if isinstance(upload, UploadFile) and upload.filename:
        return await _save(upload, folder), Path(upload.filename).name
    if url:
        if not _URL.match(url):
            raise InputError(f"L'adresse {what} doit commencer par http:// ou https://.")
        return await run_in_threadpool(_fetch, url, folder, allow_private), url
    return None


async def _inputs(form: Mapping[str, Any], page: PageRequest, folder: Path) -> tuple[Path, str, Path, str]:
    """The data file and the schema the form (or the query string) names, saved in `folder`;
    names for messages."""
    allow_private = page.store.settings.fetch_private_urls
    data = await _input(form, "file", "url", folder / "data", "du fichier", allow_private)
    if data is None:
        raise InputError("Choisissez un fichier à vérifier, ou donnez son adresse.")
    schema = await _input(form, "schema_file", "schema_url", folder / "schema", "du schéma", allow_private)
    chosen = str(form.get("schema") or "").strip()
    if schema is None and chosen:
        if chosen not in known_schemas(page) or not _SCHEMA_FILE.match(chosen):
            raise InputError(f"Le schéma « {chosen} » n'est pas proposé par ce catalogue.")
        schema = page.store.settings.schemas_dir / chosen, chosen
    if schema is None:
        raise InputError("Choisissez un schéma, envoyez-le, ou donnez son adresse.")
    return *data, *schema


def _validate(data: Path, name: str, schema_path: Path, schema_name: str) -> dict[str, Any]:
    schema = read_schema_file(schema_path, origin=schema_name)
    served = unquote(Path(urlsplit(name).path).name) or name
    source = SourceSpec(
        url=name if _URL.match(name) else f"http://localhost/{served}",
        format=guess_format(served, data),
        csv=CsvOptions(decimal="."),
    )
    return validate_file(data, schema, source, name).to_dict()


async def validate_page(request: Request) -> Response:
    """The form; with a file posted, or `?url=…&schema=…` (or `schema_url`) as Validata links do,
    the form and the report."""
    page = PageRequest(request, request.app.state.store)
    context: dict[str, Any] = {"schemas": known_schemas(page), "error": None, "report": None, "groups": []}
    fields: Mapping[str, Any] = (
        await request.form(max_files=2, max_fields=20) if request.method == "POST" else request.query_params
    )
    context["fields"] = {name: str(fields.get(name) or "") for name in ("url", "schema", "schema_url")}
    if request.method == "GET" and "url" not in fields:
        return page.html("validate.html", **context)
    folder = Path(tempfile.mkdtemp(prefix="dinum-valider-"))
    try:
        data, name, schema, schema_name = await _inputs(fields, page, folder)
        context.update(report_context(await run_in_threadpool(_validate, data, name, schema, schema_name)))
    except (InputError, SchemaError, SourceError, ParseError, FetchError) as exc:
        context["error"] = str(exc)
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    return page.html("validate.html", status=400 if context["error"] else 200, **context)


# --- A dataset's latest conformance report -----------------------------------------------------


def dataset_report_page(page: PageRequest) -> Response:
    record = public_dataset(page)
    resource = next(
        (r for r in record.get("resources", []) if (r.get("extras") or {}).get(ROLE_EXTRA) == CONFORMANCE_ROLE), None
    )
    path = page.store.files.path(resource["file_key"]) if resource and resource.get("file_key") else None
    if path is None or not path.is_file():
        raise NotFound("Ce jeu de données n'a pas de rapport de conformité.")
    document = json.loads(path.read_bytes())
    dataset = page.render.dataset(record)
    return page.html("conformance.html", dataset=dataset, **report_context(document))


def validation_routes() -> list[BaseRoute]:
    return [
        Route("/valider/", validate_page, methods=["GET", "POST"]),
        Route("/datasets/{dataset}/conformite/", page_endpoint(dataset_report_page), methods=["GET"]),
    ]
