"""Cluster -> the canonical merged story: one report in full, then only what the others add.

The canonical report is the operator's pin, else a well-formed report (complete, with its own
headline) before a fragment, then the member most central to the cluster, the highest-priority
source, the most complete, the earliest. The story is that report whole; then, from the other
reports, only the sentences that tell the reader something it does not say yet, judged by
meaning rather than wording: a sentence is a repeat when most of its content words are those
of one sentence already in the story, and it is worth adding only when it brings a name, a
number or a quotation the story lacks. The additions are ranked by what they bring per word
and held to a budget; each stays in its own paragraph, in its report's order, and a quotation
is never cut. Everything left out is one click away: every member is linked."""

from __future__ import annotations

import hashlib
import re
import uuid
from collections.abc import Mapping, Sequence

from ..model import Article, Block, Cluster, Credit, Member, Story, Tier
from ..text import cosine, entity_tokens, line_key, sentences, words
from .novelty import MIN_SENTENCE_WORDS, is_heading, what_others_add

# What the other reports may add, per report of the story, as a share of the longest one.
# Measured on the extraction benchmark's pages (as a directory source; bench/story.py): past
# about a quarter of the longest report per report (half for a pair, three quarters for
# three), further sentences of a story of two to four reports bring next to no name or number
# it lacks. The seeds' five reports, with everything novel added, read 2.2 times their longest.
ADDITIONS_PER_REPORT = 0.25
MAX_LENGTH = 2.0  # a story is never longer than twice its longest report, however many
FRAGMENT_SENTENCES = 3  # a report of fewer sentences is a summary or a stub
LEAD_WORDS = 60  # the summary: the lead's first sentences up to about this many words
COPIES = (Tier.EXACT,)  # identical texts (same URL or same words): nothing to add


def story_guid(namespace: uuid.UUID, cluster_id: int) -> str:
    """The stable feed id of a cluster: it survives merges into it and every re-publish."""
    return f"urn:uuid:{uuid.uuid5(namespace, f'cluster:{cluster_id}')}"


def build(cluster: Cluster, *, namespace: uuid.UUID, vectors: Mapping[int, Mapping[str, float]],
          centroid: Mapping[str, float], priorities: Mapping[str, int]) -> Story:
    """The merged story of `cluster`; `vectors` maps article id -> its salient-term vector."""
    canonical = choose_canonical(cluster, vectors=vectors, centroid=centroid,
                                 priorities=priorities)
    body = blocks(canonical.article.text)
    others = [m for m in cluster.members if m is not canonical and m.tier not in COPIES]
    additions = what_others_add(body, others,
                                budget=additions_budget(cluster.members, canonical))
    credits = _credits(cluster.members, canonical)
    link = canonical.article.url or next((c.url for c in credits if c.url), None)
    return Story(
        cluster_id=cluster.id, guid=story_guid(namespace, cluster.id),
        title=canonical.article.title or _first_words(body), link=link, body=body,
        additions=additions, credits=credits,
        published_at=min(m.article.published_at for m in cluster.members),
        updated_at=cluster.updated_at, summary=lead(body),
        pinned=cluster.pinned_article == canonical.article.id)


def additions_budget(members: Sequence[Member], canonical: Member) -> int:
    """How many words the other reports may add: a quarter of the longest report for each
    report of the story, and never so many that the story outgrows twice the longest."""
    longest = max(len(words(m.article.text)) for m in members)
    share = ADDITIONS_PER_REPORT * len(members) * longest
    return int(min(share, MAX_LENGTH * longest - len(words(canonical.article.text))))


def fingerprint(story: Story) -> str:
    """A digest of the story's text (headline, body, additions): what a reader reads. The
    source list and the times are left out: a new member that adds nothing is no news."""
    text = "\n".join([story.title, *(b.text for b in story.body),
                      *(a.text for a in story.additions)])
    return hashlib.sha256(text.encode()).hexdigest()[:32]


