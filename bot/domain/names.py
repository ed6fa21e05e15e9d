"""Folding of author names and keywords into comparable keys: pure functions, no I/O.

The paper store's author index and the bot's subscription matcher both use
these, so a name typed in Discord and a name in an arXiv listing meet on the
same key. Folding strips TeX accents (`Del\\'etang`, `{\\"o}`, `\\c{c}`,
`{\\ss}`), Unicode accents (NFKD, combining marks dropped) and letters without
a decomposition (`ł`, `ø`, `æ`), case-folds, and turns punctuation into spaces.

An author's key is the folded *last* surname token plus the folded given-name
tokens. Only the last token is robust across spellings: `Grau-Moya` and
`Grau Moya`, `von Neumann` and `Neumann` all end in the same token. The given
tokens then decide with initials (`P. A. Ortega` ~ `Pedro Ortega`); surname
particles (`von`, `de`) and the leading parts of hyphenated surnames are left
out of them, so `von Neumann` and `Grau-Moya` typed alone still find the person.
"""

from __future__ import annotations

import logging
import re
import unicodedata
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

log = logging.getLogger(__name__)

# ---- folding --------------------------------------------------------------------------

# TeX control words that stand for a letter; TeX swallows `{}` or spaces after them.
_TEX_LETTERS = {
    "ss": "ss", "SS": "SS", "ae": "ae", "AE": "AE", "oe": "oe", "OE": "OE", "aa": "a", "AA": "A",
    "o": "o", "O": "O", "l": "l", "L": "L", "i": "i", "j": "j", "dh": "d", "DH": "D",
    "dj": "d", "DJ": "D", "th": "th", "TH": "TH", "ng": "ng", "NG": "NG",
}  # fmt: skip
_TEX_LETTER = re.compile(
    r"\\(" + "|".join(sorted(_TEX_LETTERS, key=len, reverse=True)) + r")(?![A-Za-z])(?:\{\}|[ \t]*)"
)
# Lettered accents (\c{c}, \v S, \H{o}) need a brace or a space before the base letter.
_TEX_LETTER_ACCENT = re.compile(r"\\[cuvHkrdbt](?![A-Za-z])[ \t]*")
_TEX_SYMBOL_ACCENT = re.compile(r"""\\[`'^"~=.]""")
# Any other macro (\emph, \mathbb, \&) separates words; its argument stays.
_TEX_OTHER = re.compile(r"\\(?:[A-Za-z]+|[^A-Za-z]?)")

# Letters NFKD leaves alone, mapped to what a person typing ASCII would write.
_PLAIN_LETTERS = {
    "ł": "l", "Ł": "L", "ø": "o", "Ø": "O", "đ": "d", "Đ": "D", "ð": "d", "Ð": "D",
    "þ": "th", "Þ": "Th", "æ": "ae", "Æ": "Ae", "œ": "oe", "Œ": "Oe", "ı": "i", "ȷ": "j",
    "ħ": "h", "Ħ": "H", "ŧ": "t", "Ŧ": "T", "ŋ": "ng", "Ŋ": "Ng", "ß": "ss", "ẞ": "SS",
    "ĸ": "k", "ſ": "s",
}  # fmt: skip
_APOSTROPHES = "'’‘ʼʻ`´"
# Names: O'Brien == OBrien. Keywords: "Newton's" keeps the word "newton".
_NAME_TABLE = str.maketrans({**_PLAIN_LETTERS, **dict.fromkeys(_APOSTROPHES, "")})
_KEYWORD_TABLE = str.maketrans({**_PLAIN_LETTERS, **dict.fromkeys(_APOSTROPHES, " ")})
_NON_WORD = re.compile(r"[\W_]+")
# One pass for ASCII keyword text: letters and digits lowercased, everything else a space.
_ASCII_KEYWORD_FOLD = str.maketrans(
    {c: c.lower() if c.isalnum() else " " for c in map(chr, range(128))}
)
# The ASCII fast path: every ASCII character that is not a letter or digit separates words.
_ASCII_SEPARATORS = str.maketrans(
    {c: " " for c in map(chr, range(128)) if not (c.isascii() and c.isalnum())}
)


def strip_tex(text: str) -> str:
    """Remove TeX accent macros and grouping braces: `Schr\\"{o}dinger` -> `Schrodinger`."""
    if "\\" in text:
        text = _TEX_LETTER.sub(lambda m: _TEX_LETTERS[m[1]], text)
        text = _TEX_LETTER_ACCENT.sub("", text)
        text = _TEX_SYMBOL_ACCENT.sub("", text)
        text = _TEX_OTHER.sub(" ", text)
    if "{" in text or "}" in text:
        text = text.replace("{", "").replace("}", "")
    return text


