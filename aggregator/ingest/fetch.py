"""Getting the bytes of a source: files of a local directory, and HTTP feeds and pages.

This module is the only one that reads sources from the outside world; over HTTP it polls
politely (conditional GET, per-host limits, hard time and size caps), connects only where
network.py permits, sends a feed's credentials to their own origin alone, and urllib3 errors
become `FetchError` here.
"""

from __future__ import annotations

import base64
import errno
import hashlib
import math
import os
import stat
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from pathlib import Path
from urllib.parse import urljoin, urlsplit

from urllib3 import PoolManager, Timeout
from urllib3.exceptions import (
    ConnectTimeoutError,
    DecodeError,
    HTTPError,
    LocationValueError,
    NameResolutionError,
    NewConnectionError,
    ReadTimeoutError,
)
from urllib3.response import BaseHTTPResponse

from .. import __version__
from ..errors import SourceError
from ..model import Credentials, Validators
from ..network import EVERY_NETWORK, Network, NetworkPolicy, RefusedAddress, guarded_pools
from ..urls import origin, without_userinfo

TEXT_SUFFIXES = {".txt": "text/plain", ".text": "text/plain", ".md": "text/plain",
                 ".html": "text/html", ".htm": "text/html"}
FEED_SUFFIXES = {".xml": "feed", ".rss": "feed", ".atom": "feed", ".rdf": "feed",
                 ".json": "feed"}
MAX_FILE_BYTES = 10 * 1024 * 1024


@dataclass(frozen=True, slots=True)
class Document:
    """One file of a directory source."""

    name: str  # path relative to the directory, '/'-separated
    data: bytes
    kind: str  # "text/plain" | "text/html" | "feed"
    modified_at: datetime


def read_directory(path: Path, problems: list[str]) -> Iterator[Document]:
    """Every text, HTML and feed file under `path`, in name order, each read when the caller
    asks for it: a directory of 100,000 articles is never in memory at once. Each per-file
    problem is appended to `problems` as the walk meets it.

    Only regular files inside the directory are read. A symlink is followed when its target
    is a regular file inside the directory too (a link to a directory inside is not: its
    files are read where they are); a link that leads outside, a link loop, a FIFO, a
    socket or a device is skipped with one problem line naming it. Names starting with '.'
    are left alone. Directories are opened by descriptor, relative to their parent and never
    through a link, so a directory swapped for a link during the walk is not entered.
    """
    if not path.is_dir():
        raise SourceError(f"{path}: no such directory")
    root = path.resolve()
    try:
        top = os.open(root, _DIRECTORY_FLAGS)
    except OSError as exc:
        raise SourceError(f"{path}: cannot read: {exc.strerror}") from exc
    try:
        yield from _walk(_Walk(root, path, problems), Path(), top)
    finally:
        os.close(top)


@dataclass(frozen=True, slots=True)
class _Walk:
    root: Path  # the directory, resolved
    shown: Path  # as the source names it, for problem lines
    problems: list[str]


def _walk(walk: _Walk, here: Path, dir_fd: int) -> Iterator[Document]:
    """The documents below the directory open as `dir_fd` (`here` relative to the root), in
    name order: a subdirectory's at its name's place."""
    try:
        with os.scandir(dir_fd) as listing:
            names = sorted(e.name for e in listing if not e.name.startswith("."))
    except OSError as exc:
        walk.problems.append(f"{walk.shown / here}: cannot read: {exc.strerror}")
        return
    for name in names:
        try:
            found = _entry(walk.root, here / name, name, dir_fd)
            if found is _SUBDIRECTORY:
                yield from _subdirectory(walk, here / name, name, dir_fd)
            elif isinstance(found, Document):
                yield found
        except SourceError as exc:
            walk.problems.append(f"{walk.shown / here / name}: {exc}")


def _subdirectory(walk: _Walk, here: Path, name: str, dir_fd: int) -> Iterator[Document]:
    try:
        fd = os.open(name, _DIRECTORY_FLAGS | os.O_NOFOLLOW, dir_fd=dir_fd)
    except OSError as exc:  # swapped for a link or removed since it was listed
        raise SourceError(f"cannot read: {exc.strerror}") from exc
    try:
        yield from _walk(walk, here, fd)
    finally:
        os.close(fd)


_SUBDIRECTORY = object()  # what _entry says of a directory the walk goes into
_DIRECTORY_FLAGS = os.O_RDONLY | os.O_DIRECTORY | getattr(os, "O_CLOEXEC", 0)


