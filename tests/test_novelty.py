"""What other reports add: paraphrases dropped (the seeds' own), news kept, quotations whole,
paragraphs kept, sub-headings never added, the budget held."""

from __future__ import annotations

import pytest

from aggregator.model import Cluster, Story, Tier
from aggregator.stories.novelty import Known, candidates, repeats
from aggregator.stories.publish import story_html
from aggregator.stories.story import ADDITIONS_PER_REPORT, build
from tests.test_story import NAMESPACE, T0, article, member


def story_of(*texts: str, pinned: int | None = None) -> Story:
    """The story of reports given as texts (the first one pinned, unless told otherwise)."""
    members = tuple(member(article(i, f"outlet{i}", f"Headline {i}", text, minutes=i),
                           Tier.NEW if i == 1 else Tier.EVENT)
                    for i, text in enumerate(texts, 1))
    cluster = Cluster(id=1, created_at=T0, updated_at=T0, members=members,
                      pinned_article=pinned or 1)
    return build(cluster, namespace=NAMESPACE, vectors={}, centroid={}, priorities={})


def added(story: Story) -> list[str]:
    return [a.text for a in story.additions]


SIEGE = ("Rebels entered the city of Hama on Thursday after fierce battles with the army.\n"
         "The army said its forces had redeployed outside the city to spare civilians. Its "
         "soldiers left the northern districts first and then the centre, residents said.\n"
         "The fighting has driven thousands from their homes, aid groups said. Families left "
         "by car and on foot, many of them for the second time in a few years, and the roads "
         "south were full of people looking for shelter with relatives or in schools.")


# Pairs quoted in issue 20 from the seeds: the same fact in other words. The first is in the
# canonical report; the second, from another report, adds nothing and is not repeated.
SEED_PARAPHRASES = [
    ("On Thursday they announced they had seized the Hama prison and freed hundreds of "
     "prisoners.",
     "On Thursday, the rebels also announced that they had taken over Hama prison and freed "
     "hundreds of detainees."),
    ("“Our forces entered Hama central prison and freed hundreds of unjustly detained "
     "prisoners,” Hassan Abdel Ghani, a military leader of the rebel coalition, announced on a "
     "Telegram channel.",
     "“Our forces entered the central prison in Hama and freed hundreds of unjustly detained "
     "prisoners,” Hassan Abdel Ghani, military leader of the HTS-led rebel coalition, announced "
     "on Telegram."),
    ("Located 210 kilometers north of Damascus, Hama is a strategic city for the government of "
     "Bashar al-Assad because it commands the road to the capital.",
     "Located 210 km north of Damascus, the town is strategic for Bashar al-Assad’s government "
     "because it controls the road to the capital."),
]
NEWS = ("The Observatory said 826 people, including 222 in Hama, had been killed since violence "
        "erupted last week.")


@pytest.mark.parametrize(("said", "again"), SEED_PARAPHRASES)
def test_a_paraphrase_of_what_the_story_says_is_dropped_and_news_kept(said: str,
                                                                      again: str) -> None:
    story = story_of(f"{SIEGE}\n{said}", f"{again}\n{NEWS}")
    assert added(story) == [NEWS]
    # the other way round: whichever version comes first stays, the other goes
    story = story_of(f"{SIEGE}\n{again}", f"{said}\n{NEWS}")
    assert added(story) == [NEWS]
    # and it is dropped as a repeat, whatever names it brings (the second Abdel Ghani quote
    # has "HTS-led"): judged by its content words against the sentence it restates
    known = Known.of([said]).said
    pieces = list(candidates([member(article(5, "x", "x", f"{again}\n{NEWS}"))]))
    assert [repeats(p, known) for p in pieces] == [True, False]


def test_a_quotation_over_several_sentences_is_added_whole_in_one_paragraph() -> None:
    quote = ("“Assad now cannot afford to lose anything else. The big battle is the one coming "
             "against Homs. If Homs falls, we are talking of a potential change of regime,” said "
             "Jihad Yazigi, editor of the Syria Report newsletter.")
    story = story_of(SIEGE, f"Rebels entered the city of Hama on Thursday.\n{quote}")
    assert added(story) == [quote]
    html = story_html(story)
    assert f"<p>{quote}</p>" in html


def test_additions_keep_their_paragraphs_and_their_order() -> None:
    other = ("Mayor Ilse Brandt of Westmark said on Friday that 40 families had returned. "
             "Rebels entered the city of Hama on Thursday after fierce battles with the army.\n"
             "The UN said 115,000 people had fled. Carden of OCHA said more aid was coming.")
    story = story_of(SIEGE, other)
    assert added(story) == [
        "Mayor Ilse Brandt of Westmark said on Friday that 40 families had returned.",
        "The UN said 115,000 people had fled. Carden of OCHA said more aid was coming."]
    assert all(a.article_id == 2 for a in story.additions)


def test_a_sentence_with_no_new_name_number_or_quote_is_not_added() -> None:
    story = story_of(SIEGE, "Many people in the city were afraid of what would come next.")
    assert story.additions == ()


def test_sub_headings_are_marked_in_the_body_and_never_added() -> None:
    story = story_of(f"Hundreds of detainees released\n{SIEGE}\nWhat Happens Next?",
                     f"Hundreds of prisoners released in Hama\n{NEWS}")
    assert [b.text for b in story.body if b.heading] == ["Hundreds of detainees released",
                                                         "What Happens Next?"]
    assert added(story) == [NEWS]
    assert "<h4>Hundreds of detainees released</h4>" in story_html(story)


def test_the_additions_are_held_to_their_budget_best_first() -> None:
    facts = [f"The {name} brigade of {place} took {n} prisoners near the river crossing."
             for name, place, n in (("Falcon", "Idlib", 120), ("Lion", "Latakia", 35),
                                    ("Eagle", "Tartus", 48), ("Wolf", "Raqqa", 71),
                                    ("Hawk", "Deir", 99), ("Bear", "Daraa", 12))]
    story = story_of("Rebels took Hama.\nThe army left.\nCivilians fled.", "\n".join(facts))
    longest = len("\n".join(facts).split())
    spent = sum(len(a.text.split()) for a in story.additions)
    assert 0 < spent <= ADDITIONS_PER_REPORT * 2 * longest
    assert len(story.additions) < len(facts)
