"""The DCAT-AP export (catalog/dcat.py): /catalog and /datasets/{id}/rdf in Turtle, RDF/XML and
JSON-LD, content negotiation, paging, and validation with pyshacl against DCAT-AP 3.0.0's mandatory
shapes, read in place from ../shared/dcat-ap/ (the data graph alone: no network)."""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import requests
from pyshacl import validate
from rdflib import Graph, Literal, Namespace, URIRef
from rdflib import namespace as ns

from dinum_pipelines.catalog import Publisher
from dinum_pipelines_tests.catalog.conftest import Api
from dinum_pipelines_tests.conftest import REPO_ROOT
from dinum_pipelines_tests.e2e.test_demo_end_to_end import Demo

# ns.DCAT rather than DCAT imported: pytest inspects module globals, and rdflib warns about that.
SHAPES_DIR = REPO_ROOT.parent / "shared" / "dcat-ap"
MANDATORY_SHAPES = SHAPES_DIR / "3.0.0__html__shacl__shapes.ttl"
RANGE_SHAPES = SHAPES_DIR / "3.0.0__html__shacl__range.ttl"  # the classes of values: met too
HVD_SHAPES = SHAPES_DIR / "3.0.0-hvd__shacl__hvd-SHACL.ttl"  # for High-Value Datasets' own graphs
MOBILITY = URIRef("http://data.europa.eu/bna/c_b79e35eb")
DCATAP = Namespace("http://data.europa.eu/r5r/")
SPDX = Namespace("http://spdx.org/rdf/terms#")
HYDRA = Namespace("http://www.w3.org/ns/hydra/core#")
HVD = URIRef("http://data.europa.eu/eli/reg_impl/2023/138/oj")
PARSERS = {"ttl": "turtle", "rdf": "xml", "jsonld": "json-ld"}
MEDIA_TYPES = {"ttl": "text/turtle", "rdf": "application/rdf+xml", "jsonld": "application/ld+json"}
CSV = b"code,nom\n75056,Paris\n13055,Marseille\n"


def shapes_graph(path: Path = MANDATORY_SHAPES) -> Graph:
    # A missing shapes file fails the test: the oracle must run, never be skipped.
    assert path.is_file(), f"{path}: DCAT-AP shapes not found (../shared/dcat-ap/ must stand beside the project)"
    return Graph().parse(path, format="turtle")


def assert_conforms(data: Graph, shapes: Path = MANDATORY_SHAPES) -> None:
    """0 violations of `shapes` (pyshacl on the data graph alone: no network, no inference)."""
    conforms, _report, text = validate(data, shacl_graph=shapes_graph(shapes), inference="none", allow_warnings=True)
    assert conforms, text


def test_the_shapes_catch_a_dataset_without_title() -> None:
    """The validation is not vacuous: a dataset without title or description is refused."""
    graph = Graph()
    graph.add((URIRef("http://example.org/d"), ns.RDF.type, ns.DCAT.Dataset))
    conforms, _report, text = validate(graph, shacl_graph=shapes_graph(), inference="none")
    assert not conforms and "dct:title" in text and "dct:description" in text


def parsed(response: Any, extension: str) -> Graph:
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith(MEDIA_TYPES[extension])
    return Graph().parse(data=response.content, format=PARSERS[extension])


