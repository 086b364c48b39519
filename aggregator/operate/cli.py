"""The command line: thin click commands over the library; errors become one line and exit 1
(a URL refused as it is written: exit 2, the code of a usage error)."""

from __future__ import annotations

import json
import logging
import sys
from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from .. import __version__, config
from ..errors import AggregatorError, URLError

# storage, the clustering and the admin commands are imported by the commands that use them:
# `run --once` starts its fork server before it needs any of them (0.07 s of imports)
if TYPE_CHECKING:
    from ..storage import Storage
    from ..stories.search import Part


class Context:
    def __init__(self, config_path: Path | None) -> None:
        self.config_path = config_path
        self._settings: config.Settings | None = None

    @property
    def settings(self) -> config.Settings:
        if self._settings is None:
            self._settings = config.load(self.config_path)
        return self._settings

    def storage(self) -> Storage:
        from ..storage import Storage

        return Storage(self.settings.database)


class _Group(click.Group):
    """Our errors and bad arguments become one line on stderr and exit code 1."""

    def main(self, *args: Any, **kwargs: Any) -> Any:
        kwargs["standalone_mode"] = False
        try:
            code = super().main(*args, **kwargs)
        except AggregatorError as exc:
            click.echo(f"aggregator: error: {exc}", err=True)
            sys.exit(2 if isinstance(exc, URLError) else 1)
        except click.exceptions.NoArgsIsHelpError as exc:
            click.echo(exc.format_message())  # a group named alone: its help, as asked
            sys.exit(0)
        except click.ClickException as exc:
            ctx = getattr(exc, "ctx", None)
            hint = f" (see '{ctx.command_path} --help')" if ctx is not None else ""
            click.echo(f"aggregator: error: {exc.format_message()}{hint}", err=True)
            sys.exit(1)
        except click.exceptions.Abort:
            click.echo("aggregator: aborted", err=True)
            sys.exit(1)
        sys.exit(code if isinstance(code, int) else 0)


pass_ctx = click.make_pass_decorator(Context)


@click.group(cls=_Group, context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--config", "config_path", type=click.Path(path_type=Path, dir_okay=False),
              envvar="AGGREGATOR_CONFIG", default=None,
              help="Configuration file [default: config/aggregator.toml if present].")
@click.version_option(__version__, prog_name="aggregator")
@click.pass_context
def main(ctx: click.Context, config_path: Path | None) -> None:
    """A deduplicating news-feed aggregator: one merged story per event.

    \b
    Examples:
      aggregator run                 # poll, cluster, publish and serve until Ctrl-C
      aggregator run --once          # one cycle, then exit
      aggregator clusters list       # what the feed holds
      aggregator search bank rates   # the stories holding every word
    """
    ctx.obj = Context(config_path)


@main.command()
@click.option("--once", is_flag=True, help="Poll every source now, cluster, publish, then exit.")
@pass_ctx
def run(obj: Context, once: bool) -> None:
    """Run the daemon (or one cycle with --once).

    \b
    Example:
      aggregator --config config/aggregator.toml run --once
    """
    from ..heap import map_large_blocks

    settings = obj.settings
    _setup_logging(settings.log_level)
    map_large_blocks()  # the pages this process reads go back to the system once handed on
    if once:
        from .pools import make_workers  # first: the processes start while the rest is imported

        with make_workers(settings.fetch, start=True) as workers:
            from .pipeline import run_cycle

            storage = obj.storage()
            try:
                report = run_cycle(storage, settings, workers=workers)
            finally:
                storage.close()
        failed = [s for s in report.sources if s.error]
        click.echo(f"{report.new} new article(s); {report.published} stor"
                   f"{'y' if report.published == 1 else 'ies'} published"
                   + (f"; {len(failed)} source(s) failed" if failed else ""), err=True)
        return
    from .service import Daemon

    Daemon(settings, config_path=obj.config_path or _default_path()).run()


def _default_path() -> Path | None:
    return config.DEFAULT_CONFIG if config.DEFAULT_CONFIG.is_file() else None


