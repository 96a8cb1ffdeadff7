"""A dataset's clean folder on shared storage, for steps that run on several machines.

In the Celery deployment (deploy/celery/) each step of a dataset runs on whichever worker takes
it, in that worker's own working directory, so what a step leaves for the next one (the clean
CSV and Parquet, the cleaning, conformance and quality reports, the coherence profile, the
publication marker) cannot stay on a worker's disk. With `DINUM_CLEAN_STORE_URL` set (an fsspec
URL: `s3://bucket/clean` in production), a step works on a private local copy of its dataset's
folder: `checkout` pulls `<url>/<slug>/` into a fresh local folder before the step and pushes
back what the step wrote after it. lib/pipeline.py reads and writes local files, unchanged.

Each file goes to a temporary key first and is then moved to its name, so a reader never sees
half a file. Files are pushed data first, then the reports that name the raw version they come
from, the publication marker (`published.json`) last: a step killed while pushing leaves the
previous marker, so the next run sees an unfinished publication and publishes again, never a
marker ahead of the files it vouches for.
"""

from __future__ import annotations

import os
import shutil
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import fsspec
from fsspec.asyn import AsyncFileSystem

TEMPORARY_MARK = ".tmp-"
# Pushed in this order, after every other file (data files, validations/): the reports name the
# raw version they judged; the profile and the quality report say it passed; the marker says
# the catalog has it.
LAST_IN_ORDER = ("cleaning.json", "conformance.json", "published_profile.json", "quality.json", "published.json")


def _push_rank(relative: str) -> tuple[int, str]:
    name = relative.rsplit("/", 1)[-1]
    rank = LAST_IN_ORDER.index(name) + 1 if "/" not in relative and name in LAST_IN_ORDER else 0
    return rank, relative


def _snapshot(directory: Path) -> dict[str, tuple[int, int]]:
    """Every file under `directory` (relative POSIX path) with its size and modification time."""
    found = {}
    for path in directory.rglob("*"):
        if path.is_file():
            status = path.stat()
            found[path.relative_to(directory).as_posix()] = (status.st_size, status.st_mtime_ns)
    return found


class SharedCleanStore:
    """Clean folders under one fsspec URL: `<url>/<slug>/<file>`. Credentials (for S3:
    `AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY`, `AWS_ENDPOINT_URL` for a store other than
    AWS) come from the environment, never from the URL."""

    def __init__(self, url: str) -> None:
        self.url = url.rstrip("/")
        # No listings cache: a folder another worker changed a moment ago must be seen as it is now.
        self.fs, self._base = fsspec.core.url_to_fs(self.url, use_listings_cache=False)

    def _key(self, slug: str, relative: str = "") -> str:
        return "/".join(part for part in (self._base.rstrip("/"), slug, relative) if part)

    def location(self, slug: str, relative: str) -> str:
        """The file's URL in the store (for metadata: a worker's local copy is gone after the step)."""
        return f"{self.url}/{slug}/{relative}"

    def files(self, slug: str) -> list[str]:
        """The folder's files, relative to it (temporary keys of a push in progress left out)."""
        prefix = self._key(slug) + "/"
        found = []
        for key in self.fs.find(prefix):
            relative = key[len(prefix) :] if key.startswith(prefix) else ""  # not another slug starting the same
            if relative and TEMPORARY_MARK not in relative.rsplit("/", 1)[-1]:
                found.append(relative)
        return sorted(found)

    def pull(self, slug: str, directory: Path) -> None:
        """Make `directory` a copy of the dataset's folder in the store (emptied first)."""
        shutil.rmtree(directory, ignore_errors=True)
        directory.mkdir(parents=True)
        files = self.files(slug)
        targets = [directory / relative for relative in files]
        for target in targets:
            target.parent.mkdir(parents=True, exist_ok=True)
        partials = [str(target.with_name(target.name + ".part")) for target in targets]
        # One call for all: an object store's client fetches them concurrently.
        self.fs.get([self._key(slug, relative) for relative in files], partials)
        for partial, target in zip(partials, targets, strict=True):
            os.replace(partial, target)

    def push(self, slug: str, directory: Path, before: dict[str, tuple[int, int]]) -> list[str]:
        """Send the files of `directory` that are new or changed since `before` (a snapshot taken
        after `pull`), and delete from the store those the step deleted. Returns what was sent."""
        after = _snapshot(directory)
        changed = sorted((relative for relative, state in after.items() if before.get(relative) != state), key=_push_rank)
        data = [relative for relative in changed if _push_rank(relative)[0] == 0]
        # The data files together (an object store's client sends them concurrently), then each
        # report on its own, in order.
        for batch in [data] * bool(data) + [[relative] for relative in changed if relative not in data]:
            self._send(slug, directory, batch)
        for relative in sorted(set(before) - set(after)):
            self.fs.rm_file(self._key(slug, relative))
        return changed

    def _send(self, slug: str, directory: Path, batch: list[str]) -> None:
        finals = [self._key(slug, relative) for relative in batch]
        temporaries = [f"{final}{TEMPORARY_MARK}{uuid.uuid4().hex}" for final in finals]
        for parent in {final.rsplit("/", 1)[0] for final in finals}:
            self.fs.makedirs(parent, exist_ok=True)  # a local folder needs it, S3 ignores it
        self.fs.put([str(directory / relative) for relative in batch], temporaries)
        if isinstance(self.fs, AsyncFileSystem) and len(batch) > 1:
            self.fs.copy(temporaries, finals)
            self.fs.rm(temporaries)
        else:
            for temporary, final in zip(temporaries, finals, strict=True):
                self.fs.mv(temporary, final)

    @contextmanager
    def checkout(self, slug: str, directory: Path) -> Iterator[Path]:
        """Pull the dataset's folder into `directory`, yield it, push back what changed.

        What a failing step wrote is pushed too (as it would stay on a local disk: the
        conformance report is written before cleaning can fail); a killed step pushes nothing."""
        self.pull(slug, directory)
        before = _snapshot(directory)
        try:
            yield directory
        finally:
            self.push(slug, directory, before)
