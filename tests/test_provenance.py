"""Who published it: what a page declares of itself, the outlet line of a text file, and the
credit an article keeps from its entry and its text."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from aggregator.ingest.extract import clean, extract_html
from aggregator.ingest.provenance import provenance
from aggregator.model import Cleaned, Entry, Provenance
from tests.test_extract import SEEDS, STORY

PAGE = (
    "<html><head><title>Budget - Daily Herald</title>"
    '<meta property="og:site_name" content="Daily Herald">'
    '<link rel="canonical" href="/2024/12/05/budget">'
    '<meta name="author" content="Jane Doe">'
    '<meta property="article:published_time" content="2024-12-05T09:30:00+01:00">'
    "</head><body><article><h1>Council approves budget after long debate</h1>"
    + "".join(f"<p>{p}</p>" for p in STORY.split("\n")) + "</article></body></html>")


def test_a_page_declares_its_site_address_author_and_date() -> None:
    declared = extract_html(PAGE, url="https://dailyherald.example/amp/budget").declared
    assert declared.site == "Daily Herald"
    assert declared.url == "https://dailyherald.example/2024/12/05/budget"  # made absolute
    assert declared.author == "Jane Doe"
    assert declared.published_at == datetime(2024, 12, 5, 8, 30, tzinfo=UTC)
    assert declared.day_only is False


def test_json_ld_names_the_publisher_when_the_meta_tags_do_not() -> None:
    page = PAGE.replace('<meta property="og:site_name" content="Daily Herald">', (
        '<script type="application/ld+json">{"@context": "https://schema.org", "@graph": ['
        '{"@type": "NewsArticle", "publisher": {"@type": "Organization", '
        '"name": "The Daily Herald"}}]}</script>'))
    assert extract_html(page).declared.site == "The Daily Herald"


@pytest.mark.parametrize(("head", "site", "url"), [
    ('<meta property="og:site_name" content="https://www.herald.example">'  # a URL as name
     '<link rel="canonical" href="https://herald.example/">',  # the home page: no article's
     "herald.example", None),
    ('<meta property="og:url" content="https://herald.example/news/7">', None,
     "https://herald.example/news/7"),
    ('<link rel="canonical" href="javascript:alert(1)">', None, None),
    # og:url is a property: a meta tag that names it is not the page's address
    ('<meta name="og:url" content="https://herald.example/news/7">', None, None),
    # an empty site name gives way to the next tag that names the site
    ('<meta property="og:site_name" content=" "><meta name="application-name" content="Herald">'
     '<script type="application/ld+json">{"publisher": {"name": "Other"}}</script>',
     "Herald", None),
])
def test_what_a_page_declares_is_read_with_care(head: str, site: str | None,
                                               url: str | None) -> None:
    page = PAGE.replace('<meta property="og:site_name" content="Daily Herald">', "").replace(
        '<link rel="canonical" href="/2024/12/05/budget">', head)
    declared = extract_html(page).declared
    assert (declared.site, declared.url) == (site, url)


def test_a_text_file_keeps_the_outlet_line_the_cleaner_strips() -> None:
    raw = "Daily Herald dailyherald.com\n\nCouncil approves budget after long debate\n\n" + STORY
    result = clean(raw)
    assert ("Daily Herald dailyherald.com", "outlet name") in result.stripped
    assert result.declared.site == "dailyherald.com"
    seed = clean((SEEDS / "000_fd711a56be8231d8.txt").read_text())
    assert seed.declared.site == "Voz.us"
    assert "Voz" not in seed.text


def test_the_pages_own_date_is_the_articles_unless_a_bare_day_agrees_with_the_entry() -> None:
    filed = datetime(2026, 1, 1, tzinfo=UTC)  # a directory file's time: says nothing
    told = datetime(2024, 12, 5, 14, 5, tzinfo=UTC)

    def published(entry_at: datetime | None, page_at: datetime, day_only: bool) -> datetime | None:
        entry = Entry(source="s", guid="g", url="https://herald.example/1", title=None,
                      content="", content_type="text/html", published_at=entry_at,
                      site="Herald feed")
        cleaned = Cleaned(title="t", text="x", declared=Provenance(
            site="Daily Herald", url="https://herald.example/canonical",
            published_at=page_at, day_only=day_only))
        credit = provenance(entry, cleaned)
        assert (credit.site, credit.url) == ("Herald feed", "https://herald.example/1")
        return credit.published_at

    page_day = datetime(2024, 12, 5, tzinfo=UTC)
    assert published(filed, told, day_only=False) == told
    assert published(filed, page_day, day_only=True) == page_day
    assert published(told, page_day, day_only=True) == told  # the same day, to the minute
    assert published(None, page_day, day_only=True) == page_day
