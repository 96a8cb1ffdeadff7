"""Headless Chromium for the page tests: Debian's package, driven from its command line.

Pages are checked as a browser renders them (`--dump-dom` gives the DOM after parsing, so a
template that breaks the markup shows), and screenshots let a person look at the layout. No
driver nor new Python dependency: the DOM is read back with the standard library's HTML parser
into a small tree with just the look-ups the tests need.
"""

from __future__ import annotations

import subprocess
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from html.parser import HTMLParser
from pathlib import Path

from dinum_pipelines.catalog.nodes import ensure_debian_tool

CHROMIUM = Path("/usr/bin/chromium")
FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--hide-scrollbars")
TIMEOUT = 90
VOID_ELEMENTS = frozenset(
    {"area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "source", "track", "wbr"}
)


class BrowserUnavailable(RuntimeError):
    pass


def ensure_chromium() -> Path:
    """Install Debian's chromium if it is missing (we are root; CI reaches Debian's registry)."""
    try:
        return Path(ensure_debian_tool(CHROMIUM.name, "chromium"))
    except (SystemExit, subprocess.CalledProcessError) as exc:
        raise BrowserUnavailable(f"{CHROMIUM} is missing and could not be installed: {exc}") from None


@dataclass
class Element:
    tag: str
    attrs: dict[str, str]
    children: list[Element] = field(default_factory=list)
    texts: list[str | Element] = field(default_factory=list)  # text and child elements, in order

    @property
    def text(self) -> str:
        """The element's text content, whitespace collapsed."""
        parts = [item if isinstance(item, str) else item.text for item in self.texts]
        return " ".join(" ".join(parts).split())

    def iter(self) -> Iterator[Element]:
        yield self
        for child in self.children:
            yield from child.iter()

    def find_all(self, tag: str | None = None, **attrs: str) -> list[Element]:
        """Descendants (self included) with this tag and these attributes; `class_` matches one class."""
        wanted_class = attrs.pop("class_", None)
        return [
            element for element in self.iter()
            if (tag is None or element.tag == tag)
            and all(element.attrs.get(name.replace("_", "-")) == value for name, value in attrs.items())
            and (wanted_class is None or wanted_class in element.attrs.get("class", "").split())
        ]

    def find(self, tag: str | None = None, **attrs: str) -> Element:
        found = self.find_all(tag, **attrs)
        if not found:
            raise LookupError(f"no <{tag or '*'}> with {attrs}")
        return found[0]

    def by_id(self, element_id: str) -> Element:
        return self.find(id=element_id)


class _TreeBuilder(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.root = Element("#document", {})
        self.stack = [self.root]

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        element = Element(tag, {name: value or "" for name, value in attrs})
        self.stack[-1].children.append(element)
        self.stack[-1].texts.append(element)
        if tag not in VOID_ELEMENTS:
            self.stack.append(element)

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.handle_starttag(tag, attrs)
        if tag not in VOID_ELEMENTS:
            self.stack.pop()

    def handle_endtag(self, tag: str) -> None:
        for depth in range(len(self.stack) - 1, 0, -1):
            if self.stack[depth].tag == tag:
                del self.stack[depth:]
                return

    def handle_data(self, data: str) -> None:
        self.stack[-1].texts.append(data)


def parse_html(html: str) -> Element:
    builder = _TreeBuilder()
    builder.feed(html)
    builder.close()
    return builder.root


# Headless Chromium sometimes dies of a signal on a loaded machine without a sandbox (seen once in
# CI: SIGSEGV on a page every other run renders); such a crash is retried, a real failure is not.
CRASH_RETRIES = 2


def _run(*arguments: str) -> subprocess.CompletedProcess[str]:
    for attempt in range(CRASH_RETRIES + 1):
        with tempfile.TemporaryDirectory(prefix="chromium-profile-") as profile:
            command = [str(ensure_chromium()), *FLAGS, f"--user-data-dir={profile}", *arguments]
            result = subprocess.run(command, capture_output=True, text=True, timeout=TIMEOUT, check=False)
        if result.returncode >= 0 or attempt == CRASH_RETRIES:
            break
    if result.returncode != 0:
        raise BrowserUnavailable(f"{' '.join(command)} failed ({result.returncode}):\n{result.stderr[-2000:]}")
    return result


def dump_dom(url: str) -> Element:
    """The page at `url` as Chromium parsed it."""
    return parse_html(_run("--dump-dom", url).stdout)


def console_messages(url: str) -> str:
    """What Chromium logs while loading `url` (Content-Security-Policy refusals among others)."""
    result = _run("--enable-logging=stderr", "--v=0", "--dump-dom", url)
    return result.stderr


def screenshot(url: str, path: Path, *, width: int = 1280, height: int = 1600) -> Path:
    _run(f"--screenshot={path}", f"--window-size={width},{height}", url)
    if not path.is_file() or path.stat().st_size == 0:
        raise BrowserUnavailable(f"chromium wrote no screenshot of {url}")
    return path
