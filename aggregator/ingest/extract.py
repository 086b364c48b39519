"""Main text of an entry: HTML through trafilatura, then one boilerplate cleaner for all text.

The cleaner works line by line with rules that generalise across sites (navigation and label
lines, bylines, share/subscribe/"read more" lines, promotions, author and follow boxes, tag
lists, time stamps, copyright, captions and photo credits, stray hashes, lines a source repeats
in many articles). What is not chrome stays: a line that reads as a sentence (short ones
too), a sub-heading over the text it opens, list items, and an unpunctuated line unless it
is a caption (printed beside or again with a photo credit). Every removal is recorded with its
reason so an operator can see what was stripped; `python bench/run.py cleaner` says how many
words each rule removes on the extraction benchmark, in the hand-made bodies and not.
"""

from __future__ import annotations

import codecs
import re
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any

import lxml.html

from ..model import Cleaned, Entry, Provenance
from ..text import line_key, normalise, sentences, words
from .provenance import page_provenance

# a line ends a sentence: a terminal mark, then only closing quotes and brackets (what the regex
# [.!?…;:。！？]["'”’»)\]]*$|["”’»]$ says; the marks and the closers have no character in common,
# so stripping the closers leaves the mark last), or a closing quote alone
_TERMINALS = tuple(".!?…;:。！？")
_CLOSERS = "\"'”’»)]"
_CLOSING_QUOTES = tuple("\"”’»")
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
    r"|watch|listen|click here|continue reading|trending|must read|top stories|also on|see more)"
    r"\b\W*", re.I)
_PHOTO_CREDIT = re.compile(  # names possessive (*+): no backtracking into them (ReDoS)
    r"(?:[-–—|/]\s*|\.)(?:[A-Z][\w.]*+\s?){0,4}(?:/\s*)?(?:getty images|afp|reuters|ap photo|ap"
    r"|epa|shutterstock|xinhua|anadolu|dpa|photo|file photo|handout|image)(?:\s+via\s+\w+)?\s*$",
    re.I)
_PROMO_CUES = re.compile(
    r"\b(?:subscri(?:be|bing|ptions?)|sign up|newsletters?|free for|free trial|unlimited access"
    r"|exclusive app|download (?:our|the) app|offers?|award-winning|membership|become a member"
    r"|support (?:our|independent) journalism|advertisement|sponsored|promo code|per month"
    r"|use (?:the )?code|paywalls?"
    r"|follow us|join us|log ?in|register now|try \w+(?: \w+)? free)\b", re.I)
_SHARE_CUES = re.compile(
    r"\b(?:share|tweet|email|e-mail|print|facebook|twitter|whatsapp|linkedin|telegram|reddit"
    r"|pinterest|copy link|comments?|scroll|menu|home|back to top|next|previous|prev|login"
    r"|source link|about the author|topics|tags|updated|location)\b", re.I)
_READER = re.compile(r"\b(?:you|your|yours|our|us)\b", re.I)
_TAGS = re.compile(r"^(?:tags|topics|keywords|filed under)\b", re.I)
# an author box or a "follow us" line: an address or handle, and a call to use it
_CONTACT = re.compile(r"[\w.+-]@[\w-]+\.\w|(?<![\w@])@\w{2,}|twitter\.com/\w", re.I)
_CONTACT_CUES = re.compile(r"\b(?:follow|reach(?:ed)?|e-?mail|write to|contact|tips?)\b", re.I)
_REPORTING = re.compile(  # "Reporting by A; Editing by B" (a story may open "Reporting by")
    r"^\(?(?:additional reporting|writing|editing) by\b"
    r"|^\(?reporting by\b.*\b(?:editing|writing|additional reporting) by\b"
    r"|\bcontributed to this report\W*$", re.I)
_MONTH = (r"(?:january|february|march|april|may|june|july|august|september|october|november"
          r"|december|jan|feb|mar|apr|jun|jul|aug|sept?|oct|nov|dec)\.?")
