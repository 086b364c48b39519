"""Where an article's ingest time goes, and how `run --once` compares with extraction alone.

    python bench/ingest.py costs     # per-article cost of each step, and the fixed costs
    python bench/ingest.py once      # the 181 pages through `aggregator run --once`, beside
                                     # trafilatura alone on one core, in the same run
    python bench/ingest.py memory    # peak resident memory of `run --once` on 20,000 articles
    python bench/ingest.py pages-memory  # the same on 1,086 real pages (the 181, six times)
    python bench/ingest.py           # all four

costs: the steps of the daemon's own code, called one after the other on one core over the
extraction benchmark's 181 pages (../shared/data, or AGGREGATOR_DATA) and over 2,000
synthetic plain-text articles, each as a directory source: read (the directory's files),
parse (a file to an entry, its text decoded: in a worker), extract (trafilatura, as
extract_html calls it), clean (our cleaner), features (terms, names, the general-language
prior), signature (datasketch's MinHash), encode (the stored forms the workers compute:
compressed page, hashes, line keys, LSH buckets), store, assign (weighing, candidates, the
decision) and publish; in ms an article and as a share of their sum. Then the fixed cost of a
run: importing the command line, starting the worker processes' fork server (the modules a
page needs imported and loaded, once a run) with its first worker, forking one more worker
from it, a re-assessment in its own process (the daemon's).

once: wall time of `aggregator run --once` as a process (default configuration: two worker
processes; start-up, imports and the publish included) on a fresh database, against the time
trafilatura.extract takes alone for the same pages in this process on one core; best of
`--runs`, interleaved, so that a loaded machine slows both alike.

memory: `aggregator run --once` on a directory of 20,000 synthetic articles; the peak
resident memory (VmHWM) of the main process, read by the process itself as it exits.
pages-memory: the same on real pages, which are large (a few hundred KiB of HTML each).
"""

from __future__ import annotations

import argparse
import gzip
import os
import random
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from evaldata import best as _best  # noqa: E402  (bench/, the script's own folder)
from evaldata import data_dir, invented  # noqa: E402

STEPS = ("read", "parse", "extract", "clean", "features", "signature", "encode", "store",
         "assign", "publish")


def pages_folder(folder: Path) -> int:
    """The extraction benchmark's pages as .html files in `folder`; how many."""
    source = data_dir() / "extraction" / "html"
    names = sorted(source.glob("*.html.gz"))
    if not names:
        raise FileNotFoundError(f"{source}: no pages")
    for path in names:
        (folder / path.name.removesuffix(".gz")).write_bytes(gzip.decompress(path.read_bytes()))
    return len(names)


def synthetic_folder(folder: Path, count: int, *, seed: int = 7) -> int:
    """`count` unrelated plain-text articles of about 560 words (a headline line, then 40
    sentences of their own invented names: each its own story), one .txt file each."""
    rng = random.Random(seed)
    for i in range(count):
        headline, body = invented(rng, i, 40)
        (folder / f"a{i:06d}.txt").write_text(f"{headline}\n\n{body}\n")
    return count


# --- costs -----------------------------------------------------------------------------------

class Clock:
    """Seconds spent in each step, summed over calls; `wrap` times a function where it is
    looked up, `restore` puts every wrapped one back."""

    def __init__(self) -> None:
        self.spent: dict[str, float] = defaultdict(float)
        self._wrapped: list[tuple[Any, str, Any]] = []

    @contextmanager
    def step(self, name: str) -> Iterator[None]:
        started = time.perf_counter()
        try:
            yield
        finally:
            self.spent[name] += time.perf_counter() - started

    def wrap(self, owner: Any, attribute: str, name: str) -> None:
        real = getattr(owner, attribute)
        self._wrapped.append((owner, attribute, real))

        def timed(*args: Any, **kwargs: Any) -> Any:
            with self.step(name):
                return real(*args, **kwargs)

        setattr(owner, attribute, timed)

    def restore(self) -> None:
        for owner, attribute, real in reversed(self._wrapped):
            setattr(owner, attribute, real)
        self._wrapped.clear()


