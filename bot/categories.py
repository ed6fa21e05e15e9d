"""arXiv's category taxonomy: validation and autocomplete for category names.

The table ships as package data (`bot/data/categories.tsv`, one `id<TAB>name`
per line) and holds every subject class plus the whole archives (`cs`,
`math`, `astro-ph`, ...) that the RSS feeds also accept. Users type ids in any
case (`CS.lg`); the canonical spelling is arXiv's (`cs.LG`, `cond-mat.mes-hall`).
"""

from __future__ import annotations

import difflib
import logging
from dataclasses import dataclass
from functools import cache
from importlib import resources

from bot.domain.errors import InvalidInputError

log = logging.getLogger(__name__)

MAX_CHOICE_LABEL = 100  # Discord's limit for an autocomplete choice name


@dataclass(frozen=True, slots=True)
class Category:
    id: str
    name: str

    @property
    def archive(self) -> str:
        return self.id.split(".", 1)[0]

    @property
    def label(self) -> str:
        """`cs.LG · Machine Learning`, as shown in autocomplete."""
        return f"{self.id} · {self.name}"[:MAX_CHOICE_LABEL]


def parse_taxonomy(text: str) -> tuple[Category, ...]:
    """Parse the TSV table; `#` lines are comments. A malformed row is a packaging bug."""
    rows: list[Category] = []
    seen: set[str] = set()
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip() or line.startswith("#"):
            continue
        parts = line.split("\t")
        if len(parts) != 2 or not parts[0].strip() or not parts[1].strip():
            raise ValueError(f"categories.tsv:{number}: expected 'id<TAB>name', got {line!r}")
        cat_id, name = parts[0].strip(), parts[1].strip()
        if cat_id.lower() in seen:
            raise ValueError(f"categories.tsv:{number}: duplicate category {cat_id}")
        seen.add(cat_id.lower())
        rows.append(Category(cat_id, name))
    return tuple(rows)


@cache
def all_categories() -> tuple[Category, ...]:
    """Every category paperbell accepts, in the table's order (archives first)."""
    text = resources.files("bot").joinpath("data", "categories.tsv").read_text("utf-8")
    return parse_taxonomy(text)


@cache
def _by_folded_id() -> dict[str, Category]:
    return {c.id.casefold(): c for c in all_categories()}


def get_category(category_id: str) -> Category | None:
    """The category with this id (any case), or None."""
    return _by_folded_id().get(category_id.strip().casefold())


def _clean(text: str) -> str:
    # Forgive a pasted "arXiv:" prefix and surrounding punctuation/backticks.
    cleaned = text.strip().strip("`'\"[]()").strip()
    if cleaned.casefold().startswith("arxiv:"):
        cleaned = cleaned[len("arxiv:") :].strip()
    return cleaned


def normalize_category(text: str) -> str:
    """The canonical id for a category typed by a user (`CS.lg` -> `cs.LG`).

    Also accepts a category's full name when it is unique (`Robotics` ->
    `cs.RO`). Anything else raises `InvalidInputError` with a suggestion.
    """
    cleaned = _clean(text)
    if not cleaned:
        raise InvalidInputError("Give an arXiv category, like `cs.LG` or `math.PR`.")
    if len(cleaned) > MAX_CHOICE_LABEL:
        raise InvalidInputError("That is not an arXiv category (too long).")
    found = get_category(cleaned)
    if found is not None:
        return found.id
    by_name = [c for c in all_categories() if c.name.casefold() == cleaned.casefold()]
    if len(by_name) == 1:
        return by_name[0].id
    suggestions = suggest_categories(cleaned)
    if suggestions:
        hint = " or ".join(f"`{s}`" for s in suggestions)
        raise InvalidInputError(
            f"`{_shown(cleaned)}` is not an arXiv category. Did you mean {hint}?"
        )
    raise InvalidInputError(
        f"`{_shown(cleaned)}` is not an arXiv category; see https://arxiv.org/category_taxonomy"
    )


def _shown(text: str) -> str:
    # The echo of user input goes inside backticks: drop any that would end the span.
    return text.replace("`", "")[:40]


def suggest_categories(text: str, limit: int = 3) -> list[str]:
    """Category ids close to `text`: near-miss ids first, then ids whose name matches."""
    folded = text.strip().casefold()
    ids = _by_folded_id()
    close = difflib.get_close_matches(folded, list(ids), n=limit, cutoff=0.6)
    result = [ids[c].id for c in close]
    if len(result) < limit:
        for _label, cat_id in autocomplete_categories(text, limit=limit):
            if cat_id not in result:
                result.append(cat_id)
            if len(result) == limit:
                break
    return result[:limit]


def autocomplete_categories(current: str, limit: int = 25) -> list[tuple[str, str]]:
    """(label, value) pairs for an autocomplete box: id prefix matches first, then name words.

    An empty `current` lists the table from the top (the whole archives).
    """
    limit = max(0, min(limit, 25))
    needle = current.strip().casefold()
    if not needle:
        return [(c.label, c.id) for c in all_categories()[:limit]]
    prefix: list[Category] = []
    words: list[Category] = []
    for cat in all_categories():
        if cat.id.casefold().startswith(needle):
            prefix.append(cat)
        elif _name_matches(cat.name, needle):
            words.append(cat)
    return [(c.label, c.id) for c in (prefix + words)[:limit]]


def _name_matches(name: str, needle: str) -> bool:
    """Every word of `needle` starts some word of `name` (`mach lea` ~ Machine Learning)."""
    words = name.casefold().replace(",", " ").replace("-", " ").split()
    return all(any(w.startswith(part) for w in words) for part in needle.split())