def _fold_chars(text: str, table: dict[int, str]) -> str:
    """Everything `fold` does but turning punctuation into spaces."""
    text = strip_tex(text).translate(table)
    if text.isascii():
        return text.lower()
    # casefold can itself produce combining marks ("İ" -> "i̇"), so decompose after it too.
    text = unicodedata.normalize("NFKD", unicodedata.normalize("NFKD", text).casefold())
    return "".join(c for c in text if not unicodedata.combining(c)).translate(table)


def _separate(text: str) -> str:
    """Runs of anything but letters and digits become single spaces."""
    if text.isascii():
        return " ".join(text.translate(_ASCII_SEPARATORS).split())
    return _NON_WORD.sub(" ", text).strip()


def _fold(text: str, table: dict[int, str]) -> str:
    return _separate(_fold_chars(text, table))


def fold(text: str) -> str:
    """Fold a name for comparison: accents (Unicode and TeX) and case gone, punctuation -> space.

    Apostrophes are dropped rather than spaced, so `O'Brien` folds like `OBrien`.
    """
    return _fold(text, _NAME_TABLE)


def fold_keyword(text: str) -> str:
    """Fold free text (titles, abstracts, keywords) like `fold`, apostrophes included as spaces."""
    return _fold(text, _KEYWORD_TABLE)


def fold_for_index(text: str) -> str:
    """`fold_keyword`'s tokens, but separated by runs of spaces: cheaper, for the search index."""
    text = strip_tex(text)
    if text.isascii():
        return text.translate(_ASCII_KEYWORD_FOLD)
    return fold_keyword(text)


def keyword_tokens(text: str) -> list[str]:
    """Folded word tokens of free text: `Schrödinger's cat` -> `["schrodinger", "s", "cat"]`."""
    return fold_keyword(text).split()


# ---- author keys ----------------------------------------------------------------------


@dataclass(frozen=True)
class AuthorKey:
    """A name's matching key: the folded last surname token and the folded given tokens."""

    surname: str
    given: tuple[str, ...]

    @property
    def given_key(self) -> str:
        return " ".join(self.given)


_EMPTY = AuthorKey("", ())
_SUFFIX_WORDS = frozenset({("jr",), ("sr",), ("ii",), ("iii",), ("iv",)})
# Surname particles; never dropped when they come first ("Van Nguyen", "Di Wu" are given names).
_PARTICLES = frozenset({
    "von", "van", "der", "den", "de", "del", "della", "delle", "dei", "degli", "di", "da",
    "dos", "das", "do", "du", "des", "la", "le", "lo", "ter", "ten", "te", "zu", "zur", "vom",
    "af", "av", "bin", "ibn", "al", "el",
})  # fmt: skip
# Particles that a typed query starting with them ("von Neumann", "van der Waals")
# almost surely uses as part of the surname, not as a given name.
_LEADING_PARTICLES = frozenset({
    "von", "van", "der", "den", "de", "del", "della", "delle", "degli", "dos", "das", "du",
    "des", "ter", "ten", "zu", "zur", "vom",
})  # fmt: skip
_BALANCED_GROUP = re.compile(r"\([^()]*\)|\[[^\[\]]*\]")
# Words split at spaces, TeX ties and the periods of initials ("P.A.Ortega").
_WORD_BREAK = re.compile(r"[\s~.]+")

_Word = tuple[str, ...]  # one written word's folded tokens: "Grau-Moya" -> ("grau", "moya")


def _strip_affiliations(text: str) -> str:
    for _ in range(3):  # nested groups unwrap from the inside; deeper nesting is cut below
        stripped = _BALANCED_GROUP.sub(" ", text)
        if stripped == text:
            break
        text = stripped
    # An unclosed "(" starts an affiliation that was cut off (or never closed).
    return re.split(r"[(\[]", text, maxsplit=1)[0]


def _words(text: str) -> list[_Word]:
    words: list[_Word] = []
    for raw in _WORD_BREAK.split(_fold_chars(text, _NAME_TABLE)):
        tokens = tuple(_separate(raw).split())
        if tokens:
            words.append(tokens)
    return words


def _is_initial(word: _Word) -> bool:
    return len(word) == 1 and len(word[0]) == 1


def _parts(text: str) -> list[list[_Word]]:
    """Comma-separated parts of a name, each a list of words, suffixes (Jr, III) removed."""
    text = _strip_affiliations(strip_tex(text))
    parts: list[list[_Word]] = []
    for chunk in text.split(","):
        words = _words(chunk)
        while len(words) > 1 and words[-1] in _SUFFIX_WORDS:
            words.pop()
        if words:
            parts.append(words)
    if len(parts) > 1:  # "Gates, Bill, Jr." / "Gates, Jr."
        rest = [p for p in parts[1:] if not (len(p) == 1 and p[0] in _SUFFIX_WORDS)]
        parts = [parts[0], *rest]
    return parts


