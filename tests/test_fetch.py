"""The HTTP fetcher against a real server on 127.0.0.1: conditional GET, redirects, limits,
the addresses it may connect to, and credentials; and what a directory source may read."""

from __future__ import annotations

import base64
import gzip
import os
import socket
import threading
import time
import zlib
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from ipaddress import ip_network
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from aggregator.errors import SourceError
from aggregator.ingest import fetch
from aggregator.ingest.fetch import (
    Document,
    Fetcher,
    FetchError,
    Validators,
    backoff_s,
    read_directory,
)
from aggregator.model import Credentials
from aggregator.urls import origin

from .feedserver import Handler, Route, Server, dripping

ETAG = 'W/"feed-v1"'
MODIFIED = "Wed, 21 Oct 2015 07:28:00 GMT"
FEED = b"<rss version='2.0'><channel><title>t</title></channel></rss>"
# the test server is on 127.0.0.1, a private address: every fetcher here allows it explicitly
LOOPBACK = (ip_network("127.0.0.1/32"),)
REFUSED = "is a private address (allow it with [fetch] allow_private_networks)"


def local(**options: Any) -> Fetcher:
    return Fetcher(allow_networks=LOOPBACK, **options)


@pytest.fixture
def fetcher(server: Server) -> Iterator[Fetcher]:
    with local() as f:  # closed before the server: its keep-alive connections end first
        yield f


def redirect(status: int, to: str) -> Route:
    return lambda h: h.send(status, headers={"Location": to})


def error_of(call: Callable[[], object]) -> FetchError:
    with pytest.raises(FetchError) as info:
        call()
    return info.value


# --- conditional GET --------------------------------------------------------------------------

def conditional_feed(handler: Handler) -> None:
    if (handler.headers.get("If-None-Match") == ETAG
            and handler.headers.get("If-Modified-Since") == MODIFIED):
        handler.send(304, headers={"ETag": ETAG})
    else:
        handler.send(200, FEED, {"Content-Type": "application/rss+xml", "ETag": ETAG,
                                 "Last-Modified": MODIFIED})


def test_a_200_then_a_conditional_request_answered_304(server: Server, fetcher: Fetcher) -> None:
    server.routes["/feed"] = conditional_feed
    first = fetcher.get(server.url("/feed"))
    assert (first.status, first.body, first.not_modified) == (200, FEED, False)
    assert (first.etag, first.last_modified) == (ETAG, MODIFIED)
    assert first.content_type == "application/rss+xml" and first.body_hash
    second = fetcher.get(server.url("/feed"), validators=first.validators)
    assert (second.status, second.body, second.not_modified) == (304, None, True)
    assert second.validators == first.validators  # nothing new to store
    headers = server.requests[-1][1]
    assert headers["If-None-Match"] == ETAG and headers["If-Modified-Since"] == MODIFIED
    assert headers["User-Agent"] == fetch.USER_AGENT
    assert "If-None-Match" not in server.requests[0][1]


def test_the_same_body_again_is_not_modified_by_its_hash(server: Server,
                                                         fetcher: Fetcher) -> None:
    server.routes["/plain"] = lambda h: h.send(200, FEED)
    first = fetcher.get(server.url("/plain"))
    again = fetcher.get(server.url("/plain"), validators=first.validators)
    assert (again.status, again.not_modified, again.body) == (200, True, None)
    assert again.body_hash == first.body_hash
    server.routes["/plain"] = lambda h: h.send(200, FEED + b" ")
    changed = fetcher.get(server.url("/plain"), validators=first.validators)
    assert not changed.not_modified and changed.body == FEED + b" "


def test_a_304_without_validators_keeps_the_stored_ones(server: Server,
                                                        fetcher: Fetcher) -> None:
    server.routes["/bare"] = lambda h: h.send(304)
    stored = Validators(etag='"abc"', last_modified=None, body_hash="0" * 64)
    got = fetcher.get(server.url("/bare"), validators=stored)
    assert got.not_modified and got.validators == stored
    assert "If-Modified-Since" not in server.requests[0][1]


