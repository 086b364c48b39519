"""Search over the stored reports: stories, not articles, best match first, the matched words
marked; a hidden story never; typed words never FTS syntax."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

from aggregator.clustering.clusterer import Clusterer
from aggregator.operate import admin
from aggregator.operate.pipeline import add_entry
from aggregator.storage import now, search_terms
from aggregator.stories.search import MARKS, Part, find, parts

from .test_edition import newsroom, report


def test_a_word_of_one_story_finds_that_story_once_with_the_word_marked(workdir: Path) -> None:
    _, storage, hama, bank = newsroom(workdir)
    found = find(storage, search_terms("Alder"))
    assert found.terms == ("alder",) and not found.more
    (hit,) = found.hits
    assert hit.cluster_id == bank and hit.outlets == 1 and hit.outlet == "ledger"
    assert hit.headline() == "Central bank holds rates at 4.5 percent"
    assert Part("Alder", matched=True) in hit.passage and hit.matched() == ("alder",)
    (hit,) = find(storage, search_terms("hama")).hits  # three reports hold it: one story
    assert hit.cluster_id == hama and hit.outlets == 3
    assert {p.text.lower() for p in (*hit.title, *hit.passage) if p.matched} == {"hama"}
    assert [h.cluster_id for h in find(storage, search_terms("the")).hits] in (
        [hama, bank], [bank, hama])
    assert find(storage, search_terms("Alder Hama")).hits == ()  # every word, in one report


def test_a_hidden_story_is_never_found(workdir: Path) -> None:
    _, storage, _, bank = newsroom(workdir)
    admin.set_hidden(storage, bank, hidden=True)
    assert find(storage, search_terms("Alder")).hits == ()


def test_the_best_match_comes_first_and_more_says_when_some_are_left_out(workdir: Path) -> None:
    settings, storage, _, _ = newsroom(workdir)
    clusterer = Clusterer(storage, settings)
    at = now() - timedelta(hours=1)
    filler = " ".join(f"Officials met on day {n} to discuss the harbour budget." for n in
                      range(30))
    add_entry(clusterer, report("ledger", 20, f"Budget review\n{filler} A zebra was seen.", at))
    add_entry(clusterer, report("ledger", 21, "Zebra escapes from the zoo\nA zebra escaped "
                                "from the city zoo on Monday; the zebra was found at noon.", at))
    found = find(storage, search_terms("zebra"))
    assert found.hits[0].headline() == "Zebra escapes from the zoo"
    assert len(found.hits) == 2 and not found.more
    first = find(storage, search_terms("zebra"), limit=1)
    assert [h.headline() for h in first.hits] == ["Zebra escapes from the zoo"] and first.more


def test_whatever_is_typed_is_searched_as_words(workdir: Path) -> None:
    _, storage, hama, bank = newsroom(workdir)
    for typed in ('"Alder', "Alder*", "^Alder", "(Alder)", "Alder:", "-Alder", "+Alder",
                  "ALDER -", "'alder'", '"Alder" "rates"', "Tomas Alder's"):
        assert [h.cluster_id for h in find(storage, search_terms(typed)).hits] == [bank], typed
    # operators and column names are words like the others, which no report here holds
    # (a report of the fall of Hama says "near": NEAR is that word)
    assert [h.cluster_id for h in find(storage, search_terms("NEAR")).hits] == [hama]
    for typed in ("", '"', "NEAR(Alder rates, 3)", "Alder NOT", "Alder OR x",
                  "title:Alder", "{title}: Alder", "*", "x" * 10_000, "\x00", "title:"):
        assert find(storage, search_terms(typed)).hits == (), typed


def test_marks_become_parts_and_stray_marks_are_dropped() -> None:
    open_, close = MARKS
    assert parts(f"a {open_}b{close} c") == (Part("a "), Part("b", matched=True), Part(" c"))
    assert parts(f"{open_}x{close}") == (Part("x", matched=True),)
    assert parts(f"stray {close} mark {open_}") == (Part("stray  mark "),)
    assert parts("") == ()