@main.group()
def clusters() -> None:
    """Inspect the clusters (one per event)."""


@clusters.command("list")
@click.option("--since", metavar="DURATION", help="Only clusters seen in this period (2h, 3d).")
@click.option("--min-size", type=click.IntRange(min=1), default=1, show_default=True,
              help="Only clusters with at least this many articles.")
@click.option("--json", "as_json", is_flag=True, help="One JSON array, for scripts.")
@pass_ctx
def clusters_list(obj: Context, since: str | None, min_size: int, as_json: bool) -> None:
    """List live clusters, most recently seen first.

    \b
    Examples:
      aggregator clusters list --since 1d --min-size 2
      aggregator clusters list --json | jq '.[0].id'
    """
    start = _since(since)
    from . import admin
    rows = _with_storage(obj, lambda s: admin.list_clusters(s, since=start, min_size=min_size))
    if as_json:
        click.echo(json.dumps(rows, indent=2, ensure_ascii=False))
        return
    if not rows:
        click.echo("no clusters match" if since or min_size > 1
                   else "no clusters yet: run 'aggregator run --once' first")
        return
    click.echo(f"{'ID':>6} {'SIZE':>4} {'SRC':>3}  {'FIRST SEEN':<16}  {'LAST SEEN':<16}  HEADLINE")
    for r in rows:
        flag = " (hidden)" if r["hidden"] else ""
        click.echo(f"{r['id']:>6} {r['size']:>4} {len(r['sources']):>3}  "
                   f"{_short_time(r['first_seen'])}  {_short_time(r['last_seen'])}  "
                   f"{r['title'][:70]}{flag}")


def _short_time(text: str) -> str:
    return text[:16].replace("T", " ")


def _since(duration: str | None) -> datetime | None:
    seconds = _duration(duration, "--since")
    return None if seconds is None else datetime.now(UTC) - timedelta(seconds=seconds)


@clusters.command("show")
@click.argument("cluster_id", type=int)
@click.option("--json", "as_json", is_flag=True, help="JSON, for scripts.")
@pass_ctx
def clusters_show(obj: Context, cluster_id: int, as_json: bool) -> None:
    """Show one cluster: every article, its tier and the evidence for it.

    \b
    Example:
      aggregator clusters show 1
    """
    from ..clustering.cluster import evidence
    from . import admin
    data = _with_storage(obj, lambda s: admin.show_cluster(s, cluster_id))
    if as_json:
        click.echo(json.dumps(data, indent=2, ensure_ascii=False))
        return
    click.echo(f"cluster {data['id']}: {data['title']}")
    click.echo(f"  created {data['created_at']}, updated {data['updated_at']}"
               + (", hidden" if data["hidden"] else ""))
    click.echo(f"  top terms: {', '.join(data['top_terms'])}")
    for a in data["articles"]:
        click.echo(f"  [{a['id']}] {a['title'][:70]}")
        click.echo(f"      source {a['source']}, {a['published_at']}" +
                   (f", {a['url']}" if a["url"] else ""))
        click.echo(f"      {evidence(a)}")


@main.command("eval")
@click.argument("labelled", type=click.Path(path_type=Path, dir_okay=False, exists=True))
@click.option("--assignments", type=click.Path(path_type=Path, dir_okay=False),
              help="Write one JSON line per article: {\"id\": ..., \"cluster\": ...}.")