@pytest.mark.parametrize(("encoding", "compress"), [("gzip", gzip.compress),
                                                   ("deflate", zlib.compress)])
def test_a_compressed_body_is_decoded(server: Server, fetcher: Fetcher, encoding: str,
                                      compress: Callable[[bytes], bytes]) -> None:
    server.routes["/z"] = lambda h: h.send(200, compress(FEED), {"Content-Encoding": encoding})
    assert fetcher.get(server.url("/z")).body == FEED
    assert "gzip" in server.requests[0][1]["Accept-Encoding"]


# --- redirects --------------------------------------------------------------------------------

def test_a_chain_of_permanent_redirects_is_recorded(server: Server, fetcher: Fetcher) -> None:
    server.routes |= {"/old": redirect(301, "/mid"), "/mid": redirect(308, server.url("/new")),
                      "/new": lambda h: h.send(200, FEED)}
    got = fetcher.get(server.url("/old"))
    assert got.body == FEED and got.url == server.url("/old")
    assert got.final_url == got.permanent_redirect == server.url("/new")
    assert got.redirects == (server.url("/mid"), server.url("/new"))


def test_one_temporary_hop_makes_the_chain_not_permanent(server: Server,
                                                         fetcher: Fetcher) -> None:
    server.routes |= {"/old": redirect(301, "/tmp"), "/tmp": redirect(302, "/new"),
                      "/new": lambda h: h.send(200, FEED)}
    got = fetcher.get(server.url("/old"))
    assert got.final_url == server.url("/new") and got.permanent_redirect is None
    assert len(got.redirects) == 2


def test_a_redirect_loop_raises(server: Server, fetcher: Fetcher) -> None:
    server.routes |= {"/a": redirect(302, "/b"), "/b": redirect(301, "/a")}
    error = error_of(lambda: fetcher.get(server.url("/a")))
    assert "redirect loop" in str(error) and server.url("/a") in str(error)
    assert server.paths() == ["/a", "/b"]


def test_too_many_redirects_raise(server: Server) -> None:
    server.routes |= {f"/{i}": redirect(302, f"/{i + 1}") for i in range(10)}
    with local(max_redirects=3) as fetcher:
        error = error_of(lambda: fetcher.get(server.url("/0")))
    assert "more than 3 redirects" in str(error)
    assert server.paths() == ["/0", "/1", "/2", "/3"]


# --- error statuses ---------------------------------------------------------------------------

def test_429_carries_retry_after_seconds(server: Server, fetcher: Fetcher) -> None:
    server.routes["/busy"] = lambda h: h.send(429, b"slow down", {"Retry-After": "120"})
    error = error_of(lambda: fetcher.get(server.url("/busy")))
    assert (error.status, error.retry_after_s) == (429, 120)
    assert str(error) == f"{server.url('/busy')}: HTTP 429"
    assert isinstance(error, SourceError)


def test_503_carries_an_http_date_retry_after(server: Server, fetcher: Fetcher) -> None:
    when = format_datetime(datetime.now(UTC) + timedelta(seconds=120), usegmt=True)
    server.routes["/down"] = lambda h: h.send(503, headers={"Retry-After": when})
    error = error_of(lambda: fetcher.get(server.url("/down")))
    assert error.status == 503
    assert error.retry_after_s is not None and 100 <= error.retry_after_s <= 121


def test_404_has_no_retry_after(server: Server, fetcher: Fetcher) -> None:
    error = error_of(lambda: fetcher.get(server.url("/nothing")))
    assert (error.status, error.retry_after_s) == (404, None)


