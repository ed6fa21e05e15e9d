"""Parse arXiv's bulk metadata snapshot (`arxiv-metadata-oai-snapshot.json`) into `Paper`s.

The snapshot is JSON lines: one object per paper with `id` (versionless),
`authors_parsed` (`[keyname, forenames, suffix]`, sometimes with an
affiliation as a fourth item), `title`, `abstract`, `categories` (space
separated, primary first), `versions` (`{"version": "v1", "created": "Mon, 2
Apr 2007 19:18:42 GMT"}`), `comments`, `journal-ref`, `doi`; any value may be
null. Bytes in, papers out, no I/O beyond the stream the caller opened.

Everything in the file is a stranger's text: a line longer than
`MAX_LINE_BYTES` is refused without being held in memory whole, lists and
strings are capped, and a bad line is reported (`SnapshotLineError` with its
line number) while the lines after it are read as usual.
"""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import IO, Any

from bot.arxiv.text import clean_author_name, split_author_list
from bot.domain.ids import parse_arxiv_id_or_none
from bot.domain.models import Paper

log = logging.getLogger(__name__)

MAX_LINE_BYTES = 4 * 2**20  # the largest real records (big collaborations) are ~300 KB
MAX_AUTHORS = 5_000  # ATLAS/CMS papers list ~3,000
MAX_TEXT = 50_000  # characters kept of a title, abstract or comment
MAX_VERSIONS = 1_000
_CHUNK = 1 << 20

_MONTHS = {
    m: i + 1
    for i, m in enumerate(
        ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")
    )
}


@dataclass(frozen=True, slots=True)
class SnapshotLineError:
    """Why line `line` (1-based) gave no paper; `reason` is short and safe to print."""

    line: int
    reason: str

    def __str__(self) -> str:
        return f"line {self.line}: {self.reason}"


class _BadRecord(ValueError):
    pass


def looks_like_snapshot(head: bytes) -> bool:
    """Whether a file starting with `head` (already decompressed) is JSON lines, not XML."""
    return head.lstrip(b"\xef\xbb\xbf \t\r\n")[:1] == b"{"


def _text(value: Any, limit: int = MAX_TEXT) -> str:
    if not isinstance(value, str):
        return ""
    return " ".join(value[:limit].split())


def _optional(value: Any) -> str | None:
    return _text(value, 2_000) or None


def parse_created(text: Any) -> datetime | None:
    """`Mon, 2 Apr 2007 19:18:42 GMT` -> an aware UTC datetime; None when unreadable.

    Hand-parsed: `email.utils` takes ~10 µs a date and a snapshot has millions.
    """
    if not isinstance(text, str) or len(text) > 64:
        return None
    parts = text.split()
    if len(parts) == 6:  # the weekday is optional in RFC 2822
        parts = parts[1:]
    if len(parts) != 5 or parts[4] not in ("GMT", "UTC", "+0000", "Z"):
        return None
    day, month, year, clock, _ = parts
    hms = clock.split(":")
    try:
        return datetime(
            int(year),
            _MONTHS[month[:3].title()],
            int(day),
            int(hms[0]),
            int(hms[1]),
            int(hms[2]) if len(hms) > 2 else 0,
            tzinfo=UTC,
        )
    except (KeyError, ValueError, IndexError):
        return None


def _version_number(value: Any) -> int:
    if isinstance(value, str) and value[:1] in "vV" and value[1:].isdigit() and len(value) < 8:
        return int(value[1:])
    return 0


def _authors(record: dict[str, Any]) -> tuple[str, ...]:
    parsed = record.get("authors_parsed")
    names: list[str] = []
    if isinstance(parsed, list):
        for entry in parsed[:MAX_AUTHORS]:
            if not isinstance(entry, list):
                continue
            # [keyname, forenames, suffix, (affiliation)]: "forenames keyname suffix".
            keyname = entry[0] if entry and isinstance(entry[0], str) else ""
            forenames = entry[1] if len(entry) > 1 and isinstance(entry[1], str) else ""
            suffix = entry[2] if len(entry) > 2 and isinstance(entry[2], str) else ""
            joined = f"{forenames} {keyname} {suffix}" if suffix else f"{forenames} {keyname}"
            name = clean_author_name(joined[:500])
            if name:
                names.append(name)
        if names:
            return tuple(names)
    raw = record.get("authors")
    if isinstance(raw, str):
        return split_author_list(raw[:200_000])[:MAX_AUTHORS]
    return ()


def _categories(value: Any) -> tuple[str, ...]:
    if not isinstance(value, str):
        return ()
    return tuple(dict.fromkeys(c for c in value[:2_000].split() if len(c) <= 40))


