"""bot.bulk._line_chunks: runs of whole lines for the parser processes, numbered, capped."""

from __future__ import annotations

import io

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bot import bulk
from bot.arxiv import snapshot
from bot.arxiv.snapshot import SnapshotLineError

CAP = 40
BLOCK = 64


def chunked(data: bytes) -> tuple[dict[int, bytes], list[int], int]:
    """(line number -> line as the chunks hold it, over-long lines reported, lines counted)."""
    report = bulk.BulkReport()
    reported: list[int] = []

    def bad(into: bulk.BulkReport, error: SnapshotLineError) -> None:
        assert into is report
        reported.append(error.line)

    seen: dict[int, bytes] = {}
    for chunk, first in bulk._line_chunks(io.BytesIO(data), report, bad):
        assert chunk.endswith(b"\n")
        for offset, line in enumerate(chunk[:-1].split(b"\n")):
            assert first + offset not in seen, "a line number came twice"
            seen[first + offset] = line
    return seen, reported, report.lines


@pytest.fixture(autouse=True)
def small_sizes(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(bulk, "CHUNK_BYTES", BLOCK)
    monkeypatch.setattr(snapshot, "MAX_LINE_BYTES", CAP)


lines_strategy = st.lists(
    st.binary(max_size=150).map(lambda b: b.replace(b"\n", b"x")), min_size=1, max_size=30
)


@settings(max_examples=300)
@given(lines=lines_strategy, final_newline=st.booleans())
def test_every_line_keeps_its_number_and_long_ones_are_reported(
    lines: list[bytes], final_newline: bool
) -> None:
    """Whatever the lengths and wherever the blocks cut, each line up to the cap reaches
    the parser under its own number; each longer one is reported under its number, held
    nowhere, and counted; nothing else is."""
    data = b"\n".join(lines) + (b"\n" if final_newline else b"")
    if not final_newline and lines[-1] == b"":
        lines = lines[:-1]  # "a\n" + "" without a newline is just "a\n"
    seen, reported, counted = chunked(data)
    long = [n for n, line in enumerate(lines, start=1) if len(line) > CAP]
    assert reported == long
    assert counted == len(long)
    for number, line in enumerate(lines, start=1):
        if len(line) <= CAP:
            assert seen[number] == line
        else:
            assert seen.get(number, b"") == b""  # blanked in its chunk, or never sent
    assert max(seen, default=0) <= len(lines)


def test_an_over_long_line_across_many_blocks_is_skipped_without_being_joined() -> None:
    data = b"short\n" + b"y" * (BLOCK * 5 + 3) + b"\nafter\n"
    seen, reported, counted = chunked(data)
    assert reported == [2] and counted == 1
    assert seen[1] == b"short" and seen[3] == b"after"
    assert all(len(line) <= CAP for line in seen.values())
