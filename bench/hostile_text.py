"""Hostile-text benchmark: every cleaner over arXiv text, at n and 2n characters, side by side.

Each cleaner that touches feed text (the parsers' author, TeX and HTML cleaners,
and the store's folding for its author and search indexes) runs on texts built
to make a backtracking regex or a rescanning loop blow up (nested parentheses,
long runs of spaces, unclosed groups, runs of `<`...). Linear time shows as a
2n/n ratio near 2; a quadratic cleaner shows near 4 (and takes minutes at
300 KB). The next rows parse whole hostile RSS listings of n and 2n items;
the last ones run the regex loop that `_strip_parenthesised` replaced, on
small inputs, to show what quadratic looks like. Times are the best of
`--rounds`; on a busy machine expect ratios between 1.5 and 3 for linear code.

    .venv/bin/python -m bench.hostile_text [--size 200000] [--rounds 5]
"""

from __future__ import annotations

import argparse
import re
import time
from collections.abc import Callable
from pathlib import Path

from bot.arxiv.atom import _HTML_TAG
from bot.arxiv.feeds import (
    clean_author_name,
    parse_rss,
    split_author_list,
    tex_accents_to_unicode,
)
from bot.arxiv.text import _strip_parenthesised
from bot.domain.names import author_key, fold, fold_for_index, query_key
from tests.bot.arxiv.hostile import pathological, rss_item, rss_listing

ROOT = Path(__file__).resolve().parents[1]

CLEANERS: dict[str, Callable[[str], object]] = {
    "strip_parenthesised": _strip_parenthesised,
    "split_author_list": split_author_list,
    "clean_author_name": clean_author_name,
    "tex_accents_to_unicode": tex_accents_to_unicode,
    "html tags": lambda text: _HTML_TAG.sub(" ", text),
    "names.fold": fold,
    "names.fold_for_index": fold_for_index,
    "names.author_key": author_key,
    "names.query_key": query_key,
}


# The cleaner before the fix, innermost groups first, one regex pass per level.
_OLD_PARENTHESISED = re.compile(r"\s*\([^()]*\)")


def old_strip_parenthesised(text: str) -> str:
    while True:
        stripped = _OLD_PARENTHESISED.sub("", text)
        if stripped == text:
            return stripped
        text = stripped


def best(action: Callable[[], object], rounds: int) -> float:
    times = []
    for _ in range(rounds):
        started = time.perf_counter()
        action()
        times.append(time.perf_counter() - started)
    return min(times)


def hostile_listing(items: int) -> bytes:
    filler = "(" * 20_000 + " " * 40_000 + ")" * 20_000
    return rss_listing([rss_item(n + 1, creators=f"A B {filler}, C D") for n in range(items)])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=200_000, help="n, in characters")
    parser.add_argument("--rounds", type=int, default=5, help="best of this many runs")
    args = parser.parse_args()
    n = args.size
    small, large = pathological(n), pathological(2 * n)
    print(f"{'cleaner':24} {'input':26} {'n ms':>9} {'2n ms':>9} {'2n/n':>6}")
    worst = 0.0
    for name, clean in CLEANERS.items():
        for kind in small:
            a = best(lambda: clean(small[kind]), args.rounds)  # noqa: B023
            b = best(lambda: clean(large[kind]), args.rounds)  # noqa: B023
            ratio = b / a if a > 0 else float("nan")
            if a * 1000 >= 5:  # ratios of runs of a few milliseconds are noise
                worst = max(worst, ratio)
            print(f"{name:24} {kind:26} {a * 1000:9.2f} {b * 1000:9.2f} {ratio:6.2f}")
    items = 20
    one, two = hostile_listing(items), hostile_listing(2 * items)
    a = best(lambda: parse_rss(one), args.rounds)
    b = best(lambda: parse_rss(two), args.rounds)
    label = f"{items} vs {2 * items} x 80 KB"
    print(f"{'parse_rss':24} {label:26} {a * 1000:9.2f} {b * 1000:9.2f} {b / a:6.2f}")
    for kind in ("nested parens", "spaces then no paren"):
        old_small, old_large = pathological(10_000)[kind], pathological(20_000)[kind]
        a = best(lambda: old_strip_parenthesised(old_small), args.rounds)  # noqa: B023
        b = best(lambda: old_strip_parenthesised(old_large), args.rounds)  # noqa: B023
        label = f"{kind}, 10K vs 20K"
        print(f"{'before: regex loop':24} {label:26} {a * 1000:9.2f} {b * 1000:9.2f} {b / a:6.2f}")
    print(f"worst 2n/n ratio over runs of 5 ms or more: {worst:.2f} (linear ~2, quadratic ~4)")


if __name__ == "__main__":
    main()
