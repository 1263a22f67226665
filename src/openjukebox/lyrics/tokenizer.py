"""Character tokenizers for lyrics: the original's two vocabularies, and vocabularies built from data.

Id 0 is both "unknown" and padding; characters have ids 1..n. The official vocabularies (``v2``:
5b_lyrics, 80 ids with '+'; ``v3``: 1b_lyrics, 79 ids) first fold text to ASCII with ``unidecode``
as the original did, turn backslashes into newlines, and drop what is not in the vocabulary. A
vocabulary built from training lyrics keeps the characters it saw (any language, Unicode NFC), so
it needs no ASCII folding, and whitespace it lacks (a newline) becomes a space. Dropped characters
are reported in a warning, never silently.
"""

from __future__ import annotations

import unicodedata
import warnings
from collections import Counter
from dataclasses import dataclass

_ASCII_CHARS = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789.,:;!?-"
V2_CHARS = _ASCII_CHARS + "+'\"()[] \t\n"
V3_CHARS = _ASCII_CHARS + "'\"()[] \t\n"


def _unidecode():
    try:
        from unidecode import unidecode
    except ImportError:  # pragma: no cover - depends on the environment
        raise ImportError(
            "the official lyric vocabularies fold text to ASCII with the 'Unidecode' package, as the original "
            "did; install it with: pip install 'openjukebox[official]'"
        ) from None
    return unidecode


@dataclass(frozen=True)
class Tokenizer:
    """Characters ``chars[i]`` have id i+1; ``ascii_fold`` applies the original's Unicode-to-ASCII step."""

    chars: str
    ascii_fold: bool = False

    def __post_init__(self):
        if len(set(self.chars)) != len(self.chars):
            raise ValueError("a lyric vocabulary lists each character once")

    @property
    def n_vocab(self) -> int:
        return len(self.chars) + 1

    @classmethod
    def official(cls, version: str) -> Tokenizer:
        """The original's ``v2`` (5b_lyrics) or ``v3`` (1b_lyrics) vocabulary."""
        if version not in ("v2", "v3"):
            raise ValueError(f"unknown lyric vocabulary {version!r}; the original has 'v2' and 'v3'")
        return cls(V2_CHARS if version == "v2" else V3_CHARS, ascii_fold=True)

    @classmethod
    def build(cls, texts, min_count: int = 1) -> Tokenizer:
        """A vocabulary of the characters in ``texts`` (seen at least ``min_count`` times), sorted."""
        counts = Counter(ch for text in texts for ch in _normalise(text))
        return cls("".join(sorted(ch for ch, n in counts.items() if n >= min_count)))

    def clean_chars(self, text: str) -> list[tuple[int, str]]:
        """(index in ``text``, kept character) pairs, so that timed lyrics keep each character's time."""
        fold = _unidecode() if self.ascii_fold else None
        allowed = set(self.chars)
        kept, dropped = [], []
        if not self.ascii_fold:
            text = unicodedata.normalize("NFC", text)
        space = " " in allowed and not self.ascii_fold  # our vocabularies: unknown whitespace becomes a space
        for i, ch in enumerate(text):
            out = (fold(ch) if fold else ch).replace("\\", "\n")
            if space and out.isspace() and out not in allowed:
                out = " "
            chosen = [c for c in out if c in allowed]
            if not chosen:
                dropped.append(ch)
            kept.extend((i, c) for c in chosen)
        if dropped:
            shown = ", ".join(repr(c) for c in sorted(set(dropped)))
            warnings.warn(f"lyrics: dropped {len(dropped)} character(s) the model cannot sing: {shown}", stacklevel=3)
        return kept

    def clean(self, text: str) -> str:
        return "".join(c for _, c in self.clean_chars(text))

    def encode(self, text: str) -> list[int]:
        """Clean ``text`` and return its ids."""
        index = {c: i + 1 for i, c in enumerate(self.chars)}
        return [index[c] for _, c in self.clean_chars(text)]

    def decode(self, ids) -> str:
        """Ids back to text; 0 (unknown/padding) becomes nothing."""
        return "".join(self.chars[i - 1] for i in ids if i > 0)

    def to_dict(self) -> dict:
        return {"chars": self.chars, "ascii_fold": self.ascii_fold}

    @classmethod
    def from_dict(cls, d: dict) -> Tokenizer:
        return cls(d["chars"], bool(d.get("ascii_fold", False)))


def _normalise(text: str) -> str:
    return unicodedata.normalize("NFC", text).replace("\\", "\n")