def step_costs(folder: Path, tmp: Path) -> tuple[int, dict[str, float]]:
    """Each step's seconds over the directory `folder`: the daemon's own functions, called one
    after the other on one core (the daemon overlaps them in threads and worker processes),
    with the writer's chunks of CHUNK entries, each one transaction, as the cycle stores them."""
    from aggregator.clustering import clusterer as clusterer_module
    from aggregator.clustering import prepare, signature
    from aggregator.clustering.clusterer import Clusterer
    from aggregator.ingest import extract
    from aggregator.operate import pipeline, poll
    from aggregator.storage import Storage
    from aggregator.stories.edition import publish

    settings = _settings(tmp, folder)
    storage = Storage(settings.database)
    clusterer = Clusterer(storage, settings)
    clock = Clock()
    clock.wrap(extract, "clean", "clean")  # also inside extract_html: taken out of it below
    clock.wrap(extract, "extract_html", "extract")
    clock.wrap(signature, "minhash", "signature")  # inside features: taken out of it below
    clock.wrap(prepare, "features", "features")
    clock.wrap(prepare, "encode", "encode")
    clock.wrap(clusterer_module, "weigh", "assign")
    clock.wrap(Clusterer, "_document_frequencies", "assign")
    clock.wrap(Clusterer, "place", "assign")
    try:
        started = time.perf_counter()
        documents = list(poll.read_directory(folder, []))
        read = time.perf_counter() - started
        started = time.perf_counter()
        # decoded here as the worker decodes it (the daemon sends a worker the file's bytes)
        entries = [extract.decoded(e) for d in documents
                   for e in poll._document_entries(folder.name, d)]
        parse = time.perf_counter() - started
        recurring = pipeline._recurring(storage, folder.name)
        prepare.prepare_entry((entries[0], None), recurring)  # imports are fixed costs
        clock.spent.clear()
        prepared = [p for p in (prepare.prepare_entry((e, None), recurring) for e in entries)
                    if p]
        with clock.step("writer"):
            stored = sum(pipeline.store_batch(clusterer, prepared[i : i + CHUNK]).new
                         for i in range(0, len(prepared), CHUNK))
        with clock.step("publish"):
            publish(storage, settings)
    finally:
        clock.restore()
        storage.close()
    spent = {"read": read, "parse": parse, **clock.spent}
    if spent.get("extract"):
        spent["extract"] -= _clean_inside_extract(folder)
    spent["features"] -= spent["signature"]
    spent["store"] = spent.pop("writer") - spent["assign"]
    return stored, spent


CHUNK = 16  # entries a worker hands back at once, stored in one transaction (workers.MAX_CHUNK)


def _clean_inside_extract(folder: Path) -> float:
    """The cleaner's time inside extract_html over the pages, measured again on the texts
    trafilatura gives (as extract_html calls it)."""
    import trafilatura

    from aggregator.ingest.extract import clean, page_title, trafilatura_options

    texts = []
    for path in sorted(folder.glob("*.html")):
        tree = trafilatura.load_html(path.read_bytes())
        if tree is None:
            continue
        doc = trafilatura.bare_extraction(tree, **trafilatura_options())
        if getattr(doc, "text", None):
            texts.append((doc.text, page_title(tree)))
    started = time.perf_counter()
    for text, title in texts:
        clean(text, title=title)
    return time.perf_counter() - started


def _settings(tmp: Path, folder: Path, *, processes: int = 0) -> Any:
    from aggregator.config import load
    from aggregator.model import Source

    base = load(None, environ={})
    return replace(base, database=tmp / f"{folder.name}.db",
                   sources=(Source(name=folder.name, kind="directory", location=str(folder)),),
                   fetch=replace(base.fetch, processes=processes),
                   publish=replace(base.publish, rss_path=tmp / "feed.xml",
                                   atom_path=tmp / "atom.xml"),
                   server=replace(base.server, enabled=False))


def fixed_costs(tmp: Path) -> dict[str, float]:
    """Seconds a run pays whatever it ingests."""
    python = [sys.executable, "-c"]
    bare = _best(lambda: subprocess.run([*python, "pass"], check=True))
    imports = _best(lambda: subprocess.run(
        [*python, "import aggregator.operate.cli"], check=True, cwd=ROOT)) - bare
    first = _best(lambda: subprocess.run([*python, FIRST_WORKER], check=True, cwd=ROOT)) - bare
    _worker_start()  # the fork server is up from here on, as in a daemon after its first poll
    worker = _best(_worker_start)
    reassess = _best(lambda: _reassess_process(tmp))
    return {"import the command line": imports, "the fork server and its first worker": first,
            "a worker process forked from it": worker,
            "a re-assessment process (the daemon's)": reassess}