@pytest.fixture
def catalog_datasets(api: Api, publisher: Publisher) -> dict[str, dict[str, Any]]:
    """Three datasets: HVD-tagged with a hosted CSV and a remote file, one with temporal and spatial
    coverage, one with no resources; and a private one, which the export must not show."""
    hvd = api.create_dataset(
        title="Adresses", organization=publisher.organization_id, license="lov2", frequency="monthly",
        tags=["hvd", "adresses"],
    )
    assert api.upload(hvd["id"], "communes.csv", CSV).status_code == 201
    remote = api.post(
        f"/datasets/{hvd['id']}/resources/",
        json={"title": "API", "url": "https://example.org/api/adresses.json", "filetype": "remote", "format": "json"},
    )
    assert remote.status_code == 201, remote.text
    temporal = api.create_dataset(
        title="Population", organization=publisher.organization_id, license="cc-by", frequency="annual",
        temporal_coverage={"start": "2020-01-01", "end": "2024-12-31"},
        spatial={"zones": ["country:fr"], "granularity": "country"},
    )
    assert api.upload(temporal["id"], "population.csv", CSV).status_code == 201
    empty = api.create_dataset(title="Vide", organization=publisher.organization_id)
    private = api.create_dataset(title="Secret", organization=publisher.organization_id, private=True)
    return {
        name: api.get(f"/datasets/{record['id']}/").json()
        for name, record in {"hvd": hvd, "temporal": temporal, "empty": empty, "private": private}.items()
    }


def test_catalog_export_in_three_formats_validates(anonymous: Api, catalog_datasets: dict[str, dict[str, Any]]) -> None:
    base = anonymous.catalog.url
    graphs = {extension: parsed(anonymous.get(f"{base}/catalog.{extension}"), extension) for extension in PARSERS}
    sizes = {extension: len(graph) for extension, graph in graphs.items()}
    assert len(set(sizes.values())) == 1, sizes
    graph = graphs["ttl"]
    assert_conforms(graph)
    assert_conforms(graph, RANGE_SHAPES)

    catalog = URIRef(f"{base}/catalog")
    assert (catalog, ns.RDF.type, ns.DCAT.Catalog) in graph
    datasets = set(graph.objects(catalog, ns.DCAT.dataset))
    expected = {URIRef(d["uri"]) for name, d in catalog_datasets.items() if name != "private"}
    assert datasets == expected  # the private one is not exported

    hvd = catalog_datasets["hvd"]
    hvd_iri = URIRef(hvd["uri"])
    assert graph.value(hvd_iri, ns.DCTERMS.identifier) == Literal(hvd["id"])
    assert graph.value(hvd_iri, ns.DCAT.landingPage) == URIRef(hvd["page"])
    assert graph.value(hvd_iri, DCATAP.applicableLegislation) == HVD
    assert {str(k) for k in graph.objects(hvd_iri, ns.DCAT.keyword)} == {"hvd", "adresses"}
    assert graph.value(hvd_iri, ns.DCTERMS.accrualPeriodicity) == URIRef(
        "http://publications.europa.eu/resource/authority/frequency/MONTHLY"
    )
    publisher = graph.value(hvd_iri, ns.DCTERMS.publisher)
    assert (publisher, ns.RDF.type, ns.FOAF.Agent) in graph and str(graph.value(publisher, ns.FOAF.name)) == "Insee"
    distributions = set(graph.objects(hvd_iri, ns.DCAT.distribution))
    assert distributions == {URIRef(r["latest"]) for r in hvd["resources"]}
    hosted = next(r for r in hvd["resources"] if r["filetype"] == "file")
    distribution = URIRef(hosted["latest"])
    assert graph.value(distribution, ns.DCAT.downloadURL) == URIRef(hosted["url"])
    assert graph.value(distribution, ns.DCAT.byteSize).toPython() == len(CSV)
    assert graph.value(distribution, ns.DCTERMS.license) == URIRef("https://www.etalab.gouv.fr/licence-ouverte-open-licence")
    assert graph.value(distribution, DCATAP.applicableLegislation) == HVD
    checksum = graph.value(distribution, SPDX.checksum)
    assert graph.value(checksum, SPDX.algorithm) == SPDX.checksumAlgorithm_sha1
    assert str(graph.value(checksum, SPDX.checksumValue)) == hosted["checksum"]["value"]

    temporal = URIRef(catalog_datasets["temporal"]["uri"])
    period = graph.value(temporal, ns.DCTERMS.temporal)
    assert (period, ns.RDF.type, ns.DCTERMS.PeriodOfTime) in graph
    assert graph.value(period, ns.DCAT.startDate) == Literal("2020-01-01", datatype=ns.XSD.date)
    assert graph.value(period, ns.DCAT.endDate) == Literal("2024-12-31", datatype=ns.XSD.date)
    assert graph.value(graph.value(temporal, ns.DCTERMS.spatial), ns.DCTERMS.identifier) == Literal("country:fr")
    assert graph.value(temporal, DCATAP.applicableLegislation) is None
    assert list(graph.objects(URIRef(catalog_datasets["empty"]["uri"]), ns.DCAT.distribution)) == []


