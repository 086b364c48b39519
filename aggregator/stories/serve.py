"""The HTTP face of the daemon: the published feeds and pages with validators, health and
metrics (WSGI)."""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import os
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from datetime import UTC, datetime
from email.utils import format_datetime, parsedate_to_datetime
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

from ..config import Settings
from .pages import asset, front_page, not_found_page, page_count, story_page
from .site import Site

StartResponse = Callable[[str, list[tuple[str, str]]], Any]


class Metrics:
    """Process-wide counters, rendered in the Prometheus text format."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._values: dict[str, float] = {}
        self._help: dict[str, tuple[str, str]] = {}

    def declare(self, name: str, kind: str, text: str) -> None:
        self._help[name] = (kind, text)
        self._values.setdefault(name, 0.0)

    def inc(self, name: str, amount: float = 1.0) -> None:
        with self._lock:
            self._values[name] = self._values.get(name, 0.0) + amount

    def set(self, name: str, value: float) -> None:
        with self._lock:
            self._values[name] = value

    def render(self) -> bytes:
        lines = []
        with self._lock:
            for name, value in sorted(self._values.items()):
                kind, text = self._help.get(name, ("gauge", name))
                lines += [f"# HELP {name} {text}", f"# TYPE {name} {kind}", f"{name} {value:g}"]
        return ("\n".join(lines) + "\n").encode()


RECHECK_S = 1.0  # a file replaced by another process is served within this long


class _Variant:
    """One representation of a version: its strong tag and its ready headers."""

    __slots__ = ("etag", "headers", "not_modified")

    def __init__(self, etag: str, common: list[tuple[str, str]],
                 typed: list[tuple[str, str]]) -> None:
        self.etag = etag
        self.not_modified = [("ETag", etag), *common]
        self.headers = [*self.not_modified, *typed]


class _Version:
    """One published version of a file: its bytes (and gzip), validators and ready headers,
    per representation: gzip or not, and for a feed, the type a browser renders it as."""

    __slots__ = ("body", "gz_body", "modified_at", "stamp", "variants")

    def __init__(self, body: bytes, *, content_type: str, mtime: float,
                 stamp: tuple[int, int, int] = (0, 0, 0),
                 extra: Sequence[tuple[str, str]] = (), browser_type: str | None = None) -> None:
        self.body, self.stamp = body, stamp
        digest = hashlib.sha256(body).hexdigest()[:32]
        self.modified_at = datetime.fromtimestamp(mtime, UTC).replace(microsecond=0)
        # Compressed once per published version, never per request; mtime=0: same bytes, same
        # gzip, so the tag stays stable across restarts.
        self.gz_body = gzip.compress(body, compresslevel=6, mtime=0)
        vary = "Accept-Encoding, Accept" if browser_type else "Accept-Encoding"
        common = [("Last-Modified", format_datetime(self.modified_at, usegmt=True)),
                  ("Cache-Control", "max-age=60"), ("Vary", vary)]
        self.variants: dict[tuple[bool, bool], _Variant] = {}
        for browser in (False, True) if browser_type else (False,):
            kind = browser_type if browser and browser_type else content_type
            typed = [("Content-Type", f"{kind}; charset=utf-8"), *extra]
            # another representation needs another strong tag
            tag = f"{digest}{'-xml' if browser else ''}"
            self.variants[False, browser] = _Variant(
                f'"{tag}"', common, [*typed, ("Content-Length", str(len(body)))])
            self.variants[True, browser] = _Variant(
                f'"{tag}-gzip"', common, [*typed, ("Content-Encoding", "gzip"),
                                          ("Content-Length", str(len(self.gz_body)))])

    def variant(self, *, gz: bool, browser: bool) -> _Variant:
        return self.variants.get((gz, browser)) or self.variants[gz, False]


class _CachedFile:
    """A published file held in memory, looked at again (one stat) at most every RECHECK_S
    and re-read only when it was replaced; `invalidate` makes the next request look."""

    def __init__(self, path: Path, content_type: str, *,
                 browser_type: str | None = None) -> None:
        self.path = path
        self.content_type = content_type
        self.browser_type = browser_type
        self._version: _Version | None = None
        self._checked = 0.0  # time.monotonic() of the last look at the file
        self._lock = threading.Lock()

    def invalidate(self) -> None:
        self._checked = -RECHECK_S

    def current(self) -> _Version | None:
        """The file's current version, None while it does not exist."""
        version = self._version  # one read: a request never mixes two versions
        if version is not None and time.monotonic() - self._checked < RECHECK_S:
            return version
        with self._lock:
            self._checked = time.monotonic()
            try:
                with self.path.open("rb") as fh:
                    stat = os.fstat(fh.fileno())
                    stamp = (stat.st_ino, stat.st_mtime_ns, stat.st_size)
                    if self._version is None or self._version.stamp != stamp:
                        self._version = _Version(
                            fh.read(), content_type=self.content_type, mtime=stat.st_mtime,
                            stamp=stamp, browser_type=self.browser_type)
            except FileNotFoundError:
                self._version = None
            return self._version