@click.option("--json", "as_json", is_flag=True, help="Print the scores as JSON.")
@pass_ctx
def evaluate_command(obj: Context, labelled: Path, assignments: Path | None,
                     as_json: bool) -> None:
    """Score the clustering on a labelled JSON-lines file (B-cubed, pairwise F1, ARI).

    The articles go through the daemon's own code path, in publication order, into a fresh
    temporary database, twice: with the online decision alone ("at arrival") and with the
    re-assessments of the window the daemon would make as the stream advances ("final"). The
    configured thresholds apply; --assignments and --json give the final partition.

    \b
    Example:
      aggregator eval ../shared/data/events/ecbplus.jsonl --assignments out.jsonl
    """
    from . import evaluate

    items = evaluate.read_labelled(labelled)
    with click.progressbar(length=2 * len(items), label="clustering", file=sys.stderr,
                           hidden=not sys.stderr.isatty()) as bar:
        result = evaluate.run(items, obj.settings, progress=lambda _: bar.update(1))
    if assignments is not None:
        with assignments.open("w", encoding="utf-8") as fh:
            for item in items:
                if item.id in result.assignment:
                    fh.write(json.dumps({"id": item.id,
                                         "cluster": result.assignment[item.id]}) + "\n")
    if as_json:
        click.echo(json.dumps({**result.final.as_dict(), "at_arrival": result.arrival.as_dict(),
                               "reassessments": result.reassessments}, indent=2))
    else:
        click.echo(evaluate.report(result))


@clusters.command("merge")
@click.argument("cluster_ids", type=int, nargs=-1, required=True)
@pass_ctx
def clusters_merge(obj: Context, cluster_ids: tuple[int, ...]) -> None:
    """Merge clusters into the oldest one, whose id (and feed guid) survives.

    \b
    Example:
      aggregator clusters merge 12 40 41
    """
    from . import admin
    keep = _with_storage(obj, lambda s: admin.merge(s, cluster_ids))
    click.echo(f"merged {', '.join(map(str, sorted(set(cluster_ids))))} into cluster {keep}")


@clusters.command("split")
@click.argument("cluster_id", type=int)
@click.argument("article_ids", type=int, nargs=-1, required=True)
@pass_ctx
def clusters_split(obj: Context, cluster_id: int, article_ids: tuple[int, ...]) -> None:
    """Move the named articles out of a cluster into a new cluster of their own.

    The split is kept as a decision: the algorithm and `recluster` never put them back.

    \b
    Example:
      aggregator clusters split 12 301 302
    """
    from . import admin
    new_id = _with_storage(obj, lambda s: admin.split(s, cluster_id, article_ids))
    click.echo(f"moved {len(set(article_ids))} article(s) from cluster {cluster_id} "
               f"to new cluster {new_id}")


@clusters.command("pin")
@click.argument("cluster_id", type=int)
@click.argument("article_id", type=int)
@pass_ctx
def clusters_pin(obj: Context, cluster_id: int, article_id: int) -> None:
    """Make an article the canonical one (headline and body) of its cluster's story.

    \b
    Example:
      aggregator clusters pin 12 301
    """
    from . import admin
    _with_storage(obj, lambda s: admin.pin(s, cluster_id, article_id))
    click.echo(f"article {article_id} is now the canonical article of cluster {cluster_id}")


@clusters.command("never-merge")
@click.argument("first", type=int)
@click.argument("second", type=int)
@pass_ctx
def clusters_never_merge(obj: Context, first: int, second: int) -> None:
    """A standing rule: these two clusters stay apart, whatever article arrives.

    \b
    Example:
      aggregator clusters never-merge 12 40
    """
    from . import admin
    _with_storage(obj, lambda s: admin.never_merge(s, first, second))
    click.echo(f"clusters {first} and {second} will never be merged")


@clusters.command("hide")
@click.argument("cluster_id", type=int)
@pass_ctx
def clusters_hide(obj: Context, cluster_id: int) -> None:
    """Leave a cluster out of the published feed (undo with `unhide`).

    \b
    Example:
      aggregator clusters hide 12
    """
    from . import admin
    _with_storage(obj, lambda s: admin.set_hidden(s, cluster_id, hidden=True))
    click.echo(f"cluster {cluster_id} is hidden from the feed")


@clusters.command("unhide")
@click.argument("cluster_id", type=int)
@pass_ctx
def clusters_unhide(obj: Context, cluster_id: int) -> None:
    """Publish a hidden cluster again.

    \b
    Example:
      aggregator clusters unhide 12
    """
    from . import admin
    _with_storage(obj, lambda s: admin.set_hidden(s, cluster_id, hidden=False))
    click.echo(f"cluster {cluster_id} is published again")


