"""Getting the bytes of a source: files of a local directory (and, later, HTTP feeds).

This module is the only one that reads sources from the outside world.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from .errors import SourceError

TEXT_SUFFIXES = {".txt": "text/plain", ".text": "text/plain", ".md": "text/plain",
                 ".html": "text/html", ".htm": "text/html"}
FEED_SUFFIXES = {".xml": "feed", ".rss": "feed", ".atom": "feed", ".rdf": "feed",
                 ".json": "feed"}
MAX_FILE_BYTES = 10 * 1024 * 1024


@dataclass(frozen=True, slots=True)
class Document:
    """One file of a directory source."""

    name: str  # path relative to the directory, '/'-separated
    data: bytes
    kind: str  # "text/plain" | "text/html" | "feed"
    modified_at: datetime


def read_directory(path: Path) -> tuple[list[Document], list[str]]:
    """Every text, HTML and feed file under `path`, in name order, and per-file problems."""
    if not path.is_dir():
        raise SourceError(f"{path}: no such directory")
    documents, problems = [], []
    for file in sorted(p for p in path.rglob("*") if p.is_file()):
        kind = TEXT_SUFFIXES.get(file.suffix.lower()) or FEED_SUFFIXES.get(file.suffix.lower())
        if kind is None or file.name.startswith("."):
            continue
        try:
            documents.append(_read(file, path, kind))
        except SourceError as exc:
            problems.append(str(exc))
    return documents, problems


def _read(file: Path, root: Path, kind: str) -> Document:
    try:
        stat = file.stat()
        if stat.st_size > MAX_FILE_BYTES:
            raise SourceError(f"{file}: larger than {MAX_FILE_BYTES} bytes, skipped")
        data = file.read_bytes()
    except OSError as exc:
        raise SourceError(f"{file}: cannot read: {exc.strerror}") from exc
    return Document(name=file.relative_to(root).as_posix(), data=data, kind=kind,
                    modified_at=datetime.fromtimestamp(stat.st_mtime, UTC))
