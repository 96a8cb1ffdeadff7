"""Plain reads (db.PlainRead, Database.plain_row): a statement run on the driver's kept
connections gives the row SQLAlchemy gives, on both engines, and survives connections the
server dropped."""

from __future__ import annotations

from datetime import datetime

import pytest
from sqlalchemy import bindparam, literal, select

from dinum_pipelines.catalog.accounts import ORGANIZATION_BY_ID, ORGANIZATION_BY_SLUG
from dinum_pipelines.catalog.datasets import _DOCUMENT_BY_ID, _DOCUMENT_BY_SLUG
from dinum_pipelines.catalog.db import PlainRead, UtcDateTime, datasets
from dinum_pipelines.catalog.server import RunningCatalog
from dinum_pipelines_tests.catalog.conftest import Api


def sqlalchemy_row(catalog: RunningCatalog, statement, key: str) -> dict | None:
    with catalog.store.db.read() as connection:
        row = connection.execute(statement, {"key": key}).mappings().first()
        return None if row is None else dict(row)


def driver_row(catalog: RunningCatalog, statement, values: dict) -> dict | None:
    """The plain read alone: `Database.plain_row` would read through the pool if it failed."""
    db = catalog.store.db
    read = PlainRead(statement, db.engine.dialect)
    return read.row(db._plain_reads.fetch_one(read.sql, read.parameters(values)))


def test_a_plain_read_gives_the_row_sqlalchemy_gives(catalog: RunningCatalog, api: Api, publisher) -> None:
    live = api.create_dataset(title="Écoles", description="Les écoles.", organization=publisher.organization_id)
    hidden = api.create_dataset(title="Brouillon", description="Pas encore.", organization=publisher.organization_id, private=True)
    deleted = api.create_dataset(title="Ancien", description="Retiré.", organization=publisher.organization_id)
    assert api.delete(f"/datasets/{deleted['id']}/").status_code == 204
    db = catalog.store.db
    for dataset in (live, hidden, deleted):
        for statement, key in ((_DOCUMENT_BY_ID, dataset["id"]), (_DOCUMENT_BY_SLUG, dataset["slug"])):
            plain = db.plain_row(statement, {"key": key})
            assert plain == driver_row(catalog, statement, {"key": key}) == sqlalchemy_row(catalog, statement, key)
            assert plain["id"] == dataset["id"] and isinstance(plain["private"], bool) and plain["body"]
            assert plain["valid_until"] is None or plain["valid_until"].tzinfo is not None
    deleted_at = db.plain_row(_DOCUMENT_BY_ID, {"key": deleted["id"]})["deleted_at"]
    assert isinstance(deleted_at, datetime) and deleted_at.tzinfo is not None  # aware, as UtcDateTime gives it
    assert db.plain_row(_DOCUMENT_BY_ID, {"key": "no-such-dataset"}) is None
    assert db.plain_row(_DOCUMENT_BY_ID, {"key": "x'); DROP TABLE datasets; --"}) is None
    assert db.plain_row(_DOCUMENT_BY_ID, {"key": live["id"]})["id"] == live["id"]


def test_an_organization_read_plainly_is_the_row_sqlalchemy_gives(catalog: RunningCatalog, api: Api, publisher) -> None:
    catalog.store.accounts.update_organization(publisher.organization_id, {"extras": {"siren": "110000015", "nested": {"a": [1, 2]}}})
    organization = api.get(f"/organizations/{publisher.organization_id}/").json()
    for statement, key in ((ORGANIZATION_BY_ID, organization["id"]), (ORGANIZATION_BY_SLUG, organization["slug"])):
        plain = catalog.store.db.plain_row(statement, {"key": key})
        assert plain == driver_row(catalog, statement, {"key": key}) == sqlalchemy_row(catalog, statement, key)
        assert plain["extras"] == {"siren": "110000015", "nested": {"a": [1, 2]}} and plain["created_at"].tzinfo is not None
    assert catalog.store.accounts.organization(organization["slug"])["id"] == organization["id"]
    assert catalog.store.accounts.organization("no-such-organization") is None


@pytest.mark.parametrize("catalog_settings", ["postgresql"], indirect=True)
def test_a_plain_read_after_the_server_dropped_its_connections_succeeds(catalog: RunningCatalog, api: Api, publisher, postgres_database) -> None:
    dataset = api.create_dataset(title="Écoles", description="Les écoles.", organization=publisher.organization_id)
    db = catalog.store.db
    before = db.plain_row(_DOCUMENT_BY_ID, {"key": dataset["id"]})
    assert postgres_database.terminate_other_connections() >= 1
    assert [db.plain_row(_DOCUMENT_BY_ID, {"key": dataset["id"]}) for _ in range(6)] == [before] * 6
    assert api.get(f"/datasets/{dataset['id']}/").json()["id"] == dataset["id"]


def test_a_statement_with_constants_reads_as_sqlalchemy_reads_it(catalog: RunningCatalog, api: Api, publisher) -> None:
    dataset = api.create_dataset(title="Écoles", description="Les écoles.", organization=publisher.organization_id)
    statement = select(datasets.c.id, literal("constant").label("label")).where(
        datasets.c.id == bindparam("key"), datasets.c.title != literal("Autre"), literal(2) > 1,
    )
    expected = {"id": dataset["id"], "label": "constant"}
    assert driver_row(catalog, statement, {"key": dataset["id"]}) == sqlalchemy_row(catalog, statement, dataset["id"]) == expected
    assert catalog.store.db.plain_row(statement, {"key": dataset["id"]}) == expected


def test_a_statement_whose_parameters_need_converting_or_are_lists_is_refused(catalog: RunningCatalog) -> None:
    dialect = catalog.store.db.engine.dialect
    since = select(datasets.c.id).where(datasets.c.created_at > bindparam("since", type_=UtcDateTime))
    with pytest.raises(ValueError, match="since"):
        PlainRead(since, dialect)
    with pytest.raises(ValueError, match="ids"):
        PlainRead(select(datasets.c.id).where(datasets.c.id.in_(bindparam("ids", expanding=True))), dialect)
