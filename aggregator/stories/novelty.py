"""What the other reports of a story add to its canonical report: the judge of novelty.

A sentence is a repeat when at least REPEAT of its (stemmed) content words are those of one
sentence the story already has; it is news when it brings a name, a number or a quotation the
story lacks. The news is ranked by how much it tells per word and spent to a budget; each
piece renders in its own report's paragraph, and a quotation over several sentences is one
piece. Pure: no I/O.
"""

from __future__ import annotations

import heapq
import re
from collections import Counter
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass

from ..model import Addition, Block, Member
from ..text import content_words, entity_tokens, sentences, words

# A repeat, for a reader, is a sentence at least 60 % of whose content words were in one
# sentence they read before: the definition of redundancy of issue 20, applied here to
# stemmed words (so "freed"/"freeing" count as one) and before the sentence is added.
REPEAT = 0.6
MIN_SENTENCE_WORDS = 4  # shorter pieces are labels and fragments, not statements
MIN_QUOTE_WORDS = 3  # a quotation of fewer words is a term in quotes, not a voice
MAX_HEADING_WORDS = 8  # as the cleaner's sub-headings (extract.MAX_HEADING_WORDS)
_TERMINAL = re.compile(r"[.!?…;:][\"'”’»)\]]*$|[\"”’»]$")


def is_heading(line: str) -> bool:
    """A sub-heading: a short line that is not a sentence ("Hundreds of detainees released"),
    or a short question in title case ("What Happens Next?")."""
    tokens = line.split()
    if len(tokens) > MAX_HEADING_WORDS:
        return False
    if not _TERMINAL.search(line):
        return True
    long = [t for t in tokens if len(t) > 3]
    return line.endswith("?") and bool(long) and all(t[0].isupper() for t in long)


@dataclass(frozen=True, slots=True)
class Piece:
    """A candidate addition: one sentence of another report, or the sentences of a quotation
    that runs over several (never cut apart)."""

    article_id: int
    position: tuple[int, int, int]  # (member, paragraph, sentence): the order it renders in
    text: str
    said: tuple[frozenset[str], ...]  # stemmed content words of each of its sentences
    units: frozenset[str]  # names and numbers (text.entity_tokens)
    quotes: tuple[frozenset[str], ...]  # stemmed content words of each quotation in it
    length: int  # words

    @property
    def content(self) -> frozenset[str]:
        return frozenset().union(*self.said)


class Overlaps:
    """Sets of words indexed by word, to ask which share most of their words with another."""

    __slots__ = ("_postings", "_sets")

    def __init__(self) -> None:
        self._sets: list[tuple[frozenset[str], tuple[int, int, int]]] = []
        self._postings: dict[str, list[int]] = {}

    def add(self, words_: frozenset[str], tag: tuple[int, int, int] = (-1, -1, -1)) -> None:
        for word in words_:
            self._postings.setdefault(word, []).append(len(self._sets))
        self._sets.append((words_, tag))

    def _shared(self, words_: frozenset[str]) -> Counter[int]:
        return Counter(i for w in words_ for i in self._postings.get(w, ()))

    def contain(self, words_: frozenset[str]) -> bool:
        """Whether one set holds at least REPEAT of `words_`."""
        need = REPEAT * len(words_)
        return bool(words_) and any(n >= need for n in self._shared(words_).values())

    def within(self, words_: frozenset[str], *, after: tuple[int, int, int]) -> bool:
        """Whether a set tagged after `after` has at least REPEAT of its words in `words_`."""
        return any(n >= REPEAT * len(self._sets[i][0]) and self._sets[i][1] > after
                   for i, n in self._shared(words_).items())


class Known:
    """What the story says so far: each sentence's (and quotation's) stemmed content words,
    all of them, and every word (for names and numbers: are they anywhere in the story?)."""

    __slots__ = ("mentioned", "said", "stems")

    def __init__(self) -> None:
        self.said = Overlaps()
        self.stems: set[str] = set()
        self.mentioned: set[str] = set()

    @classmethod
    def of(cls, paragraphs: Iterable[str]) -> Known:
        known = cls()
        for paragraph in paragraphs:
            known.learn(paragraph, [stemmed(s) for s in sentences(paragraph)],
                        [stemmed(q) for q in quotations(paragraph)])
        return known

    def learn(self, text: str, said: Iterable[frozenset[str]],
              quotes: Iterable[frozenset[str]] = ()) -> None:
        for found in (*said, *quotes):
            if found:
                self.said.add(found)
                self.stems |= found
        self.mentioned.update(words(text))


def what_others_add(body: Sequence[Block], others: Sequence[Member], *,
                    budget: int) -> tuple[Addition, ...]:
    """The pieces of `others` worth adding to `body`, best first (most news per word) until
    `budget` words are spent, then put back in their reports' order, one paragraph per
    source paragraph.

    Greedy, evaluated lazily: a piece's worth only falls as the story grows, so a piece whose
    fresh worth still tops the others' last known worth is the best one (and most pieces are
    never looked at again): a story of sixty reports takes a fraction of a second.
    """
    known = Known.of(b.text for b in body if not b.heading)
    reach = Counter(w for m in others for w in set(words(m.article.text)))
    queue = [(-worth(p, known, reach), p.position, p) for p in candidates(others)
             if not repeats(p, known.said)]
    heapq.heapify(queue)
    chosen: list[Piece] = []
    added = Overlaps()  # the chosen pieces' sentences, tagged with where they render
    spent = 0
    while queue:
        last, _, piece = heapq.heappop(queue)
        if last == 0 or piece.length > budget - spent or _clashes(piece, known.said, added):
            continue
        now = worth(piece, known, reach)
        if queue and now < -queue[0][0]:
            heapq.heappush(queue, (-now, piece.position, piece))
            continue
        if now > 0:
            chosen.append(piece)
            spent += piece.length
            known.learn(piece.text, piece.said, piece.quotes)
            for found in (piece.content, *piece.said):
                added.add(found, piece.position)
    return _paragraphs(chosen)