_DATE_WORD = re.compile(  # the words of a date or time: "Tuesday, November 19, 2019 08:38 AM"
    rf"^(?:{_MONTH},?|(?:mon|tues?|wed|thu|thurs|fri|sat|sun)(?:day)?\.?,?|monday|wednesday"
    r"|thursday|saturday|\d[\d:/.,-]*|[ap]\.?m\.?|at|on|/|[|-])$",
    re.I)
_DATE_ALONE = re.compile(rf"\b{_MONTH}(?!\w)|\d/\d|\d:\d\d", re.I)
_STAMP_CUES = re.compile(r"\b(?:published|updated|posted|modified|\w+ ago)\b", re.I)
_LIST_ITEM = re.compile(r"^(?:[-–—*•]\s|\d{1,2}[.)]\s)")
_JOINERS = frozenset(
    "a an the of to in on at by for from with and or but as that which who whose than its his"
    " her their our your this these those is are was were be been has have had".split())

MAX_SHORT_WORDS = 3  # an unpunctuated line this short is a label, tag or navigation item
MAX_HEADING_WORDS = 8  # an unpunctuated line up to this long with a share cue is navigation
MAX_TITLE_WORDS = 30
MIN_SENTENCE_CHARS = 12  # one "word" this long with a full stop: a sentence of CJK text
MAX_STAMP_WORDS = 16  # "New Delhi, News Nation Bureau | Updated : 19 November 2019, 09:01 AM"
MAX_LABEL_WORDS = 2  # "Topics:", "Last Updated:", "- Location :"; longer lines lead into text
MAX_CAPTION_WORDS = 40  # longer unpunctuated lines are story text that lost its full stop
MAX_PROMO_WORDS = 60  # a promotion is a line or two; a long paragraph with "offer" is news
MAX_CREDIT_CHARS = 120  # a photo credit ends its line: "– Jane Doe/AFP via Getty Images" is 31
CAPTION_WINDOW = 200  # lines either side searched for a caption's repeat; articles are shorter


def extract_html(html: str | bytes, *, url: str | None = None,
                 recurring: frozenset[str] = frozenset(), title: str | None = None) -> Cleaned:
    """Main text of an HTML page via trafilatura, then the boilerplate cleaner. `title`: the
    headline the feed gave, kept as the headline; the page's own is then stripped from the
    text as a repeat too (one pass of the cleaner for both).

    trafilatura's metadata pass (dates, authors, site names) costs about a third of its time
    and gives us only the headline, so the headline is read from the parsed page here.
    trafilatura runs in its fast mode, without the comparison against readability and justext,
    and keeps tables (see `trafilatura_options` for what each option costs and gains).
    """
    import trafilatura  # deferred: importing it costs ~0.3 s and only HTML needs it

    tree = trafilatura.load_html(html)
    if tree is None:
        return Cleaned(title="", text="")
    own = page_title(tree)
    declared = page_provenance(tree, url=url)
    doc = trafilatura.bare_extraction(tree, url=url, **trafilatura_options())
    text = getattr(doc, "text", None)
    if not text:
        return Cleaned(title="", text="", declared=declared)
    headline = title or own
    also = (own,) if title and own else ()
    return replace(clean(text, title=headline, recurring=recurring, also=also),
                   declared=declared)


def trafilatura_options() -> dict[str, Any]:
    """How `extract_html` calls trafilatura (the benches time trafilatura alone the same way).

    Measured on the extraction benchmark (181 pages, word 4-shingles micro-averaged, after our
    cleaner; trafilatura's time against the call without the change, per page the best of 4-6
    interleaved runs; `python bench/run.py options` prints them):
    - include_tables: precision 0.978 -> 0.976, recall 0.966 -> 0.971 (tables of results,
      specifications, schedules are story text), 1.01-1.04x the time: taken.
    - favor_recall (with tables): 0.78-0.80x the time, as it skips trafilatura's teaser pruning,
      but precision 0.9765 -> 0.9758 for the same recall (related-story teasers, CSS class names
      and wire slugs stay): not taken, speed bought with chrome in the stored text.
    - include_formatting: markdown markers in the text; P 0.971, R 0.966: no.
    - fast=False (the comparison with readability and justext): P 0.973, R 0.970, 1.35-1.38x
      the time: no.
    """
    return {"fast": True, "with_metadata": False, "include_comments": False,
            "include_tables": True}


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


