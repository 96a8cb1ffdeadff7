"""The catalog's HTML pages for reusers: search, dataset and organization pages, in French;
and the quality page for Etalab staff, drawn from the pipeline's published quality report.

data.gouv.fr gives reusers pages, not only JSON; these are ours. They are rendered on the server
from Jinja2 templates (autoescaped: every value comes from publishers) over the same documents the
API returns (`Renderer`), so a page can never show a field differently from the API. Visitors are
anonymous (a browser sends no API key): private datasets do not exist for them. Reading a dataset
page is a `dataset.view` event on the "web" channel, which the metrics pipeline counts.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import pyarrow.parquet as pq
from jinja2 import Environment, FileSystemLoader
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import HTMLResponse, Response
from starlette.routing import BaseRoute, Mount, Route
from starlette.staticfiles import StaticFiles

from dinum_pipelines.catalog.db import utcnow
from dinum_pipelines.catalog.errors import Gone, NotFound
from dinum_pipelines.catalog.events import DATASET_VIEW
from dinum_pipelines.catalog.lateness import late_datasets
from dinum_pipelines.catalog.listing import DatasetQuery
from dinum_pipelines.catalog.metrics_api import organization_metrics_of
from dinum_pipelines.catalog.previews import FILTER_OPERATORS, table_previews
from dinum_pipelines.catalog.quality_score import CRITERIA
from dinum_pipelines.catalog.render import Renderer
from dinum_pipelines.catalog.store import CatalogStore
from dinum_pipelines.catalog.validation import CONTROL_CHARACTERS, MAX_PAGE
from dinum_pipelines.lib.publish.publishing import ROLE_EXTRA, SLUG_EXTRA
from dinum_pipelines.lib.quality.history import (
    BLOCKED,
    PASSED,
    QUALITY_REPORT_SLUG,
    QUALITY_REPORT_TAG,
    TREND_RUNS,
    WARNING,
    latest_by_dataset,
)
from dinum_pipelines.lib.declare.vocabularies import FREQUENCIES, LICENSES

TEMPLATES_DIR = Path(__file__).parent / "templates"
# Every page: no script at all, styles and images from the catalog only, forms posted to it only,
# never framed; browsers must not guess types, and other sites learn only our origin.
SECURITY_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'none'; style-src 'self'; img-src 'self' data:; form-action 'self'; "
        "base-uri 'none'; frame-ancestors 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "strict-origin-when-cross-origin",
}
STATIC_DIR = Path(__file__).parent / "static"
PAGE_SIZE = 20

Json = dict[str, Any]

FREQUENCY_LABELS = {
    "continuous": "Temps réel", "oneMinute": "Chaque minute", "fiveMinutes": "Toutes les cinq minutes",
    "tenMinutes": "Toutes les dix minutes", "fifteenMinutes": "Tous les quarts d'heure",
    "thirtyMinutes": "Toutes les demi-heures", "hourly": "Toutes les heures", "bihourly": "Toutes les deux heures",
    "trihourly": "Toutes les trois heures", "twelveHours": "Toutes les douze heures",
    "severalTimesADay": "Plusieurs fois par jour", "threeTimesADay": "Trois fois par jour",
    "semidaily": "Deux fois par jour", "daily": "Quotidienne", "fiveTimesAWeek": "Cinq fois par semaine",
    "threeTimesAWeek": "Trois fois par semaine", "semiweekly": "Deux fois par semaine", "weekly": "Hebdomadaire",
    "biweekly": "Toutes les deux semaines", "threeTimesAMonth": "Trois fois par mois",
    "semimonthly": "Deux fois par mois", "monthly": "Mensuelle", "bimonthly": "Tous les deux mois",
    "quarterly": "Trimestrielle", "threeTimesAYear": "Trois fois par an", "semiannual": "Semestrielle",
    "annual": "Annuelle", "biennial": "Tous les deux ans", "triennial": "Tous les trois ans",
    "quadrennial": "Tous les quatre ans", "quinquennial": "Tous les cinq ans", "decennial": "Tous les dix ans",
    "bidecennial": "Tous les vingt ans", "tridecennial": "Tous les trente ans", "punctual": "Ponctuelle",
    "irregular": "Irrégulière", "never": "Jamais", "notPlanned": "Non planifiée", "other": "Autre",
    "unknown": "Inconnue",
}
assert set(FREQUENCY_LABELS) == set(FREQUENCIES)

CRITERION_LABELS = {
    "license": "Licence renseignée",
    "temporal_coverage": "Couverture temporelle renseignée",
    "spatial": "Couverture spatiale renseignée",
    "update_frequency": "Fréquence de mise à jour renseignée",
    "update_fulfilled_in_time": "Mises à jour faites à temps",
    "dataset_description_quality": "Description détaillée (plus de 100 caractères)",
    "has_open_format": "Au moins un fichier dans un format ouvert",
    "all_resources_available": "Tous les fichiers sont disponibles",
    "resources_documentation": "Fichiers documentés",
}
assert set(CRITERION_LABELS) == set(CRITERIA)

FRENCH_MONTHS = ("janv.", "févr.", "mars", "avr.", "mai", "juin", "juil.", "août", "sept.", "oct.", "nov.", "déc.")
SIZE_UNITS = ("o", "Ko", "Mo", "Go", "To")


def human_size(size: int | None) -> str:
    """Bytes as a French reader expects them: "850 o", "1,2 Mo" (units of 1024)."""
    if size is None:
        return "taille inconnue"
    value, unit = float(size), 0
    while value >= 1024 and unit < len(SIZE_UNITS) - 1:
        value, unit = value / 1024, unit + 1
    number = f"{value:.0f}" if unit == 0 or value >= 100 else f"{value:.1f}".replace(".", ",")
    return f"{number} {SIZE_UNITS[unit]}"


def french_date(iso_text: str | None) -> str:
    """"2026-10-05T..." -> "5 oct. 2026"."""
    if not iso_text:
        return "non renseignée"
    year, month, day = iso_text[:10].split("-")
    return f"{int(day)} {FRENCH_MONTHS[int(month) - 1]} {year}"


def month_label(month: str) -> str:
    """"2026-10" -> "oct. 26"."""
    year, number = month.split("-")
    return f"{FRENCH_MONTHS[int(number) - 1]} {year[2:]}"


@dataclass(frozen=True)
class Bar:
    month: str
    label: str
    value: int
    x: float
    y: float
    width: float
    height: float


@dataclass(frozen=True)
class Chart:
    """A bar chart drawn as inline SVG by the template; the geometry is computed here."""

    width: int
    height: int
    baseline: float
    bars: list[Bar]
    maximum: int


CHART_WIDTH, CHART_HEIGHT, CHART_TOP, CHART_BOTTOM = 720, 240, 24, 36


def downloads_chart(by_months: Mapping[str, int]) -> Chart | None:
    """One bar per month (in month order), heights relative to the busiest; None without figures."""
    if not by_months:
        return None
    months = sorted(by_months)
    maximum = max(max(by_months.values()), 1)
    slot = CHART_WIDTH / len(months)
    usable = CHART_HEIGHT - CHART_TOP - CHART_BOTTOM
    baseline = CHART_HEIGHT - CHART_BOTTOM
    bars = []
    for index, month in enumerate(months):
        value = int(by_months[month])
        height = usable * value / maximum
        bars.append(
            Bar(month, month_label(month), value, x=index * slot + slot * 0.15, y=baseline - height,
                width=slot * 0.7, height=height)
        )
    return Chart(CHART_WIDTH, CHART_HEIGHT, baseline, bars, maximum)


environment = Environment(loader=FileSystemLoader(TEMPLATES_DIR), autoescape=True, trim_blocks=True, lstrip_blocks=True)
environment.filters["human_size"] = human_size
environment.filters["french_date"] = french_date
environment.globals.update(
    FREQUENCY_LABELS=FREQUENCY_LABELS, CRITERION_LABELS=CRITERION_LABELS, LICENSES=LICENSES, CRITERIA=CRITERIA,
    FILTER_OPERATORS=FILTER_OPERATORS,
)


# Search


@dataclass(frozen=True)
class SearchFilters:
    q: str = ""
    organization: str = ""
    tag: str = ""
    license: str = ""
    format: str = ""

    @classmethod
    def from_query(cls, query: Mapping[str, str]) -> SearchFilters:
        """The filters a visitor typed; control characters (NUL...) dropped, as no text holds them."""
        return cls(**{
            field.name: CONTROL_CHARACTERS.sub("", query.get(field.name) or "").strip() for field in dataclasses.fields(cls)
        })

    def query_string(self, page: int) -> str:
        params = {key: value for key, value in dataclasses.asdict(self).items() if value}
        return urlencode({**params, "page": page} if page > 1 else params)


def search(store: CatalogStore, filters: SearchFilters, page: int) -> tuple[list[Json], int]:
    """One page of public datasets matching the filters, and the number of matches: the API's
    search (`DatasetQuery`), every filter applied by the database."""
    org = store.accounts.organization(filters.organization) if filters.organization else None
    query = DatasetQuery(
        q=filters.q or None,
        organization_id=org["id"] if org else (filters.organization or None),
        tags=(filters.tag,) if filters.tag else (),
        license=filters.license or None,
        format=filters.format or None,
        page=page,
        page_size=PAGE_SIZE,
    )
    return store.datasets.search(query)


# Handlers


@dataclass
class PageRequest:
    request: Request
    store: CatalogStore

    @property
    def render(self) -> Renderer:
        return Renderer(self.store.settings.public_url or str(self.request.base_url))

    def page_number(self) -> int:
        text = self.request.query_params.get("page", "1")
        if not text.isdigit() or len(text) > 7 or not 1 <= int(text) <= MAX_PAGE:
            raise NotFound("Cette page de résultats n'existe pas.")
        return int(text)

    def html(self, template: str, status: int = 200, **context: Any) -> HTMLResponse:
        return HTMLResponse(environment.get_template(template).render(**context), status_code=status, headers=SECURITY_HEADERS)


def pages_count(total: int) -> int:
    return max(1, -(-total // PAGE_SIZE))


def home(page: PageRequest) -> Response:
    filters = SearchFilters.from_query(page.request.query_params)
    number = page.page_number()
    records, total = search(page.store, filters, number)
    return page.html(
        "home.html",
        filters=filters,
        datasets=[page.render.dataset(record) for record in records],
        total=total,
        page=number,
        pages=pages_count(total),
        query_string=filters.query_string,
        organizations=page.store.accounts.organizations(),
    )


def public_dataset(page: PageRequest) -> Json:
    """The dataset the path names (id or slug), as anonymous visitors may see it: 404, 410 otherwise."""
    record = page.store.datasets.get(page.request.path_params["dataset"])
    if record is None or record["private"]:
        raise NotFound("Ce jeu de données n'existe pas.")
    if record["deleted"]:
        raise Gone("Ce jeu de données a été supprimé.")
    return record


def dataset_page(page: PageRequest) -> Response:
    record = public_dataset(page)
    if page.request.method == "GET":
        page.store.events.record(
            DATASET_VIEW, channel="web", user_agent=page.request.headers.get("user-agent"), dataset_id=record["id"],
        )
    dataset = page.render.dataset(record)
    return page.html(
        "dataset.html", dataset=dataset, chart=downloads_chart(dataset["metrics"]["resources_downloads_by_months"]),
        history=page.store.versions.history(page.render.base_url, record["resources"]),
        previews=table_previews(page.store, page.render.base_url, record, page.request.query_params),
    )


def public_organization(page: PageRequest) -> Json:
    """The organization the path names (id or slug): 404 if there is none, 410 if it was deleted."""
    org = page.store.accounts.organization(page.request.path_params["org"])
    if org is None:
        raise NotFound("Cette organisation n'existe pas.")
    if org["deleted_at"] is not None:
        raise Gone("Cette organisation a été supprimée.")
    return org


def organization_page(page: PageRequest) -> Response:
    org = public_organization(page)
    number = page.page_number()
    records, total = page.store.datasets.search(DatasetQuery(organization_id=org["id"], page=number, page_size=PAGE_SIZE))
    members = page.store.accounts.members_of(org["id"])
    org = {**org, "metrics": organization_metrics_of(page.store, org["id"])}
    return page.html(
        "organization.html",
        organization=page.render.organization(org, members=members, dataset_count=total),
        datasets=[page.render.dataset(record) for record in records],
        total=total,
        page=number,
        pages=pages_count(total),
        query_string=lambda number: urlencode({"page": number}),
    )


# The quality page: the pipeline's quality report dataset, read from the catalog's own files.

STATUS_LABELS = {PASSED: "Conforme", WARNING: "Avertissements", BLOCKED: "Publication bloquée"}


@dataclass(frozen=True)
class Sparkline:
    """A dataset's success percentages over its last runs, as SVG polyline points (0 % at the bottom)."""

    width: int
    height: int
    points: str
    last_x: float
    last_y: float


