"""The PostgreSQL pool lends live connections without a round trip to check them (db.py)."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

from sqlalchemy import text

from dinum_pipelines.catalog.db import Database


def _fill_pool(db: Database, connections: int = 4) -> None:
    with ThreadPoolExecutor(connections) as pool:
        list(pool.map(lambda _: _read_one(db, hold=True), range(connections)))


def _read_one(db: Database, *, hold: bool = False) -> int:
    with db.read() as conn:
        if hold:
            conn.execute(text("SELECT pg_sleep(0.05)"))
        return conn.execute(text("SELECT 1")).scalar()


def test_reads_after_the_server_dropped_every_pooled_connection_succeed(postgres_database):
    db = Database.open(postgres_database.url)
    try:
        _fill_pool(db)
        assert db.engine.pool.checkedin() >= 2
        assert postgres_database.terminate_other_connections() >= 2
        with ThreadPoolExecutor(4) as pool:
            assert list(pool.map(lambda _: _read_one(db), range(40))) == [1] * 40
    finally:
        db.close()


def test_a_live_connection_is_lent_without_a_ping(postgres_database, monkeypatch):
    db = Database.open(postgres_database.url)
    try:
        _read_one(db)
        pings = []
        monkeypatch.setattr(type(db.engine.dialect), "do_ping", lambda self, connection: pings.append(1) or True)
        for _ in range(20):
            assert _read_one(db) == 1
        assert pings == []
    finally:
        db.close()
