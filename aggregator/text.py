"""Pure text helpers: normalising, tokenising, word shingles, sentence splitting, the cosine of
two term vectors."""

from __future__ import annotations

import hashlib
import math
import re
import unicodedata
from collections.abc import Iterator, Mapping

_SPACE = re.compile(r"[ \t\u00a0\u2000-\u200b\u202f\u205f\u3000]+")
_TOKEN = re.compile(r"\w+")
_ASCII_TOKEN = re.compile(r"\w+", re.ASCII)  # the same tokens on ASCII text, found faster
_POSSESSIVE = re.compile(r"'(?<=\w')s\b")  # starts with a literal: the scan skips ahead
_QUOTE_PAIRS = (("‘", "'"), ("’", "'"), ("“", '"'), ("”", '"'), ("–", "-"), ("—", "-"))
# A sentence ends at . ! ? or … followed by closing quotes/brackets, then space and a capital,
# digit or opening quote. Abbreviations are checked separately.
_BOUNDARY = re.compile(r"(?<=[.!?…])[\"'”’)\]]*\s+(?=[\"'“‘(\[]?[A-Z0-9À-Ý])")
_ABBREVIATIONS = frozenset(
    "mr mrs ms dr prof sen rep gov gen col lt sgt st jr sr inc ltd co corp vs etc no jan feb"
    " mar apr jun jul aug sep sept oct nov dec u.s u.k u.n e.g i.e".split()
)


def normalise(text: str) -> str:
    """NFC, single spaces within lines, no blank ends; never longer than the input.

    NFC lengthens a few characters (U+FB2C becomes three code points); a text it would
    lengthen keeps its own form.
    """
    if not unicodedata.is_normalized("NFC", text):
        composed = unicodedata.normalize("NFC", text)
        text = composed if len(composed) <= len(text) else text
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    lines = (_SPACE.sub(" ", line).strip() for line in text.split("\n"))
    return "\n".join(lines).strip()


def words(text: str) -> list[str]:
    """Lower-cased word tokens; possessive 's is dropped so "Assad's" counts as "assad", and
    inner apostrophes go ("O'Brien" -> "obrien")."""
    folded = _fold(text)
    return (_ASCII_TOKEN if folded.isascii() else _TOKEN).findall(folded)


def _fold(text: str) -> str:
    # str.replace is several times faster than str.translate with a mapping, on long texts
    for curly, straight in _QUOTE_PAIRS:
        if curly in text:
            text = text.replace(curly, straight)
    return _POSSESSIVE.sub("", text.lower()).replace("'", "")


def shingles(tokens: list[str], size: int = 3) -> set[str]:
    """Word n-grams joined by spaces; a text shorter than `size` gives its whole self."""
    if len(tokens) < size:
        return {" ".join(tokens)} if tokens else set()
    return {" ".join(tokens[i : i + size]) for i in range(len(tokens) - size + 1)}


def sentences(paragraph: str) -> Iterator[str]:
    """Split a paragraph into sentences, not at common abbreviations."""
    start = 0
    for match in _BOUNDARY.finditer(paragraph):
        head = paragraph[start : match.start()]
        last = head.rsplit(" ", 1)[-1].rstrip(".").lower()
        if last in _ABBREVIATIONS or (len(last) == 1 and last.isalpha()):
            continue
        if head.strip():
            yield head.strip()
        start = match.end()
    tail = paragraph[start:].strip()
    if tail:
        yield tail


# a capital not inside a word, and what follows it (the capital first: the scan skips ahead)
_NAME = re.compile(r"[A-Z](?<!\w[A-Z])[\w'’.-]*")
_FIGURE = re.compile(r"\b\w*\d\w*\b")
_DIGIT = re.compile(r"\d")
# where a sentence's first word starts: the text's start, a line's start, or after a full stop
# (or colon) with its closing quotes and the space, then any opening quotes
_OPENER = re.compile(r"[.!?…:\n](?:(?<=\n)|['\"”’)]*\s+)['\"“‘(]*(?=[A-Z])")
_LEADING = re.compile(r"['\"“‘(]*(?=[A-Z])")


def entity_tokens(text: str, *, tokens: list[str] | None = None) -> set[str]:
    """Tokens that name things: capitalised words not opening a sentence, acronyms, numbers.

    Names, places, organisations, figures and dates are what tell one event from another of the
    same kind (two earthquakes, two coach firings); a sentence's first word is capitalised
    whatever it is, so it does not count. `tokens`, when given, are `words(text)` already
    computed.
    """
    if tokens is None:
        found = set(_FIGURE.findall(_fold(text)))
    else:
        found = {t for t in set(tokens) if not t.isalpha() and _DIGIT.search(t)}
    openers = {m.end() for m in _OPENER.finditer(text)}
    if lead := _LEADING.match(text):
        openers.add(lead.end())
    names = [m.group() for m in _NAME.finditer(text)
             if m.start() not in openers or (m.group().isupper() and len(m.group()) > 1)]
    found.update(words(" ".join(names)))
    return found


# English function words: the words that carry no information of their own
STOP_WORDS = frozenset("""
a about above after again against all almost also although always am among an and another any
anyone anything are around as at be became because become been before being below between both
but by can cannot could did do does doing done down during each either else even ever every
few for from further had has have having he her here hers herself him himself his how however
i if in into is it its itself just least less like made make many may me might more most much
must my myself neither never no nor not now of off often on once one only onto or other others
our ours ourselves out over own per perhaps quite rather said same says she should since so
some such than that the their theirs them themselves then there these they this those though
through thus till to too toward towards under until up upon us very via was we were what
whatever when where whether which while who whom whose why will with within without would yet
you your yours yourself yourselves
""".split())


def content_words(text: str) -> frozenset[str]:
    """The words that carry what a sentence says: lower-cased words of three or more letters,
    or with a digit, that are not stop words."""
    return frozenset(w for w in words(text) if w not in STOP_WORDS
                     and (len(w) >= 3 or any(c.isdigit() for c in w)))


def content_hash(text: str, *, tokens: list[str] | None = None) -> str:
    """Hash of the text's words alone: equal for copies differing only in spacing or case.
    `tokens`, when given, are `words(text)` already computed."""
    return hashlib.sha256(" ".join(words(text) if tokens is None else tokens).encode()
                          ).hexdigest()[:32]


_TRACKING = ("utm_", "fbclid", "gclid", "dclid", "msclkid", "mc_cid", "mc_eid", "_ga", "igshid",
             "ref_src", "cmpid")


def canonical_url(url: str) -> str:
    """The URL without tracking parameters or fragment, scheme and host lower-cased."""
    from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

    parts = urlsplit(url.strip())
    query = [(k, v) for k, v in parse_qsl(parts.query, keep_blank_values=True)
             if not k.lower().startswith(_TRACKING)]
    path = parts.path or "/"
    return urlunsplit((parts.scheme.lower(), parts.netloc.lower(), path, urlencode(query), ""))


def line_key(line: str) -> str:
    """The form in which lines are compared (a source's recurring chrome, a headline against a
    text's first line): its words, lower-cased."""
    return " ".join(words(line))


def cosine(a: Mapping[str, float], b: Mapping[str, float]) -> float:
    """Cosine of two sparse vectors given as term -> weight."""
    if len(a) > len(b):
        a, b = b, a
    dot = sum(w * b.get(t, 0.0) for t, w in a.items())
    na = math.sqrt(sum(w * w for w in a.values()))
    nb = math.sqrt(sum(w * w for w in b.values()))
    return dot / (na * nb) if na and nb else 0.0