def _entry(root: Path, relative: Path, name: str, dir_fd: int) -> Document | object | None:
    """The document of one directory entry; _SUBDIRECTORY for a directory to go into; None
    for what is not for us (a link to a directory inside, an unknown suffix); SourceError,
    saying why, for what is skipped as unsafe or unreadable."""
    try:
        mode = os.lstat(name, dir_fd=dir_fd).st_mode
    except OSError as exc:
        raise SourceError(f"cannot read: {exc.strerror}") from exc
    if stat.S_ISDIR(mode):
        return _SUBDIRECTORY
    if stat.S_ISLNK(mode):
        target = _link_target(root, root / relative)
        if target is None:
            return None
        return _document(root, relative, lambda: os.open(target, _OPEN_FLAGS))
    if not stat.S_ISREG(mode):
        raise SourceError(f"not a regular file ({_file_kind(mode)}), skipped")
    return _document(root, relative, lambda: os.open(name, _OPEN_FLAGS, dir_fd=dir_fd))


# O_NOFOLLOW: a file swapped for a link since we looked is not followed; O_NONBLOCK: nor does
# a FIFO swapped in hang the poll (regular files ignore the flag)
_OPEN_FLAGS = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0)


def _link_target(root: Path, link: Path) -> Path | None:
    """Where a symlink leads, if that is a regular file inside `root`; None for a directory
    inside; SourceError otherwise."""
    try:
        target = link.resolve(strict=True)
    except (RuntimeError, OSError) as exc:  # RuntimeError: a loop, before Python 3.13
        loop = isinstance(exc, RuntimeError) or getattr(exc, "errno", None) == errno.ELOOP
        raise SourceError("a symlink loop, skipped" if loop
                          else "a symlink to nothing, skipped") from exc
    what = "a directory" if target.is_dir() else "a file"
    if not target.is_relative_to(root):
        raise SourceError(f"a symlink to {what} outside the directory ({target}), skipped")
    if target.is_dir():
        return None
    return target


def _document(root: Path, relative: Path, opener: Callable[[], int]) -> Document | None:
    kind = TEXT_SUFFIXES.get(relative.suffix.lower()) or FEED_SUFFIXES.get(relative.suffix.lower())
    if kind is None:
        return None
    try:
        with os.fdopen(opener(), "rb") as fh:
            info = os.fstat(fh.fileno())
            if not stat.S_ISREG(info.st_mode):  # swapped since we looked
                raise SourceError(f"not a regular file ({_file_kind(info.st_mode)}), skipped")
            if info.st_size > MAX_FILE_BYTES:
                raise SourceError(f"larger than {MAX_FILE_BYTES} bytes, skipped")
            data = fh.read(MAX_FILE_BYTES + 1)
    except OSError as exc:
        raise SourceError(f"cannot read: {exc.strerror}") from exc
    if len(data) > MAX_FILE_BYTES:  # grew since fstat
        raise SourceError(f"larger than {MAX_FILE_BYTES} bytes, skipped")
    return Document(name=relative.as_posix(), data=data, kind=kind,
                    modified_at=datetime.fromtimestamp(info.st_mtime, UTC))


def _file_kind(mode: int) -> str:
    for test, kind in ((stat.S_ISFIFO, "a FIFO"), (stat.S_ISSOCK, "a socket"),
                       (stat.S_ISCHR, "a character device"), (stat.S_ISBLK, "a block device")):
        if test(mode):
            return kind
    return "not a file"


# --- HTTP -------------------------------------------------------------------------------------

USER_AGENT = f"aggregator/{__version__} (+https://github.com/aggregator; news deduplicator)"
REDIRECTS = frozenset({301, 302, 303, 307, 308})
PERMANENT = frozenset({301, 308})
_CHUNK = 64 * 1024  # decoded bytes per read: the size cap overshoots by at most this much
_POOLS = 64  # hosts whose idle keep-alive connections are kept (at most per_host sockets each)
ALLOW_HINT = "allow it with [fetch] allow_private_networks"