def decoded(entry: Entry) -> Entry:
    """The entry with its content decoded from the bytes it came as (itself when it was)."""
    if entry.data is None:
        return entry
    return replace(entry, content=decode(entry.data, entry.encoding,
                                         html=entry.content_type == "text/html"), data=None)


_BOMS = ((codecs.BOM_UTF8, "utf-8-sig"), (codecs.BOM_UTF16_LE, "utf-16"),
         (codecs.BOM_UTF16_BE, "utf-16"))
# a page's own declaration, where browsers look for it (its first 1,024 bytes): <meta
# charset=...> or <meta http-equiv="Content-Type" content="text/html; charset=...">
_META_CHARSET = re.compile(
    rb"<meta\s[^>]*?(?<![\w-])charset\s*+=\s*+[\"']?\s*+([\w.:-]++)", re.I)
# Python's codec for a label -> the decoder browsers use (its superset), after the WHATWG
# Encoding Standard: Latin-1 and ASCII are read as windows-1252, GB2312 as GB18030, ...
_WHATWG = {"iso8859-1": "cp1252", "ascii": "cp1252", "iso8859-9": "cp1254", "tis-620": "cp874",
           "iso8859-11": "cp874", "gb2312": "gb18030", "gbk": "gb18030", "shift_jis": "cp932",
           "euc_kr": "cp949", "big5": "big5hkscs"}
# WHATWG labels Python does not know
_LABELS = {"x-gbk": "gb18030", "x-sjis": "cp932", "windows-31j": "cp932",
           "windows-949": "cp949", "cn-big5": "big5hkscs", "x-x-big5": "big5hkscs",
           "windows-874": "cp874", "dos-874": "cp874", "iso-8859-8-i": "iso8859-8",
           "logical": "iso8859-8", "x-mac-cyrillic": "mac-cyrillic"}
# codecs Python has that browsers do not read pages in (utf-7 and hz they refuse outright);
# those that are not ASCII-compatible (EBCDIC, UTF-32, utf-8-sig) are refused by `_codec`
_NOT_CHARSETS = {"idna", "punycode", "unicode-escape", "raw-unicode-escape", "undefined",
                 "utf-7", "hz", "charmap"}
_UTF16 = {"utf-16", "utf-16-le", "utf-16-be"}


def decode(data: bytes, declared: str | None, *, html: bool) -> str:
    """A page's or a text file's bytes as text, as browsers read them (never an error: what
    does not decode is replaced). A byte-order mark says the encoding; so does a head of
    ASCII interleaved with NUL bytes (UTF-16 without its mark). Bytes that are valid UTF-8
    are UTF-8 whatever is declared (text in another encoding with non-ASCII in it practically
    never is: as feeds are read, parse.py), but for a declared 7-bit ISO-2022 charset;
    else the charset the response declared, then (a page) the one its own <meta> declares
    (a UTF-16 label there means UTF-8: it was read as ASCII); else UTF-8."""
    for bom, codec in _BOMS:
        if data.startswith(bom):
            return _decoded_as(data, codec)
    unmarked = _utf16_unmarked(data[:1024])
    if unmarked:
        return _decoded_as(data, unmarked)
    header = _codec(declared)
    if header and header.startswith("iso2022"):  # its text is valid UTF-8 too
        return _decoded_as(data, header)
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        pass
    if header:
        return _decoded_as(data, header)
    meta = _META_CHARSET.search(data, 0, 1024) if html else None
    if meta:
        found = _codec(meta.group(1).decode("ascii"))
        if found:
            return _decoded_as(data, "utf-8" if found in _UTF16 else found)
    return _decoded_as(data, "utf-8")


def _decoded_as(data: bytes, codec: str) -> str:
    try:
        return data.decode(codec, errors="replace")
    except (LookupError, ValueError):  # a codec that takes no errors="replace"
        return data.decode("utf-8", errors="replace")


