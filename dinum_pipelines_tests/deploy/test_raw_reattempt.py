"""The raw step run again in the same run (its worker killed after the download was stored, in
the Celery deployment): the version it finds is this run's news, not an unchanged source."""

from __future__ import annotations

from datetime import UTC, datetime
from types import SimpleNamespace

from dinum_pipelines.defs.ingest.assets import stored_during_this_run
from dinum_pipelines.lib.storage.rawstore import RawVersion

RUN_CREATED = datetime(2026, 3, 1, 10, 0, 0)  # as Dagster's run storage returns it: naive UTC


def _context():
    record = SimpleNamespace(create_timestamp=RUN_CREATED)
    return SimpleNamespace(run_id="run", instance=SimpleNamespace(get_run_record_by_id=lambda run_id: record))


def _version(fetched_at: datetime) -> RawVersion:
    return RawVersion("ventes", "0" * 64, 10, "http://x", fetched_at.isoformat(), {}, "/raw/ventes/0")


def test_a_version_stored_during_the_run_is_new_for_it():
    assert stored_during_this_run(_context(), _version(datetime(2026, 3, 1, 10, 0, 5, tzinfo=UTC)))


def test_a_version_stored_before_the_run_is_unchanged():
    assert not stored_during_this_run(_context(), _version(datetime(2026, 3, 1, 9, 59, 0, tzinfo=UTC)))
    assert not stored_during_this_run(_context(), None)