@main.command("recluster")
@click.option("--since", metavar="DURATION", help="Only articles published in this period.")
@click.option("--dry-run", is_flag=True, help="Print what would change; write nothing.")
@click.option("--json", "as_json", is_flag=True, help="The plan as JSON.")
@pass_ctx
def recluster_command(obj: Context, since: str | None, dry_run: bool, as_json: bool) -> None:
    """Rebuild clusters from stored articles, keeping every operator decision.

    Runs on a snapshot, so the daemon may keep running; cluster ids (feed guids) are kept
    wherever the rebuilt cluster holds most of an old cluster's articles.

    \b
    Examples:
      aggregator recluster --since 3d --dry-run
      aggregator recluster
    """
    from ..clustering.recluster import recluster

    start = _since(since)
    bar = click.progressbar(length=1, label="reclustering", file=sys.stderr,
                            hidden=not sys.stderr.isatty())

    def total(n: int) -> None:
        bar.length = max(n, 1)

    with bar:
        plan = _with_storage(obj, lambda s: recluster(
            s, obj.settings, since=start, dry_run=dry_run, progress=lambda _: bar.update(1),
            total=total))
    if as_json:
        click.echo(json.dumps({"dry_run": dry_run, **plan.as_dict()}, indent=2))
        return
    verb = "would" if dry_run else "did"
    click.echo(f"re-decided {plan.articles} article(s)")
    for into, clusters_ in plan.merges:
        click.echo(f"  merge: clusters {', '.join(map(_label, clusters_))} {verb} merge "
                   f"into {_label(into)}")
    for cluster, parts in plan.splits:
        click.echo(f"  split: cluster {cluster} {verb} split into {', '.join(map(_label, parts))}")
    for article, old, new in plan.moves:
        click.echo(f"  move: article {article} {verb} move from cluster {old} to {_label(new)}")
    if not plan.changed:
        click.echo("  no change")


def _label(cluster: int) -> str:
    return str(cluster) if cluster > 0 else "a new cluster"


@main.command("reassess")
@click.option("--dry-run", is_flag=True, help="Print what would change; write nothing.")
@click.option("--json", "as_json", is_flag=True, help="What changed, as JSON.")
@pass_ctx
def reassess_command(obj: Context, dry_run: bool, as_json: bool) -> None:
    """Re-assess the recent window now: partition its articles again, all at once.

    The daemon does this on its own every [reassess] interval and after an ingest cycle that
    stored [reassess] after articles; stories keep their ids (feed guids) where most of their
    articles stay, and every operator decision holds. Moved articles show tier "refined" in
    `clusters show`.

    \b
    Examples:
      aggregator reassess --dry-run
      aggregator reassess
    """
    from ..clustering.reassess import reassess

    outcome = _with_storage(obj, lambda s: reassess(s, obj.settings, dry_run=dry_run))
    if as_json:
        click.echo(json.dumps({"dry_run": dry_run, **outcome.as_dict()}, indent=2))
        return
    verb = "would" if dry_run else "did"
    click.echo(outcome.summary())
    for article, old, new in outcome.moves:
        click.echo(f"  move: article {article} {verb} move from cluster {old} to {_label(new)}")
    for cluster, into in outcome.merged:
        click.echo(f"  merge: cluster {cluster} {verb} merge into {_label(into)}")
    if not outcome.changed and not outcome.skipped:
        click.echo("  no change")


@main.command("explain")
@click.argument("first", type=int)
@click.argument("second", type=int)
@click.option("--json", "as_json", is_flag=True, help="JSON, for scripts.")
@pass_ctx
def explain_command(obj: Context, first: int, second: int, as_json: bool) -> None:
    """Say why two articles are, or are not, in the same cluster.

    \b
    Example:
      aggregator explain 3 7
    """
    from ..clustering.cluster import evidence
    from . import admin
    data = _with_storage(obj, lambda s: admin.explain(s, obj.settings.cluster, first, second))
    if as_json:
        click.echo(json.dumps(data, indent=2, ensure_ascii=False))
        return
    click.echo(data["verdict"])
    pair = data["pair"]
    click.echo(f"  shared salient terms: {', '.join(pair['shared_terms']) or 'none'}")
    for a in data["articles"]:
        click.echo(f"  [{a['id']}] {a['title'][:70]}")
        click.echo(f"      cluster {a['cluster']}: {evidence(a)}")