def test_connection_refused_and_dns_failure_are_fetch_errors(
        fetcher: Fetcher, monkeypatch: pytest.MonkeyPatch) -> None:
    with socket.socket() as s:  # a port nobody listens on once this socket is closed
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    assert "connection refused" in str(error_of(lambda: fetcher.get(f"http://127.0.0.1:{port}/")))

    def no_dns(*args: object, **kwargs: object) -> list[tuple[object, ...]]:
        raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")

    monkeypatch.setattr(socket, "getaddrinfo", no_dns)
    error = error_of(lambda: fetcher.get("http://feed.invalid/rss"))
    assert str(error) == "http://feed.invalid/rss: DNS lookup failed for feed.invalid"


# --- time and size limits ---------------------------------------------------------------------

drip = dripping(every_s=0.05, steps=200)  # a byte every 50 ms for up to 10 s


def test_a_dripping_server_is_cut_off_at_the_total_timeout(server: Server) -> None:
    server.routes["/drip"] = drip
    started = time.monotonic()
    with local(total_timeout_s=1, read_timeout_s=5) as fetcher:
        error = error_of(lambda: fetcher.get(server.url("/drip")))
    assert "timed out after 1 s" in str(error)
    assert time.monotonic() - started < 10  # generous: only that the limit holds at all


def test_a_silent_server_hits_the_read_timeout(server: Server) -> None:
    def silent(handler: Handler) -> None:
        handler.server.stop.wait(10)

    server.routes["/silent"] = silent
    with local(read_timeout_s=0.5) as fetcher:
        error = error_of(lambda: fetcher.get(server.url("/silent")))
    assert "timed out after 0.5 s" in str(error)


def test_a_body_over_max_bytes_is_refused(server: Server) -> None:
    server.routes["/big"] = lambda h: h.send(200, b"x" * (2 * 1024 * 1024))
    with local(max_bytes=1024 * 1024) as fetcher:
        error = error_of(lambda: fetcher.get(server.url("/big")))
    assert str(error) == f"{server.url('/big')}: body larger than 1048576 bytes"


def test_a_gzip_bomb_is_cut_off_by_its_decoded_size(server: Server) -> None:
    bomb = gzip.compress(b"\0" * (64 * 1024 * 1024))
    assert len(bomb) < 100 * 1024  # small on the wire
    server.routes["/bomb"] = lambda h: h.send(200, bomb, {"Content-Encoding": "gzip"})
    with local(max_bytes=1024 * 1024) as fetcher:
        error = error_of(lambda: fetcher.get(server.url("/bomb")))
    assert "body larger than 1048576 bytes" in str(error)


# --- network safety ---------------------------------------------------------------------------

PORT = "{port}"  # the test server's port, filled in: a fetch let through would reach it


@pytest.mark.parametrize(("url", "address"), [
    (f"http://127.0.0.1:{PORT}/x", "127.0.0.1"), (f"http://localhost:{PORT}/x", None),
    (f"http://[::1]:{PORT}/x", "::1"), ("http://10.1.2.3/x", "10.1.2.3"),
    ("http://192.168.1.1/x", "192.168.1.1"), ("http://172.16.0.1/x", "172.16.0.1"),
    ("http://169.254.169.254/latest/meta-data/", "169.254.169.254"),
    ("http://100.64.0.1/x", "100.64.0.1"),  # carrier-grade NAT
    ("http://[fd00::1]/x", "fd00::1"),  # unique local
    ("http://[fe80::1]/x", "fe80::1"),  # link-local
    ("http://224.0.0.1/x", "224.0.0.1"), ("http://0.0.0.0/x", "0.0.0.0"), ("http://[::]/x", "::"),
    # other spellings of 127.0.0.1: decimal, hex, octal, short, IPv4-mapped IPv6 (two ways)
    (f"http://2130706433:{PORT}/x", "127.0.0.1"), (f"http://0x7f000001:{PORT}/x", "127.0.0.1"),
    (f"http://0177.0.0.1:{PORT}/x", "127.0.0.1"), (f"http://127.1:{PORT}/x", "127.0.0.1"),
    (f"http://[::ffff:127.0.0.1]:{PORT}/x", "127.0.0.1"),
    (f"http://[::ffff:7f00:1]:{PORT}/x", "127.0.0.1"),
    ("http://[64:ff9b::7f00:1]/x", "64:ff9b::7f00:1"),  # NAT64 of 127.0.0.1
    ("http://[2002:7f00:1::]/x", "2002:7f00:1::"),  # 6to4 of 127.0.0.1
])
def test_private_addresses_are_refused_by_default_without_a_request(
        server: Server, url: str, address: str | None) -> None:
    url = url.format(port=server.server_address[1])
    with Fetcher() as fetcher:
        error = error_of(lambda: fetcher.get(url))
    if address is None:  # localhost: 127.0.0.1 or ::1, whichever the resolver gives first
        assert str(error).startswith(f"{url}: refused: ") and REFUSED in str(error)
    else:
        assert str(error) == f"{url}: refused: {address} {REFUSED}"
    assert server.requests == []


