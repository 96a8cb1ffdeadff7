"""Simulated reusers for the demo and the tests: real HTTP requests over several past days.

    DINUM_CATALOG_METRICS_API_KEY=<sysadmin key> \\
    python -m dinum_pipelines.metrics_loadgen --catalog http://127.0.0.1:8090 --days 7 \\
        [--end 2026-11-22] [--seed 1] [--dataset ID_OR_SLUG ...] [--record usage.json]

For each day and each dataset it visits the HTML page (browser), reads the dataset through the
API (scripts), downloads each file directly (browser and program) and through its stable link,
and sends some crawlers (Googlebot, bingbot...) that the metrics must not count.

**Past days.** The catalog stamps events with its own clock; to spread requests over past days the
generator sends `X-Dinum-Simulated-Time` with each request, which a catalog honours only when it
was started with the simulated clock (`dinum-catalog serve --simulated-clock`, off by default)
AND the request carries a sysadmin's key. The requests themselves are the real ones (same routes,
same channel rules, same stable-link redirect), so what the metrics count is what the catalog
really recorded, not events written for the occasion.

**The record** (`--record`, and the return value of `simulate`) says exactly what was generated:
one entry per (day, kind, channel, dataset, resource, bot) with its count, counting only
requests the catalog answered with 200, so tests compare the published figures to it. The first
and last request of each day fall on the day's first and last millisecond (Europe/Paris), to
check the day boundaries.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import sys
from collections import Counter
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urljoin

import requests

from dinum_pipelines.lib.metrics.usage import TIMEZONE, day_bounds
from dinum_pipelines.lib.metrics.schema import DATASET_VIEW, RESOURCE_DOWNLOAD

API_KEY_ENV = "DINUM_CATALOG_METRICS_API_KEY"
SIMULATED_TIME_HEADER = "X-Dinum-Simulated-Time"
BROWSER = "Mozilla/5.0 (X11; Linux x86_64; rv:140.0) Gecko/20100101 Firefox/140.0"
PROGRAMS = ("curl/8.5.0", "python-requests/2.32.3", "R (4.4.1 x86_64-pc-linux-gnu)", "Wget/1.21.4")
CRAWLERS = (
    "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)",
    "Mozilla/5.0 (compatible; bingbot/2.0; +http://www.bing.com/bingbot.htm)",
    "Mozilla/5.0 (compatible; AhrefsBot/7.0; +http://ahrefs.com/robot/)",
)


@dataclass(frozen=True)
class Visit:
    """One planned request and the event it should produce."""

    url: str
    user_agent: str
    kind: str
    channel: str
    dataset_id: str
    resource_id: str | None
    organization_id: str | None
    bot: bool
    follow_permalink: bool = False


@dataclass
class UsageRecord:
    counts: Counter[tuple[str, str, str, str, str | None, str | None, bool]] = field(default_factory=Counter)
    requests: int = 0
    refused: int = 0

    def add(self, day: date, visit: Visit) -> None:
        key = (day.isoformat(), visit.kind, visit.channel, visit.dataset_id, visit.resource_id, visit.organization_id, visit.bot)
        self.counts[key] += 1

    @property
    def generated(self) -> int:
        return sum(self.counts.values())

    @property
    def by_bots(self) -> int:
        return sum(count for key, count in self.counts.items() if key[-1])

    def to_json(self) -> dict[str, Any]:
        names = ("day", "kind", "channel", "dataset_id", "resource_id", "organization_id", "bot")
        rows = [{**dict(zip(names, key, strict=True)), "count": count} for key, count in sorted(self.counts.items(), key=str)]
        return {"events": rows, "requests": self.requests, "refused": self.refused}


def list_datasets(session: requests.Session, base_url: str) -> list[dict[str, Any]]:
    datasets: list[dict[str, Any]] = []
    url: str | None = f"{base_url}/api/1/datasets/?page_size=100"
    while url:
        response = session.get(url, timeout=30)
        response.raise_for_status()
        page = response.json()
        datasets += page["data"]
        url = page.get("next_page")
    return datasets


def plan_day(dataset: dict[str, Any], base_url: str, rng: random.Random, scale: float) -> list[Visit]:
    """One day of a dataset's reusers, in random order."""
    organization_id = (dataset.get("organization") or {}).get("id")

    def draw(high: int) -> int:
        return rng.randint(0, max(0, round(high * scale)))

    def view(url: str, user_agent: str, channel: str, bot: bool = False) -> Visit:
        return Visit(url, user_agent, DATASET_VIEW, channel, dataset["id"], None, organization_id, bot)

    api_url = f"{base_url}/api/1/datasets/{dataset['id']}/"
    visits = [view(dataset["page"], BROWSER, "web") for _ in range(draw(5))]
    visits += [view(api_url, rng.choice(PROGRAMS), "api") for _ in range(draw(4))]
    visits += [view(dataset["page"], rng.choice(CRAWLERS), "web", bot=True) for _ in range(draw(2))]
    visits += [view(api_url, rng.choice(CRAWLERS), "api", bot=True) for _ in range(draw(1))]
    for resource in dataset.get("resources", []):
        def download(url: str, user_agent: str, channel: str, bot: bool = False, permalink: bool = False) -> Visit:
            return Visit(url, user_agent, RESOURCE_DOWNLOAD, channel, dataset["id"], resource["id"], organization_id, bot, permalink)

        hosted = resource.get("filetype") == "file"
        if hosted:
            visits += [download(resource["url"], BROWSER, "web") for _ in range(draw(3))]
            visits += [download(resource["url"], rng.choice(PROGRAMS), "api") for _ in range(draw(3))]
        visits += [download(resource["latest"], rng.choice(PROGRAMS), "permalink", permalink=True) for _ in range(draw(3))]
        visits += [download(resource["latest"], rng.choice(CRAWLERS), "permalink", bot=True, permalink=True) for _ in range(draw(1))]
    rng.shuffle(visits)
    return visits