@main.command("search")
@click.argument("words", nargs=-1)
@click.option("--limit", type=click.IntRange(min=1, max=1000), default=30, show_default=True,
              help="At most this many stories.")
@click.option("--json", "as_json", is_flag=True, help="JSON, for scripts.")
@pass_ctx
def search_command(obj: Context, words: tuple[str, ...], limit: int, as_json: bool) -> None:
    """Find the stories whose reports hold every word, best match first.

    Over every stored headline and text, as /search on the daemon's pages; the matched words
    are shown [in brackets]. Quotes and operators are words like the others.

    \b
    Examples:
      aggregator search central bank rates
      aggregator search Alder --json | jq '.stories[0].id'
    """
    from ..storage import search_terms
    from ..stories.search import find

    terms = search_terms(" ".join(words))
    found = _with_storage(obj, lambda s: find(s, terms, limit=limit))
    if as_json:
        click.echo(json.dumps({"terms": list(found.terms), "more": found.more, "stories": [
            {"id": h.cluster_id, "headline": h.headline(), "outlets": h.outlets,
             "latest_at": h.latest_at.isoformat(), "outlet": h.outlet, "url": h.url,
             "matched": list(h.matched()), "title": _bracketed(h.title),
             "passage": _bracketed(h.passage)} for h in found.hits]},
            indent=2, ensure_ascii=False))
        return
    if not found.hits:
        click.echo(f"nothing found for: {' '.join(terms)}" if terms else
                   "nothing found: give the words to look for")
        return
    click.echo(f"{'ID':>6} {'OUTLETS':>7}  {'LATEST':<16}  HEADLINE")
    for h in found.hits:
        click.echo(f"{h.cluster_id:>6} {h.outlets:>7}  {_short_time(h.latest_at.isoformat())}  "
                   f"{_bracketed(h.title)[:100]}")
        click.echo(f"{'':>6} {'':>7}  {h.outlet}: {_bracketed(h.passage)}")
    if found.more:
        click.echo(f"(the best {len(found.hits)}: more words narrow the search)")


def _bracketed(parts: Sequence[Part]) -> str:
    """A marked text for a terminal: its matched words [in brackets], on one line."""
    return " ".join("".join(f"[{p.text}]" if p.matched else p.text for p in parts).split())


@main.group()
def articles() -> None:
    """Inspect stored articles and what cleaning removed from them."""


@articles.command("list")
@click.option("--source", help="Only articles of this source.")
@click.option("--limit", type=click.IntRange(min=1), default=50, show_default=True)
@click.option("--json", "as_json", is_flag=True, help="JSON, for scripts.")
@pass_ctx
def articles_list(obj: Context, source: str | None, limit: int, as_json: bool) -> None:
    """List the newest articles with their cluster and tier.

    \b
    Example:
      aggregator articles list --source seeds
    """
    from . import admin
    rows = _with_storage(obj, lambda s: admin.list_articles(s, source=source, limit=limit))
    if as_json:
        click.echo(json.dumps(rows, indent=2, ensure_ascii=False))
        return
    click.echo(f"{'ID':>6} {'CLUSTER':>7} {'TIER':<9} {'SOURCE':<14} TITLE")
    for r in rows:
        click.echo(f"{r['id']:>6} {r['cluster_id'] or '-':>7} {r['tier'] or '-':<9} "
                   f"{r['source'][:14]:<14} {r['title'][:70]}")


