"""Feed URLs as operators and other people's OPML files write them: refused when they could
smuggle a header or mean two things, normalised (IDN hosts to ASCII), and their
`user:password@` split off as credentials so that nothing printed ever shows a password."""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from urllib.parse import quote, unquote, urlsplit, urlunsplit

import idna

from .errors import URLError
from .model import Credentials

DEFAULT_PORTS = {"http": 80, "https": 443}
# what may stay unescaped in a path, query or fragment: RFC 3986's reserved and unreserved
# characters and '%' (an existing escape is kept as it is); everything else, non-ASCII
# included, is percent-encoded as UTF-8, as a browser sends it
_SAFE = "!#$%&'()*+,/:;=?@[]~"
_USERINFO = re.compile(r"(?<=//)([^/?#\s]*)@")  # to the last '@' of an authority, as urlsplit
# the authority's user:password@, after a scheme or at the start of a scheme-relative //host
_LEADING_USERINFO = re.compile(r"^((?:[A-Za-z][A-Za-z0-9+.-]*:)?//)[^/?#\s]*@")


_KINDS = {"Cc": "control", "Cf": "format"}


@dataclass(frozen=True, slots=True)
class FeedURL:
    """A checked URL without its userinfo, and the credentials that userinfo carried."""

    url: str
    credentials: Credentials | None = None


def parse(text: object, what: str = "feed URL") -> FeedURL:
    """`text` checked and normalised; URLError (one line naming `what`) when it is refused."""
    if not isinstance(text, str):
        raise URLError(f"{what}: expected a string, got {text!r}")
    _refuse_invisible(text, what)
    try:
        parts = urlsplit(text)
        port = parts.port
    except ValueError as exc:
        raise URLError(f"{what}: not a valid URL ({exc}): {_quoted(text)}") from exc
    if parts.scheme not in DEFAULT_PORTS or not parts.hostname:
        raise URLError(f"{what}: not an http(s) URL: {_quoted(text)}")
    if "\\" in parts.netloc:  # browsers read it as '/', urllib as part of the user name
        raise URLError(f"{what}: a backslash in the host part: {_quoted(text)}")
    host = _host(parts.hostname, what, text)
    netloc = host if port in (None, DEFAULT_PORTS[parts.scheme]) else f"{host}:{port}"
    url = urlunsplit((parts.scheme, netloc, *(quote(p, safe=_SAFE) for p in
                                              (parts.path, parts.query, parts.fragment))))
    if parts.username is None and parts.password is None:
        return FeedURL(url)
    credentials = Credentials(username=unquote(parts.username or ""),
                              password=unquote(parts.password or ""), origin=origin(url))
    return FeedURL(url, credentials)


def _refuse_invisible(text: str, what: str) -> None:
    """Control characters (CR LF would start a header of their own), format characters
    (a right-to-left override disguises a host) and any space: none belongs in a URL."""
    for index, char in enumerate(text):
        category = unicodedata.category(char)
        if char.isspace() or category in ("Cc", "Cf"):
            kind = "a space" if char == " " else (
                f"a {_KINDS.get(category, 'whitespace')} character U+{ord(char):04X}")
            raise URLError(f"{what}: {kind} at position {index + 1} is not allowed in a "
                           f"URL: {_quoted(text)}")


def _host(hostname: str, what: str, text: str) -> str:
    if ":" in hostname:  # an IPv6 literal
        return f"[{hostname}]"
    if hostname.isascii():
        return hostname  # urlsplit lower-cased it
    try:
        return idna.encode(hostname, uts46=True).decode("ascii")
    except idna.IDNAError as exc:
        raise URLError(f"{what}: not a valid host name ({exc}): {_quoted(text)}") from exc


def origin(url: str) -> str:
    """scheme://host:port of an http(s) URL, the port always written: what credentials are
    bound to (RFC 6454: another scheme, host or port is another origin)."""
    parts = urlsplit(url)
    port = parts.port or DEFAULT_PORTS.get(parts.scheme, 0)
    host = parts.hostname or ""
    return f"{parts.scheme}://{f'[{host}]' if ':' in host else host}:{port}"


def without_userinfo(url: str) -> str:
    """The URL with any user:password@ removed (a redirect's, an article link's)."""
    return _LEADING_USERINFO.sub(r"\1", url)


def shown(url: str, credentials: Credentials | None) -> str:
    """The URL as we print it: `user:***@` in place of the credentials that go with it
    (none when the URL is of another origin than theirs: they are not sent there)."""
    if credentials is None or (credentials.origin and origin(url) != credentials.origin):
        return url
    scheme, rest = url.split("://", 1)
    user = quote(credentials.username, safe="")
    return f"{scheme}://{_masked(user, credentials.password)}@{rest}"


def redact(text: str) -> str:
    """Any `//user:password@` in a text (a URL being refused, say) as `//user:***@`."""
    def mask(match: re.Match[str]) -> str:
        user, _, password = match.group(1).partition(":")
        return f"{_masked(user, password)}@"
    return _USERINFO.sub(mask, text)


def _masked(user: str, password: str) -> str:
    """`user:***`, or `***` alone when there is no password: a user name alone is often a
    token (`https://TOKEN@host/feed`), so it is the secret then."""
    return f"{user}:***" if password else "***"


def _quoted(text: str) -> str:
    return repr(redact(text))