class FetchError(SourceError):
    """An HTTP source could not be read: network, time or size limit, redirects, error status."""

    def __init__(self, message: str, *, status: int | None = None,
                 retry_after_s: int | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.retry_after_s = retry_after_s


@dataclass(frozen=True, slots=True)
class Fetched:
    """One successful HTTP poll of a URL, after its redirects."""

    url: str  # as requested
    final_url: str
    status: int  # of the final response: a 2xx or 304
    body: bytes | None  # decoded; None when not_modified
    content_type: str | None
    etag: str | None  # as the server sent them; on a 304 without them, the ones we sent
    last_modified: str | None
    not_modified: bool  # a 304, or a 2xx whose body hash equals the stored one
    body_hash: str | None
    permanent_redirect: str | None  # final_url when every hop was a 301 or 308: store it
    redirects: tuple[str, ...] = ()  # every URL we were sent to, in order
    retry_after_s: int | None = None

    @property
    def validators(self) -> Validators:
        """What to store and pass to the next `Fetcher.get` of this source."""
        return Validators(self.etag, self.last_modified, self.body_hash)


def backoff_s(failures: int, *, base_s: int, cap_s: int = 86400,
              retry_after_s: int | None = None) -> int:
    """Seconds until the next poll after `failures` failures in a row: base_s doubled per
    failure, at most cap_s (a failing feed is slowed, never dropped; a day by default), never
    sooner than the server's Retry-After (itself capped), never sooner than base_s."""
    if failures < 0 or base_s <= 0:
        raise ValueError(f"backoff_s: need failures >= 0 and base_s > 0, got {failures}, {base_s}")
    delay = min(base_s << min(failures, 32), cap_s)
    if retry_after_s is not None:
        delay = max(delay, min(retry_after_s, cap_s))
    return max(delay, base_s)


class Fetcher:
    """A polite, thread-safe HTTP client for feeds and the pages they link to.

    Conditional GET, a descriptive User-Agent, at most `per_host` requests in flight per host
    name, hard time and size limits, redirects followed (and recorded) one hop at a time.
    Connections go to public addresses and to `allow_networks` only (the operator's
    allow_private_networks), checked at connect time.
    """

    def __init__(self, *, user_agent: str = USER_AGENT, connect_timeout_s: float = 10,
                 read_timeout_s: float = 30, total_timeout_s: float = 60,
                 max_bytes: int = MAX_FILE_BYTES, max_redirects: int = 5,
                 per_host: int = 2, allow_networks: tuple[Network, ...] = ()) -> None:
        self._user_agent = user_agent
        self._connect_s, self._read_s = connect_timeout_s, read_timeout_s
        self._total_s = total_timeout_s
        self._max_bytes, self._max_redirects = max_bytes, max_redirects
        self._slots = _HostSlots(per_host)
        # allow_private -> pool manager: a source allowed everything, or the guarded one
        self._pools = {True: _pool_manager(per_host, NetworkPolicy(EVERY_NETWORK)),
                       False: _pool_manager(per_host, NetworkPolicy(allow_networks))}

    def get(self, url: str, *, validators: Validators | None = None,
            allow_private: bool = False, credentials: Credentials | None = None) -> Fetched:
        """GET `url` conditionally, following redirects; FetchError unless it ends in 2xx/304.

        A URL that is not http(s) is refused; so is, at every hop, a host that resolves only
        to addresses that are neither public nor allowed (allow_private=True: any address).
        `credentials` go as Basic auth to requests of their own origin alone; a user:password@
        in `url` or in a redirect is dropped, never sent. total_timeout_s bounds the whole
        call, redirects included.
        """
        deadline = time.monotonic() + self._total_s
        hops: list[tuple[str, int]] = []
        url = current = without_userinfo(url)
        while True:
            headers = self._headers(validators, _for_origin(current, credentials))
            with self._open(current, headers, deadline, allow_private) as response:
                target = _redirect_target(current, response)
                if target is None:
                    return self._finish(url, current, response, hops, validators, deadline)
            hops.append((target, response.status))
            self._check_hops(url, hops)
            current = target

    def close(self) -> None:
        """Close the idle pooled connections (the fetcher stays usable)."""
        for manager in self._pools.values():
            manager.clear()

    def __enter__(self) -> Fetcher:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def _headers(self, validators: Validators | None,
                 credentials: Credentials | None) -> dict[str, str]:
        headers = {"User-Agent": self._user_agent, "Accept-Encoding": "gzip, deflate"}
        if credentials is not None:
            pair = f"{credentials.username}:{credentials.password}".encode()  # RFC 7617: UTF-8
            headers["Authorization"] = f"Basic {base64.b64encode(pair).decode()}"
        if validators is not None and validators.etag is not None:
            headers["If-None-Match"] = validators.etag
        if validators is not None and validators.last_modified is not None:
            headers["If-Modified-Since"] = validators.last_modified
        return headers

    @contextmanager
    def _open(self, url: str, headers: dict[str, str], deadline: float,
              allow_private: bool) -> Iterator[BaseHTTPResponse]:
        """One request, holding a slot of its host until its response is settled."""
        host = _checked_host(url)
        with self._slots.hold(host, deadline - time.monotonic()) as held:
            if not held:
                raise self._timed_out(url, f" waiting for a free connection to {host}")
            response = self._request(url, headers, deadline, allow_private)
            try:
                yield response
            finally:
                _settle(response)

    def _request(self, url: str, headers: dict[str, str], deadline: float,
                 allow_private: bool) -> BaseHTTPResponse:
        left = deadline - time.monotonic()
        if left <= 0:
            raise self._timed_out(url)
        timeout = Timeout(connect=min(self._connect_s, left), read=min(self._read_s, left))
        try:
            return self._pools[allow_private].urlopen(
                "GET", url, headers=headers, timeout=timeout, redirect=False, retries=False,
                preload_content=False, decode_content=True)
        except HTTPError as exc:
            raise self._failure(url, exc, deadline) from exc

    def _finish(self, url: str, final: str, response: BaseHTTPResponse,
                hops: list[tuple[str, int]], validators: Validators | None,
                deadline: float) -> Fetched:
        if response.status == 304:
            response.drain_conn()  # a 304 has no body, so this reads nothing
            return _result(url, final, response, hops, body=None, validators=validators)
        if not 200 <= response.status < 300:
            raise FetchError(f"{final}: HTTP {response.status}", status=response.status,
                             retry_after_s=_retry_after(response.headers.get("Retry-After")))
        body = self._read_body(final, response, deadline)
        return _result(url, final, response, hops, body=body, validators=validators)

    def _read_body(self, url: str, response: BaseHTTPResponse, deadline: float) -> bytes:
        with _Watchdog(response, deadline - time.monotonic()) as watchdog:
            try:
                body = self._stream(url, response)
            except HTTPError as exc:
                raise self._failure(url, exc, deadline) from exc
        if watchdog.fired.is_set():  # the cut may look like a clean end of a body of no length
            response.close()
            raise self._timed_out(url)
        return body

    def _stream(self, url: str, response: BaseHTTPResponse) -> bytes:
        """The decoded body, counted as it is decoded, so a small gzip bomb is cut off too."""
        chunks, size = [], 0
        while chunk := response.read1(_CHUNK):
            size += len(chunk)
            if size > self._max_bytes:
                raise FetchError(f"{url}: body larger than {self._max_bytes} bytes")
            chunks.append(chunk)
        return b"".join(chunks)

    def _check_hops(self, url: str, hops: list[tuple[str, int]]) -> None:
        target = hops[-1][0]
        if target == url or target in (earlier for earlier, _ in hops[:-1]):
            raise FetchError(f"{url}: redirect loop at {target}")
        if len(hops) > self._max_redirects:
            raise FetchError(f"{url}: more than {self._max_redirects} redirects")

    def _failure(self, url: str, exc: HTTPError, deadline: float) -> FetchError:
        if time.monotonic() >= deadline:
            return self._timed_out(url)
        return FetchError(f"{url}: {_reason(exc, url, self._connect_s, self._read_s)}")

    def _timed_out(self, url: str, what: str = "") -> FetchError:
        return FetchError(f"{url}: timed out after {self._total_s:g} s{what}")


def _reason(exc: HTTPError, url: str, connect_s: float, read_s: float) -> str:
    """The urllib3 error as an operator would put it."""
    if isinstance(exc, RefusedAddress):
        return f"refused: {exc.address} is a private address ({ALLOW_HINT})"
    if isinstance(exc, NameResolutionError):
        return f"DNS lookup failed for {urlsplit(url).hostname}"
    if isinstance(exc, NewConnectionError):
        cause = exc.__cause__
        return "connection refused" if isinstance(cause, ConnectionRefusedError) else (
            f"cannot connect: {cause or exc}")
    if isinstance(exc, ConnectTimeoutError):
        return f"connect timed out after {connect_s:g} s"
    if isinstance(exc, ReadTimeoutError):
        return f"timed out after {read_s:g} s waiting for data"
    if isinstance(exc, DecodeError):
        return "cannot decode the compressed body"
    if isinstance(exc, LocationValueError):
        return "invalid URL"
    return f"connection failed: {exc}"


def _result(url: str, final: str, response: BaseHTTPResponse, hops: list[tuple[str, int]], *,
            body: bytes | None, validators: Validators | None) -> Fetched:
    """A 304 (body None) or a 2xx, compared with the stored validators."""
    stored = validators or Validators()
    digest = None if body is None else hashlib.sha256(body).hexdigest()
    unchanged = body is None or digest == stored.body_hash
    kept = stored if body is None else Validators()  # a 304 may leave its validators out
    headers = response.headers
    return Fetched(
        url=url, final_url=final, status=response.status, body=None if unchanged else body,
        content_type=headers.get("Content-Type"),
        etag=headers.get("ETag", kept.etag),
        last_modified=headers.get("Last-Modified", kept.last_modified),
        not_modified=unchanged, body_hash=digest or stored.body_hash,
        permanent_redirect=final if hops and all(s in PERMANENT for _, s in hops) else None,
        redirects=tuple(target for target, _ in hops),
        retry_after_s=_retry_after(headers.get("Retry-After")))


def _redirect_target(url: str, response: BaseHTTPResponse) -> str | None:
    location = response.headers.get("Location")
    if response.status not in REDIRECTS or not location:
        return None
    if any(ord(char) < 0x20 or ord(char) == 0x7F for char in location):
        raise FetchError(f"{url}: invalid redirect to {without_userinfo(location)!r}")
    try:
        return without_userinfo(urljoin(url, location))
    except ValueError as exc:
        raise FetchError(f"{url}: invalid redirect to {without_userinfo(location)!r}") from exc


def _for_origin(url: str, credentials: Credentials | None) -> Credentials | None:
    """The credentials, if `url` is of the origin they were given for (after a redirect to
    another host, scheme or port they stay behind)."""
    if credentials is None:
        return None
    try:
        return credentials if origin(url) == credentials.origin else None
    except ValueError:  # a bad port: _checked_host refuses the URL next
        return None


def _settle(response: BaseHTTPResponse) -> None:
    """Give the connection back to the pool: as it is when the body was read to its end,
    closed otherwise (a half-read connection cannot carry another request)."""
    if not response.closed:
        response.close()
    response.release_conn()


def _retry_after(value: str | None, *, now: datetime | None = None) -> int | None:
    """Retry-After in seconds from now: delta-seconds or an HTTP-date; None if absent or bad."""
    value = (value or "").strip()
    if value.isascii() and value.isdigit():
        return int(value)
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:  # "-0000": HTTP-dates are GMT anyway
        when = when.replace(tzinfo=UTC)
    return max(0, math.ceil((when - (now or datetime.now(UTC))).total_seconds()))


# --- limits -----------------------------------------------------------------------------------

@dataclass(slots=True)
class _Slot:
    semaphore: threading.Semaphore
    users: int = 0  # threads holding or waiting for it


class _HostSlots:
    """At most `limit` requests in flight to one host name; idle host names are forgotten."""

    def __init__(self, limit: int) -> None:
        self._limit = limit
        self._lock = threading.Lock()
        self._hosts: dict[str, _Slot] = {}

    @contextmanager
    def hold(self, host: str, timeout_s: float) -> Iterator[bool]:
        """Waits up to `timeout_s` for a slot of `host`; yields whether it got one."""
        slot = self._join(host)
        held = timeout_s > 0 and slot.semaphore.acquire(timeout=timeout_s)
        try:
            yield held
        finally:
            if held:
                slot.semaphore.release()
            self._leave(host, slot)

    def _join(self, host: str) -> _Slot:
        with self._lock:
            slot = self._hosts.get(host) or _Slot(threading.Semaphore(self._limit))
            self._hosts[host] = slot
            slot.users += 1
            return slot

    def _leave(self, host: str, slot: _Slot) -> None:
        with self._lock:
            slot.users -= 1
            if slot.users == 0:
                del self._hosts[host]


class _Watchdog:
    """Shuts the response's socket for reading at the deadline, which ends the read in progress:
    a read timeout alone never fires on a server that drips a byte now and then."""

    def __init__(self, response: BaseHTTPResponse, seconds: float) -> None:
        self.fired = threading.Event()
        self._timer = threading.Timer(max(seconds, 0), self._fire, args=(response,))
        self._timer.daemon = True

    def _fire(self, response: BaseHTTPResponse) -> None:
        self.fired.set()
        with suppress(ValueError, RuntimeError, OSError):  # already released or closed
            response.shutdown()

    def __enter__(self) -> _Watchdog:
        self._timer.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._timer.cancel()
        self._timer.join()


# --- URLs and pools --------------------------------------------------------------------------

def _checked_host(url: str) -> str:
    """The URL's host name, once the URL is an http(s) one; where it may connect to is for
    the pool's connections to decide (network.py), on the address they connect to."""
    try:
        parts = urlsplit(url)
        host, _ = parts.hostname, parts.port  # .port raises on a bad one
    except ValueError as exc:
        raise FetchError(f"{url}: invalid URL") from exc
    if parts.scheme not in ("http", "https") or not host:
        raise FetchError(f"{url}: not an http(s) URL")
    return host


def _pool_manager(per_host: int, policy: NetworkPolicy) -> PoolManager:
    manager = PoolManager(num_pools=_POOLS, maxsize=per_host, retries=False)
    manager.pool_classes_by_scheme = guarded_pools(policy)
    return manager