# a fresh process starts the fork server (which loads what a page needs) and its first worker
FIRST_WORKER = ("import os\nfrom aggregator.operate.workers import Workers\n"
                "if __name__ == '__main__':\n"
                "    with Workers(1) as workers:\n"
                "        workers.call(os.getpid)\n")


def _worker_start() -> None:
    from aggregator.clustering.prepare import prepare_entry
    from aggregator.model import Entry
    from aggregator.operate.workers import Workers

    entry = Entry(source="s", guid="g", url=None, title="A headline", content="Some text.",
                  content_type="text/plain")
    with Workers(1) as workers:
        workers.call(prepare_entry, (entry, None), frozenset())


def _reassess_process(tmp: Path) -> None:
    from aggregator.clustering.reassess import prepare_file
    from aggregator.config import load
    from aggregator.operate.workers import Processes

    path = tmp / "empty-reassess.db"
    from aggregator.storage import Storage

    Storage(path).close()
    pool = Processes(1, tasks_per_process=1)
    try:
        pool.result(pool.submit(prepare_file, path, load(None, environ={})))
    finally:
        pool.close()


def bench_costs() -> None:
    with tempfile.TemporaryDirectory() as name:
        tmp = Path(name)
        sets = {}
        pages = tmp / "pages"
        pages.mkdir()
        try:
            sets["the 181 pages"] = pages_folder(pages), pages
        except OSError:
            print("costs: the extraction benchmark's pages not found; synthetic articles only")
        synthetic = tmp / "synthetic"
        synthetic.mkdir()
        sets["2,000 synthetic articles"] = synthetic_folder(synthetic, 2000), synthetic
        for label, (count, folder) in sets.items():
            stored, spent = step_costs(folder, tmp)
            total = sum(spent.get(s, 0.0) for s in STEPS)
            print(f"costs, {label} ({stored} stored), one core, ms an article (share):")
            for step_name in STEPS:
                seconds = spent.get(step_name, 0.0)
                print(f"  {step_name:<10} {seconds / count * 1000:8.2f} ms  "
                      f"{seconds / total:6.1%}")
            print(f"  {'all':<10} {total / count * 1000:8.2f} ms; all but extract: "
                  f"{(total - spent.get('extract', 0.0)) / count * 1000:.2f} ms")
        print("fixed costs of a run (best of 3):")
        for what, seconds in fixed_costs(tmp).items():
            print(f"  {what:<40} {seconds * 1000:7.0f} ms")


def _config(tmp: Path, folder: Path, database: str) -> Path:
    """A configuration file of the defaults with `folder` as the one directory source."""
    config = tmp / "aggregator.toml"
    config.write_text(f'database = "{tmp / database}"\n'
                      f'[[sources]]\nname = "{folder.name}"\nkind = "directory"\n'
                      f'path = "{folder}"\n'
                      f'[publish]\nrss = "{tmp}/feed.xml"\natom = "{tmp}/atom.xml"\n')
    return config


@contextmanager
def _page_folder(part: str) -> Iterator[tuple[Path, Path, int] | None]:
    """A temporary folder and its subfolder of the extraction benchmark's pages, and how many;
    None (said) when the pages are not found."""
    with tempfile.TemporaryDirectory() as name:
        tmp = Path(name)
        folder = tmp / "pages"
        folder.mkdir()
        try:
            count = pages_folder(folder)
        except OSError:
            print(f"{part}: skipped, the extraction benchmark's pages not found")
            yield None
            return
        yield tmp, folder, count


# --- once ------------------------------------------------------------------------------------

