"""Tiers of the clustering decision, and the seeds: one event, five outlets, one cluster."""

from __future__ import annotations

from pathlib import Path

from aggregator.cluster import ClusterView, Neighbour, Profile, decide, lsh_buckets
from aggregator.clusterer import Clusterer
from aggregator.config import ClusterSettings, load
from aggregator.model import Entry, Tier
from aggregator.pipeline import add_entry
from aggregator.signature import EMPTY_STATS, minhash, sign
from aggregator.storage import Storage
from aggregator.text import words

SETTINGS = ClusterSettings()
UNRELATED = (
    "Central bank holds interest rates steady as inflation cools\n\n"
    "The central bank left its benchmark interest rate unchanged at 4.5 percent on Wednesday, "
    "saying inflation had eased for a third straight month. Policymakers voted eight to one to "
    "hold, with one member preferring a cut of a quarter point. The governor told reporters "
    "that borrowing costs would stay high until price growth returned to the two percent target. "
    "Mortgage lenders said they expected fixed-rate deals to become slightly cheaper.")


def test_exact_match_wins_over_everything() -> None:
    d = decide(Profile({}, {}), (), exact=(7, 3), neighbours=[], clusters=[], settings=SETTINGS)
    assert (d.tier, d.cluster_id, d.matched_article) == (Tier.EXACT, 3, 7)


def test_near_copy_is_a_duplicate_of_its_nearest_member() -> None:
    text = words(UNRELATED)
    copy = words(UNRELATED.replace("Wednesday", "Thursday"))
    a, b = minhash(text), minhash(copy)
    d = decide(Profile({}, {}), b, exact=None, neighbours=[Neighbour(4, 2, a)], clusters=[],
               settings=SETTINGS)
    assert d.tier is Tier.DUPLICATE and d.cluster_id == 2 and d.matched_article == 4
    assert d.similarity >= SETTINGS.near_duplicate
    assert set(lsh_buckets(a)) & set(lsh_buckets(b))  # LSH would have found it


def test_same_event_needs_cosine_and_shared_terms() -> None:
    terms = Profile.of({"hama": 0.8, "rebels": 0.6}, {"hama"})
    near = ClusterView(id=5, profile=Profile.of({"hama": 1.0, "rebels": 0.5, "assad": 0.4},
                                                {"hama", "assad"}))
    far = ClusterView(id=6, profile=Profile.of({"bank": 1.0, "hama": 0.05}, {"hama"}))
    d = decide(terms, (), exact=None, neighbours=[], clusters=[far, near], settings=SETTINGS)
    assert d.tier is Tier.EVENT and d.cluster_id == 5
    assert d.shared_terms == ("hama", "rebels")
    single = decide(Profile.of({"hama": 1.0}, {"hama"}), (), exact=None, neighbours=[],
                    clusters=[near], settings=SETTINGS)
    assert single.tier is Tier.NEW  # one shared term is not enough evidence


def test_an_article_bridging_two_similar_clusters_merges_them() -> None:
    a = ClusterView(id=9, profile=Profile.of({"hama": 1.0, "rebels": 0.6, "assad": 0.3},
                                             {"hama", "assad"}))
    b = ClusterView(id=4, profile=Profile.of({"hama": 0.9, "rebels": 0.7, "homs": 0.3},
                                             {"hama", "homs"}))
    d = decide(Profile.of({"hama": 1.0, "rebels": 0.7}, {"hama"}), (), exact=None,
               neighbours=[], clusters=[a, b], settings=SETTINGS)
    assert d.tier is Tier.EVENT and d.merge_with


def _ingest(storage: Storage, texts: dict[str, str]) -> list[int]:
    clusterer = Clusterer(storage, load(None, environ={}))
    ids = []
    for guid, text in texts.items():
        article_id = add_entry(clusterer, Entry(source="t", guid=guid, url=None, title=None,
                                                content=text, content_type="text/plain"))
        assert article_id is not None
        ids.append(article_id)
    return ids


def _cluster_of(storage: Storage, article_id: int) -> int:
    membership = storage.membership(article_id)
    assert membership is not None
    return int(membership["cluster_id"])


def test_seeds_form_one_cluster_by_event_and_an_unrelated_article_stays_apart(
        tmp_path: Path) -> None:
    seeds = {p.name: p.read_text() for p in sorted(
        (Path(__file__).resolve().parent.parent / "seeds").glob("*.txt"))}
    storage = Storage(tmp_path / "a.db")
    ids = _ingest(storage, {**seeds, "bank.txt": UNRELATED})
    seed_clusters = {_cluster_of(storage, i) for i in ids[:5]}
    assert len(seed_clusters) == 1
    assert _cluster_of(storage, ids[5]) not in seed_clusters
    tiers = [storage.membership(i)["tier"] for i in ids[:5]]  # type: ignore[index]
    assert tiers == ["new", "event", "event", "event", "event"]  # reports, not copies


def test_a_republished_copy_with_other_chrome_is_a_duplicate(tmp_path: Path) -> None:
    storage = Storage(tmp_path / "a.db")
    copy = ("Money Daily moneydaily.net\n\n" + UNRELATED.replace("\n\n", "\n\nShare this\n\n", 1)
            + "\n\nSubscribe now for unlimited access to our award-winning coverage.")
    ids = _ingest(storage, {"a": UNRELATED, "b": copy})
    membership = storage.membership(ids[1])
    assert membership is not None
    assert membership["tier"] in ("exact", "duplicate")
    assert membership["cluster_id"] == _cluster_of(storage, ids[0])


def test_signature_of_title_only_article_is_not_empty() -> None:
    sig = sign("Earthquake of magnitude 6.1 hits northern Chile", "", stats=EMPTY_STATS, terms=24)
    assert sig.terms and sig.minhash