class _Pages:
    """The HTML pages of one published version, each rendered at its first request and then
    served from memory (with its gzip and validators) until the next publish replaces it."""

    def __init__(self, site: Site, metrics: Metrics) -> None:
        self.site = site
        self._metrics = metrics
        self._rendered: dict[tuple[str, int], _Version] = {}
        self._lock = threading.Lock()

    def version(self, key: tuple[str, int], render: Callable[[], bytes]) -> _Version:
        found = self._rendered.get(key)
        if found is None:
            with self._lock:  # two first requests at once: one renders, the other waits
                found = self._rendered.get(key)
                if found is None:
                    found = self._rendered[key] = _Version(
                        render(), content_type="text/html",
                        mtime=self.site.published_at.timestamp(), extra=PAGE_HEADERS)
                    self._metrics.inc("aggregator_pages_rendered_total")
        return found


# The pages run no script and load nothing but their stylesheet: should anything ever slip
# through the escaping, the browser still runs none of it.
PAGE_HEADERS = (
    ("Content-Security-Policy", "default-src 'none'; style-src 'self'; img-src 'self'; "
     "base-uri 'none'; form-action 'none'; frame-ancestors 'none'"),
    ("X-Content-Type-Options", "nosniff"),
)
ASSETS = {"/style.css": ("style.css", "text/css"), "/feed.xsl": ("feed.xsl", "text/xsl"),
          "/feed.css": ("feed.css", "text/css")}
# Browsers show a feed of its own type (application/rss+xml, application/atom+xml) as plain
# text, its stylesheets unused (Chromium 156); as XML they render it with them. A browser's
# navigation asks for text/html (feed readers do not) and gets the feed as application/xml.
BROWSER_FEED_TYPE = "application/xml"
MAX_PAGE_DIGITS = 9  # a story id or page number longer than this is no id of ours


class FeedApp:
    """WSGI application: the front page (/), the story pages (/stories/ID), /feed.xml,
    /atom.xml and their stylesheets, /healthz, /readyz, /metrics."""

    def __init__(self, settings: Settings, metrics: Metrics,
                 ready: Callable[[], dict[str, Any]]) -> None:
        self.files = {
            "/feed.xml": _CachedFile(settings.publish.rss_path, "application/rss+xml",
                                     browser_type=BROWSER_FEED_TYPE),
            "/atom.xml": _CachedFile(settings.publish.atom_path, "application/atom+xml",
                                     browser_type=BROWSER_FEED_TYPE),
        }
        started = time.time()
        self.assets = {path: _Version(asset(name), content_type=kind, mtime=started)
                       for path, (name, kind) in ASSETS.items()}
        self.not_found = not_found_page(settings.publish.title)
        self.metrics = metrics
        metrics.declare("aggregator_pages_rendered_total", "counter",
                        "HTML pages rendered (once per page and published version).")
        self.ready = ready
        self._pages: _Pages | None = None

    def __call__(self, environ: dict[str, Any], start: StartResponse) -> Iterable[bytes]:
        path = environ.get("PATH_INFO", "/")
        method = environ.get("REQUEST_METHOD", "GET")
        if method not in ("GET", "HEAD"):
            return _plain(start, "405 Method Not Allowed", "method not allowed\n",
                          [("Allow", "GET, HEAD")])
        head = method == "HEAD"
        if path in self.files:
            version = self.files[path].current()
            if version is None:
                return _unpublished(start, "feed")
            return _send(environ, start, version, head=head)
        if path in self.assets:
            return _send(environ, start, self.assets[path], head=head)
        if path == "/" or path.startswith("/stories/"):
            return self._page(environ, start, path, head=head)
        if path == "/healthz":
            return _plain(start, "200 OK", "ok\n")
        if path == "/readyz":
            return self._readyz(start)
        if path == "/metrics":
            body = self.metrics.render()
            start("200 OK", [("Content-Type", "text/plain; version=0.0.4"),
                             ("Content-Length", str(len(body)))])
            return [body]
        return self._missing(start)

    def published(self, site: Site | None = None) -> None:
        """The feed files were just replaced, and `site` is what the pages now show: serve
        the new versions from the next request on."""
        for cached in self.files.values():
            cached.invalidate()
        if site is not None:
            self._pages = _Pages(site, self.metrics)
            self.not_found = not_found_page(site.title)  # the title as of this publish

    def _page(self, environ: dict[str, Any], start: StartResponse, path: str, *,
              head: bool) -> Iterable[bytes]:
        pages = self._pages  # one read: a request never mixes two versions
        if pages is None:
            return _unpublished(start, "stories")
        site = pages.site
        if path == "/":
            number = _number(_query_page(environ.get("QUERY_STRING", "")))
            if number is None or number > page_count(site):
                return self._missing(start)
            version = pages.version(("front", number), lambda: front_page(site, number))
            return _send(environ, start, version, head=head)
        cluster_id = _number(path.removeprefix("/stories/"))
        story = site.stories.get(cluster_id) if cluster_id is not None else None
        if story is None:
            target = site.merged.get(cluster_id) if cluster_id is not None else None
            if target is None:
                return self._missing(start)
            # relative, so that it holds behind a proxy that mounts the site under a path
            return _plain(start, "301 Moved Permanently", f"moved to /stories/{target}\n",
                          [("Location", str(target)), ("Cache-Control", "max-age=60")])
        version = pages.version(("story", story.cluster_id), lambda: story_page(site, story))
        return _send(environ, start, version, head=head)

    def _missing(self, start: StartResponse) -> Iterable[bytes]:
        start("404 Not Found", [("Content-Type", "text/html; charset=utf-8"),
                                ("Content-Length", str(len(self.not_found))), *PAGE_HEADERS])
        return [self.not_found]

    def _readyz(self, start: StartResponse) -> Iterable[bytes]:
        state = self.ready()
        status = "200 OK" if state.get("ok") else "503 Service Unavailable"
        body = json.dumps(state).encode()
        start(status, [("Content-Type", "application/json"), ("Content-Length", str(len(body)))])
        return [body]