def sparkline(values: list[float], width: int = 120, height: int = 28) -> Sparkline:
    margin = 3
    step = (width - 2 * margin) / max(1, len(values) - 1)
    coordinates = [
        (margin + index * step, margin + (100.0 - value) / 100.0 * (height - 2 * margin)) for index, value in enumerate(values)
    ]
    points = " ".join(f"{x:.1f},{y:.1f}" for x, y in coordinates)
    return Sparkline(width, height, points, *coordinates[-1])


def quality_report_record(store: CatalogStore) -> Json | None:
    """The public quality report dataset: tagged for the index, recognized by its `dinum:slug` extra."""
    candidates, _ = store.datasets.search(DatasetQuery(tags=(QUALITY_REPORT_TAG,), page=1, page_size=50))
    for record in candidates:
        if (record.get("extras") or {}).get(SLUG_EXTRA) == QUALITY_REPORT_SLUG:
            return record
    return None


def quality_page(page: PageRequest) -> Response:
    record = quality_report_record(page.store)
    parquet = next(
        (r for r in (record or {}).get("resources", []) if (r.get("extras") or {}).get(ROLE_EXTRA) == "parquet"), None
    )
    path = page.store.files.path(parquet["file_key"]) if parquet and parquet.get("file_key") else None
    lines = latest_by_dataset(pq.read_table(path).to_pylist()) if path and path.is_file() else []
    counts = {status: sum(line.status == status for line in lines) for status in STATUS_LABELS}
    return page.html(
        "quality.html",
        lines=lines,
        late=late_datasets(page.store, lines, utcnow()),
        sparklines={line.dataset: sparkline(line.trend) for line in lines},
        counts=counts,
        labels=STATUS_LABELS,
        trend_runs=TREND_RUNS,
        report=page.render.dataset(record) if record else None,
    )


