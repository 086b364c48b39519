"""Properties over arbitrary input: the cleaner, the rendered feeds, a stored signature."""

from __future__ import annotations

import io
import itertools
import re
import unicodedata
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import feedparser
import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from aggregator.clustering.signature import EMPTY_STATS, sign
from aggregator.ingest import extract
from aggregator.ingest.extract import clean
from aggregator.model import Article, Cluster, Member, Story, Tier
from aggregator.storage import Storage, iso, pack_minhash
from aggregator.stories.publish import render_atom, render_rss
from aggregator.stories.story import build

T0 = datetime(2024, 12, 5, 9, 0, tzinfo=UTC)
NAMESPACE = uuid.UUID("12345678-1234-5678-1234-567812345678")

# any code point but surrogates, control characters included
ANY_TEXT = st.text(st.characters(exclude_categories=("Cs",)), max_size=400)
WORDS = st.lists(st.sampled_from(
    "the council voted bridge Mara Voss said 4 million euros in March . , ! ? : ; "
    "© Reuters AFP Getty Images Photo By share Subscribe now newsletter — - / | ( ) "
    "\n \n\n \t \r \x00 \x0b \x85 \u2028 \ufeff é ı ß ﬁ".split(" ")), max_size=300).map(" ".join)
LONG_LINES = st.builds(lambda unit, n, tail: unit * n + tail,
                       st.text(st.sampled_from("aA1.-/ :)\"'(!,é©—’\n\t"), min_size=1,
                               max_size=4),
                       st.integers(1, 30_000), ANY_TEXT)
RAW = st.one_of(ANY_TEXT, WORDS, LONG_LINES)
# what XML 1.0 can carry: render_atom does not drop the rest from its story HTML (titles
# and text; see
# test_hostile.py::test_control_characters_in_an_entry_leave_both_feeds_well_formed)
XML_TEXT = st.text(st.characters(exclude_categories=("Cs",)).filter(
    lambda c: c in "\t\n\r" or (c >= " " and c not in "\ufffe\uffff")), max_size=400)


# --- the cleaner ------------------------------------------------------------------------------

@settings(max_examples=100, deadline=None)
@given(raw=RAW, title=st.none() | ANY_TEXT)
@example(raw="word ." + "A" * 300 + " x y z", title=None)  # photo credit: catastrophic before
@example(raw="a-" * 20_000, title=None)  # domain pattern: quadratic before
@example(raw="\n".join(f"alpha beta gamma delta {i}" for i in range(8000)), title="t")
@example(raw="short line\n" * 20_000, title="t")  # hard-wrap rejoining: quadratic before
def test_the_cleaner_never_raises_nor_lengthens(raw: str, title: str | None) -> None:
    cleaned = clean(raw, title=title)
    # NFC may lengthen text (composition exclusions); everything after it only removes
    assert len(cleaned.text) <= len(unicodedata.normalize("NFC", raw))
    assert all(line for line in cleaned.text.split("\n")) or not cleaned.text


def test_the_cleaner_never_returns_more_characters_than_it_was_given() -> None:
    raw = "The council voted on the bridge today in the town hall " + "\ufb2c" * 10 + "."
    assert len(clean(raw, title="t").text) <= len(raw)


# --- rendered feeds ---------------------------------------------------------------------------

def story_of(n: int, title: str, text: str) -> Story:
    article = Article(id=n, source=f"source{n}", guid=f"g{n}", url=f"https://e.example/{n}",
                      title=title, text=text, published_at=T0 + timedelta(minutes=n),
                      content_hash=f"h{n}")
    member = Member(article=article, tier=Tier.NEW, similarity=1.0, threshold=0.0,
                    shared_terms=(), matched_article=None)
    cluster = Cluster(id=n, created_at=T0, updated_at=article.published_at, members=(member,))
    return build(cluster, namespace=NAMESPACE, vectors={}, centroid={}, priorities={})


