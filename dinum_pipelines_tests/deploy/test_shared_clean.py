"""The clean folder on shared storage (lib/storage/shared_clean.py), on a local fsspec store: what a step
pulls, what it pushes back, in which order, and that datasets do not see each other's files.
The S3 path (moto, s3fs) is exercised by e2e/test_celery_deployment.py."""

from __future__ import annotations

from pathlib import Path

from dinum_pipelines.lib.storage.shared_clean import TEMPORARY_MARK, SharedCleanStore


def _store(tmp_path: Path) -> SharedCleanStore:
    return SharedCleanStore((tmp_path / "store").as_uri())


def test_a_step_sees_what_the_previous_one_pushed_and_only_that(tmp_path):
    store = _store(tmp_path)
    with store.checkout("ventes", tmp_path / "worker1" / "ventes") as folder:
        assert list(folder.iterdir()) == []
        (folder / "ventes.csv").write_text("a,b\n1,2\n")
        (folder / "validations").mkdir()
        (folder / "validations" / "1.json").write_text("{}")
    with store.checkout("ventes_2024", tmp_path / "worker1" / "ventes_2024") as folder:
        (folder / "other.csv").write_text("x\n")
    # Another worker, another folder: the first dataset's files, not the second's.
    with store.checkout("ventes", tmp_path / "worker2" / "ventes") as folder:
        assert sorted(p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file()) == [
            "validations/1.json",
            "ventes.csv",
        ]
        assert (folder / "ventes.csv").read_text() == "a,b\n1,2\n"
        (folder / "validations" / "1.json").unlink()  # pruned by the step
        (folder / "validations" / "2.json").write_text("{}")
    assert store.files("ventes") == ["validations/2.json", "ventes.csv"]
    assert store.files("ventes_2024") == ["other.csv"]


def test_only_changed_files_go_back_data_first_and_the_marker_last(tmp_path, monkeypatch):
    store = _store(tmp_path)
    with store.checkout("ventes", tmp_path / "w" / "ventes") as folder:
        for name in ("ventes.csv", "ventes.parquet", "cleaning.json", "quality.json", "published.json"):
            (folder / name).write_text(name)
    moved: list[str] = []
    real_mv = store.fs.mv
    monkeypatch.setattr(store.fs, "mv", lambda source, target, **kw: (moved.append(Path(target).name), real_mv(source, target, **kw)))
    with store.checkout("ventes", tmp_path / "w2" / "ventes") as folder:
        (folder / "published.json").write_text("new marker")
        (folder / "quality.json").write_text("new report")
        (folder / "ventes.csv").write_text("new data")
    assert moved == ["ventes.csv", "quality.json", "published.json"]
    assert (tmp_path / "store" / "ventes" / "published.json").read_text() == "new marker"
    assert not [p for p in (tmp_path / "store").rglob("*") if TEMPORARY_MARK in p.name]


def test_a_push_in_progress_is_not_pulled(tmp_path):
    store = _store(tmp_path)
    folder = tmp_path / "store" / "ventes"
    folder.mkdir(parents=True)
    (folder / "ventes.csv").write_text("whole")
    (folder / f"ventes.parquet{TEMPORARY_MARK}0123").write_text("half")
    assert store.files("ventes") == ["ventes.csv"]