def choose_canonical(cluster: Cluster, *, vectors: Mapping[int, Mapping[str, float]],
                     centroid: Mapping[str, float], priorities: Mapping[str, int]) -> Member:
    """The pinned member, else among the well-formed reports (else the complete ones, else all)
    the most central, then by source priority, then the most complete (the most
    names and numbers), then the earliest."""
    for member in cluster.members:
        if member.article.id == cluster.pinned_article:
            return member
    whole = ([m for m in cluster.members if is_well_formed(m.article)]
             or [m for m in cluster.members if not is_fragment(m.article.text)]
             or cluster.members)
    central = {m.article.id: cosine(vectors.get(m.article.id, {}), centroid) for m in whole}
    best = max(central.values())
    tied = [m for m in whole if central[m.article.id] >= best - CENTRAL_TIE]

    def rank(m: Member) -> tuple[int, int, str, int]:
        return (-priorities.get(m.article.source, 0), -len(information(m.article.text)),
                m.article.published_at.isoformat(), m.article.id)

    return min(tied, key=rank)


# Centralities closer than this are a tie: the salient-term vectors do not tell a report
# nearer the event from another at that resolution (they were compared rounded to two
# decimals before, which split 0.665 from 0.659 but not 0.655 from 0.664). The two members of
# a pair are always tied: both unit vectors are equally near their sum.
CENTRAL_TIE = 0.01


def information(text: str) -> set[str]:
    """The names and numbers a text mentions (text.entity_tokens of each paragraph)."""
    return {u for p in text.split("\n") for u in entity_tokens(p)}


def is_well_formed(article: Article) -> bool:
    """A complete report with a headline of its own (not one cut from its first sentence, as
    the cleaner does for a text that has none)."""
    if is_fragment(article.text) or not article.title:
        return False
    opening = line_key(article.text.split("\n", 1)[0])
    return not opening.startswith(line_key(article.title.rstrip("…")))


_CUT = re.compile(r"(?:…|\.\.\.|\[…\]|\[\.\.\.\])\W*$")


def is_fragment(text: str) -> bool:
    """A summary or a cut-off text rather than a report: too few sentences, or it ends in an
    ellipsis (feeds cut their summaries so)."""
    statements = [s for p in text.split("\n") for s in sentences(p)
                  if len(s.split()) >= MIN_SENTENCE_WORDS]
    return len(statements) < FRAGMENT_SENTENCES or bool(_CUT.search(text.rstrip()))


def blocks(text: str) -> tuple[Block, ...]:
    """A report's paragraphs, its sub-headings marked as such."""
    return tuple(Block(p, heading=is_heading(p)) for p in text.split("\n") if p.strip())


def lead(body: Sequence[Block], limit: int = LEAD_WORDS) -> str:
    """The story's first sentence or two: whole sentences up to about `limit` words."""
    out: list[str] = []
    for block in body:
        if block.heading:
            continue
        for sentence in sentences(block.text):
            if out and len(" ".join([*out, sentence]).split()) > limit:
                return " ".join(out)
            out.append(sentence)
            if len(" ".join(out).split()) >= limit:
                return _cut(" ".join(out), limit)
    return " ".join(out)


def _cut(text: str, limit: int) -> str:
    tokens = text.split()
    return " ".join(tokens[:limit]) + ("…" if len(tokens) > limit else "")


def _first_words(body: Sequence[Block]) -> str:
    return _cut(" ".join(b.text for b in body), 12) or "(untitled)"


def _credits(members: Sequence[Member], canonical: Member) -> tuple[Credit, ...]:
    return tuple(
        Credit(article_id=m.article.id, source=m.article.source, title=m.article.title,
               url=m.article.url, published_at=m.article.published_at,
               duplicate_of=m.matched_article if m.tier in (Tier.DUPLICATE, Tier.EXACT) else None,
               site=m.article.site, author=m.article.author, tier=m.tier,
               canonical=m is canonical)
        for m in members)
