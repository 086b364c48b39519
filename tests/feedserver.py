"""A real HTTP server on 127.0.0.1 for tests of everything that fetches: routes by path."""

from __future__ import annotations

import sys
import threading
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, as real servers do
    server: Server

    def do_GET(self) -> None:
        self.server.enter(self)
        try:
            self.server.routes.get(self.path, not_found)(self)
        except (BrokenPipeError, ConnectionResetError):  # the client gave up, as it should
            self.close_connection = True
        finally:
            self.server.leave()

    def send(self, status: int, body: bytes = b"", headers: dict[str, str] | None = None) -> None:
        self.send_response(status)
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        pass


Route = Callable[[Handler], None]


def not_found(handler: Handler) -> None:
    handler.send(404, b"no such page")


class Server(ThreadingHTTPServer):
    """Routes by exact path; records every request and the most requests in flight at once."""

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), Handler)
        self.routes: dict[str, Route] = {}
        self.requests: list[tuple[str, dict[str, str]]] = []
        self.stop = threading.Event()
        self.barrier: threading.Barrier | None = None
        self._lock = threading.Lock()
        self._in_flight = 0
        self.max_in_flight = 0

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}{path}"

    def enter(self, handler: Handler) -> None:
        with self._lock:
            self.requests.append((handler.path, dict(handler.headers.items())))
            self._in_flight += 1
            self.max_in_flight = max(self.max_in_flight, self._in_flight)

    def leave(self) -> None:
        with self._lock:
            self._in_flight -= 1

    def handle_error(self, request: object, client_address: object) -> None:
        if not isinstance(sys.exc_info()[1], ConnectionError):  # clients hang up early here
            super().handle_error(request, client_address)  # type: ignore[arg-type]

    def paths(self) -> list[str]:
        return [path for path, _ in self.requests]


@pytest.fixture
def server() -> Iterator[Server]:
    srv = Server()
    thread = threading.Thread(target=srv.serve_forever, kwargs={"poll_interval": 0.05})
    thread.start()
    try:
        yield srv
    finally:
        srv.stop.set()
        srv.shutdown()
        thread.join()
        srv.server_close()  # joins the handler threads




def dripping(*, head: bytes = b"", every_s: float = 0.05, steps: int = 200,
             content_type: str | None = None) -> Route:
    """A route that sends its headers at once, then a byte every `every_s` seconds for
    `steps` bytes: no read ever times out, only a deadline on the whole response can help."""
    def route(handler: Handler) -> None:
        handler.send_response(200)
        if content_type:
            handler.send_header("Content-Type", content_type)
        handler.send_header("Connection", "close")
        handler.end_headers()
        handler.close_connection = True
        handler.wfile.write(head)
        for _ in range(steps):
            if handler.server.stop.wait(every_s):
                return
            handler.wfile.write(b" " if head else b"x")
            handler.wfile.flush()
    return route
