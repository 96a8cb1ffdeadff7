"""The catalog in DCAT-AP, the RDF profile data.europa.eu harvests national portals with.

European harvesters do not read udata's JSON API: they read a DCAT-AP export. udata serves one at
`/catalog` (and `/catalog.{format}`) and each dataset's at `/datasets/{id}/rdf` (and
`/datasets/{id}/rdf.{format}`), in Turtle, RDF/XML, JSON-LD and N3, chosen by the extension or
else by the Accept header (Turtle by default), the catalog paged with hydra's
`PartialCollectionView` links; this module serves the same paths the same way.

The mapping follows DCAT-AP 3.0.0 and is checked by the tests with pyshacl against the mandatory
shapes in ../shared/dcat-ap/ (dinum_pipelines_tests/catalog/test_dcat.py): a dataset is its API
URI, a distribution its resource's stable URL (the permalink), publishers are `foaf:Agent`s named
by their page, licences and frequencies are IRIs (the EU frequency vocabulary, the licence's own
page as udata does), datasets tagged `hvd` carry the High-Value Datasets regulation as
`dcatap:applicableLegislation` and their category as `dcatap:hvdCategory` from data.gouv.fr's
category tags (`mobilite`, `statistiques`...: udata's TAG_TO_EU_HVD_CATEGORIES). Each table the
row API serves is a `dcat:DataService` (its endpoint, its own OpenAPI document, the dataset it
serves, a contact point), which the table's distributions name as `dcat:accessService`, so an
HVD dataset meets the HVD shapes' "API access" requirement. Only public, live datasets are
exported.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from datetime import date, datetime
from typing import TYPE_CHECKING, Any
from urllib.parse import urlencode

from rdflib import BNode, Graph, Literal, Namespace, URIRef
from rdflib.namespace import DCAT, DCTERMS, FOAF, RDF, RDFS, SKOS, XSD
from starlette.responses import Response

from dinum_pipelines.catalog import tabular
from dinum_pipelines.catalog.errors import Gone, NotFound, field_error
from dinum_pipelines.catalog.ids import slugify
from dinum_pipelines.catalog.listing import DatasetQuery
from dinum_pipelines.lib.declare.vocabularies import FREQUENCIES as FREQUENCY_IDS
from dinum_pipelines.lib.declare.vocabularies import LICENSES

if TYPE_CHECKING:
    from dinum_pipelines.catalog.call import Call

Json = dict[str, Any]

DCATAP = Namespace("http://data.europa.eu/r5r/")
SPDX = Namespace("http://spdx.org/rdf/terms#")
HYDRA = Namespace("http://www.w3.org/ns/hydra/core#")
LOCN = Namespace("http://www.w3.org/ns/locn#")
GEOSPARQL = Namespace("http://www.opengis.net/ont/geosparql#")
EU_FREQUENCY = Namespace("http://publications.europa.eu/resource/authority/frequency/")
EU_FILE_TYPE = Namespace("http://publications.europa.eu/resource/authority/file-type/")
ELI = Namespace("http://data.europa.eu/eli/ontology#")
IANA_MEDIA_TYPES = "https://www.iana.org/assignments/media-types/"
HVD_LEGISLATION = URIRef("http://data.europa.eu/eli/reg_impl/2023/138/oj")
HVD_TAG = "hvd"
# udata's EU_HVD_CATEGORIES, keyed by the slug of their French label (the tag data.gouv.fr puts on HVD datasets).
HVD_CATEGORIES = {
    "meteorologiques": ("http://data.europa.eu/bna/c_164e0bf5", "Meteorological"),
    "entreprises-et-propriete-dentreprises": ("http://data.europa.eu/bna/c_a9135398", "Companies and company ownership"),
    "geospatiales": ("http://data.europa.eu/bna/c_ac64a52d", "Geospatial"),
    "mobilite": ("http://data.europa.eu/bna/c_b79e35eb", "Mobility"),
    "observation-de-la-terre-et-environnement": ("http://data.europa.eu/bna/c_dd313021", "Earth observation and environment"),
    "statistiques": ("http://data.europa.eu/bna/c_e1da4e07", "Statistics"),
}
HVD_CATEGORY_SCHEME = "http://data.europa.eu/bna/asd487ae75"
VCARD = Namespace("http://www.w3.org/2006/vcard/ns#")
CATALOG_TITLE = "Catalogue de données publiques"

# extension -> (rdflib serializer, media type); udata's formats. `json` and `xml` are aliases.
FORMATS: dict[str, tuple[str, str]] = {
    "ttl": ("turtle", "text/turtle"),
    "rdf": ("xml", "application/rdf+xml"),
    "xml": ("xml", "application/rdf+xml"),
    "jsonld": ("json-ld", "application/ld+json"),
    "json": ("json-ld", "application/ld+json"),
    "n3": ("n3", "text/n3"),
}
DEFAULT_FORMAT = "ttl"
# Accept media types -> extension (application/json and application/xml as udata accepts them).
NEGOTIATED: dict[str, str] = {
    "text/turtle": "ttl",
    "application/x-turtle": "ttl",
    "application/rdf+xml": "rdf",
    "application/xml": "rdf",
    "text/xml": "rdf",
    "application/ld+json": "jsonld",
    "application/json": "jsonld",
    "text/n3": "n3",
}
DEFAULT_PAGE_SIZE = 100
MAX_PAGE_SIZE = 1000

# udata frequency ids -> EU frequency vocabulary (http://publications.europa.eu/resource/authority/frequency).
FREQUENCIES: dict[str, str] = {
    "continuous": "UPDATE_CONT",
    "oneMinute": "1MIN",
    "fiveMinutes": "5MIN",
    "tenMinutes": "10MIN",
    "fifteenMinutes": "15MIN",
    "thirtyMinutes": "30MIN",
    "hourly": "HOURLY",
    "bihourly": "BIHOURLY",
    "trihourly": "TRIHOURLY",
    "twelveHours": "12HRS",
    "severalTimesADay": "CONT",
    "threeTimesADay": "DAILY_3",
    "semidaily": "DAILY_2",
    "daily": "DAILY",
    "fiveTimesAWeek": "WEEKLY_5",
    "threeTimesAWeek": "WEEKLY_3",
    "semiweekly": "WEEKLY_2",
    "weekly": "WEEKLY",
    "biweekly": "BIWEEKLY",
    "threeTimesAMonth": "MONTHLY_3",
    "semimonthly": "MONTHLY_2",
    "monthly": "MONTHLY",
    "bimonthly": "BIMONTHLY",
    "quarterly": "QUARTERLY",
    "threeTimesAYear": "ANNUAL_3",
    "semiannual": "ANNUAL_2",
    "annual": "ANNUAL",
    "biennial": "BIENNIAL",
    "triennial": "TRIENNIAL",
    "quadrennial": "QUADRENNIAL",
    "quinquennial": "QUINQUENNIAL",
    "decennial": "DECENNIAL",
    "bidecennial": "BIDECENNIAL",
    "tridecennial": "TRIDECENNIAL",
    "punctual": "NEVER",
    "irregular": "IRREG",
    "never": "NEVER",
    "notPlanned": "NOT_PLANNED",
    "other": "OTHER",
    "unknown": "UNKNOWN",
}

FREQUENCY_LABELS = {key: label for key, (label, _delta) in FREQUENCY_IDS.items()}

# Resource formats -> EU file-type codes (the others get no dct:format, only their media type).
FILE_TYPES: dict[str, str] = {
    "csv": "CSV", "json": "JSON", "geojson": "GEOJSON", "parquet": "PARQUET", "xlsx": "XLSX", "xls": "XLS",
    "ods": "ODS", "zip": "ZIP", "gz": "GZIP", "pdf": "PDF", "xml": "XML", "txt": "TXT", "html": "HTML",
    "shp": "SHP", "rdf": "RDF_XML", "ttl": "RDF_TURTLE", "jsonld": "JSON_LD", "tsv": "TSV", "docx": "DOCX",
}

# udata checksum types -> SPDX algorithms (crc has none).
CHECKSUM_ALGORITHMS: dict[str, URIRef] = {
    "sha1": SPDX.checksumAlgorithm_sha1,
    "sha2": SPDX.checksumAlgorithm_sha256,
    "sha256": SPDX.checksumAlgorithm_sha256,
    "md5": SPDX.checksumAlgorithm_md5,
}


def licence_iri(license_id: str | None) -> URIRef | None:
    """The licence's IRI (its own page, as udata exports it); None for those without one."""
    _title, url = LICENSES.get(license_id or "", ("", ""))
    return URIRef(url) if url else None