def _utf16_unmarked(head: bytes) -> str | None:
    """"utf-16-le" or "-be" when most of one parity of `head`'s bytes are NUL and few of the
    other (ASCII markup in UTF-16 without a byte-order mark); else None."""
    if len(head) < 16:
        return None
    even, odd = head[0::2].count(0) / len(head[0::2]), head[1::2].count(0) / len(head[1::2])
    if odd > 0.5 and even < 0.1:
        return "utf-16-le"
    if even > 0.5 and odd < 0.1:
        return "utf-16-be"
    return None


def _codec(label: str | None) -> str | None:
    """The decoder for a charset label (a response's or a page's), or None when it names no
    charset browsers read pages in."""
    if not label:
        return None
    label = label.strip().strip("\"'").lower()
    if label in _LABELS:
        return _LABELS[label]
    try:
        codec = codecs.lookup(label)
    except (LookupError, ValueError):  # (ValueError: a NUL in the name)
        return None
    name = codec.name
    if (name in _NOT_CHARSETS or not getattr(codec, "_is_text_encoding", True)
            or (name not in _UTF16 and "<meta".encode(name) != b"<meta")):  # EBCDIC, UTF-32
        return None
    return _WHATWG.get(name, name)


def clean_entry(entry: Entry, recurring: frozenset[str] = frozenset()) -> Cleaned:
    """The cleaned text of an entry: whole pages through trafilatura, feed HTML to text."""
    entry = decoded(entry)
    if entry.content_type == "text/html":
        if _is_page(entry.content):
            return extract_html(entry.content, url=entry.url, recurring=recurring,
                                title=entry.title)
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


def clean(raw: str, *, title: str | None = None, recurring: frozenset[str] = frozenset(),
          also: Sequence[str] = ()) -> Cleaned:
    """Boilerplate-free text (one paragraph per line) and headline of a plain-text article.

    `title`, when the source supplies one, is used as the headline; otherwise the headline line
    is found among the first lines. `recurring` holds normalised lines this source repeats
    across many articles (see `line_key`). `also`: other forms of the headline (a page's own
    beside its feed's), stripped from the text like it.
    """
    lines = _join_wrapped([_undouble(line) for line in normalise(raw).split("\n")])
    stripped: list[tuple[str, str]] = []
    declared = Provenance()
    if title is None:
        title, lines, dropped = _find_title(lines)
        stripped.extend(dropped)
        declared = Provenance(site=_outlet(dropped))
    else:
        title = _undouble(normalise(title))
    kept: list[str] = []
    headlines = frozenset(line_key(t) for t in (title, *also) if t)
    page = _Text(lines=lines, title_keys=headlines, recurring=recurring,
                 credited=_credited(lines))
    for index, line in enumerate(lines):
        if not line:
            continue
        reason = _boilerplate_reason(line, index, page)
        if reason:
            stripped.append((line, reason))
        else:
            kept.append(line)
    return Cleaned(title=title, text="\n".join(kept), stripped=tuple(stripped),
                   declared=declared)


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
    if _terminated(previous):
        return False
    last = previous.rsplit(" ", 1)[-1].lower()
    return line[0].islower() or previous.endswith(",") or last in _JOINERS


def _terminated(line: str) -> bool:
    """Whether a line ends as a sentence does (see _TERMINALS): string methods, where a regex
    anchored at the end would try every position of a long paragraph."""
    return line.endswith(_CLOSING_QUOTES) or line.rstrip(_CLOSERS).endswith(_TERMINALS)


def _is_sentence(line: str) -> bool:
    return _terminated(line) and (" " in line or len(line) >= MIN_SENTENCE_CHARS)


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
            if _terminated(line):  # a standfirst sentence: headline and part of the story
                return line.rstrip(".;"), lines[index:], dropped
            return line, lines[index + 1 :], dropped
        return _shorten(parts[0]), lines[index:], dropped  # no headline line: the story starts
    return "", lines, dropped


