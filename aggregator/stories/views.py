"""The lists of stories a published version shows, each at its address: the ranked front page
(/), the newest (/latest/), the top stories (/top/) and each category's (/c/NAME/); and the top
stories' and categories' feeds, made from the same stories (the newest stories' feeds are the
files edition.py writes). pages.py renders the lists as pages."""

from __future__ import annotations

from dataclasses import dataclass

from .edition import FEED_STYLESHEETS, feed_id, story_page_link
from .publish import render_atom, render_rss
from .site import Site

FEEDS = {"feed.xml": ("application/rss+xml", "rss"), "atom.xml": ("application/atom+xml", "atom")}


@dataclass(frozen=True, slots=True)
class View:
    """A list of stories at its address."""

    path: str  # "/", "/latest/", "/top/", "/c/world/"
    heading: str
    about: str  # what it lists and in what order, in a sentence
    ids: tuple[int, ...]  # its stories, in its order
    feeds: bool = False  # its own feed.xml and atom.xml (those of / and /latest/ are the files)
    category: str | None = None

    @property
    def root(self) -> str:
        """The site's root seen from the view's page, as a relative link: '', '../', ..."""
        return "../" * (self.path.count("/") - 1)

    @property
    def key(self) -> str:
        """What its feeds' ids are made of: "top", "c/world"."""
        return self.path.strip("/")


def views(site: Site) -> dict[str, View]:
    """Every list of the version, by address."""
    ranked = ("Ranked by how many outlets reported each story, each counting half as much for "
              f"every {duration(site.half_life_s)} since the story's latest report.")
    out = {
        "/": View("/", "Top stories", ranked, site.ranked),
        "/latest/": View("/latest/", "Latest stories",
                         "Newest first: the stories whose latest report is the most recent.",
                         site.latest),
        "/top/": View("/top/", f"Stories of {site.top_min_sources} outlets or more",
                      f"Those of the top stories that at least {site.top_min_sources} outlets "
                      f"reported. {ranked}", site.top, feeds=True)}
    for name, ids in site.categories.items():
        out[f"/c/{name}/"] = View(f"/c/{name}/", name, f"The stories of the sources in "
                                  f"category {name}. {ranked}", ids, feeds=True, category=name)
    return out


def view_feed(site: Site, view: View, *, name: str, link: str) -> bytes:
    """A view's feed ("feed.xml": RSS, "atom.xml": Atom), made as the feed files are: its
    stories in its order, each linking to its page, readable in a browser."""
    base = link.rstrip("/")
    stories = [site.stories[i] for i in view.ids]
    title, home = f"{site.title}: {view.heading}", f"{base}{view.path}"
    if FEEDS[name][1] == "rss":
        return render_rss(stories, title=title, link=home, self_url=f"{home}{name}",
                          now=site.published_at, item_link=story_page_link(base),
                          stylesheets=FEED_STYLESHEETS)
    return render_atom(stories, title=title, link=home, self_url=f"{home}{name}",
                       feed_id=feed_id(site.namespace, view.key), now=site.published_at,
                       item_link=story_page_link(base), stylesheets=FEED_STYLESHEETS)


def duration(seconds: int) -> str:
    """'12 hours', '1 day', '90 minutes': a half-life as the pages say it."""
    for unit, size in (("week", 604800), ("day", 86400), ("hour", 3600), ("minute", 60)):
        if seconds % size == 0:
            count = seconds // size
            return f"{count} {unit}{'s' if count != 1 else ''}"
    return f"{seconds} seconds"
