"""The data on a dataset's page: a preview of each published table (first rows, paged, filtered
and sorted), its columns with their type, description and profile, and ready-to-copy calls.

data.gouv.fr shows a preview and a column profile on its resource pages (from api-tabular and
hydra's csv-detective run); ours come from the same places the API serves them: the rows from
the row API's own query code (tabular.py) over the published Parquet, so the page and
`/api/resources/{rid}/data/` always agree, and the profile from the `dinum:profile` extra the
pipeline published with the file. The page is rendered on the server (no script: the pages'
CSP forbids any), so the preview's filter is a plain GET form whose fields become api-tabular
parameters, and the page links to the very API call it made.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import PurePosixPath
from typing import Any
from urllib.parse import urlencode

from dinum_pipelines.catalog import tabular
from dinum_pipelines.catalog.metrics_api import MetricApiError
from dinum_pipelines.catalog.store import CatalogStore
from dinum_pipelines.lib.publish.column_profile import PROFILE_EXTRA
from dinum_pipelines.lib.publish.duckdb_values import python_type

Json = dict[str, Any]
PREVIEW_ROWS = 10
# The preview's filter: the operators a visitor picks from, in French.
FILTER_OPERATORS = {
    "contains": "contient", "exact": "est égal à", "differs": "est différent de",
    "greater": "est supérieur ou égal à", "less": "est inférieur ou égal à",
    "isnull": "est vide", "isnotnull": "n'est pas vide",
}
TYPE_LABELS = {"string": "texte", "int": "entier", "float": "nombre décimal", "bool": "booléen",
               "date": "date", "datetime": "date et heure", "json": "liste ou objet"}
# The page's own query parameters for the preview (the dataset page has no others).
TABLE, COLUMN, OPERATOR, VALUE, SORT, PAGE = "apercu", "colonne", "operateur", "valeur", "tri", "page_apercu"


@dataclass
class ColumnInfo:
    name: str
    type_label: str
    description: str
    profile: Json | None


@dataclass
class Preview:
    resource_id: str
    title: str
    columns: list[ColumnInfo]
    rows: list[Json]
    total: int
    page: int
    pages: int
    api_url: str
    csv_url: str
    filter: Json
    sample_rows: int | None = None  # the distinct and most frequent values were counted on a sample
    error: str | None = None
    previous_url: str | None = None
    next_url: str | None = None
    snippets: dict[str, str] = field(default_factory=dict)


def _asked(query: Mapping[str, str], resource_id: str, first: bool) -> Json:
    """The filter, sort and page the page's query asks of this table (the first table when the
    query names none)."""
    named = query.get(TABLE)
    if named != resource_id and not (named is None and first):
        return {"column": "", "operator": "contains", "value": "", "sort": "", "page": 1}
    page = query.get(PAGE, "1")
    return {
        "column": query.get(COLUMN, ""), "operator": query.get(OPERATOR, "contains"), "value": query.get(VALUE, ""),
        "sort": query.get(SORT, ""), "page": int(page) if page.isdigit() and 0 < len(page) <= 7 and int(page) > 0 else 1,
    }


def _api_items(asked: Json) -> list[tuple[str, str]]:
    """The api-tabular parameters the preview's form stands for."""
    items: list[tuple[str, str]] = []
    if asked["column"] and asked["operator"] in FILTER_OPERATORS:
        items.append((f"{asked['column']}__{asked['operator']}", asked["value"]))
    if asked["sort"]:
        column, _, direction = asked["sort"].rpartition(":")
        items.append((f"{column}__sort", direction))
    return items


def _page_link(dataset_slug: str, resource_id: str, asked: Json, page: int) -> str:
    query = {TABLE: resource_id, COLUMN: asked["column"], OPERATOR: asked["operator"], VALUE: asked["value"],
             SORT: asked["sort"], PAGE: str(page)}
    return f"/datasets/{dataset_slug}/?{urlencode({k: v for k, v in query.items() if v})}#apercu-{resource_id}"


def _snippets(base_url: str, resource: Json, csv_resource: Json | None) -> dict[str, str]:
    rid = resource["id"]
    rows_url = f"{base_url}/api/resources/{rid}/data/"
    parquet_url = f"{base_url}/api/1/datasets/r/{rid}"
    csv_url = f"{base_url}/api/1/datasets/r/{csv_resource['id']}" if csv_resource else f"{rows_url}csv/"
    return {
        "curl": f'curl "{rows_url}?page_size=20"',
        "pandas": f'import pandas as pd\ndf = pd.read_csv("{csv_url}", dtype=str)  # codes gardés en texte\n'
                  f'# ou, typé : df = pd.read_parquet("{parquet_url}")',
        "duckdb": f"-- DuckDB lit seulement les parties du fichier utiles (requêtes HTTP Range)\n"
                  f"SELECT * FROM read_parquet('{parquet_url}') LIMIT 10;",
        "export": f'curl -o selection.csv "{rows_url}csv/?colonne__exact=valeur"',
    }


def table_previews(store: CatalogStore, base_url: str, record: Json, query: Mapping[str, str]) -> list[Preview]:
    """One preview per published Parquet of the dataset (the pipeline's CSV is the same table)."""
    previews = []
    for index, resource in enumerate(r for r in record["resources"] if tabular.is_parquet(r)):
        path = store.files.path(resource["file_key"])
        if not path.is_file():
            continue
        stem = PurePosixPath(resource["file_key"]).stem
        csv_resource = next((r for r in record["resources"] if not tabular.is_parquet(r) and tabular.same_table(r, resource)), None)
        profile = (resource.get("extras") or {}).get(PROFILE_EXTRA) or (csv_resource or {}).get("extras", {}).get(PROFILE_EXTRA)
        asked = _asked(query, resource["id"], index == 0)
        items = _api_items(asked)
        error = None
        try:
            types = tabular.file_types(path)
        except tabular.UnreadableTable:
            continue  # a file named .parquet that is not one: no table to show (its API says why)
        try:
            _query, rows, total = tabular.rows(path, [*items, ("page", str(asked["page"])), ("page_size", str(PREVIEW_ROWS))])
        except MetricApiError as exc:
            error, items = exc.message, []
            _query, rows, total = tabular.rows(path, [("page_size", str(PREVIEW_ROWS))])
        columns = [
            ColumnInfo(
                name=name,
                type_label=TYPE_LABELS.get(python_type(kind), kind),
                description=((profile or {}).get("columns", {}).get(name) or {}).get("description", ""),
                profile=(profile or {}).get("profile", {}).get(name),
            )
            for name, kind in types.items()
        ]
        pages = max(1, -(-total // PREVIEW_ROWS))
        slug = record["slug"]
        api_url = f"{base_url}/api/resources/{resource['id']}/data/" + (f"?{urlencode(items)}" if items else "")
        previews.append(Preview(
            resource_id=resource["id"], title=resource.get("title") or stem, columns=columns, rows=rows, total=total,
            page=asked["page"], pages=pages, api_url=api_url,
            csv_url=f"{base_url}/api/resources/{resource['id']}/data/csv/" + (f"?{urlencode(items)}" if items else ""),
            filter=asked, error=error, sample_rows=(profile or {}).get("sample_rows"),
            previous_url=_page_link(slug, resource["id"], asked, asked["page"] - 1) if asked["page"] > 1 else None,
            next_url=_page_link(slug, resource["id"], asked, asked["page"] + 1) if asked["page"] < pages else None,
            snippets=_snippets(base_url, resource, csv_resource),
        ))
    return previews
