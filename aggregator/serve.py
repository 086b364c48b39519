"""The HTTP face of the daemon: the published feeds with validators, health and metrics (WSGI)."""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import os
import threading
import time
from collections.abc import Callable, Iterable
from datetime import UTC, datetime
from email.utils import format_datetime, parsedate_to_datetime
from pathlib import Path
from typing import Any

from .config import Settings

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


class _Version:
    """One published version of a file: its bytes (and gzip), validators and ready headers."""

    __slots__ = ("body", "etag", "gz_body", "gz_etag", "gz_headers", "headers", "modified",
                 "modified_at", "not_modified", "stamp")

    def __init__(self, body: bytes, stamp: tuple[int, int, int], mtime: float,
                 content_type: str) -> None:
        self.body, self.stamp = body, stamp
        digest = hashlib.sha256(body).hexdigest()[:32]
        self.etag = f'"{digest}"'
        self.gz_etag = f'"{digest}-gzip"'  # another representation needs another strong tag
        self.modified_at = datetime.fromtimestamp(mtime, UTC).replace(microsecond=0)
        self.modified = format_datetime(self.modified_at, usegmt=True)
        # Compressed once per published version, never per request; mtime=0: same bytes, same
        # gzip, so the tag stays stable across restarts.
        self.gz_body = gzip.compress(body, compresslevel=6, mtime=0)
        common = [("Last-Modified", self.modified), ("Cache-Control", "max-age=60"),
                  ("Vary", "Accept-Encoding")]
        typed = [("Content-Type", f"{content_type}; charset=utf-8")]
        self.not_modified = {False: [("ETag", self.etag), *common],
                             True: [("ETag", self.gz_etag), *common]}
        self.headers = [*self.not_modified[False], *typed,
                        ("Content-Length", str(len(body)))]
        self.gz_headers = [*self.not_modified[True], *typed, ("Content-Encoding", "gzip"),
                           ("Content-Length", str(len(self.gz_body)))]


class _CachedFile:
    """A published file held in memory, looked at again (one stat) at most every RECHECK_S
    and re-read only when it was replaced; `invalidate` makes the next request look."""

    def __init__(self, path: Path, content_type: str) -> None:
        self.path = path
        self.content_type = content_type
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
                        self._version = _Version(fh.read(), stamp, stat.st_mtime,
                                                 self.content_type)
            except FileNotFoundError:
                self._version = None
            return self._version


class FeedApp:
    """WSGI application: /feed.xml, /atom.xml, /healthz, /readyz, /metrics."""

    def __init__(self, settings: Settings, metrics: Metrics,
                 ready: Callable[[], dict[str, Any]]) -> None:
        self.files = {
            "/feed.xml": _CachedFile(settings.publish.rss_path, "application/rss+xml"),
            "/atom.xml": _CachedFile(settings.publish.atom_path, "application/atom+xml"),
        }
        self.metrics = metrics
        self.ready = ready

    def __call__(self, environ: dict[str, Any], start: StartResponse) -> Iterable[bytes]:
        path = environ.get("PATH_INFO", "/")
        method = environ.get("REQUEST_METHOD", "GET")
        if method not in ("GET", "HEAD"):
            return _plain(start, "405 Method Not Allowed", "method not allowed\n",
                          [("Allow", "GET, HEAD")])
        if path in self.files:
            return self._feed(environ, start, path, head=method == "HEAD")
        if path == "/healthz":
            return _plain(start, "200 OK", "ok\n")
        if path == "/readyz":
            return self._readyz(start)
        if path == "/metrics":
            body = self.metrics.render()
            start("200 OK", [("Content-Type", "text/plain; version=0.0.4"),
                             ("Content-Length", str(len(body)))])
            return [body]
        if path == "/":
            return _plain(start, "200 OK", "aggregator: see /feed.xml (RSS) and /atom.xml (Atom)\n")
        return _plain(start, "404 Not Found", f"not found: {path}\n")

    def published(self) -> None:
        """The feed files were just replaced: serve the new ones from the next request on."""
        for cached in self.files.values():
            cached.invalidate()

    def _feed(self, environ: dict[str, Any], start: StartResponse, path: str, *,
              head: bool) -> Iterable[bytes]:
        version = self.files[path].current()
        if version is None:
            return _plain(start, "503 Service Unavailable", "feed not published yet\n",
                          [("Retry-After", "30")])
        gz = _accepts_gzip(environ.get("HTTP_ACCEPT_ENCODING"))
        if _not_modified(environ, version.gz_etag if gz else version.etag, version.modified_at):
            start("304 Not Modified", list(version.not_modified[gz]))
            return []
        start("200 OK", list(version.gz_headers if gz else version.headers))
        if head:
            return []
        body = version.gz_body if gz else version.body
        wrapper = environ.get("wsgi.file_wrapper")
        # The server's file wrapper sends from the bytes in place, where a list would first
        # copy them into its output buffer.
        return wrapper(io.BytesIO(body)) if wrapper is not None else [body]

    def _readyz(self, start: StartResponse) -> Iterable[bytes]:
        state = self.ready()
        status = "200 OK" if state.get("ok") else "503 Service Unavailable"
        body = json.dumps(state).encode()
        start(status, [("Content-Type", "application/json"), ("Content-Length", str(len(body)))])
        return [body]


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