def _chrome_before_title(line: str) -> str | None:
    n = len(line.split())
    if _is_label(line):
        return "label"
    if _DOMAIN.search(line) and not _terminated(line):
        return "outlet name"
    if n <= MAX_SHORT_WORDS and not _terminated(line):
        return "short line"
    return _hard_reason(line, n)


def _outlet(dropped: list[tuple[str, str]]) -> str | None:
    """The outlet a text file names above its headline ("Voz media US Voz.us"): the web
    address in that line, as written ("Voz.us"), the one part of it sure to be the name."""
    for line, reason in dropped:
        if reason == "outlet name" and (found := _DOMAIN.search(line)):
            return found.group().lstrip("-")
    return None


def _shorten(sentence: str, limit: int = 16) -> str:
    tokens = sentence.rstrip(".").split()
    if len(tokens) <= limit:
        return " ".join(tokens)
    cut = " ".join(tokens[:limit])
    clause = cut.rsplit(",", 1)[0]
    return (clause if len(clause.split()) >= 8 else cut) + "…"


def _hard_reason(line: str, n: int) -> str | None:
    """Rules that hold whatever the line's length (`n` words) or punctuation. A pattern that
    cannot match without a word of its own in the line (in `_folded` form) is not run where
    the word is absent: the regexes searching the whole line were most of the cleaner's time."""
    if " " not in line.strip() and _HASH.match(line.replace(" ", "")):
        return "stray hash"
    if _URL.match(line):
        return "bare URL"
    low = _folded(line) if n <= MAX_PROMO_WORDS else ""  # each rule that reads it wants n <= 60
    if n <= 25 and _found(_COPYRIGHT, line, low):
        return "copyright"
    if _READ_MORE.match(line):
        return "read more"
    if _TAGS.match(line) and not _terminated(line) and (
            ":" in line[:16] or n > MAX_HEADING_WORDS):  # "Topics for Monday" may be a heading
        return "tags"
    if n > MAX_PROMO_WORDS:
        return None
    if _found(_CONTACT, line, low) and _CONTACT_CUES.search(line):
        return "author or follow box"
    if _found(_REPORTING, line, low):
        return "credit"
    if _is_promotion(line):
        return "promotion"
    return None


# the letters besides A-Z and a-z that an ASCII letter of a pattern matches under re.IGNORECASE
# (the re module's documentation): folded to theirs, so a word absent from `_folded(line)`
# cannot be matched in the line
_IGNORECASE_EXTRA = (("İ", "i"), ("ı", "i"), ("ſ", "s"), ("K", "k"))


def _folded(line: str) -> str:
    """The line in lower case, for a quick test of whether a pattern's word can be in it."""
    if not line.isascii():
        for extra, letter in _IGNORECASE_EXTRA:  # (str.translate is slower on a whole line)
            if extra in line:
                line = line.replace(extra, letter)
    return line.lower()


# what a pattern cannot match without: one of these in the line's `_folded` form
_NEEDS: dict[re.Pattern[str], tuple[str, ...]] = {
    _COPYRIGHT: ("©", "(c)", "copyright", "all rights reserved"),
    _CONTACT: ("@", "twitter.com/"),
    _REPORTING: (" by", "contributed to this report"),
}


def _found(pattern: re.Pattern[str], line: str, low: str) -> bool:
    """pattern.search(line), run only where `low` (the line `_folded`) holds what it needs."""
    return any(word in low for word in _NEEDS[pattern]) and bool(pattern.search(line))


def _is_promotion(line: str) -> bool:
    """Two kinds of sales talk, addressed to the reader (a report on a company's subscriptions
    is news)."""
    if not (_READER.search(line) or _PROMO_CUES.match(line)):
        return False
    return len({cue.lower() for cue in _PROMO_CUES.findall(line)}) >= 2


@dataclass(frozen=True, slots=True)
class _Text:
    """The lines of the text being cleaned and what the rules compare a line with."""

    lines: list[str]
    title_keys: frozenset[str]  # the headline's forms, as line_key gives them
    recurring: frozenset[str]
    credited: frozenset[int]  # the lines ending in a photo credit, by index


