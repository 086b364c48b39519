"""The HTTP face of the daemon: the published feeds and pages with validators, the search,
health and metrics (WSGI)."""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import os
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Iterable, Sequence
from datetime import UTC, datetime
from email.utils import format_datetime, parsedate_to_datetime
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

from ..config import Settings, public_link
from ..errors import AggregatorError
from ..storage import search_terms
from .pages import asset, list_page, not_found_page, page_count, search_page, story_page
from .search import Found
from .site import Site
from .views import FEEDS, View, view_feed, views

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


Searcher = Callable[[tuple[str, ...]], Found]  # search terms -> what the database holds
# Search pages kept per published version, the most recently asked: a few dozen pages of
# some 10-40 KiB each (the same words typed again are served from memory)
SEARCH_CACHE = 64


class _Pages:
    """The HTML pages (and the views' feeds) of one published version, each rendered at its
    first request and then served from memory (with its gzip and validators) until the next
    publish replaces it; and the latest SEARCH_CACHE searches' pages."""

    def __init__(self, site: Site, metrics: Metrics) -> None:
        self.site = site
        self.views = views(site)
        self._metrics = metrics
        self._rendered: dict[tuple[str, str], _Version] = {}
        self._lock = threading.Lock()
        self._searches: OrderedDict[tuple[str, ...], _Version] = OrderedDict()
        self._search_lock = threading.Lock()

    def version(self, key: tuple[str, str], render: Callable[[], bytes], *,
                content_type: str = "text/html", browser_type: str | None = None
                ) -> _Version:
        found = self._rendered.get(key)
        if found is None:
            with self._lock:  # two first requests at once: one renders, the other waits
                found = self._rendered.get(key)
                if found is None:
                    found = self._rendered[key] = self._made(
                        render(), content_type=content_type, browser_type=browser_type)
        return found

    def searched(self, terms: tuple[str, ...], render: Callable[[], bytes]) -> _Version:
        """The page of a search, from memory when these words were searched for lately. One
        search runs at a time: many different ones at once wait rather than load the
        database together."""
        with self._search_lock:
            found = self._searches.get(terms)
            if found is None:
                found = self._searches[terms] = self._made(render(), content_type="text/html")
                self._metrics.inc("aggregator_searches_total")
                if len(self._searches) > SEARCH_CACHE:
                    self._searches.popitem(last=False)
            self._searches.move_to_end(terms)
            return found

    def _made(self, body: bytes, *, content_type: str, browser_type: str | None = None
              ) -> _Version:
        self._metrics.inc("aggregator_pages_rendered_total")
        page = content_type == "text/html"
        return _Version(body, content_type=content_type, browser_type=browser_type,
                        mtime=self.site.published_at.timestamp(),
                        extra=PAGE_HEADERS if page else ())


# The pages run no script and load nothing but their stylesheet: should anything ever slip
# through the escaping, the browser still runs none of it.
PAGE_HEADERS = (
    ("Content-Security-Policy", "default-src 'none'; style-src 'self'; img-src 'self'; "
     "base-uri 'none'; form-action 'self'; frame-ancestors 'none'"),
    ("X-Content-Type-Options", "nosniff"),
)
ASSETS = {"/style.css": ("style.css", "text/css"), "/feed.xsl": ("feed.xsl", "text/xsl"),
          "/feed.css": ("feed.css", "text/css")}
# Browsers show a feed of its own type (application/rss+xml, application/atom+xml) as plain
# text, its stylesheets unused (Chromium 156); as XML they render it with them. A browser's
# navigation asks for text/html (feed readers do not) and gets the feed as application/xml.
BROWSER_FEED_TYPE = "application/xml"
MAX_PAGE_DIGITS = 9  # a story id or page number longer than this is no id of ours
PAGES = ("/stories/", "/latest", "/top", "/c/")  # with "/": the published version's pages


