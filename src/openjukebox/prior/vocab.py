"""Artist and genre vocabularies of our own models: names collected from training metadata.

Id 0 is reserved for "unknown" (songs without the field). Looking up a name the model never saw
is an error that lists the closest known names; the original silently used id 0.
"""

from __future__ import annotations

import difflib
import re
import warnings
from dataclasses import dataclass, field
from pathlib import Path

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

    def extend(self, entries: list[dict]) -> LabelVocab:
        """This vocabulary with the names of ``entries`` it lacks appended (sorted among themselves):
        every known name keeps its id, so a model fine-tuned with it still takes every old name."""
        new = LabelVocab.from_metadata(entries)
        grow = lambda old, found: Vocab(old.kind, (*old.names, *[n for n in found.names if n not in old.names]))  # noqa: E731
        return LabelVocab(grow(self.artists, new.artists), grow(self.genres, new.genres))

    def to_dict(self) -> dict:
        return {"artists": list(self.artists.names), "genres": list(self.genres.names)}

    @classmethod
    def from_dict(cls, d: dict) -> LabelVocab:
        return cls(Vocab("artist", tuple(d["artists"])), Vocab("genre", tuple(d["genres"])))

    def artist_id(self, artist: str | None) -> int:
        return self.artists.id(artist)

    def genre_ids(self, genre, slots: int) -> list[int]:
        """Ids of a genre name or list of names, padded with -1 to ``slots`` entries."""
        names = genre if isinstance(genre, (list, tuple)) else [genre] if genre else []
        ids = [self.genres.id(g) for g in names][:slots]
        return ids + [-1] * (slots - len(ids))


@dataclass(frozen=True)
class OfficialVocab:
    """The original's artist and genre ids (``v2``: 5b, 5b_lyrics, upsamplers; ``v3``: 1b_lyrics).

    v2 normalises names as ``normalise`` does and splits a genre into a bag of words; v3 matches
    the lower-cased name exactly, with a single genre. Unknown names map to id 0 with a warning,
    as in the original. The id lists are the user's (``data/ids`` of the original repository).
    """

    version: str
    artists: dict[str, int]
    genres: dict[str, int]

    @classmethod
    def read(cls, ids_dir, version: str) -> OfficialVocab:
        """Read ``{version}_artist_ids.txt`` and ``{version}_genre_ids.txt`` (``name;id`` lines)."""

        def table(kind: str) -> dict[str, int]:
            path = Path(ids_dir) / f"{version}_{kind}_ids.txt"
            if not path.exists():
                raise FileNotFoundError(
                    f"{path} is missing: --ids must point to the data/ids folder of the original jukebox "
                    "repository (v2_artist_ids.txt, v2_genre_ids.txt, v3_artist_ids.txt, v3_genre_ids.txt)"
                )
            out = {}
            for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
                if not line.strip():
                    continue
                name, sep, value = line.strip().rpartition(";")
                if not sep or not value.lstrip("-").isdigit():
                    raise ValueError(f"{path}:{number}: expected 'name;id', got {line!r}")
                out[name.lower()] = int(value)
            return out

        return cls(version, table("artist"), table("genre"))

    def artist_key(self, artist: str) -> str:
        return artist.lower() if self.version == "v3" else normalise(artist)

    def genre_keys(self, genre: str) -> list[str]:
        return [genre.lower()] if self.version == "v3" else normalise(genre).split("_")

    def _check_tables(self, kind: str) -> None:
        if not (self.artists if kind == "artist" else self.genres):
            raise ValueError(
                f"this model was imported without the original's {kind} ids, so {kind} names cannot be looked up; "
                "import it again with --ids pointing to the data/ids folder of the original repository"
            )

    def artist_id(self, artist: str | None) -> int:
        if not artist:
            return 0
        self._check_tables("artist")
        key = self.artist_key(artist)
        if key not in self.artists:
            warnings.warn(
                f"artist {artist!r} ({key!r}) is not in the {self.version} ids; using 'unknown' (0)", stacklevel=2
            )
        return self.artists.get(key, 0)

    def genre_ids(self, genre, slots: int) -> list[int]:
        """Ids of a genre (or list of genres), padded with -1 (no genre) to ``slots`` entries.

        None gives no genre; the empty name '' gives id 0, as the original's lookup does."""
        ids = []
        for name in genre if isinstance(genre, (list, tuple)) else [] if genre is None else [genre]:
            if not name:
                ids.append(0)  # the original's tables map '' to 0: no warning, no tables needed
                continue
            self._check_tables("genre")
            for key in self.genre_keys(name):
                if key not in self.genres:
                    warnings.warn(
                        f"genre word {key!r} is not in the {self.version} ids; using 'unknown' (0)", stacklevel=2
                    )
                ids.append(self.genres.get(key, 0))
        if len(ids) > slots:
            raise ValueError(f"genre {genre!r} has {len(ids)} words; this model takes at most {slots}")
        return ids + [-1] * (slots - len(ids))

    def extend(self, entries: list[dict], artist_bins: int, genre_bins: int) -> OfficialVocab:
        """The ids with the artists and genre words of ``entries`` it lacks added after the model's
        ``artist_bins`` and ``genre_bins`` rows; the original ids stay as they are."""
        artists, genres = dict(self.artists), dict(self.genres)
        for e in entries:
            if e.get("artist") and self.artist_key(e["artist"]) not in artists:
                artists[self.artist_key(e["artist"])] = max([artist_bins - 1, *artists.values()]) + 1
            for name in e.get("genre") if isinstance(e.get("genre"), (list, tuple)) else [e.get("genre")]:
                for key in self.genre_keys(name) if name else []:
                    if key not in genres:
                        genres[key] = max([genre_bins - 1, *genres.values()]) + 1
        return OfficialVocab(self.version, artists, genres)

    @property
    def sizes(self) -> tuple[int, int]:
        """The embedding rows the ids need: (artists, genres)."""
        return max(self.artists.values(), default=0) + 1, max(self.genres.values(), default=0) + 1

    def to_dict(self) -> dict:
        return {"official": self.version, "artists": self.artists, "genres": self.genres}


def vocab_from_dict(d: dict) -> LabelVocab | OfficialVocab:
    """The label vocabulary saved with a model: our own, or the original's ids."""
    if d.get("official"):
        return OfficialVocab(d["official"], dict(d["artists"]), dict(d["genres"]))
    return LabelVocab.from_dict(d)