def test_an_allowed_network_is_reached_in_any_spelling(server: Server) -> None:
    server.routes["/feed"] = lambda h: h.send(200, FEED)
    port = server.server_address[1]
    with local() as fetcher:
        for host in ("127.0.0.1", "0x7f000001", "2130706433", "[::ffff:127.0.0.1]"):
            assert fetcher.get(f"http://{host}:{port}/feed").body == FEED
        error = error_of(lambda: fetcher.get(f"http://127.0.0.2:{port}/feed"))
    assert str(error) == f"http://127.0.0.2:{port}/feed: refused: 127.0.0.2 {REFUSED}"
    assert len(server.requests) == 4  # 127.0.0.2 is outside 127.0.0.1/32: never tried


def test_allow_private_opens_every_address_for_that_request(server: Server) -> None:
    server.routes["/feed"] = lambda h: h.send(200, FEED)
    with Fetcher() as fetcher:
        assert fetcher.get(server.url("/feed"), allow_private=True).body == FEED
        assert REFUSED in str(error_of(lambda: fetcher.get(server.url("/feed"))))
    assert server.paths() == ["/feed"]


@pytest.mark.parametrize("allow_private", [False, True])
@pytest.mark.parametrize("url", ["file:///etc/passwd", "ftp://example.com/feed", "/feed"])
def test_other_schemes_are_refused(fetcher: Fetcher, url: str, allow_private: bool) -> None:
    error = error_of(lambda: fetcher.get(url, allow_private=allow_private))
    assert str(error) == f"{url}: not an http(s) URL"


@pytest.mark.parametrize("url", ["http://[::1/x", "http://127.0.0.1:99999/x"])
def test_malformed_urls_are_fetch_errors(fetcher: Fetcher, url: str) -> None:
    assert str(error_of(lambda: fetcher.get(url))) == f"{url}: invalid URL"


def test_a_malformed_redirect_is_a_fetch_error(server: Server, fetcher: Fetcher) -> None:
    server.routes["/bad"] = redirect(302, "http://[::1/x")
    assert "invalid redirect to 'http://[::1/x'" in str(error_of(
        lambda: fetcher.get(server.url("/bad"))))


def test_a_redirect_with_a_control_character_is_refused(server: Server,
                                                        fetcher: Fetcher) -> None:
    def crlf(handler: Handler) -> None:  # http.server refuses to send a raw CR LF: write it
        handler.wfile.write(b"HTTP/1.1 302 Found\r\nLocation: /next\x01x\r\n"
                            b"Content-Length: 0\r\n\r\n")

    server.routes["/crlf"] = crlf
    assert "invalid redirect to '/next\\x01x'" in str(error_of(
        lambda: fetcher.get(server.url("/crlf"))))
    assert server.paths() == ["/crlf"]


@pytest.mark.parametrize("target", ["http://10.0.0.1/admin", "http://169.254.169.254/",
                                    "http://0x0a000001/admin", "http://[::ffff:10.0.0.1]/"])
def test_every_redirect_hop_is_checked(server: Server, fetcher: Fetcher, target: str) -> None:
    server.routes["/hop"] = redirect(302, target)
    error = str(error_of(lambda: fetcher.get(server.url("/hop"))))
    assert error.startswith(f"{target}: refused: ") and error.endswith(REFUSED), error
    assert server.paths() == ["/hop"]