def _times(day: date, count: int, rng: random.Random) -> list[datetime]:
    """`count` sorted instants of the day; the first and last on its first and last millisecond."""
    start, end = day_bounds(day)
    span = (end - start).total_seconds()
    times = sorted(start + timedelta(seconds=rng.uniform(0, span - 0.001)) for _ in range(count))
    if count >= 2:
        times[0], times[-1] = start, end - timedelta(milliseconds=1)
    return times


def send(session: requests.Session, base_url: str, visit: Visit, when: datetime) -> bool:
    """Make the request at simulated time `when`; True if the catalog served it (one event)."""
    headers = {"User-Agent": visit.user_agent, SIMULATED_TIME_HEADER: when.isoformat()}
    response = session.get(visit.url, headers=headers, allow_redirects=False, timeout=30)
    if visit.follow_permalink and response.status_code == 302:
        target = urljoin(visit.url, response.headers["location"])
        if not target.startswith(base_url):
            return True  # a remote file: the stable link's redirect was the download
        response = session.get(target, headers=headers, allow_redirects=False, timeout=30)
    return response.status_code == 200


def simulate(
    base_url: str,
    api_key: str,
    days: list[date],
    *,
    seed: int = 1,
    datasets: list[str] | None = None,
    scale: float = 1.0,
) -> UsageRecord:
    """Send every day's requests (see the module docstring); returns what was generated."""
    base_url = base_url.rstrip("/")
    today = datetime.now(TIMEZONE).date()
    if any(day >= today for day in days):
        raise ValueError(f"simulate past days only (before {today.isoformat()}): today's partition is still open")
    rng = random.Random(seed)
    session = requests.Session()
    session.headers["X-API-KEY"] = api_key
    chosen = [d for d in list_datasets(session, base_url) if not datasets or d["id"] in datasets or d["slug"] in datasets]
    record = UsageRecord()
    for day in days:
        visits = [visit for dataset in chosen for visit in plan_day(dataset, base_url, rng, scale)]
        for visit, when in zip(visits, _times(day, len(visits), rng), strict=True):
            record.requests += 1
            if send(session, base_url, visit, when):
                record.add(day, visit)
            else:
                record.refused += 1
    return record


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m dinum_pipelines.metrics_loadgen", description=__doc__.split("\n\n")[0])
    parser.add_argument("--catalog", required=True, help="the catalog's base URL (started with --simulated-clock)")
    parser.add_argument("--days", type=int, default=7, help="how many days, ending with --end")
    parser.add_argument("--end", type=date.fromisoformat, help="the last simulated day (default: yesterday, Europe/Paris)")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--scale", type=float, default=1.0, help="multiplies the number of requests")
    parser.add_argument("--dataset", action="append", help="only this dataset (id or slug); repeatable")
    parser.add_argument("--record", type=Path, help="write what was generated to this JSON file")
    args = parser.parse_args(argv)
    api_key = os.environ.get(API_KEY_ENV)
    if not api_key:
        parser.error(f"set {API_KEY_ENV} to a sysadmin's API key")
    end = args.end or datetime.now(TIMEZONE).date() - timedelta(days=1)
    days = [end - timedelta(days=offset) for offset in range(args.days - 1, -1, -1)]
    record = simulate(args.catalog, api_key, days, seed=args.seed, datasets=args.dataset, scale=args.scale)
    if args.record:
        args.record.write_text(json.dumps(record.to_json(), indent=1), encoding="utf-8")
    print(f"{record.generated} events generated ({record.by_bots} by bots) over {len(days)} day(s), {days[0]} to {days[-1]}; {record.refused} refused")
    return 0


if __name__ == "__main__":
    sys.exit(main())