@articles.command("show")
@click.argument("article_id", type=int)
@click.option("--json", "as_json", is_flag=True, help="JSON, for scripts.")
@pass_ctx
def articles_show(obj: Context, article_id: int, as_json: bool) -> None:
    """Show an article: raw and cleaned text side by side, and what was stripped and why.

    \b
    Example:
      aggregator articles show 3
    """
    from . import admin
    data = _with_storage(obj, lambda s: admin.show_article(s, article_id))
    if as_json:
        click.echo(json.dumps(data, indent=2, ensure_ascii=False))
        return
    click.echo(f"article {data['id']}: {data['title']}")
    click.echo(f"  source {data['source']}, {data['published_at']}, cluster {data['cluster']} "
               f"({data['tier']})" + (f", {data['url']}" if data["url"] else ""))
    _side_by_side(data["raw"], data["text"])
    click.echo(f"stripped as boilerplate ({len(data['stripped'])} line(s)):")
    for item in data["stripped"]:
        click.echo(f"  [{item['reason']}] {item['line'][:100]}")


def _side_by_side(raw: str, cleaned: str, width: int = 60) -> None:
    import textwrap

    left = [w for line in raw.splitlines() for w in (textwrap.wrap(line, width) or [""])]
    right = [w for line in cleaned.splitlines() for w in (textwrap.wrap(line, width) or [""])]
    click.echo(f"{'RAW':<{width}} | CLEANED")
    for n in range(max(len(left), len(right))):
        a = left[n] if n < len(left) else ""
        b = right[n] if n < len(right) else ""
        click.echo(f"{a:<{width}} | {b}")


@main.command("stats")
@click.option("--json", "as_json", is_flag=True, help="JSON, for scripts.")
@pass_ctx
def stats_command(obj: Context, as_json: bool) -> None:
    """Articles, clusters, duplicate ratio, and per-source counts and errors.

    \b
    Example:
      aggregator stats
    """
    from . import admin
    data = _with_storage(obj, admin.stats)
    if as_json:
        click.echo(json.dumps(data, indent=2, ensure_ascii=False))
        return
    tiers = ", ".join(f"{k} {v}" for k, v in sorted(data["tiers"].items()))
    click.echo(f"articles {data['articles']}, clusters {data['clusters']}, duplicate ratio "
               f"{data['duplicate_ratio']:.1%}, operator decisions {data['decisions']}")
    click.echo(f"by tier: {tiers or 'none'}")
    last = data.get("last_reassessment")
    if last:
        click.echo(f"last re-assessment {last['started_at']}: {last['articles']} article(s) in "
                   f"{last['seconds']:.2f} s, {last['moved']} moved, {last['merged']} merged, "
                   f"{last['created']} split off")
    for src in data["sources"]:
        state = f"last error: {src['last_error']}" if src["last_error"] else "ok"
        click.echo(f"  {src['name']}: {src['articles']} article(s), last success "
                   f"{src['last_success_at'] or 'never'}; {state}")


@main.group()
def feeds() -> None:
    """Manage feed sources: add, list, remove, import and export OPML."""


@feeds.command("add")
@click.argument("url")
@click.option("--name", help="A short name for the feed [default: from its host].")
@click.option("--interval", metavar="DURATION", help="Its own polling interval (e.g. 30m).")
@click.option("--allow-private", is_flag=True,
              help="Let this feed (and its redirects and pages) reach private addresses.")
@click.option("--category", metavar="NAME",
              help="Its category: its stories are on /c/NAME/ and in its feeds too.")
@pass_ctx
def feeds_add(obj: Context, url: str, name: str | None, interval: str | None,
              allow_private: bool, category: str | None) -> None:
    """Add a feed to poll; the running daemon picks it up at its next dispatch.

    A user:password@ in the URL is sent as HTTP Basic auth to that host alone and is never
    printed (user:***@). Private addresses (loopback, LAN) are refused unless allowed.

    \b
    Examples:
      aggregator feeds add https://example.com/rss.xml --interval 30m --category world
      aggregator feeds add http://192.168.1.20:8080/feed.xml --allow-private
    """
    from ..ingest import feeds as feeds_
    from ..urls import parse, shown

    seconds = _duration(interval, "--interval")
    added = _with_storage(obj, lambda s: feeds_.add_feed(
        s, url, name=name, interval_s=seconds, allow_private=allow_private,
        category=category))
    feed = parse(url)
    click.echo(f"added feed {added}: {shown(feed.url, feed.credentials)}"
               + (f" in category {category}" if category else "")
               + (" (private addresses allowed)" if allow_private else ""))