def bench_once(runs: int = 3) -> None:
    import trafilatura

    with _page_folder("once") as found:
        if found is None:
            return
        tmp, folder, count = found
        htmls = [p.read_bytes() for p in sorted(folder.glob("*.html"))]
        config = _config(tmp, folder, "once.db")
        alone, once = [], []
        for attempt in range(runs):
            started = time.perf_counter()
            for html in htmls:
                trafilatura.extract(html)
            alone.append(time.perf_counter() - started)
            (tmp / "once.db").unlink(missing_ok=True)
            started = time.perf_counter()
            subprocess.run([sys.executable, "-m", "aggregator", "--config", str(config), "run",
                            "--once"], check=True, cwd=tmp, capture_output=True,
                           env={**os.environ, "PYTHONPATH": str(ROOT)})
            once.append(time.perf_counter() - started)
            print(f"  run {attempt + 1}: trafilatura alone {alone[-1]:.2f} s, "
                  f"run --once {once[-1]:.2f} s", flush=True)
        print(f"once ({count} pages, best of {runs}): trafilatura.extract alone on one core "
              f"{count / min(alone):.1f} pages/s; `aggregator run --once` (2 worker processes, "
              f"start-up and publish included) {count / min(once):.1f} pages/s = "
              f"{min(alone) / min(once):.2f}x trafilatura alone (goal >= 0.9x)")


# --- memory ----------------------------------------------------------------------------------

PEAK = ("import resource, sys\n"
        "from aggregator.operate.cli import main\n"
        "try:\n"
        "    main(sys.argv[1:], prog_name='aggregator')\n"
        "except SystemExit as exc:\n"
        "    code = exc.code\n"
        "else:\n"
        "    code = 0\n"
        "peak = [l for l in open('/proc/self/status') if l.startswith('VmHWM')][0].split()[1]\n"
        "print('peak-kib', peak, file=sys.stderr)\n"
        "sys.exit(code)\n")


def bench_memory(count: int = 20_000) -> None:
    with tempfile.TemporaryDirectory() as name:
        tmp = Path(name)
        folder = tmp / "articles"
        folder.mkdir()
        synthetic_folder(folder, count)
        _peak(tmp, folder, "memory", f"{count:,} synthetic articles as a directory source")


PAGE_COPIES = 6  # pages-memory: the 181 pages six times over (1,086 pages, about 190 MB)


def bench_pages_memory() -> None:
    with _page_folder("pages-memory") as found:
        if found is None:
            return
        tmp, folder, count = found
        for page in sorted(folder.glob("*.html")):
            for copy in range(1, PAGE_COPIES):
                (folder / f"{page.stem}-{copy}.html").write_bytes(page.read_bytes())
        _peak(tmp, folder, "pages-memory", f"{count * PAGE_COPIES:,} real pages, the "
              f"extraction benchmark's {count} {PAGE_COPIES} times over, as a directory source")


def _peak(tmp: Path, folder: Path, part: str, what: str) -> None:
    """`run --once` on `folder` as a process; its main process's peak resident memory."""
    config = _config(tmp, folder, "memory.db")
    started = time.perf_counter()
    done = subprocess.run([sys.executable, "-c", PEAK, "--config", str(config), "run",
                           "--once"], cwd=tmp, capture_output=True, text=True,
                          env={**os.environ, "PYTHONPATH": str(ROOT)})
    took = time.perf_counter() - started
    peak = [line for line in done.stderr.splitlines() if line.startswith("peak-kib")]
    if done.returncode or not peak:
        print(f"{part}: run --once failed ({done.returncode}):\n{done.stderr[-2000:]}")
        return
    mib = int(peak[0].split()[1]) / 1024
    print(f"{part} ({what}, run --once, {took:.0f} s): peak resident memory of the main process "
          f"{mib:.0f} MiB (goal <= 250 MiB)")


PARTS = ("costs", "once", "memory", "pages-memory")


def main(argv: list[str]) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("parts", nargs="*", metavar="|".join(PARTS),
                        help="what to measure (default: all)")
    parser.add_argument("--runs", type=int, default=3, help="runs of `once` (best is taken)")
    parser.add_argument("--articles", type=int, default=20_000, help="articles of `memory`")
    args = parser.parse_args(argv)
    parts = args.parts or list(PARTS)
    if unknown := set(parts) - set(PARTS):
        parser.error(f"unknown part: {', '.join(sorted(unknown))}")
    if "costs" in parts:
        bench_costs()
    if "once" in parts:
        bench_once(args.runs)
    if "memory" in parts:
        bench_memory(args.articles)
    if "pages-memory" in parts:
        bench_pages_memory()


if __name__ == "__main__":
    main(sys.argv[1:])