def test_content_negotiation(anonymous: Api, catalog_datasets: dict[str, dict[str, Any]]) -> None:
    base = anonymous.catalog.url
    for extension, media_type in MEDIA_TYPES.items():
        parsed(anonymous.get(f"{base}/catalog", headers={"Accept": media_type}), extension)
    parsed(anonymous.get(f"{base}/catalog", headers={"Accept": "*/*"}), "ttl")  # Turtle by default
    weighted = "text/turtle;q=0.5, application/ld+json;q=0.9, text/html"
    parsed(anonymous.get(f"{base}/catalog", headers={"Accept": weighted}), "jsonld")
    assert anonymous.get(f"{base}/catalog.pdf").status_code == 404


def test_paging(anonymous: Api, catalog_datasets: dict[str, dict[str, Any]]) -> None:
    base = anonymous.catalog.url
    seen: set[URIRef] = set()
    for page in (1, 2):
        graph = parsed(anonymous.get(f"{base}/catalog.ttl?page={page}&page_size=2"), "ttl")
        catalog = URIRef(f"{base}/catalog")
        seen |= set(graph.objects(catalog, ns.DCAT.dataset))
        assert graph.value(catalog, HYDRA.totalItems).toPython() == 3
        view = graph.value(catalog, HYDRA.view)
        assert (view, ns.RDF.type, HYDRA.PartialCollectionView) in graph
        assert graph.value(view, HYDRA.last) == URIRef(f"{base}/catalog.ttl?page=2&page_size=2")
        assert (graph.value(view, HYDRA.next) is None) == (page == 2)
        assert (graph.value(view, HYDRA.previous) is None) == (page == 1)
        assert_conforms(graph)
    assert seen == {URIRef(d["uri"]) for name, d in catalog_datasets.items() if name != "private"}
    assert anonymous.get(f"{base}/catalog?page_size=0").status_code == 400


def test_dataset_rdf(anonymous: Api, catalog_datasets: dict[str, dict[str, Any]]) -> None:
    base = anonymous.catalog.url
    hvd = catalog_datasets["hvd"]
    graphs = {
        extension: parsed(anonymous.get(f"{base}/datasets/{hvd['id']}/rdf.{extension}"), extension)
        for extension in PARSERS
    }
    assert len({len(graph) for graph in graphs.values()}) == 1
    negotiated = parsed(anonymous.get(f"{base}/datasets/{hvd['slug']}/rdf", headers={"Accept": "application/rdf+xml"}), "rdf")
    assert len(negotiated) == len(graphs["ttl"])
    assert (URIRef(hvd["uri"]), ns.RDF.type, ns.DCAT.Dataset) in negotiated
    assert_conforms(negotiated)
    assert anonymous.get(f"{base}/datasets/000000000000000000000000/rdf").status_code == 404
    assert anonymous.get(f"{base}/datasets/{catalog_datasets['private']['id']}/rdf").status_code == 404



def parquet_bytes() -> bytes:
    buffer = io.BytesIO()
    pq.write_table(pa.table({"code": ["75056", "13055"], "nom": ["Paris", "Marseille"]}), buffer)
    return buffer.getvalue()