@settings(max_examples=100, deadline=None)
@given(st.lists(st.tuples(XML_TEXT, XML_TEXT), min_size=1, max_size=4))
@example([("<script>alert(1)</script>", "]]> &amp; <![CDATA[ \x7f \U0001f600")])
@example([("", ""), ("\x85\u2028", "\r\n\r")])
def test_any_title_and_text_render_into_feeds_that_parse_back(
        entries: list[tuple[str, str]]) -> None:
    stories = [story_of(n, title, text) for n, (title, text) in enumerate(entries, 1)]
    rss = render_rss(stories, title="t", link="http://127.0.0.1:8080/",
                     self_url="http://127.0.0.1:8080/feed.xml", now=T0)
    atom = render_atom(stories, title="t", link="http://127.0.0.1:8080/",
                       self_url="http://127.0.0.1:8080/atom.xml", feed_id="urn:x", now=T0)
    for data in (rss, atom):
        parsed = feedparser.parse(io.BytesIO(data))
        assert not parsed.bozo, parsed.get("bozo_exception")
        assert [e.id for e in parsed.entries] == [s.guid for s in stories]


# --- signatures in the database ---------------------------------------------------------------

@pytest.fixture(scope="module")
def signature_store(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Storage]:
    storage = Storage(Path(tmp_path_factory.mktemp("signatures")) / "db.sqlite")
    try:
        yield storage
    finally:
        storage.close()


_ARTICLE_IDS = itertools.count(1)


def stored_article(storage: Storage, title: str, text: str) -> int:
    n = next(_ARTICLE_IDS)
    return storage.insert_article({
        "source": "s", "guid": f"g{n}", "url": None, "canonical_url": None, "title": title,
        "raw": text, "text": text, "stripped": "[]", "content_hash": f"h{n}",
        "published_at": iso(T0), "ingested_at": iso(T0)})


@settings(max_examples=100, deadline=None)
@given(title=ANY_TEXT, text=st.one_of(ANY_TEXT, WORDS))
@example(title="", text="")
@example(title="Hama", text="Rebels entered Hama on Thursday, the U.N. said. 12 died.")
def test_a_signature_survives_the_database(signature_store: Storage, title: str,
                                           text: str) -> None:
    signature = sign(title, text, stats=EMPTY_STATS, terms=64)
    with signature_store.transaction():
        article_id = stored_article(signature_store, title, text)
        signature_store.insert_signature(article_id, minhash=signature.minhash,
                                         terms=signature.terms, entities=signature.entities,
                                         buckets=())
    again = signature_store.signature(article_id)
    assert again == signature
    assert pack_minhash(again.minhash) == pack_minhash(signature.minhash)


# the words the cleaner's gated patterns look for, with the letters re.IGNORECASE also
# matches to ASCII ones (İ ı ſ K), in any case
CUED = st.lists(st.sampled_from(
    "Copyright COPYRİGHT copyrıght (c) (C) 2024 © all rights reſerved ALL RIGHTS RESERVED "
    "@ jane@example.com @handle twitter.com/x TWITTER.COM/x follow e-mail Reporting by "
    "Editing BY Writing additional reporting contributed to this report . , ; ( ) ! ? : ’ ” » "
    "word the a of — -".split(" ")), max_size=30).map(" ".join)


@settings(max_examples=300, deadline=None)
@given(line=st.one_of(CUED, ANY_TEXT))
@example(line="(C) 2024 The Daily Paper")
@example(line="ALL RIGHTS RESERVED")
@example(line="All rights reſerved")
@example(line="copyrıght 2024")
@example(line="COPYRİGHT The Daily Paper")
@example(line="Reporting by Jane Doe; Editing by Bob Roe")
@example(line="Jane Doe contributed to this report.")
@example(line="Follow her at TWITTER.COM/janedoe")
@example(line="Write to jane@example.com")
def test_a_pattern_the_cleaner_skips_for_want_of_its_words_could_not_have_matched(
        line: str) -> None:
    low = extract._folded(line)
    for pattern in extract._NEEDS:
        assert extract._found(pattern, line, low) == bool(pattern.search(line)), pattern


SENTENCE_ENDS = st.text(st.sampled_from("ab .!?…;:。！？\"'”’»)]([\n"), max_size=12)


@settings(max_examples=300, deadline=None)
@given(line=st.one_of(SENTENCE_ENDS, ANY_TEXT))
def test_a_line_ends_a_sentence_as_the_regex_it_replaces_says(line: str) -> None:
    line = line.replace("\n", " ")  # the cleaner tests lines; "$" would also match before "\n"
    assert extract._terminated(line) == bool(
        re.search(r"[.!?…;:。！？][\"'”’»)\]]*$|[\"”’»]$", line))