class FakeResolver:
    """getaddrinfo for one made-up name, answering from a script (a fake DNS server that
    changes its mind); every other name goes to the real resolver."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch, name: str,
                 *answers: tuple[str, ...]) -> None:
        self.name, self.answers, self.calls = name, list(answers), 0
        self._real = socket.getaddrinfo
        monkeypatch.setattr(socket, "getaddrinfo", self)

    def __call__(self, host: str, port: object, *args: Any, **kwargs: Any) -> list[Any]:
        if host != self.name:
            return self._real(host, port, *args, **kwargs)
        answer = self.answers[min(self.calls, len(self.answers) - 1)]
        self.calls += 1
        return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", (address, port))
                for address in answer]


def test_the_address_checked_is_the_address_connected_to(
        server: Server, fetcher: Fetcher, monkeypatch: pytest.MonkeyPatch) -> None:
    """DNS rebinding: a name that answers an allowed address to the check and another to the
    connection. There is one lookup, at connect time: 127.0.0.2 (refused; nothing listens
    there either) would only be reached by a second one."""
    resolver = FakeResolver(monkeypatch, "rebind.test", ("127.0.0.1",), ("127.0.0.2",))
    server.routes["/x"] = lambda h: h.send(200, FEED)
    port = server.server_address[1]
    assert fetcher.get(f"http://rebind.test:{port}/x").body == FEED
    assert resolver.calls == 1 and server.paths() == ["/x"]


def test_a_name_that_resolves_to_a_private_address_is_refused_at_connect_time(
        server: Server, fetcher: Fetcher, monkeypatch: pytest.MonkeyPatch) -> None:
    FakeResolver(monkeypatch, "rebind.test", ("127.0.0.2",))
    server.routes["/x"] = lambda h: h.send(200, FEED)
    url = f"http://rebind.test:{server.server_address[1]}/x"
    assert str(error_of(lambda: fetcher.get(url))) == f"{url}: refused: 127.0.0.2 {REFUSED}"
    assert server.requests == []


def test_of_several_addresses_only_the_permitted_ones_are_tried(
        server: Server, fetcher: Fetcher, monkeypatch: pytest.MonkeyPatch) -> None:
    FakeResolver(monkeypatch, "mixed.test", ("10.0.0.1", "127.0.0.2", "127.0.0.1"))
    server.routes["/x"] = lambda h: h.send(200, FEED)
    assert fetcher.get(f"http://mixed.test:{server.server_address[1]}/x").body == FEED


# --- credentials ------------------------------------------------------------------------------

SECRET = "pw-fetch-7f3c"


def basic(user: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()


def authorization(server: Server, path: str) -> str | None:
    return next(h.get("Authorization") for p, h in server.requests if p == path)


def test_credentials_go_to_their_own_origin_and_stay_behind_on_another(
        server: Server, fetcher: Fetcher) -> None:
    port = server.server_address[1]
    server.routes |= {"/private.xml": redirect(302, "/moved.xml"),
                      "/moved.xml": redirect(302, f"http://localhost:{port}/elsewhere.xml"),
                      "/elsewhere.xml": lambda h: h.send(200, FEED)}
    url = server.url("/private.xml")
    alice = Credentials("alice", SECRET, origin=origin(url))
    with Fetcher(allow_networks=(ip_network("127.0.0.0/8"), ip_network("::1/128"))) as open_:
        got = open_.get(url, credentials=alice)
    assert got.body == FEED
    assert authorization(server, "/private.xml") == basic("alice", SECRET)
    assert authorization(server, "/moved.xml") == basic("alice", SECRET)  # the same origin
    assert authorization(server, "/elsewhere.xml") is None  # localhost is another host
    assert SECRET not in repr(alice)


def test_a_user_and_password_in_a_url_or_a_redirect_are_never_sent(
        server: Server, fetcher: Fetcher) -> None:
    port = server.server_address[1]
    server.routes |= {"/a": redirect(302, f"http://eve:{SECRET}@127.0.0.1:{port}/b"),
                      "/b": lambda h: h.send(200, FEED)}
    got = fetcher.get(f"http://bob:{SECRET}@127.0.0.1:{port}/a")
    assert got.url == server.url("/a") and got.final_url == server.url("/b")
    assert got.redirects == (server.url("/b"),)
    assert [h.get("Authorization") for _, h in server.requests] == [None, None]
    error = error_of(lambda: fetcher.get(f"http://bob:{SECRET}@127.0.0.1:{port}/missing"))
    assert str(error) == f"{server.url('/missing')}: HTTP 404"


# --- per-host limit ---------------------------------------------------------------------------

def in_parallel(fetcher: Fetcher, urls: list[str]) -> list[object]:
    results: list[object] = [None] * len(urls)

    def run(i: int) -> None:
        try:
            results[i] = fetcher.get(urls[i])
        except FetchError as exc:
            results[i] = exc

    threads = [threading.Thread(target=run, args=(i,)) for i in range(len(urls))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return results


def slow_ok(handler: Handler) -> None:
    handler.server.stop.wait(0.3)
    handler.send(200, FEED)


def test_per_host_one_means_one_request_at_a_time(server: Server) -> None:
    server.routes["/slow"] = slow_ok
    with local(per_host=1) as fetcher:
        results = in_parallel(fetcher, [server.url("/slow")] * 3)
    assert all(isinstance(r, fetch.Fetched) for r in results)
    assert server.max_in_flight == 1


def test_per_host_two_lets_two_run_together(server: Server) -> None:
    barrier = threading.Barrier(2, timeout=5)  # passes only if both requests are in at once

    def meet(handler: Handler) -> None:
        barrier.wait()
        handler.send(200, FEED)

    server.routes["/meet"] = meet
    with local(per_host=2) as fetcher:
        results = in_parallel(fetcher, [server.url("/meet")] * 2)
    assert all(isinstance(r, fetch.Fetched) for r in results)
    assert server.max_in_flight == 2


# --- backoff ----------------------------------------------------------------------------------

def test_backoff_doubles_from_the_base_up_to_the_cap() -> None:
    assert [backoff_s(n, base_s=900) for n in range(4)] == [900, 1800, 3600, 7200]
    assert backoff_s(1000, base_s=900) == 86400
    assert backoff_s(1, base_s=900, retry_after_s=7200) == 7200
    assert backoff_s(1, base_s=900, retry_after_s=10) == 1800
    assert backoff_s(0, base_s=900, retry_after_s=10**9) == 86400  # a server cannot stop us


@given(st.integers(0, 10_000), st.integers(1, 10**6), st.integers(1, 10**6),
       st.none() | st.integers(0, 10**9))
def test_backoff_stays_between_base_and_cap_and_never_shrinks(
        failures: int, base_s: int, cap_s: int, retry_after_s: int | None) -> None:
    delay = backoff_s(failures, base_s=base_s, cap_s=cap_s, retry_after_s=retry_after_s)
    assert base_s <= delay <= max(base_s, cap_s)
    assert delay <= backoff_s(failures + 1, base_s=base_s, cap_s=cap_s,
                              retry_after_s=retry_after_s)
    if retry_after_s is not None:
        assert delay >= min(retry_after_s, cap_s)


def test_backoff_rejects_nonsense() -> None:
    with pytest.raises(ValueError):
        backoff_s(-1, base_s=60)
    with pytest.raises(ValueError):
        backoff_s(1, base_s=0)


# --- directory sources ------------------------------------------------------------------------

def read_within(path: Path, timeout_s: float = 30) -> tuple[list[Document], list[str]]:
    """read_directory in a thread: opening a FIFO would block it for ever, and a hang must
    show as a failure rather than stop the suite."""
    result: list[tuple[list[Document], list[str]]] = []
    problems: list[str] = []
    thread = threading.Thread(target=lambda: result.append(
        (list(read_directory(path, problems)), problems)), daemon=True)
    thread.start()
    thread.join(timeout_s)
    assert result, "read_directory hung"
    return result[0]


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    """seeds/ with two files of its own and, beside it, files it must never publish."""
    outside = tmp_path / "outside"
    (outside / "dir").mkdir(parents=True)
    (outside / "memo.txt").write_text("SECRET memo from outside")
    (outside / "dir" / "inner.txt").write_text("SECRET file of an outside directory")
    seeds = tmp_path / "seeds"
    (seeds / "sub").mkdir(parents=True)
    (seeds / "a.txt").write_text("the first report")
    (seeds / "sub" / "b.txt").write_text("the second report")
    return seeds


def test_a_link_to_a_file_outside_the_directory_is_skipped_with_one_line(tree: Path) -> None:
    os.symlink(tree.parent / "outside" / "memo.txt", tree / "zz.txt")
    os.symlink("../../outside/memo.txt", tree / "sub" / "relative.txt")
    documents, problems = read_within(tree)
    assert [d.name for d in documents] == ["a.txt", "sub/b.txt"]
    memo = tree.parent / "outside" / "memo.txt"
    assert problems == [  # in the order of the walk, name order: sub/ before zz.txt
        f"{tree}/sub/relative.txt: a symlink to a file outside the directory ({memo}), skipped",
        f"{tree}/zz.txt: a symlink to a file outside the directory ({memo}), skipped"]


def test_a_link_to_a_directory_outside_is_neither_followed_nor_read(tree: Path) -> None:
    os.symlink(tree.parent / "outside" / "dir", tree / "elsewhere")
    documents, problems = read_within(tree)
    assert all(b"SECRET" not in d.data for d in documents) and len(documents) == 2
    assert problems == [f"{tree}/elsewhere: a symlink to a directory outside the directory "
                        f"({tree.parent / 'outside' / 'dir'}), skipped"]


def test_a_link_loop_is_skipped_with_one_line_each(tree: Path) -> None:
    os.symlink(tree / "loop-b.txt", tree / "loop-a.txt")
    os.symlink(tree / "loop-a.txt", tree / "loop-b.txt")
    os.symlink("me.txt", tree / "me.txt")
    documents, problems = read_within(tree)
    assert len(documents) == 2
    assert problems == [f"{tree}/{name}: a symlink loop, skipped"
                        for name in ("loop-a.txt", "loop-b.txt", "me.txt")]


def test_a_fifo_is_skipped_without_waiting_for_a_writer(tree: Path) -> None:
    os.mkfifo(tree / "pipe.txt")
    os.mkfifo(tree / "sub" / "pipe")  # no suffix: still named, it is no regular file
    documents, problems = read_within(tree)
    assert [d.name for d in documents] == ["a.txt", "sub/b.txt"]
    assert problems == [f"{tree}/pipe.txt: not a regular file (a FIFO), skipped",
                        f"{tree}/sub/pipe: not a regular file (a FIFO), skipped"]


def test_links_inside_the_directory_are_fine(tree: Path) -> None:
    os.symlink("a.txt", tree / "alias.txt")
    os.symlink(tree / "sub", tree / "sub-alias")  # its files are read where they are
    os.symlink("nothing.txt", tree / "dangling.txt")
    documents, problems = read_within(tree)
    assert [(d.name, d.data) for d in documents] == [
        ("a.txt", b"the first report"), ("alias.txt", b"the first report"),
        ("sub/b.txt", b"the second report")]
    assert problems == [f"{tree}/dangling.txt: a symlink to nothing, skipped"]


def test_a_directory_given_through_a_link_is_read_as_the_directory_it_is(tree: Path) -> None:
    os.symlink(tree, tree.parent / "seeds-link")
    documents, problems = read_within(tree.parent / "seeds-link")
    assert [d.name for d in documents] == ["a.txt", "sub/b.txt"] and problems == []