def candidates(members: Sequence[Member]) -> Iterator[Piece]:
    """Every statement of the members' texts that could be added (no sub-headings, no
    fragments), with what it says."""
    for m_index, member in enumerate(members):
        for p_index, paragraph in enumerate(member.article.text.split("\n")):
            if not paragraph.strip() or is_heading(paragraph):
                continue
            for s_index, group in enumerate(_quoted_groups(list(sentences(paragraph)))):
                text = " ".join(group)
                if len(text.split()) < MIN_SENTENCE_WORDS or not _TERMINAL.search(text):
                    continue
                yield Piece(article_id=member.article.id, position=(m_index, p_index, s_index),
                            text=text, said=tuple(stemmed(s) for s in group),
                            units=frozenset(entity_tokens(text)),
                            quotes=tuple(stemmed(q) for q in quotations(text)),
                            length=len(text.split()))


def repeats(piece: Piece, said: Overlaps) -> bool:
    """True when the piece, or one of its sentences, says mostly what one sentence of the
    story says (the Hassan Abdel Ghani quote in other words, "210 km" for "210 kilometers")."""
    return any(said.contain(found) for found in (piece.content, *piece.said))


def worth(piece: Piece, known: Known, reach: Mapping[str, int]) -> float:
    """What the piece tells the reader per word of it (see `gain`)."""
    return gain(piece, known, reach) / piece.length


def gain(piece: Piece, known: Known, reach: Mapping[str, int]) -> float:
    """What the piece would tell the reader: each name or number the story lacks, counted
    once for each other report that mentions it (what several outlets report is more the
    story than one outlet's detail), a quotation it does not have; then the share of its words
    that are new (ranks below any of those). Zero for a piece with no new name, number or
    quotation."""
    units = sum(reach.get(u, 1) for u in piece.units - known.mentioned)
    quotes = sum(1 for q in piece.quotes if _new(q, known.said))
    content = piece.content
    fresh = len(content - known.stems) / len(content) if content else 0.0
    if not units and not quotes:
        return 0.0
    return units + quotes + fresh


def _new(quote: frozenset[str], said: Overlaps) -> bool:
    return len(quote) >= MIN_QUOTE_WORDS and not said.contain(quote)


def _clashes(piece: Piece, said: Overlaps, added: Overlaps) -> bool:
    """Whether `piece` can no longer be added: it repeats what the story says now, or it would
    render before an added piece that would then read as its repeat."""
    return repeats(piece, said) or any(added.within(found, after=piece.position)
                                       for found in (piece.content, *piece.said))


def _paragraphs(chosen: Sequence[Piece]) -> tuple[Addition, ...]:
    out: list[Addition] = []
    ordered = sorted(chosen, key=lambda p: p.position)
    for i, piece in enumerate(ordered):
        joined = i and ordered[i - 1].position[:2] == piece.position[:2]
        if joined:
            out[-1] = Addition(piece.article_id, f"{out[-1].text} {piece.text}")
        else:
            out.append(Addition(piece.article_id, piece.text))
    return tuple(out)


# --- words, stems and quotations --------------------------------------------------------------

def stemmed(text: str) -> frozenset[str]:
    """Content words cut to a crude stem, so that inflections of a word count as one."""
    return frozenset(_stem(w) for w in content_words(text))


_SUFFIXES = (("ies", "y"), ("ing", ""), ("ed", ""), ("es", ""), ("s", ""))


def _stem(word: str) -> str:
    """'prisoners' -> 'prisoner', 'seized'/'seize' -> 'seiz', 'cities' -> 'city': the
    plural and tense endings of English, stripped when at least three letters remain."""
    if not word.isalpha():
        return word
    for suffix, replacement in _SUFFIXES:
        if word.endswith(suffix) and not word.endswith("ss") and len(word) - len(suffix) >= 3:
            word = word[: -len(suffix)] + replacement
            break
    if len(word) > 3 and word.endswith("e"):
        word = word[:-1]
    if len(word) > 3 and word[-1] == word[-2] and word[-1] not in "aeiousl":
        word = word[:-1]
    return word


_QUOTATION = re.compile(r"“([^“”]+)”|\"([^\"]+)\"")


def quotations(text: str) -> list[str]:
    """The passages in double quotes ("…" or “…”) of at least MIN_QUOTE_WORDS words."""
    found = (a or b for a, b in _QUOTATION.findall(text))
    return [q for q in found if len(q.split()) >= MIN_QUOTE_WORDS]


def _quoted_groups(parts: Sequence[str]) -> Iterator[list[str]]:
    """Sentences, those of one quotation kept together: a quote stays whole."""
    group: list[str] = []
    for sentence in parts:
        group.append(sentence)
        if not _open_quote(" ".join(group)):
            yield group
            group = []
    if group:
        yield group


def _open_quote(text: str) -> bool:
    return text.count("“") > text.count("”") or text.count('"') % 2 == 1