def _make_key(
    surname_words: Sequence[_Word], given_words: Sequence[_Word], *, typed: bool = False
) -> AuthorKey:
    surname_tokens = [t for w in surname_words for t in w]
    if not surname_tokens:
        return _EMPTY
    given_tokens = [t for w in given_words for t in w]
    if (
        typed
        and all(t in _PARTICLES for t in given_tokens)
        and any(t in _LEADING_PARTICLES for t in given_tokens)
    ):
        given_tokens = []  # "von Neumann": nothing but the surname was typed
    given = tuple(t for i, t in enumerate(given_tokens) if i == 0 or t not in _PARTICLES)
    return AuthorKey(surname_tokens[-1], given)


def _key(text: str, *, surname_first: bool) -> AuthorKey:
    parts = _parts(text)
    if not parts:
        return _EMPTY
    if len(parts) > 1:  # "Last, First"
        return _make_key(parts[0], [w for p in parts[1:] for w in p], typed=surname_first)
    words = parts[0]
    if surname_first and len(words) > 1 and _is_initial(words[-1]) and not _is_initial(words[0]):
        # "legg s", "Ortega P. A.": the surname, then a run of initials.
        cut = len(words)
        while cut > 1 and _is_initial(words[cut - 1]):
            cut -= 1
        return _make_key(words[:cut], words[cut:])
    return _make_key(words[-1:], words[:-1], typed=surname_first)


# Plain ASCII names ("Pedro A. Ortega", "Jordi Grau-Moya", "Sean O'Brien") take a
# shortcut: lowercased, apostrophes dropped, other punctuation a space.
_ASCII_NAME_FOLD = str.maketrans(
    {
        c: c.lower() if c.isalnum() else "" if c in _APOSTROPHES else " "
        for c in map(chr, range(128))
    }
)
_NOT_PLAIN = frozenset(",()[]{}\\~")


def author_key(name: str) -> AuthorKey:
    """Key of a stored arXiv name: "Firstname Lastname", or "Last, First" when it has a comma.

    Parenthesised affiliations and the suffixes Jr/Sr/II/III/IV are ignored;
    `Jordi Grau-Moya` and `Jordi Grau Moya` get compatible keys. Never raises.
    """
    if not (name.isascii() and _NOT_PLAIN.isdisjoint(name)):
        return _key(name, surname_first=False)
    # The same steps as _key for a name without commas, groups or TeX; every stored
    # name goes through here, so this is worth the duplication.
    words = [
        w
        for w in (tuple(raw.translate(_ASCII_NAME_FOLD).split()) for raw in _WORD_BREAK.split(name))
        if w
    ]
    while len(words) > 1 and words[-1] in _SUFFIX_WORDS:
        words.pop()
    return _make_key(words[-1:], words[:-1]) if words else _EMPTY


def query_key(text: str) -> AuthorKey:
    """Key of a name a user typed: like `author_key`, also `Legg S.`, `legg s` (surname first)."""
    return _key(text, surname_first=True)


def _token_match(a: str, b: str) -> bool:
    if a == b:
        return True
    if len(a) == 1:
        return b.startswith(a)
    return len(b) == 1 and a.startswith(b)


def given_compatible(a: tuple[str, ...], b: tuple[str, ...]) -> bool:
    """Whether two given-name tuples can belong to one person.

    Empty is compatible with anything. The first tokens must agree (equal, or
    one is the other's initial); the rest of the shorter tuple must match, in
    order, a subsequence of the rest of the longer one under the same rule.
    `("pedro", "a")` ~ `("p", "a")` ~ `("pedro",)`, but not `("pedro", "b")`.
    """
    if not a or not b:
        return True
    if not _token_match(a[0], b[0]):
        return False
    short, long = (a[1:], b[1:]) if len(a) <= len(b) else (b[1:], a[1:])
    remaining = iter(long)
    # Greedy earliest match is enough: a later match never leaves more room.
    return all(any(_token_match(s, t) for t in remaining) for s in short)


def keys_match(query: AuthorKey, key: AuthorKey) -> bool:
    """Same (non-empty) surname and compatible given names."""
    return (
        bool(query.surname)
        and query.surname == key.surname
        and given_compatible(query.given, key.given)
    )


def names_match(query: str, name: str) -> bool:
    """Whether what a user typed (`query`) can refer to the stored arXiv name `name`."""
    return keys_match(query_key(query), author_key(name))


def names_ambiguous(names: Iterable[str]) -> bool:
    """Whether `names` cannot all be one person: some two of them have incompatible keys.

    `Shane Legg` and `S. Legg` can be one person; `Shane Legg` and `Sarah Legg`
    cannot, and neither can `Pedro A. Ortega` and `Pedro B. Ortega`.
    """
    seen: list[AuthorKey] = []
    for key in dict.fromkeys(author_key(n) for n in names):
        if any(not keys_match(key, other) for other in seen):
            return True
        seen.append(key)
    return False
