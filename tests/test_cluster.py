"""Tiers of the clustering decision, and the seeds: one event, five outlets, one cluster."""

from __future__ import annotations

from pathlib import Path

from aggregator.clustering.cluster import Link, Neighbour, Profile, decide, link
from aggregator.clustering.clusterer import Clusterer
from aggregator.clustering.signature import EMPTY_STATS, sign
from aggregator.config import ClusterSettings, load
from aggregator.minhash import lsh_buckets, minhash
from aggregator.model import Entry, Tier
from aggregator.operate.pipeline import add_entry
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
    d = decide((), exact=(7, 3), neighbours=[], links=[], sizes={}, settings=SETTINGS)
    assert (d.tier, d.cluster_id, d.matched_article) == (Tier.EXACT, 3, 7)


def test_near_copy_is_a_duplicate_of_its_nearest_member() -> None:
    text = words(UNRELATED)
    copy = words(UNRELATED.replace("Wednesday", "Thursday"))
    a, b = minhash(text), minhash(copy)
    d = decide(b, exact=None, neighbours=[Neighbour(4, 2, a)], links=[], sizes={},
               settings=SETTINGS)
    assert d.tier is Tier.DUPLICATE and d.cluster_id == 2 and d.matched_article == 4
    assert d.similarity >= SETTINGS.near_duplicate
    assert set(lsh_buckets(a)) & set(lsh_buckets(b))  # LSH would have found it


HAMA = Profile.of({"hama": 0.8, "rebels": 0.5, "assad": 0.3}, {"hama", "assad"})
BANK = Profile.of({"bank": 0.9, "rates": 0.4}, set())


def links(article: Profile, *others: tuple[int, int, Profile]) -> list[Link]:
    return [link(article, a, c, other, SETTINGS.entity_weight) for a, c, other in others]


def test_same_event_joins_the_best_linked_cluster_with_evidence() -> None:
    article = Profile.of({"hama": 0.8, "rebels": 0.6}, {"hama"})
    d = decide((), exact=None, neighbours=[], links=links(article, (11, 5, HAMA), (12, 6, BANK)),
               sizes={5: 1, 6: 1}, settings=SETTINGS)
    assert d.tier is Tier.EVENT and d.cluster_id == 5 and d.matched_article == 11
    assert d.shared_terms == ("hama", "rebels") and d.similarity >= SETTINGS.event


def test_one_similar_member_is_not_enough_to_join_a_large_cluster() -> None:
    article = Profile.of({"hama": 0.5, "rebels": 0.4, "idlib": 0.8}, {"hama", "idlib"})
    alone = decide((), exact=None, neighbours=[], links=links(article, (11, 5, HAMA)),
                   sizes={5: 1}, settings=SETTINGS)
    crowd = decide((), exact=None, neighbours=[], links=links(article, (11, 5, HAMA)),
                   sizes={5: 40}, settings=SETTINGS)
    assert alone.tier is Tier.EVENT and crowd.tier is Tier.NEW  # its link counts a third


def test_a_single_shared_term_is_not_enough_evidence() -> None:
    article = Profile.of({"hama": 1.0}, {"hama"})
    d = decide((), exact=None, neighbours=[], links=links(article, (11, 5, HAMA)),
               sizes={5: 1}, settings=SETTINGS)
    assert d.tier is Tier.NEW


def test_an_article_bridging_two_clusters_merges_them() -> None:
    article = Profile.of({"hama": 0.8, "rebels": 0.5, "assad": 0.3}, {"hama", "assad"})
    other = Profile.of({"hama": 0.7, "rebels": 0.6, "assad": 0.3}, {"hama", "assad"})
    d = decide((), exact=None, neighbours=[], links=links(article, (11, 9, HAMA), (12, 4, other)),
               sizes={9: 1, 4: 1}, settings=SETTINGS)
    assert d.tier is Tier.EVENT and {d.cluster_id, *d.merge_with} == {4, 9}


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


def test_a_rebuilt_profile_is_the_members_sum_cut_once_whatever_their_order() -> None:
    # "c" is light in the first member: a running sum cut to 2 terms drops it at every step,
    # while the whole sum has it heaviest (0.2 + 0.5 + 0.5)
    members = [Profile.of({"a": 0.9, "b": 0.8, "c": 0.2}, {"a"}),
               Profile.of({"c": 0.5, "d": 0.3}, {"c"}),
               Profile.of({"c": 0.5, "a": 0.1}, set())]
    running = Profile(terms={}, entities={})
    for member in members:
        running = running.plus(member, limit=2)
    assert running.terms == {"a": 1.0, "b": 0.8}
    rebuilt = Profile.total(members, limit=2)
    assert rebuilt.terms == {"c": 1.2, "a": 1.0}
    assert list(rebuilt.terms) == ["c", "a"]  # heaviest first
    assert rebuilt.entities == {"a": 1.0, "c": 1.0}
    assert Profile.total(reversed(members), limit=2) == rebuilt