@feeds.command("list")
@click.option("--json", "as_json", is_flag=True, help="JSON, for scripts.")
@pass_ctx
def feeds_list(obj: Context, as_json: bool) -> None:
    """Every source with its last success, last error and next poll time.

    \b
    Example:
      aggregator feeds list --json
    """
    from ..ingest import feeds as feeds_

    rows = _with_storage(obj, lambda s: feeds_.feed_status(s, obj.settings))
    if as_json:
        click.echo(json.dumps(rows, indent=2, ensure_ascii=False))
        return
    click.echo(f"{'NAME':<20} {'CATEGORY':<12} {'ARTICLES':>8}  {'LAST SUCCESS':<16}  "
               f"{'NEXT POLL':<16}  STATE")
    for r in rows:
        click.echo(f"{r['name'][:20]:<20} {(r['category'] or '-')[:12]:<12} {r['articles']:>8}  "
                   f"{_short_time(r['last_success_at'] or 'never'):<16}  "
                   f"{_short_time(r['next_poll_at'] or 'now'):<16}  {r['state'][:100]}")
        click.echo(f"{'':<20} {r['location']}")


@feeds.command("remove")
@click.argument("name_or_url")
@pass_ctx
def feeds_remove(obj: Context, name_or_url: str) -> None:
    """Stop polling a feed added from the command line (its articles stay).

    \b
    Example:
      aggregator feeds remove example.com
    """
    from ..ingest import feeds as feeds_

    name = _with_storage(obj, lambda s: feeds_.remove_feed(s, name_or_url))
    click.echo(f"removed feed {name}; its articles stay")


@feeds.command("import")
@click.argument("opml", type=click.Path(path_type=Path, dir_okay=False, exists=True))
@pass_ctx
def feeds_import(obj: Context, opml: Path) -> None:
    """Add every feed of an OPML file (feeds already present are skipped).

    A feed nested in a folder outline ("World News") or with a category attribute gets that
    category ("world-news"). All in one transaction: interrupted, it adds none of them; run
    again, nothing twice.
    An outline whose URL is refused is reported and skipped. Imported feeds never get
    allow_private: private addresses stay refused unless [fetch] allows them.

    \b
    Example:
      aggregator feeds import subscriptions.opml
    """
    from ..ingest import feeds as feeds_

    done = _with_storage(obj, lambda s: feeds_.import_opml(s, opml))
    for problem in done.problems:
        click.echo(f"skipped: {problem}", err=True)
    click.echo(f"imported {len(done.added)} feed(s) from {opml}"
               + (f"; {done.present} already present" if done.present else "")
               + (f"; {len(done.problems)} skipped" if done.problems else ""))


@feeds.command("export")
@pass_ctx
def feeds_export(obj: Context) -> None:
    """Write every feed source as OPML 2.0 to standard output (URLs without user:password@).

    \b
    Example:
      aggregator feeds export > subscriptions.opml
    """
    from ..ingest import feeds as feeds_

    data = _with_storage(obj, lambda s: feeds_.export_opml(s, obj.settings))
    click.echo(data.decode(), nl=False)


def _duration(text: str | None, hint: str) -> int | None:
    if text is None:
        return None
    try:
        return config.parse_duration(text)
    except AggregatorError as exc:
        raise click.BadParameter(str(exc), param_hint=hint) from exc


def _with_storage(obj: Context, fn: Callable[[Storage], Any]) -> Any:
    storage = obj.storage()
    try:
        return fn(storage)
    finally:
        storage.close()


def _setup_logging(level: str) -> None:
    logging.basicConfig(level=level, stream=sys.stderr,
                        format="%(asctime)s %(levelname)s %(message)s", datefmt="%H:%M:%S")
    for noisy in ("apscheduler", "waitress", "trafilatura", "htmldate", "courlan"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