def _datetime(value: datetime | str | None) -> Literal | None:
    if value is None:
        return None
    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    return Literal(value.isoformat(), datatype=XSD.dateTime)


def _date(value: str | None) -> Literal | None:
    if not value:
        return None
    return Literal(date.fromisoformat(str(value)[:10]).isoformat(), datatype=XSD.date)


class DcatBuilder:
    """Adds catalogs, datasets and distributions to one graph, with absolute IRIs under `base_url`."""

    def __init__(self, base_url: str) -> None:
        self.base_url = base_url.rstrip("/")
        self.graph = Graph()
        for prefix, namespace in (
            ("dcat", DCAT), ("dct", DCTERMS), ("foaf", FOAF), ("dcatap", DCATAP), ("spdx", SPDX),
            ("hydra", HYDRA), ("locn", LOCN), ("geo", GEOSPARQL), ("vcard", VCARD),
        ):
            self.graph.bind(prefix, namespace)

    def add(self, subject: Any, predicate: URIRef, value: Any) -> None:
        if value is not None:
            self.graph.add((subject, predicate, value))

    def typed(self, iri: URIRef, *classes: URIRef, scheme: str | None = None, label: str | None = None) -> URIRef:
        """`iri` with its classes (and, for a concept of an EU vocabulary, its scheme and a label,
        which skos:Concept's shape requires): a harvester, or SHACL on the data graph alone, reads
        the ranges DCAT-AP expects without fetching them."""
        for cls in classes:
            self.graph.add((iri, RDF.type, cls))
        if scheme is not None:
            self.graph.add((iri, RDF.type, SKOS.Concept))
            self.graph.add((iri, SKOS.inScheme, URIRef(scheme.rstrip("/"))))
            self.graph.set((iri, SKOS.prefLabel, Literal(label or iri.rsplit("/", 1)[-1], lang="en")))
        return iri

    # IRIs, as the JSON API renders them (render.py)

    def dataset_iri(self, record: Json) -> URIRef:
        return URIRef(f"{self.base_url}/api/1/datasets/{record['id']}/")

    def dataset_page(self, record: Json) -> URIRef:
        return URIRef(f"{self.base_url}/datasets/{record['slug']}/")

    def permalink(self, resource: Json) -> URIRef:
        return URIRef(f"{self.base_url}/api/1/datasets/r/{resource['id']}")

    # Nodes

    def agent(self, organization: Json | None, owner: Json | None) -> URIRef | None:
        """The publisher: the organization, else the owner; a foaf:Agent named by its page."""
        if organization is not None:
            iri, name = URIRef(f"{self.base_url}/organizations/{organization['slug']}/"), organization["name"]
        elif owner is not None:
            iri = URIRef(f"{self.base_url}/users/{owner['slug']}/")
            name = f"{owner.get('first_name', '')} {owner.get('last_name', '')}".strip() or owner["slug"]
        else:
            return None
        self.graph.add((iri, RDF.type, FOAF.Agent))
        self.graph.set((iri, FOAF.name, Literal(name)))
        return iri

    def catalog(self, datasets: Iterable[Json]) -> URIRef:
        iri = URIRef(f"{self.base_url}/catalog")
        site = URIRef(f"{self.base_url}/")
        self.graph.add((iri, RDF.type, DCAT.Catalog))
        self.graph.add((iri, DCTERMS.title, Literal(CATALOG_TITLE)))
        self.graph.add((iri, DCTERMS.description, Literal(f"{CATALOG_TITLE} : les jeux de données publiés par ce catalogue.")))
        self.graph.add((iri, FOAF.homepage, self.typed(site, FOAF.Document)))
        self.graph.add((site, RDF.type, FOAF.Agent))
        self.graph.add((site, FOAF.name, Literal(CATALOG_TITLE)))
        self.graph.add((iri, DCTERMS.publisher, site))
        for record in datasets:
            self.graph.add((iri, DCAT.dataset, self.dataset(record)))
        for service in set(self.graph.subjects(RDF.type, DCAT.DataService)):
            self.graph.add((iri, DCAT.service, service))
        return iri

    def dataset(self, record: Json) -> URIRef:
        g, iri = self.graph, self.dataset_iri(record)
        g.add((iri, RDF.type, DCAT.Dataset))
        g.add((iri, DCTERMS.identifier, Literal(record["id"])))
        g.add((iri, DCTERMS.title, Literal(record["title"])))
        g.add((iri, DCTERMS.description, Literal(record.get("description") or record["title"])))
        g.add((iri, DCAT.landingPage, self.typed(self.dataset_page(record), FOAF.Document)))
        self.add(iri, DCTERMS.publisher, self.agent(record.get("organization"), record.get("owner")))
        self.add(iri, DCTERMS.issued, _datetime(record.get("created_at")))
        self.add(iri, DCTERMS.modified, _datetime(record.get("last_update") or record.get("last_modified")))
        tags = record.get("tags") or []
        for tag in tags:
            g.add((iri, DCAT.keyword, Literal(tag)))
        frequency = FREQUENCIES.get(record.get("frequency") or "unknown")
        if frequency:
            g.add((iri, DCTERMS.accrualPeriodicity, self.typed(
                EU_FREQUENCY[frequency], DCTERMS.Frequency, scheme=EU_FREQUENCY,
                label=FREQUENCY_LABELS.get(record.get("frequency") or "unknown"),
            )))
        self.temporal(iri, record.get("temporal_coverage"))
        self.spatial(iri, record.get("spatial"))
        slugs = {slugify(tag) for tag in tags}
        hvd = HVD_TAG in slugs
        categories = [self.typed(URIRef(uri), scheme=HVD_CATEGORY_SCHEME, label=label)
                      for slug, (uri, label) in HVD_CATEGORIES.items() if slug in slugs] if hvd else []
        contact = self.contact_point(record.get("organization"))
        if hvd:
            g.add((iri, DCATAP.applicableLegislation, self.typed(HVD_LEGISLATION, ELI.LegalResource)))
            for category in categories:
                g.add((iri, DCATAP.hvdCategory, category))
            self.add(iri, DCAT.contactPoint, contact)
        resources = record.get("resources") or []
        services = {}
        for resource in resources:
            table = tabular.table_of(resource, resources)
            if table is not None and table["id"] not in services:
                services[table["id"]] = self.data_service(iri, table, record.get("license"), contact, categories if hvd else None)
            distribution = self.distribution(resource, record.get("license"), hvd=hvd)
            g.add((iri, DCAT.distribution, distribution))
            if table is not None:
                g.add((distribution, DCAT.accessService, services[table["id"]]))
        return iri

    def contact_point(self, organization: Json | None) -> URIRef | None:
        """The organization as a vcard:Organization: its name and its page on the catalog."""
        if organization is None:
            return None
        iri = URIRef(f"{self.base_url}/organizations/{organization['slug']}/#contact")
        self.graph.add((iri, RDF.type, VCARD.Kind))  # named: SHACL on the data graph alone does no RDFS inference
        self.graph.add((iri, RDF.type, VCARD.Organization))
        self.graph.set((iri, VCARD.fn, Literal(organization["name"])))
        self.graph.set((iri, VCARD.hasURL, self.typed(URIRef(f"{self.base_url}/organizations/{organization['slug']}/"), RDFS.Resource)))
        return iri

    def data_service(
        self, dataset: URIRef, table: Json, license_id: str | None, contact: URIRef | None, categories: list[URIRef] | None,
    ) -> URIRef:
        """The row API over one published table (tabular.py), as a dcat:DataService."""
        g = self.graph
        endpoint = URIRef(f"{self.base_url}/api/resources/{table['id']}/data/")
        description = URIRef(f"{self.base_url}/api/resources/{table['id']}/swagger/")
        g.add((endpoint, RDF.type, DCAT.DataService))
        g.add((endpoint, DCTERMS.title, Literal(f"API tabulaire : {table.get('title') or table['id']}")))
        g.add((endpoint, DCAT.endpointURL, self.typed(endpoint, RDFS.Resource)))
        g.add((endpoint, DCAT.endpointDescription, self.typed(description, RDFS.Resource)))
        g.add((endpoint, FOAF.page, self.typed(description, FOAF.Document)))
        g.add((endpoint, DCAT.servesDataset, dataset))
        self.add(endpoint, DCAT.contactPoint, contact)
        licence = licence_iri(license_id)
        if licence is not None:
            g.add((endpoint, DCTERMS.license, licence))
            g.add((licence, RDF.type, DCTERMS.LicenseDocument))
        if categories is not None:
            g.add((endpoint, DCATAP.applicableLegislation, self.typed(HVD_LEGISLATION, ELI.LegalResource)))
            for category in categories:
                g.add((endpoint, DCATAP.hvdCategory, category))
        return endpoint

    def temporal(self, dataset: URIRef, coverage: Json | None) -> None:
        if not coverage or not coverage.get("start"):
            return
        period = BNode()
        self.graph.add((dataset, DCTERMS.temporal, period))
        self.graph.add((period, RDF.type, DCTERMS.PeriodOfTime))
        self.add(period, DCAT.startDate, _date(coverage.get("start")))
        self.add(period, DCAT.endDate, _date(coverage.get("end")))

    def spatial(self, dataset: URIRef, spatial: Json | None) -> None:
        """One dct:Location per zone (its udata id as identifier), and one for the geometry."""
        if not spatial:
            return
        for zone in spatial.get("zones") or []:
            location = BNode()
            self.graph.add((dataset, DCTERMS.spatial, location))
            self.graph.add((location, RDF.type, DCTERMS.Location))
            self.graph.add((location, DCTERMS.identifier, Literal(zone)))
        if spatial.get("geom"):
            location = BNode()
            self.graph.add((dataset, DCTERMS.spatial, location))
            self.graph.add((location, RDF.type, DCTERMS.Location))
            self.graph.add((location, LOCN.geometry, Literal(json.dumps(spatial["geom"]), datatype=GEOSPARQL.geoJSONLiteral)))

    def distribution(self, resource: Json, license_id: str | None, *, hvd: bool) -> URIRef:
        g, iri = self.graph, self.permalink(resource)
        g.add((iri, RDF.type, DCAT.Distribution))
        g.add((iri, DCAT.accessURL, self.typed(iri, RDFS.Resource)))
        target = (
            f"{self.base_url}/resources/{resource['file_key']}" if resource.get("file_key") else resource.get("url")
        )
        if target:
            g.add((iri, DCAT.downloadURL, self.typed(URIRef(target), RDFS.Resource)))
        self.add(iri, DCTERMS.title, Literal(resource["title"]) if resource.get("title") else None)
        self.add(iri, DCTERMS.description, Literal(resource["description"]) if resource.get("description") else None)
        file_type = FILE_TYPES.get((resource.get("format") or "").lower())
        if file_type:
            g.add((iri, DCTERMS["format"], self.typed(EU_FILE_TYPE[file_type], DCTERMS.MediaTypeOrExtent, scheme=EU_FILE_TYPE)))
        mime = resource.get("mime")
        if mime and "/" in mime and " " not in mime:
            g.add((iri, DCAT.mediaType, self.typed(URIRef(IANA_MEDIA_TYPES + mime), DCTERMS.MediaType)))
        if resource.get("filesize") is not None:
            # xsd:decimal, as DCAT-AP 3.0.0's mandatory shapes (html/shacl/shapes.ttl) want: sh:datatype
            # is exact, so DCAT's own xsd:nonNegativeInteger is a violation there (the release's
            # single-file dcat-ap-SHACL.ttl asks for nonNegativeInteger instead: they disagree).
            g.add((iri, DCAT.byteSize, Literal(str(int(resource["filesize"])), datatype=XSD.decimal)))
        self.checksum(iri, resource.get("checksum"))
        licence = licence_iri(license_id)
        if licence is not None:
            g.add((iri, DCTERMS.license, licence))
            g.add((licence, RDF.type, DCTERMS.LicenseDocument))
        self.add(iri, DCTERMS.issued, _datetime(resource.get("created_at")))
        self.add(iri, DCTERMS.modified, _datetime(resource.get("last_modified")))
        if hvd:
            g.add((iri, DCATAP.applicableLegislation, self.typed(HVD_LEGISLATION, ELI.LegalResource)))
        return iri

    def checksum(self, distribution: URIRef, checksum: Json | None) -> None:
        algorithm = CHECKSUM_ALGORITHMS.get((checksum or {}).get("type", ""))
        if checksum is None or algorithm is None or not checksum.get("value"):
            return
        node = BNode()
        self.graph.add((distribution, SPDX.checksum, node))
        self.graph.add((node, RDF.type, SPDX.Checksum))
        self.graph.add((node, SPDX.algorithm, self.typed(algorithm, SPDX.ChecksumAlgorithm)))
        self.graph.add((node, SPDX.checksumValue, Literal(checksum["value"], datatype=XSD.hexBinary)))

    def paginate(self, catalog: URIRef, *, path: str, extension: str | None, page: int, page_size: int, total: int) -> None:
        """udata's paging: the catalog is a hydra:Collection whose view links first, last, next, previous."""
        pages = max(1, -(-total // page_size))

        def url(number: int) -> URIRef:
            query = urlencode({"page": number, "page_size": page_size})
            return URIRef(f"{self.base_url}{path}{'.' + extension if extension else ''}?{query}")

        g = self.graph
        g.add((catalog, RDF.type, HYDRA.Collection))
        g.add((catalog, HYDRA.totalItems, Literal(total)))
        view = url(page)
        g.add((catalog, HYDRA.view, view))
        g.add((view, RDF.type, HYDRA.PartialCollectionView))
        g.add((view, HYDRA.first, url(1)))
        g.add((view, HYDRA.last, url(pages)))
        if page < pages:
            g.add((view, HYDRA.next, url(page + 1)))
        if page > 1:
            g.add((view, HYDRA.previous, url(page - 1)))


# Serving


def negotiated_format(call: Call) -> str:
    """The path's extension, else the best Accept match (by q), else Turtle; 404 for an unknown one."""
    extension = call.params.get("format")
    if extension is not None:
        if extension not in FORMATS:
            raise NotFound(f"Unknown RDF format '{extension}' (one of {', '.join(FORMATS)})")
        return extension
    best, best_q = DEFAULT_FORMAT, 0.0
    for item in call.request.headers.get("accept", "").split(","):
        media, *params = (part.strip() for part in item.split(";"))
        q = 1.0
        for param in params:
            name, _, value = param.partition("=")
            if name.strip() == "q":
                try:
                    q = float(value)
                except ValueError:
                    q = 0.0
        negotiated = NEGOTIATED.get(media.lower())
        if negotiated and q > best_q:  # equal q: the first listed wins
            best, best_q = negotiated, q
    return best


def rdf_response(graph: Graph, extension: str) -> Response:
    serializer, media_type = FORMATS[extension]
    body = graph.serialize(format=serializer, encoding="utf-8")
    return Response(body, media_type=media_type, headers={"Vary": "Accept"})


def _positive(call: Call, name: str, default: int, maximum: int | None = None) -> int:
    raw = call.query.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise field_error(name, "expecting an integer") from None
    if value < 1 or (maximum is not None and value > maximum):
        raise field_error(name, f"expecting an integer from 1 to {maximum}" if maximum else "expecting a positive integer")
    return value


def catalog_rdf(call: Call) -> Response:
    """`/catalog` and `/catalog.{format}`: one page of the public datasets, newest first."""
    extension = negotiated_format(call)
    page = _positive(call, "page", 1)
    page_size = _positive(call, "page_size", DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE)
    records, total = call.store.datasets.search(DatasetQuery(page=page, page_size=page_size))
    builder = DcatBuilder(call.render.base_url)
    catalog = builder.catalog(records)
    builder.paginate(
        catalog, path="/catalog", extension=call.params.get("format"), page=page, page_size=page_size, total=total
    )
    return rdf_response(builder.graph, extension)


def dataset_rdf(call: Call) -> Response:
    """`/datasets/{dataset}/rdf` and `/datasets/{dataset}/rdf.{format}`: one public dataset (404 for
    a private or unknown one, 410 for a deleted one, as its page)."""
    extension = negotiated_format(call)
    record = call.store.datasets.get(call.params["dataset"])
    if record is None or record["private"]:
        raise NotFound("Dataset not found")
    if record["deleted"]:
        raise Gone("Dataset has been deleted")
    builder = DcatBuilder(call.render.base_url)
    builder.dataset(record)
    return rdf_response(builder.graph, extension)

