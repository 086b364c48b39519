"""The HTTP face of the daemon: the published feeds with validators, health and metrics (WSGI)."""

from __future__ import annotations

import hashlib
import json
import threading
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


class _CachedFile:
    """A published file's bytes and validators, re-read only when the file changes."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._stamp: tuple[int, int] | None = None
        self.body = b""
        self.etag = ""
        self.modified = ""
        self._lock = threading.Lock()

    def load(self) -> bool:
        try:
            stat = self.path.stat()
        except FileNotFoundError:
            return False
        stamp = (stat.st_mtime_ns, stat.st_size)
        with self._lock:
            if stamp != self._stamp:
                body = self.path.read_bytes()
                self.body, self._stamp = body, stamp
                self.etag = '"' + hashlib.sha256(body).hexdigest()[:32] + '"'
                moment = datetime.fromtimestamp(stat.st_mtime, UTC)
                self.modified = format_datetime(moment, usegmt=True)
        return True


class FeedApp:
    """WSGI application: /feed.xml, /atom.xml, /healthz, /readyz, /metrics."""

    def __init__(self, settings: Settings, metrics: Metrics,
                 ready: Callable[[], dict[str, Any]]) -> None:
        self.files = {
            "/feed.xml": (_CachedFile(settings.publish.rss_path), "application/rss+xml"),
            "/atom.xml": (_CachedFile(settings.publish.atom_path), "application/atom+xml"),
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

    def _feed(self, environ: dict[str, Any], start: StartResponse, path: str, *,
              head: bool) -> Iterable[bytes]:
        cached, content_type = self.files[path]
        if not cached.load():
            return _plain(start, "503 Service Unavailable", "feed not published yet\n",
                          [("Retry-After", "30")])
        headers = [("ETag", cached.etag), ("Last-Modified", cached.modified),
                   ("Cache-Control", "max-age=60")]
        if _not_modified(environ, cached.etag, cached.modified):
            start("304 Not Modified", headers)
            return []
        headers += [("Content-Type", f"{content_type}; charset=utf-8"),
                    ("Content-Length", str(len(cached.body)))]
        start("200 OK", headers)
        return [] if head else [cached.body]

    def _readyz(self, start: StartResponse) -> Iterable[bytes]:
        state = self.ready()
        status = "200 OK" if state.get("ok") else "503 Service Unavailable"
        body = json.dumps(state).encode()
        start(status, [("Content-Type", "application/json"), ("Content-Length", str(len(body)))])
        return [body]


def _not_modified(environ: dict[str, Any], etag: str, modified: str) -> bool:
    match = environ.get("HTTP_IF_NONE_MATCH")
    if match is not None:
        tags = {t.strip().removeprefix("W/") for t in match.split(",")}
        return etag in tags or "*" in tags
    since = environ.get("HTTP_IF_MODIFIED_SINCE")
    if since:
        try:
            return parsedate_to_datetime(since) >= parsedate_to_datetime(modified)
        except (TypeError, ValueError):
            return False
    return False


def _plain(start: StartResponse, status: str, text: str,
           extra: list[tuple[str, str]] | None = None) -> Iterable[bytes]:
    body = text.encode()
    start(status, [("Content-Type", "text/plain; charset=utf-8"),
                   ("Content-Length", str(len(body))), *(extra or [])])
    return [body]
