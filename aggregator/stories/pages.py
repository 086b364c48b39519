"""The published site as HTML: the lists of stories (the ranked front page, the newest, the
top, each category's), each story's page with its members and why they are together, the
results of a search, and the page for what is not there.

Jinja2 templates with autoescaping and no `|safe` anywhere: everything that came from outside
(headlines, texts, outlets' names, authors) is written as text, never as markup, and a link
goes out only to an http(s) address. The pages need no JavaScript (and are served with a
policy that allows none)."""

from __future__ import annotations

import functools
import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from importlib import resources

import jinja2

from ..model import Credit, Story, Tier
from .publish import additions_by_outlet, outlet_names, rfc3339, safe_url
from .rank import outlet_count
from .search import Found, Hit
from .site import Decided, Site
from .views import View, duration, views

# Stories per front page: twenty teasers of a headline, a lead and a line of sources are a
# few screens on a phone; the feed's default 100 stories make five pages.
PAGE_SIZE = 20

TIERS = {Tier.NEW: "new", Tier.EXACT: "exact", Tier.DUPLICATE: "duplicate",
         Tier.EVENT: "same event", Tier.OPERATOR: "operator", Tier.REFINED: "refined"}
TIER_HELP = {
    Tier.NEW: "the first report of the story",
    Tier.EXACT: "the same address or the same text as another report",
    Tier.DUPLICATE: "a near-copy of another report (shared word sequences)",
    Tier.EVENT: "a different report of the same event (shared salient terms)",
    Tier.OPERATOR: "placed here by an operator",
    Tier.REFINED: "moved here by a re-assessment of recent stories (shared neighbours)",
}


@dataclass(frozen=True, slots=True)
class Link:
    text: str
    url: str | None  # None: nothing safe to link to


@dataclass(frozen=True, slots=True)
class Teaser:
    """A story on the front page."""

    id: int
    title: str
    lead: str
    sources: tuple[Link, ...]
    latest_at: datetime
    decided: tuple[Decided, ...]  # the operators' decisions on it
    outlets: int  # how many outlets its sources are (stories.rank)
    categories: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class Report:
    """A member of a story on its page, with the evidence of its membership."""

    credit: Credit
    outlet: str
    url: str | None
    tier: str
    evidence: str


@dataclass(frozen=True, slots=True)
class Result:
    """A story a search found, as its page lists it."""

    hit: Hit
    title: str  # the published story's headline, else its best-matching report's
    url: str | None  # the story's page when it is published, else that report's address
    published: bool  # on the pages (an older story is not, nor one beyond the feed's size)


def page_count(view: View) -> int:
    return max(1, math.ceil(len(view.ids) / PAGE_SIZE))


def list_page(site: Site, view: View, number: int) -> bytes:
    """Page `number` (1 is the first) of a view's stories, in its order."""
    ids = view.ids[(number - 1) * PAGE_SIZE:number * PAGE_SIZE]
    return _render("list.html", root=view.root, here=view.path, site=site, view=view,
                   teasers=[_teaser(site, site.stories[i]) for i in ids], page=number,
                   pages=page_count(view), feeds=_feeds(view))


def front_page(site: Site, number: int) -> bytes:
    """Page `number` of the front page: the stories ranked (stories.rank)."""
    return list_page(site, views(site)["/"], number)


def story_page(site: Site, story: Story) -> bytes:
    """A story as published, then every member, its tier and why it is in the story."""
    names = outlet_names(story.credits)
    reports = [Report(c, names[c.article_id], safe_url(c.url), TIERS[c.tier],
                      site.evidence.get(c.article_id, "")) for c in story.credits]
    return _render("story.html", root="../", site=site, story=story, reports=reports,
                   additions=additions_by_outlet(story, names), tiers=_legend(story.credits),
                   latest_at=_latest(story), decisions=site.decisions.get(story.cluster_id, ()),
                   outlets=outlet_count(story.credits), categories=site.categories_of(story),
                   feeds=("../feed.xml", "../atom.xml"))


def search_page(site: Site, found: Found) -> bytes:
    """The stories a search found, best match first, with the words marked where they are;
    or that nothing was found (the words searched for are shown, never the request)."""
    results = [_result(site, hit) for hit in found.hits]
    return _render("search.html", root="", site=site, found=found, results=results,
                   query=" ".join(found.terms), feeds=("feed.xml", "atom.xml"))


def _result(site: Site, hit: Hit) -> Result:
    story = site.stories.get(hit.cluster_id)
    if story is not None:
        return Result(hit, story.title, f"stories/{story.cluster_id}", published=True)
    return Result(hit, hit.headline(), safe_url(hit.url), published=False)


def _feeds(view: View) -> tuple[str, str]:
    """The RSS and Atom feeds of a view's page: its own, else the newest stories' files."""
    return ("feed.xml", "atom.xml") if view.feeds else (f"{view.root}feed.xml",
                                                        f"{view.root}atom.xml")


def not_found_page(title: str) -> bytes:
    """The same for every missing path (nothing of the request is echoed): links from the
    site's root, as the path's depth is anyone's."""
    return _render("not_found.html", root="/", title=title)


def asset(name: str) -> bytes:
    """A file served as it is: the stylesheet of the pages, those of the feeds."""
    return resources.files(__package__).joinpath("static", name).read_bytes()


def _teaser(site: Site, story: Story) -> Teaser:
    names = outlet_names(story.credits)
    sources = tuple(Link(names[c.article_id], safe_url(c.url)) for c in story.credits)
    return Teaser(story.cluster_id, story.title, story.summary, sources, _latest(story),
                  site.decisions.get(story.cluster_id, ()), outlet_count(story.credits),
                  site.categories_of(story))


def _latest(story: Story) -> datetime:
    return max(c.published_at for c in story.credits)


def _legend(credits: Sequence[Credit]) -> list[tuple[str, str]]:
    """The tiers this story's members have, each with what it means."""
    present = {c.tier for c in credits}
    return [(TIERS[t], TIER_HELP[t]) for t in Tier if t in present]


def _render(template: str, **context: object) -> bytes:
    return _environment().get_template(template).render(**context).encode()


@functools.cache
def _environment() -> jinja2.Environment:
    env = jinja2.Environment(loader=jinja2.PackageLoader(__package__, "templates"),
                             autoescape=True, undefined=jinja2.StrictUndefined,
                             trim_blocks=True, lstrip_blocks=True)
    env.filters["when"] = _when
    env.filters["iso"] = rfc3339
    env.filters["kinds"] = _kinds
    env.filters["plural"] = _plural
    env.filters["duration"] = duration
    return env


def _plural(count: int, noun: str) -> str:
    """'1 outlet', '3 outlets'."""
    return f"{count} {noun}{'' if count == 1 else 's'}"



def _when(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%-d %b %Y, %H:%M UTC")


def _kinds(decisions: Sequence[Decided]) -> str:
    """'merge and pin': what the operators did, for the mark's tooltip."""
    kinds = list(dict.fromkeys(d.kind for d in decisions))
    words = [k.replace("_", "-") for k in kinds]
    return " and ".join(words) if len(words) < 3 else ", ".join(words[:-1]) + " and " + words[-1]