@dataclass(frozen=True)
class PageError:
    status: int
    message: str
    request_id: str | None = None


def error_page(status: int, message: str, request_id: str | None = None, headers: Mapping[str, str] | None = None) -> HTMLResponse:
    """The error page (404, 410, 500 with the request id an operator looks up in the log)."""
    html = environment.get_template("error.html").render(error=PageError(status, message, request_id))
    return HTMLResponse(html, status_code=status, headers={**SECURITY_HEADERS, **(headers or {})})


def page_endpoint(handler: Callable[[PageRequest], Response]) -> Callable[[Request], Any]:
    """Run `handler` in a worker thread; 404 and 410 become pages, not JSON."""

    async def endpoint(request: Request) -> Response:
        page = PageRequest(request, request.app.state.store)

        def run() -> Response:
            try:
                return handler(page)
            except (NotFound, Gone) as error:
                return error_page(error.status, error.message)

        return await run_in_threadpool(run)

    return endpoint


def page_routes() -> list[BaseRoute]:
    return [
        Route("/", page_endpoint(home), methods=["GET"]),
        Route("/datasets/{dataset}/", page_endpoint(dataset_page), methods=["GET"]),
        Route("/organizations/{org}/", page_endpoint(organization_page), methods=["GET"]),
        Route("/qualite/", page_endpoint(quality_page), methods=["GET"]),
        Mount("/static", app=StaticFiles(directory=STATIC_DIR), name="static"),
    ]

