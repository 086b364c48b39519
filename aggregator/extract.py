"""Main text of an entry: HTML through trafilatura, then one boilerplate cleaner for all text.

The cleaner works line by line with rules that generalise across sites (navigation and label
lines, bylines, share/subscribe/"read more" lines, promotions, copyright, captions and photo
credits, stray hashes, lines a source repeats in many articles). A line that reads as a sentence
of the story is never removed by the length rules, and every removal is recorded with its
reason so an operator can see what was stripped.
"""

from __future__ import annotations

import re

import lxml.html

from .model import Cleaned, Entry
from .text import normalise, sentences, words

_TERMINAL = re.compile(r"[.!?…;:][\"'”’»)\]]*$|[\"”’»]$")
# each run of word characters and hyphens is tried once (from its start): linear on long lines
_DOMAIN = re.compile(
    r"(?<![\w-])-*+\b[\w-]++\.(?:com|org|net|us|uk|co|in|io|info|news|tv|fr|de|es|ru)\b", re.I)
_HASH = re.compile(r"^(?:[0-9a-f]{16,}|[A-Za-z0-9+/=_-]{24,})$")
_URL = re.compile(r"^(?:https?://|www\.)\S+$", re.I)
_BYLINE = re.compile(
    r"^(?:by|written by|published by|posted by|reported by|author|authors|edited by)\b", re.I)
_COPYRIGHT = re.compile(r"©|\(c\)\s*\d{4}|\bcopyright\b|\ball rights reserved\b", re.I)
_READ_MORE = re.compile(
    r"^(?:also read|read more|read also|related|see also|recommended|more from|more on this"
    r"|watch|listen|click here|continue reading|trending|must read|top stories)\b\W*", re.I)
_PHOTO_CREDIT = re.compile(  # names possessive (*+): no backtracking into them (ReDoS)
    r"(?:[-–—|/]\s*|\.)(?:[A-Z][\w.]*+\s?){0,4}(?:/\s*)?(?:getty images|afp|reuters|ap photo|ap"
    r"|epa|shutterstock|xinhua|anadolu|dpa|photo|file photo|handout|image)(?:\s+via\s+\w+)?\s*$",
    re.I)
_PROMO_CUES = re.compile(
    r"\b(?:subscribe|subscription|sign up|newsletter|free for|free trial|unlimited access"
    r"|exclusive app|download (?:our|the) app|offers?|award-winning|membership|become a member"
    r"|support (?:our|independent) journalism|advertisement|sponsored|promo code|per month"
    r"|follow us|join us|log ?in|register now|try \w+(?: \w+)? free)\b", re.I)
_SHARE_CUES = re.compile(
    r"\b(?:share|tweet|email|e-mail|print|facebook|twitter|whatsapp|linkedin|telegram|reddit"
    r"|pinterest|copy link|comments?|scroll|menu|home|back to top|next|previous|prev|login"
    r"|source link|about the author|topics|tags|updated|location)\b", re.I)
_JOINERS = frozenset(
    "a an the of to in on at by for from with and or but as that which who whose than its his"
    " her their our your this these those is are was were be been has have had".split())

MAX_SHORT_WORDS = 3  # an unpunctuated line this short is a label, tag or navigation item
MAX_HEADING_WORDS = 8  # an unpunctuated line up to this long may be a sub-heading; longer: caption
MAX_TITLE_WORDS = 30
MAX_LABEL_WORDS = 6  # "Topics:", "Last Updated:", "- Location :"; longer lines lead into text
MAX_CAPTION_WORDS = 40  # longer unpunctuated lines are story text that lost its full stop
MAX_PROMO_WORDS = 60  # a promotion is a line or two; a long paragraph with "offer" is news
MAX_CREDIT_CHARS = 120  # a photo credit ends its line: "– Jane Doe/AFP via Getty Images" is 31
CAPTION_WINDOW = 200  # lines either side searched for a caption's repeat; articles are shorter


def extract_html(html: str | bytes, *, url: str | None = None,
                 recurring: frozenset[str] = frozenset()) -> Cleaned:
    """Main text of an HTML page via trafilatura, then the boilerplate cleaner.

    trafilatura's metadata pass (dates, authors, site names) costs about a third of its time
    and gives us only the headline, so the headline is read from the parsed page here.
    trafilatura runs in its fast mode, without the comparison against readability and justext:
    on the extraction benchmark (181 real pages; `python bench/run.py extraction`) that
    comparison costs about a fifth of the time and gains nothing (shingle F1 0.960 with it,
    0.961 without, before our cleaner).
    """
    import trafilatura  # deferred: importing it costs ~0.3 s and only HTML needs it

    tree = trafilatura.load_html(html)
    if tree is None:
        return Cleaned(title="", text="")
    title = page_title(tree)
    doc = trafilatura.bare_extraction(tree, url=url, fast=True, with_metadata=False,
                                      include_comments=False, include_tables=False)
    text = getattr(doc, "text", None)
    if not text:
        return Cleaned(title="", text="")
    return clean(text, title=title, recurring=recurring)