def _send(environ: dict[str, Any], start: StartResponse, version: _Version, *,
          head: bool) -> Iterable[bytes]:
    """One version of a resource: 304 when the client has it, gzip when it takes it."""
    gz = _accepts_gzip(environ.get("HTTP_ACCEPT_ENCODING"))
    variant = version.variant(gz=gz, browser="text/html" in environ.get("HTTP_ACCEPT", ""))
    if _not_modified(environ, variant.etag, version.modified_at):
        start("304 Not Modified", list(variant.not_modified))
        return []
    start("200 OK", list(variant.headers))
    if head:
        return []
    body = version.gz_body if gz else version.body
    wrapper = environ.get("wsgi.file_wrapper")
    # The server's file wrapper sends from the bytes in place, where a list would first
    # copy them into its output buffer.
    return wrapper(io.BytesIO(body)) if wrapper is not None else [body]


def _unpublished(start: StartResponse, what: str) -> Iterable[bytes]:
    return _plain(start, "503 Service Unavailable", f"{what} not published yet\n",
                  [("Retry-After", "30")])


def _query_page(query: str) -> str:
    """The `page` of a query string ("page=2"), "1" without one; other keys are ignored."""
    values = parse_qs(query).get("page")
    return values[-1] if values else "1"


def _number(text: str) -> int | None:
    """A positive decimal number in ASCII digits, else None."""
    if not (text.isascii() and text.isdigit()) or len(text) > MAX_PAGE_DIGITS:
        return None
    value = int(text)
    return value if value > 0 else None


def _accepts_gzip(header: str | None) -> bool:
    """Whether an Accept-Encoding header takes gzip (q > 0; gzip's own entry beats `*`)."""
    header = (header or "").lower()
    if "gzip" not in header and "*" not in header:
        return False
    weights: dict[str, float] = {}
    for part in header.split(","):
        coding, *params = (p.strip() for p in part.split(";"))
        weight = 1.0
        for param in params:
            key, _, value = param.partition("=")
            if key.strip() == "q":
                try:
                    weight = float(value)
                except ValueError:
                    weight = 0.0
        weights[coding] = weight
    return weights.get("gzip", weights.get("x-gzip", weights.get("*", 0.0))) > 0


def _not_modified(environ: dict[str, Any], etag: str, modified: datetime) -> bool:
    match = environ.get("HTTP_IF_NONE_MATCH")
    if match is not None:
        tags = {t.strip().removeprefix("W/") for t in match.split(",")}
        return etag in tags or "*" in tags
    since = environ.get("HTTP_IF_MODIFIED_SINCE")
    if since:
        try:
            return parsedate_to_datetime(since) >= modified
        except (TypeError, ValueError):
            return False
    return False


def _plain(start: StartResponse, status: str, text: str,
           extra: list[tuple[str, str]] | None = None) -> Iterable[bytes]:
    body = text.encode()
    start(status, [("Content-Type", "text/plain; charset=utf-8"),
                   ("Content-Length", str(len(body))), *(extra or [])])
    return [body]
