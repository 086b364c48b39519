"""The command line: thin click commands over the library; errors become one line and exit 1."""

from __future__ import annotations

import json
import logging
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click

from . import __version__, admin, config
from .errors import AggregatorError
from .storage import Storage


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
        return Storage(self.settings.database)


class _Group(click.Group):
    """Maps the package's errors to a one-line message and exit code 1."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except AggregatorError as exc:
            click.echo(f"aggregator: error: {exc}", err=True)
            ctx.exit(1)


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
    settings = obj.settings
    _setup_logging(settings.log_level)
    if once:
        from .pipeline import run_cycle

        storage = obj.storage()
        try:
            report = run_cycle(storage, settings)
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
@click.option("--json", "as_json", is_flag=True, help="One JSON array, for scripts.")
@pass_ctx
def clusters_list(obj: Context, as_json: bool) -> None:
    """List live clusters, most recently seen first.

    \b
    Example:
      aggregator clusters list --json | jq '.[0].id'
    """
    rows = _with_storage(obj, admin.list_clusters)
    if as_json:
        click.echo(json.dumps(rows, indent=2, ensure_ascii=False))
        return
    if not rows:
        click.echo("no clusters yet: run 'aggregator run --once' first")
        return
    click.echo(f"{'ID':>6}  {'SIZE':>4}  {'LAST SEEN':<20}  HEADLINE")
    for r in rows:
        click.echo(f"{r['id']:>6}  {r['size']:>4}  {r['last_seen']:<20.19}  {r['title'][:80]}")


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
        click.echo(f"      {_evidence(a)}")


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
    temporary database; the configured thresholds apply.

    \b
    Example:
      aggregator eval ../shared/data/events/ecbplus.jsonl --assignments out.jsonl
    """
    from . import evaluate

    items = evaluate.read_labelled(labelled)
    with click.progressbar(length=len(items), label="clustering", file=sys.stderr,
                           hidden=not sys.stderr.isatty()) as bar:
        scores, assignment = evaluate.run(items, obj.settings, progress=lambda _: bar.update(1))
    if assignments is not None:
        with assignments.open("w", encoding="utf-8") as fh:
            for item in items:
                if item.id in assignment:
                    fh.write(json.dumps({"id": item.id, "cluster": assignment[item.id]}) + "\n")
    if as_json:
        click.echo(json.dumps(scores.as_dict(), indent=2))
    else:
        click.echo(evaluate.report(scores))


def _evidence(a: dict[str, Any]) -> str:
    tier = a["tier"]
    if tier == "new":
        return "started this cluster"
    if tier == "exact":
        return f"exact copy of article {a['matched_article']}"
    if tier == "duplicate":
        return (f"near-duplicate of article {a['matched_article']}: shingle Jaccard "
                f"{a['similarity']:.2f} >= {a['threshold']:.2f}")
    if tier == "event":
        terms = ", ".join(a["shared_terms"][:8])
        return (f"same event: cosine with the cluster {a['similarity']:.2f} >= "
                f"{a['threshold']:.2f}; shared terms: {terms}")
    return f"placed by an operator ({tier})"


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