class FeedApp:
    """WSGI application: the ranked front page (/), the newest (/latest/), the top stories
    (/top/) and each category's (/c/NAME/), with the feeds of the last two; the story pages
    (/stories/ID), the search (/search?q=...), /feed.xml, /atom.xml and their stylesheets,
    /healthz, /readyz, /metrics. Without a `search`, /search is not found."""

    def __init__(self, settings: Settings, metrics: Metrics,
                 ready: Callable[[], dict[str, Any]], *, search: Searcher | None = None
                 ) -> None:
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
        metrics.declare("aggregator_searches_total", "counter",
                        "Searches run (a search repeated within a version is served as it was).")
        self.ready = ready
        self.search = search
        self.link = public_link(settings)  # the views' feeds are published under it
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
        if path == "/" or path.startswith(PAGES):
            return self._page(environ, start, path, head=head)
        if path == "/search" and self.search is not None:
            return self._search(environ, start, head=head)
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
        if path.startswith("/stories/"):
            return self._story(environ, start, pages, path, head=head)
        where, _, leaf = path.rpartition("/")
        if f"{path}/" in pages.views:  # /latest, /c/world: the list is at its folder
            return _plain(start, "301 Moved Permanently", f"moved to {path}/\n",
                          [("Location", f"{leaf}/"), ("Cache-Control", "max-age=60")])
        view = pages.views.get(f"{where}/")
        if view is None:
            return self._missing(start)
        if leaf == "":
            return self._list(environ, start, pages, view, head=head)
        if leaf in FEEDS and view.feeds:
            kind = FEEDS[leaf][0]
            version = pages.version((view.path, leaf), lambda: view_feed(
                pages.site, view, name=leaf, link=self.link), content_type=kind,
                browser_type=BROWSER_FEED_TYPE)
            return _send(environ, start, version, head=head)
        if f"/{leaf}" in self.assets:  # the feeds' stylesheets, beside the feeds
            return _send(environ, start, self.assets[f"/{leaf}"], head=head)
        return self._missing(start)

    def _list(self, environ: dict[str, Any], start: StartResponse, pages: _Pages, view: View,
              *, head: bool) -> Iterable[bytes]:
        number = _number(_query_value(environ.get("QUERY_STRING", ""), "page") or "1")
        if number is None or number > page_count(view):
            return self._missing(start)
        version = pages.version((view.path, str(number)),
                                lambda: list_page(pages.site, view, number))
        return _send(environ, start, version, head=head)

    def _story(self, environ: dict[str, Any], start: StartResponse, pages: _Pages, path: str,
               *, head: bool) -> Iterable[bytes]:
        site = pages.site
        cluster_id = _number(path.removeprefix("/stories/"))
        story = site.stories.get(cluster_id) if cluster_id is not None else None
        if story is None:
            target = site.merged.get(cluster_id) if cluster_id is not None else None
            if target is None:
                return self._missing(start)
            # relative, so that it holds behind a proxy that mounts the site under a path
            return _plain(start, "301 Moved Permanently", f"moved to /stories/{target}\n",
                          [("Location", str(target)), ("Cache-Control", "max-age=60")])
        version = pages.version(("story", str(story.cluster_id)),
                                lambda: story_page(site, story))
        return _send(environ, start, version, head=head)

    def _search(self, environ: dict[str, Any], start: StartResponse, *,
                head: bool) -> Iterable[bytes]:
        """/search?q=WORDS: whatever was typed, a page of results or of nothing found."""
        pages, search = self._pages, self.search
        if pages is None or search is None:
            return _unpublished(start, "stories")
        terms = search_terms(_query_value(environ.get("QUERY_STRING", ""), "q"))
        try:
            version = pages.searched(terms, lambda: search_page(
                pages.site, search(terms) if terms else Found((), (), more=False)))
        except AggregatorError:  # the database, not the words: say so, and try again soon
            return _plain(start, "503 Service Unavailable", "search not available now\n",
                          [("Retry-After", "30")])
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


def _query_value(query: str, key: str) -> str:
    """The last value of `key` in a query string ("page=2", "q=bank+rates"), "" without one;
    other keys are ignored."""
    values = parse_qs(query).get(key)
    return values[-1] if values else ""


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