def test_an_hvd_dataset_meets_the_hvd_shapes_and_its_table_is_a_data_service(
    api: Api, anonymous: Api, publisher: Publisher,
) -> None:
    """A dataset tagged `hvd` and `mobilite` (data.gouv.fr's category tag) with the pipeline's CSV
    and Parquet: its graph conforms to the HVD shapes as well as the mandatory and range ones; the
    row API over its table is a dcat:DataService the two distributions name as their access
    service, and that service answers. Without a category tag, the HVD shapes refuse it."""
    base = anonymous.catalog.url
    dataset = api.create_dataset(
        title="Bornes de recharge", organization=publisher.organization_id, license="lov2", frequency="monthly",
        tags=["hvd", "mobilite"],
    )
    uploaded = {name: api.upload(dataset["id"], name, content).json() for name, content in (("bornes.csv", CSV), ("bornes.parquet", parquet_bytes()))}
    graph = parsed(anonymous.get(f"{base}/datasets/{dataset['id']}/rdf.ttl"), "ttl")
    assert_conforms(graph, HVD_SHAPES)
    assert_conforms(graph)
    assert_conforms(graph, RANGE_SHAPES)

    dataset_iri = URIRef(f"{base}/api/1/datasets/{dataset['id']}/")
    assert graph.value(dataset_iri, DCATAP.hvdCategory) == MOBILITY
    [service] = set(graph.subjects(ns.RDF.type, ns.DCAT.DataService))
    table = uploaded["bornes.parquet"]["id"]
    assert service == URIRef(f"{base}/api/resources/{table}/data/")
    assert graph.value(service, ns.DCAT.endpointURL) == service
    assert graph.value(service, ns.DCAT.endpointDescription) == URIRef(f"{base}/api/resources/{table}/swagger/")
    assert graph.value(service, ns.DCAT.servesDataset) == dataset_iri
    assert graph.value(service, DCATAP.hvdCategory) == MOBILITY
    for resource in uploaded.values():
        assert graph.value(URIRef(resource["latest"]), ns.DCAT.accessService) == service
    assert anonymous.get(str(service)).json()["meta"]["total"] == 2
    assert anonymous.get(str(graph.value(service, ns.DCAT.endpointDescription))).json()["openapi"].startswith("3.")
    catalog = parsed(anonymous.get(f"{base}/catalog.ttl"), "ttl")
    assert (URIRef(f"{base}/catalog"), ns.DCAT.service, service) in catalog

    # The HVD shapes are not vacuous: without its category tag the dataset is refused.
    assert api.put(f"/datasets/{dataset['id']}/", json={"tags": ["hvd"]}).status_code == 200
    untagged = parsed(anonymous.get(f"{base}/datasets/{dataset['id']}/rdf.ttl"), "ttl")
    conforms, _report, text = validate(untagged, shacl_graph=shapes_graph(HVD_SHAPES), inference="none", allow_warnings=True)
    assert not conforms and "hvdCategory" in text


@pytest.mark.slow
def test_the_demo_catalog_export_validates(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The must-show: the demo (its registry run by the pipeline into a catalog, as
    e2e/test_demo_end_to_end.py does) exported in DCAT-AP conforms to the mandatory shapes."""
    demo = Demo(tmp_path, monkeypatch)
    try:
        outcomes = demo.run()
        published = [slug for slug, outcome in outcomes.items() if outcome.status == "published"]
        assert published
        graph = parsed(requests.get(f"{demo.catalog.url}/catalog", timeout=30), "ttl")
        datasets = set(graph.objects(URIRef(f"{demo.catalog.url}/catalog"), ns.DCAT.dataset))
        assert len(datasets) == len(published)
        assert all(list(graph.objects(dataset, ns.DCAT.distribution)) for dataset in datasets)
        assert_conforms(graph)
        assert_conforms(graph, RANGE_SHAPES)
    finally:
        demo.stop()