def page_title(tree: lxml.html.HtmlElement) -> str | None:
    """The headline of a parsed page: og:title or twitter:title, else the one h1, else <title>;
    without a short " | Site name" tail."""
    for name in ("og:title", "twitter:title"):
        for meta in tree.xpath(f'//meta[@property="{name}" or @name="{name}"]/@content')[:1]:
            if str(meta).strip():
                return _without_site(normalise(str(meta)))
    headings = tree.xpath("//h1")
    if len(headings) == 1 and headings[0].text_content().strip():
        return normalise(headings[0].text_content())
    for element in tree.xpath("//head/title")[:1]:
        return _without_site(normalise(element.text_content())) or None
    return None


def _without_site(title: str) -> str:
    """'Headline - Site Name' -> 'Headline' when the tail is a short name (up to 4 words)."""
    match = _SITE_TAIL.search(title)
    if match and len(title[match.end():].split()) <= 4 and len(title[: match.start()].split()) >= 3:
        return title[: match.start()]
    return title


_SITE_TAIL = re.compile(r"\s+[|–—-]\s+(?=(?:(?!\s[|–—-]\s).)*+$)")  # the last separator


def clean_entry(entry: Entry, recurring: frozenset[str] = frozenset()) -> Cleaned:
    """The cleaned text of an entry: whole pages through trafilatura, feed HTML to text."""
    if entry.content_type == "text/html":
        if _is_page(entry.content):
            cleaned = extract_html(entry.content, url=entry.url, recurring=recurring)
            if entry.title and cleaned.text:
                return clean(cleaned.text, title=entry.title, recurring=recurring)
            return cleaned
        return clean(html_to_text(entry.content), title=entry.title, recurring=recurring)
    return clean(entry.content, title=entry.title, recurring=recurring)


def _is_page(content: str) -> bool:
    head = content[:2000].lower()
    return "<html" in head or "<body" in head or "<!doctype" in head


def html_to_text(fragment: str) -> str:
    """Text of an HTML fragment (a feed entry's content), one block element per line."""
    if not fragment.strip():
        return ""
    try:
        root = lxml.html.fragment_fromstring(fragment, create_parent="div")
    except (ValueError, lxml.etree.ParserError):
        return normalise(fragment)
    for bad in root.xpath("//script|//style|//noscript|//iframe|//figure|//figcaption"):
        bad.drop_tree()
    for block in root.xpath("//p|//div|//br|//li|//h1|//h2|//h3|//h4|//h5|//h6|//blockquote"):
        block.tail = "\n" + (block.tail or "")
    return normalise(root.text_content())


def clean(raw: str, *, title: str | None = None,
          recurring: frozenset[str] = frozenset()) -> Cleaned:
    """Boilerplate-free text (one paragraph per line) and headline of a plain-text article.

    `title`, when the source supplies one, is used as the headline; otherwise the headline line
    is found among the first lines. `recurring` holds normalised lines this source repeats
    across many articles (see `line_key`).
    """
    lines = _join_wrapped([_undouble(line) for line in normalise(raw).split("\n")])
    stripped: list[tuple[str, str]] = []
    if title is None:
        title, lines, dropped = _find_title(lines)
        stripped.extend(dropped)
    else:
        title = _undouble(normalise(title))
    kept: list[str] = []
    title_key = line_key(title) if title else None
    for index, line in enumerate(lines):
        if not line:
            continue
        reason = _boilerplate_reason(line, lines, index, title_key=title_key,
                                     recurring=recurring)
        if reason:
            stripped.append((line, reason))
        else:
            kept.append(line)
    return Cleaned(title=title, text="\n".join(kept), stripped=tuple(stripped))


def line_key(line: str) -> str:
    """The form in which a source's recurring lines are counted: its words, lower-cased."""
    return " ".join(words(line))


RECURRING_MAX_WORDS = 20  # longer lines are counted too rarely to be worth tracking


def countable_lines(cleaned: Cleaned) -> tuple[str, ...]:
    """The lines of the text the cleaner was given (those it kept and those it stripped), in
    the form it compares them: the raw HTML of a page has none of them."""
    lines = [*cleaned.text.split("\n"), *(line for line, _ in cleaned.stripped)]
    keys = (line_key(line) for line in lines)
    return tuple(k for k in keys if k and len(k.split()) <= RECURRING_MAX_WORDS)


