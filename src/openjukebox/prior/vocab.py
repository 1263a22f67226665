"""Artist and genre vocabularies of our own models: names collected from training metadata.

Id 0 is reserved for "unknown" (songs without the field). Looking up a name the model never saw
is an error that lists the closest known names; the original silently used id 0.
"""

from __future__ import annotations

import difflib
import re
from dataclasses import dataclass, field

UNKNOWN = "unknown"


def normalise(name: str) -> str:
    """Lower case, runs of anything but [a-z0-9] become one '_', trimmed: 'Blues Rock!' -> 'blues_rock'."""
    return re.sub(r"_+", "_", re.sub(r"[^a-z0-9]", "_", name.lower())).strip("_")


@dataclass(frozen=True)
class Vocab:
    """Names -> ids for one label kind ("artist" or "genre"); ids follow ``names``' order."""

    kind: str
    names: tuple[str, ...] = field(default=(UNKNOWN,))

    @classmethod
    def build(cls, kind: str, values) -> Vocab:
        found = sorted({normalise(v) for v in values if v and normalise(v) and normalise(v) != UNKNOWN})
        return cls(kind, (UNKNOWN, *found))

    def __len__(self) -> int:
        return len(self.names)

    def id(self, name: str | None) -> int:
        """The id of ``name`` (0 for None/empty); an unknown name raises with the closest names."""
        if not name:
            return 0
        key = normalise(name)
        try:
            return self.names.index(key)
        except ValueError:
            close = difflib.get_close_matches(key, self.names[1:], n=5, cutoff=0.5)
            known = ", ".join(close) if close else ", ".join(self.names[1:11])
            hint = f"closest known: {known}" if close else f"known {self.kind}s: {known}"
            raise ValueError(f"unknown {self.kind} {name!r} for this model; {hint}") from None


@dataclass(frozen=True)
class LabelVocab:
    artists: Vocab
    genres: Vocab

    @classmethod
    def from_metadata(cls, entries: list[dict]) -> LabelVocab:
        return cls(
            Vocab.build("artist", [e.get("artist") for e in entries]),
            Vocab.build("genre", [e.get("genre") for e in entries]),
        )

    def to_dict(self) -> dict:
        return {"artists": list(self.artists.names), "genres": list(self.genres.names)}

    @classmethod
    def from_dict(cls, d: dict) -> LabelVocab:
        return cls(Vocab("artist", tuple(d["artists"])), Vocab("genre", tuple(d["genres"])))

    def genre_ids(self, genre, slots: int) -> list[int]:
        """Ids of a genre name or list of names, padded with -1 to ``slots`` entries."""
        names = genre if isinstance(genre, (list, tuple)) else [genre] if genre else []
        ids = [self.genres.id(g) for g in names][:slots]
        return ids + [-1] * (slots - len(ids))