def paper_from_record(record: Any) -> Paper:
    """The `Paper` of one decoded snapshot object; raises ValueError saying what is wrong."""
    if not isinstance(record, dict):
        raise _BadRecord("not a JSON object")
    raw_id = record.get("id")
    if raw_id is None or raw_id == "":
        raise _BadRecord("no id")
    if not isinstance(raw_id, str):
        raise _BadRecord("id is not a string")
    arxiv_id = parse_arxiv_id_or_none(raw_id)
    if arxiv_id is None:
        raise _BadRecord(f"not an arXiv id: {' '.join(raw_id[:40].split())!r}")
    title = _text(record.get("title"))
    if not title:
        raise _BadRecord(f"{arxiv_id.id}: no title")

    version = 0
    first: datetime | None = None
    last: datetime | None = None
    versions = record.get("versions")
    if isinstance(versions, list):
        for item in versions[:MAX_VERSIONS]:
            if not isinstance(item, dict):
                continue
            number = _version_number(item.get("version"))
            created = parse_created(item.get("created"))
            if created is not None:
                first = created if first is None or created < first else first
                if number >= version:
                    last = created
            version = max(version, number)
    categories = _categories(record.get("categories"))
    return Paper(
        id=arxiv_id.id,
        version=max(version, arxiv_id.version or 1),
        title=title,
        abstract=_text(record.get("abstract")),
        authors=_authors(record),
        primary_category=categories[0] if categories else "",
        categories=categories,
        published=first,
        updated=last,
        comment=_optional(record.get("comments")),
        journal_ref=_optional(record.get("journal-ref")),
        doi=_optional(record.get("doi")),
    )


def parse_line(line: bytes) -> Paper:
    """One snapshot line -> `Paper`; ValueError (short, printable) for a bad line."""
    try:
        record = json.loads(line)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise _BadRecord(f"invalid JSON ({str(exc)[:60]})") from None
    except RecursionError:
        raise _BadRecord("invalid JSON (nested too deeply)") from None
    if b"\\ud" in line or b"\\uD" in line:
        # JSON may escape a lone surrogate, which no database can store: make it "?".
        record = _scrub(record)
    return paper_from_record(record)


def _scrub(value: Any) -> Any:
    if isinstance(value, str):
        return value.encode("utf-8", "replace").decode("utf-8")
    if isinstance(value, list):
        return [_scrub(v) for v in value]
    if isinstance(value, dict):
        return {k: _scrub(v) for k, v in value.items()}
    return value


def capped_lines(stream: IO[bytes]) -> Iterator[tuple[int, bytes | None]]:
    """(line number, line) for each line of `stream`, counted from 1; None for a line over
    `MAX_LINE_BYTES`, which is read past in chunks and never joined (memory stays bounded).
    """
    number = 0
    while True:
        line = stream.readline(MAX_LINE_BYTES + 1)
        if not line:
            return
        number += 1
        if len(line) > MAX_LINE_BYTES and not line.endswith(b"\n"):
            skip_rest_of_line(stream)
            yield number, None
            continue
        yield number, line


def skip_rest_of_line(stream: IO[bytes]) -> None:
    """Read past the rest of the current line in chunks, without keeping it."""
    while True:
        rest = stream.readline(_CHUNK)
        if not rest or rest.endswith(b"\n"):
            return


def too_long(number: int) -> SnapshotLineError:
    """The error of line `number`, which was over `MAX_LINE_BYTES`."""
    return SnapshotLineError(number, f"longer than {MAX_LINE_BYTES:,} bytes")


def iter_snapshot(stream: IO[bytes]) -> Iterator[Paper | SnapshotLineError]:
    """Each line's paper, or the error that line gave; blank lines are skipped.

    Memory stays bounded by `MAX_LINE_BYTES`: an over-long line is read past
    in chunks and reported, never joined.
    """
    for number, line in capped_lines(stream):
        if line is None:
            yield too_long(number)
            continue
        if not line.strip():
            continue
        try:
            yield parse_line(line)
        except ValueError as exc:
            yield SnapshotLineError(number, str(exc))


def parse_chunk(data: bytes, first_line: int) -> tuple[list[Paper], list[tuple[int, str]], int]:
    """Parse a run of whole lines (line `first_line` first), for a worker process.

    Returns the papers, the bad lines as (line number, reason), and how many
    non-blank lines there were.
    """
    papers: list[Paper] = []
    errors: list[tuple[int, str]] = []
    lines = 0
    for item in iter_snapshot(io.BytesIO(data)):
        lines += 1
        if isinstance(item, SnapshotLineError):
            errors.append((item.line + first_line - 1, item.reason))
        else:
            papers.append(item)
    return papers, errors, lines