def _undouble(line: str) -> str:
    """'HeadlineHeadline' (a title rendered twice by the site) -> 'Headline'."""
    half, rest = divmod(len(line), 2)
    if not rest and half >= 10 and line[:half] == line[half:]:
        return line[:half]
    return line


def _join_wrapped(lines: list[str]) -> list[str]:
    """Rejoin a sentence hard-wrapped over two lines (or many: linear in their number)."""
    out: list[list[str]] = []
    for line in lines:
        if out and line and out[-1][-1] and _continues(out[-1][-1], line):
            out[-1].append(line)  # only the end of what it continues matters to _continues
        else:
            out.append([line])
    return [" ".join(parts) for parts in out]


def _continues(previous: str, line: str) -> bool:
    if _TERMINAL.search(previous):
        return False
    last = previous.rsplit(" ", 1)[-1].lower()
    return line[0].islower() or previous.endswith(",") or last in _JOINERS


def _is_sentence(line: str) -> bool:
    return bool(_TERMINAL.search(line)) and len(line.split()) > MAX_SHORT_WORDS


def _find_title(lines: list[str]) -> tuple[str, list[str], list[tuple[str, str]]]:
    """The headline among the first lines, skipping site chrome (outlet names, labels)."""
    dropped: list[tuple[str, str]] = []
    for index, line in enumerate(lines[:8]):
        if not line:
            continue
        reason = _chrome_before_title(line)
        if reason:
            dropped.append((line, reason))
            continue
        parts = list(sentences(line))
        if len(parts) == 1 and len(line.split()) <= MAX_TITLE_WORDS:
            if _TERMINAL.search(line):  # a standfirst sentence: headline and part of the story
                return line.rstrip(".;"), lines[index:], dropped
            return line, lines[index + 1 :], dropped
        return _shorten(parts[0]), lines[index:], dropped  # no headline line: the story starts
    return "", lines, dropped


def _chrome_before_title(line: str) -> str | None:
    n = len(line.split())
    if line.endswith(":") and n <= MAX_LABEL_WORDS:
        return "label"
    if _DOMAIN.search(line) and not _TERMINAL.search(line):
        return "outlet name"
    if n <= MAX_SHORT_WORDS and not _TERMINAL.search(line):
        return "short line"
    return _hard_reason(line)


def _shorten(sentence: str, limit: int = 16) -> str:
    tokens = sentence.rstrip(".").split()
    if len(tokens) <= limit:
        return " ".join(tokens)
    cut = " ".join(tokens[:limit])
    clause = cut.rsplit(",", 1)[0]
    return (clause if len(clause.split()) >= 8 else cut) + "…"


def _hard_reason(line: str) -> str | None:
    """Rules that hold whatever the line's length or punctuation."""
    if _HASH.match(line.replace(" ", "")) and " " not in line.strip():
        return "stray hash"
    if _URL.match(line):
        return "bare URL"
    if _COPYRIGHT.search(line) and len(line.split()) <= 25:
        return "copyright"
    if _READ_MORE.match(line):
        return "read more"
    if len(_PROMO_CUES.findall(line)) >= 2 and len(line.split()) <= MAX_PROMO_WORDS:
        return "promotion"
    return None


def _boilerplate_reason(line: str, lines: list[str], index: int, *, title_key: str | None,
                        recurring: frozenset[str]) -> str | None:
    hard = _hard_reason(line)
    if hard:
        return hard
    if recurring and line_key(line) in recurring:
        return "repeated across this source"
    if title_key is not None and line_key(line) == title_key and not _TERMINAL.search(line):
        return "headline repeated"
    n = len(line.split())
    if _BYLINE.match(line) and n <= 8 and not _TERMINAL.search(line):
        return "byline"
    if re.fullmatch(r"\([^()]{0,80}\)", line) and n <= 8:
        return "credit"
    if line.endswith(":") and n <= MAX_LABEL_WORDS:
        return "label"
    if _is_sentence(line):
        return None
    if _PHOTO_CREDIT.search(line[-MAX_CREDIT_CHARS:]):
        return "photo credit"
    if n <= MAX_HEADING_WORDS and _SHARE_CUES.search(line):
        return "share or navigation"
    if n <= MAX_SHORT_WORDS:
        return "short line"
    if n > MAX_HEADING_WORDS:
        # a caption is one unpunctuated sentence; several sentences are story text
        return "caption" if n <= MAX_CAPTION_WORDS and len(list(sentences(line))) == 1 else None
    if _repeated_elsewhere(line, lines, index):
        return "caption"
    return None  # a sub-heading


def _repeated_elsewhere(line: str, lines: list[str], index: int) -> bool:
    start = max(0, index - CAPTION_WINDOW)
    window = lines[start : index + CAPTION_WINDOW + 1]
    return any(i != index and other != line and line in other
               for i, other in enumerate(window, start))
