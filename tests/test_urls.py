"""Feed URLs at the door: refused with one line when they could smuggle a header, normalised
otherwise, their credentials split off and never shown."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from aggregator.errors import URLError, UsageError
from aggregator.model import Credentials
from aggregator.urls import origin, parse, redact, shown, without_userinfo


@pytest.mark.parametrize(("text", "message"), [
    ("http://host/a\r\nX-Inj: 1",
     "feed URL: a control character U+000D at position 14 is not allowed in a URL: "
     "'http://host/a\\r\\nX-Inj: 1'"),
    ("http://host/a\nb", "a control character U+000A at position 14"),
    ("http://host/a\x00", "a control character U+0000 at position 14"),
    ("http://host/a\x7f", "a control character U+007F at position 14"),
    ("http://ho\tst/", "a control character U+0009 at position 10"),
    ("http://host/a b.xml", "a space at position 14"),
    (" http://host/", "a space at position 1"),
    ("http://host/\u00a0", "a whitespace character U+00A0 at position 13"),
    ("http://\u202eloc.example/", "a format character U+202E at position 8"),
    ("ftp://example.com/feed", "not an http(s) URL: 'ftp://example.com/feed'"),
    ("example.com/feed", "not an http(s) URL"),
    ("http:///feed", "not an http(s) URL"),
    ("http://host:99999/", "not a valid URL"),
    ("http://[::1/x", "not a valid URL"),
    ("http://host\\@evil.example/", "a backslash in the host part"),
    ("http://a..b\u00fc/", "not a valid host name"),
])
def test_a_refused_url_is_one_line_naming_why(text: str, message: str) -> None:
    with pytest.raises(URLError) as info:
        parse(text)
    assert message in str(info.value) and "\n" not in str(info.value)
    assert isinstance(info.value, UsageError)


def test_the_refusal_never_shows_a_password() -> None:
    with pytest.raises(URLError) as info:
        parse("http://alice:pw-refused-51@host/a b")
    assert "pw-refused-51" not in str(info.value)
    assert "'http://alice:***@host/a b'" in str(info.value)


@pytest.mark.parametrize(("text", "url"), [
    ("https://Bücher.Example/feed.xml", "https://xn--bcher-kva.example/feed.xml"),
    ("http://ＥＸＡＭＰＬＥ.com/", "http://example.com/"),  # full-width letters, UTS 46
    ("HTTP://News.Example.COM:80/Feed", "http://news.example.com/Feed"),
    ("https://example.com:443/f", "https://example.com/f"),
    ("https://example.com:8443/f", "https://example.com:8443/f"),
    ("http://[::1]:8080/x", "http://[::1]:8080/x"),
    ("http://example.com/café?q=é#frag", "http://example.com/caf%C3%A9?q=%C3%A9#frag"),
    ("http://example.com/a%20b?x=1&y=%2F", "http://example.com/a%20b?x=1&y=%2F"),
])
def test_an_accepted_url_is_normalised(text: str, url: str) -> None:
    assert parse(text) == parse(url) and parse(text).url == url


def test_credentials_are_split_off_with_their_origin() -> None:
    feed = parse("https://alice:p%40ss-split-9@Feeds.Example/private.xml")
    assert feed.url == "https://feeds.example/private.xml"
    assert feed.credentials == Credentials("alice", "p@ss-split-9",
                                           origin="https://feeds.example:443")
    assert "p@ss-split-9" not in repr(feed) and "p%40ss" not in repr(feed)
    assert shown(feed.url, feed.credentials) == "https://alice:***@feeds.example/private.xml"


def test_credentials_are_shown_only_on_a_url_of_their_origin() -> None:
    feed = parse("https://alice:pw-moved-12@old.example/feed")
    assert shown("https://old.example/moved", feed.credentials) == (
        "https://alice:***@old.example/moved")
    assert shown("https://new.example/feed", feed.credentials) == "https://new.example/feed"


def test_a_user_name_alone_is_shown_as_a_secret_too() -> None:
    feed = parse("https://tok-e3n@example.com/feed")
    assert feed.credentials == Credentials("tok-e3n", "", origin="https://example.com:443")
    assert shown(feed.url, feed.credentials) == "https://***@example.com/feed"


@pytest.mark.parametrize(("text", "out"), [
    ("fetch of http://bob:pw1@host/x failed", "fetch of http://bob:***@host/x failed"),
    ("https://tok@host/x", "https://***@host/x"),
    ("http://a:b@c@host/", "http://a:***@host/"),
    ("no URL here", "no URL here"),
])
def test_redact_masks_every_userinfo_in_a_text(text: str, out: str) -> None:
    assert redact(text) == out


def test_without_userinfo_touches_the_authority_alone() -> None:
    assert without_userinfo("http://u:p@h/x?next=http://v:q@i/") == "http://h/x?next=http://v:q@i/"
    assert without_userinfo("http://h/x") == "http://h/x"
    assert without_userinfo("//u:p@h/x") == "//h/x"  # a scheme-relative Location
    assert without_userinfo("/x?u:p@h") == "/x?u:p@h"


def test_origins_differ_by_scheme_host_and_port() -> None:
    assert origin("http://h/x") == origin("http://h:80/y") == "http://h:80"
    assert len({origin("http://h/"), origin("https://h/"), origin("http://h:81/"),
                origin("http://i/")}) == 4


@given(st.text(min_size=1, max_size=40))
def test_no_accepted_url_holds_a_control_character_or_a_space(path: str) -> None:
    try:
        url = parse(f"http://example.com/{path}").url
    except URLError:
        return
    assert url.isascii() and not any(c.isspace() or ord(c) < 0x20 or ord(c) == 0x7F
                                     for c in url)