def _credited(lines: list[str]) -> frozenset[int]:
    return frozenset(i for i, line in enumerate(lines)
                     if line and not _is_sentence(line)
                     and _PHOTO_CREDIT.search(line[-MAX_CREDIT_CHARS:]))


def _boilerplate_reason(line: str, index: int, page: _Text) -> str | None:
    n = len(line.split())
    hard = _hard_reason(line, n)
    if hard:
        return hard
    key = line_key(line)
    if page.recurring and key in page.recurring:
        return "repeated across this source"
    if key in page.title_keys and not _terminated(line):
        return "headline repeated"
    if _BYLINE.match(line) and n <= 8 and not _terminated(line):
        return "byline"
    if n <= 8 and line.startswith("(") and re.fullmatch(r"\([^()]{0,80}\)", line):
        return "credit"
    if _is_label(line):
        return "label"
    if _is_sentence(line):
        short_cue = n <= MAX_SHORT_WORDS and _SHARE_CUES.search(line) and line[-1] != "?"
        return "share or navigation" if short_cue else None  # "Share this!", not "What next?"
    if index in page.credited:
        return "photo credit"
    if n <= MAX_STAMP_WORDS and _is_timestamp(line):
        return "timestamp"
    item = bool(_LIST_ITEM.match(line))
    if n <= (MAX_SHORT_WORDS if item else MAX_HEADING_WORDS) and _SHARE_CUES.search(line):
        return "share or navigation"  # a list item that says more is a point of the story
    if n <= MAX_SHORT_WORDS and not (_heads_text(line, index, page)
                                     or (item and _in_list(index, page))):
        return "short line"
    if n <= MAX_CAPTION_WORDS and _is_caption(line, index, page):
        return "caption"
    return None  # a sub-heading, a list item, story text without its full stop


def _is_timestamp(line: str) -> bool:
    """A date or time alone, or one said to be when the page was published or updated."""
    dates = [bool(_DATE_WORD.match(token)) for token in line.split()]
    if all(dates):  # a day with its month, or a date or time with separators: no phone number
        return bool(_DATE_ALONE.search(line)) and any(c.isdigit() for c in line)
    return sum(dates) >= 2 and bool(_STAMP_CUES.search(line))


def _is_label(line: str) -> bool:
    """A field name: "Topics:", "Last Updated:"; longer lines ending in a colon lead into text
    ("Here's what to know:")."""
    return line.endswith(":") and len(words(line)) <= MAX_LABEL_WORDS


def _neighbour(lines: list[str], index: int, step: int) -> int | None:
    """The index of the nearest non-empty line before (step -1) or after (step 1) `index`."""
    i = index + step
    while 0 <= i < len(lines):
        if lines[i]:
            return i
        i += step
    return None


def _in_list(index: int, page: _Text) -> bool:
    """The list item at `index` has another item right before or after it."""
    return any(i is not None and _LIST_ITEM.match(page.lines[i])
               for i in (_neighbour(page.lines, index, -1), _neighbour(page.lines, index, 1)))


def _heads_text(line: str, index: int, page: _Text) -> bool:
    """A short line that opens what follows: a capitalised heading over a paragraph or list."""
    first = line[0]
    if first.islower() or not (first.isalnum() or first in "\"'“‘"):
        return False
    after = _neighbour(page.lines, index, 1)
    following = page.lines[after] if after is not None else ""
    return _is_sentence(following) or bool(_LIST_ITEM.match(following))


def _is_caption(line: str, index: int, page: _Text) -> bool:
    """An unpunctuated line printed again nearby with a photo credit after it, or right
    beside a photo credit (a caption in two languages, one of them credited)."""
    if len(list(sentences(line))) > 1:
        return False  # several sentences are story text
    beside = {_neighbour(page.lines, index, -1), _neighbour(page.lines, index, 1)}
    return any(i in beside or (abs(i - index) <= CAPTION_WINDOW
                               and len(page.lines[i]) > len(line)
                               and page.lines[i].startswith(line))
               for i in page.credited)
