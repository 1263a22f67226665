"""Rendered scores: the music21 corpus played by General MIDI instrument sets, offline.

Each score of a chosen composer (or collection) in music21's corpus is read part by part and played
with ``tinysoundfont`` through the General MIDI SoundFont that ships inside ``pretty_midi``
(TimGM6mb). Every (score, instrument set) pair is one track: the composer is its artist and the
instrument set its genre. Needs ``pip install 'openjukebox[data]'``.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..audio.io import save_audio
from ..fileio import atomic_path

# General MIDI programs per part (cycled over a score's parts), one set per genre.
INSTRUMENT_SETS: dict[str, list[int]] = {
    "piano": [0],
    "organ": [19],
    "strings": [40, 41, 42, 42],  # violin, viola, cello
    "guitar": [24],
    "choir": [52],
    "brass": [56, 60, 57, 58],  # trumpet, horn, trombone, tuba
    "woodwinds": [73, 71, 68, 70],  # flute, clarinet, oboe, bassoon
}
COMPOSERS = {
    "bach": "Johann Sebastian Bach",
    "beethoven": "Ludwig van Beethoven",
    "mozart": "Wolfgang Amadeus Mozart",
    "haydn": "Joseph Haydn",
    "handel": "George Frideric Handel",
    "monteverdi": "Claudio Monteverdi",
    "palestrina": "Giovanni Pierluigi da Palestrina",
    "schumann": "Robert Schumann",
}
# The corpus formats a piece may come in, most preferred first (Beethoven's quartets are in both).
SCORE_FORMATS = {".mxl": 0, ".musicxml": 1, ".xml": 2, ".krn": 3, ".abc": 4, ".mid": 5}
LICENSE = "public domain (music21 corpus: BSD/LGPL; TimGM6mb SoundFont: GPL-2)"


def _imports():
    try:
        import music21
        import pretty_midi
        import tinysoundfont
    except ImportError as e:
        raise ImportError(
            f"rendered scores need music21, pretty_midi and tinysoundfont ({e.name} is missing): "
            "pip install 'openjukebox[data]' && pip install --no-deps tinysoundfont"
        ) from None
    return music21, pretty_midi, tinysoundfont


def soundfont_path() -> Path:
    """The General MIDI SoundFont shipped inside pretty_midi."""
    _, pretty_midi, _ = _imports()
    return Path(pretty_midi.__file__).parent / "TimGM6mb.sf2"


@dataclass(frozen=True)
class TimeMap:
    """Score time (quarter notes) to seconds: the base tempo scaled per phrase, a rest after each phrase.

    ``phrase_ends`` (quarters, increasing) split the score into phrases; phrase i plays at
    ``spq * factors[i]`` seconds per quarter and is followed by ``pauses[i]`` seconds of silence.
    Without phrases it is the steady tempo ``spq``."""

    spq: float
    phrase_ends: tuple[float, ...] = ()
    factors: tuple[float, ...] = (1.0,)
    pauses: tuple[float, ...] = ()

    def __call__(self, quarters: float) -> float:
        seconds, start = 0.0, 0.0
        for end, factor, pause in zip(self.phrase_ends, self.factors, self.pauses, strict=False):
            if quarters <= end:
                return seconds + (quarters - start) * self.spq * factor
            seconds += (end - start) * self.spq * factor + pause
            start = end
        return seconds + (quarters - start) * self.spq * self.factors[len(self.phrase_ends)]

    def quarters_at(self, seconds: float) -> float:
        """The score time (quarters) at ``seconds``: the inverse of the map (a rest maps to its phrase end)."""
        elapsed, start = 0.0, 0.0
        for end, factor, pause in zip(self.phrase_ends, self.factors, self.pauses, strict=False):
            phrase = (end - start) * self.spq * factor
            if seconds <= elapsed + phrase:
                return start + (seconds - elapsed) / (self.spq * factor)
            elapsed += phrase + pause
            start = end
            if seconds <= elapsed:
                return end
        return start + (seconds - elapsed) / (self.spq * self.factors[len(self.phrase_ends)])

    @classmethod
    def uneven(cls, spq: float, phrase_ends: list[float], seed: int) -> TimeMap:
        """A rubato performance: each phrase 0.75-1.35x the base duration per quarter, 0.4-1.5 s of
        rest after each phrase end; drawn from ``seed``."""
        rng = np.random.default_rng(seed)
        ends = tuple(sorted(set(phrase_ends)))
        factors = tuple(float(f) for f in rng.uniform(0.75, 1.35, len(ends) + 1))
        return cls(spq, ends, factors, tuple(float(p) for p in rng.uniform(0.4, 1.5, len(ends))))


def tempo_spq(score) -> float:
    """Seconds per quarter note of the score's first metronome mark (90 bpm without one)."""
    marks = list(score.flatten().getElementsByClass("MetronomeMark"))
    bpm = float(marks[0].getQuarterBPM()) if marks and marks[0].number else 90.0
    return 60.0 / bpm


def score_notes(score, max_seconds: float, time: TimeMap | None = None) -> list[list[tuple[int, float, float]]]:
    """Each part's notes (midi, start s, duration s), ties merged, timed by ``time`` (default: the
    score's steady tempo)."""
    time = time or TimeMap(tempo_spq(score))
    last = time.quarters_at(max_seconds)
    parts = []
    for part in score.parts:
        notes = []
        # only the notes that start in time: merging the ties of a whole quartet takes minutes
        heard = part.flatten().getElementsByOffset(0, last, includeEndBoundary=False).stream()
        for n in heard.stripTies().notes:
            start = time(float(n.offset))
            if start >= max_seconds:
                break
            end = time(float(n.offset) + float(n.quarterLength))
            for p in n.pitches:
                notes.append((int(p.midi), start, max(0.05, end - start)))
        if notes:
            parts.append(notes)
    return parts


def render(
    parts: list[list[tuple[int, float, float]]], programs: list[int], sample_rate: int, tail: float = 1.0
) -> np.ndarray:
    """Mono float32 audio of the parts, part i played with ``programs[i % len(programs)]``."""
    _, _, tsf = _imports()
    synth = tsf.Synth(samplerate=sample_rate)
    sfid = synth.sfload(str(soundfont_path()))
    events = []
    for i, notes in enumerate(parts):
        chan = i if i < 9 else i + 1  # channel 9 is drums
        synth.program_select(chan, sfid, 0, programs[i % len(programs)])
        for midi, start, dur in notes:
            events.append((start, 1, chan, midi))
            events.append((start + dur, 0, chan, midi))
    events.sort(key=lambda e: (e[0], e[1]))
    chunks, now = [], 0
    for time, on, chan, midi in events:
        target = int(round(time * sample_rate))
        if target > now:
            chunks.append(np.frombuffer(synth.generate(target - now), dtype=np.float32))
            now = target
        synth.noteon(chan, midi, 90) if on else synth.noteoff(chan, midi)
    chunks.append(np.frombuffer(synth.generate(int(tail * sample_rate)), dtype=np.float32))
    audio = np.concatenate(chunks).reshape(-1, 2).mean(axis=1)
    peak = np.abs(audio).max()
    return (audio * (0.5 / peak) if peak > 0 else audio).astype(np.float32)


def piece_id(path) -> str:
    """A score's identity in music21's corpus: its path below the corpus root without the format
    suffix ("mozart/k155/movement1", "bach/bwv153.1"), the same for the .krn and .mxl of one piece."""
    music21, _, _ = _imports()
    path = Path(str(path))
    root = Path(music21.corpus.__file__).parent
    if path.is_absolute() and path.is_relative_to(root):
        path = path.relative_to(root)
    if path.suffix in SCORE_FORMATS:
        path = path.with_suffix("")
    return path.as_posix()


def file_stem(piece: str) -> str:
    """A file-name stem unique per piece: "mozart/k155/movement1" -> "mozart_k155_movement1"."""
    return piece.replace("/", "_")


def corpus_paths(composer: str, limit: int) -> list:
    """The first ``limit`` distinct pieces of ``composer`` (one file per piece, MusicXML preferred)."""
    music21, _, _ = _imports()
    if composer not in COMPOSERS:
        raise ValueError(f"unknown composer {composer!r}; known: {', '.join(COMPOSERS)}")
    chosen: dict[str, Path] = {}
    for path in music21.corpus.getComposer(composer):
        piece, path = piece_id(path), Path(path)
        rank = SCORE_FORMATS.get(path.suffix, len(SCORE_FORMATS))
        if piece not in chosen or rank < SCORE_FORMATS.get(chosen[piece].suffix, len(SCORE_FORMATS)):
            chosen[piece] = path
    return list(chosen.values())[:limit]


def build_scores(
    out: str | Path,
    sample_rate: int = 22050,
    composers: Iterable[str] = ("bach", "beethoven", "mozart", "haydn"),
    per_composer: int = 8,
    sets: Iterable[str] = ("piano", "strings", "organ", "guitar", "choir"),
    max_seconds: float = 60.0,
    progress=None,
) -> Path:
    """Render ``per_composer`` scores of each composer with every instrument set into ``out``;
    writes ``out/manifest.jsonl`` (path, artist, genre, title, piece, duration, license, source).

    ``piece`` names the score ("mozart/k155/movement1"): every rendering of it shares it, so that
    training holds out pieces, not renderings. File names are unique per (piece, instrument set)."""
    music21, _, _ = _imports()
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    sets = list(sets)
    for s in sets:
        if s not in INSTRUMENT_SETS:
            raise ValueError(f"unknown instrument set {s!r}; known: {', '.join(INSTRUMENT_SETS)}")
    jobs = [(c, p) for c in composers for p in corpus_paths(c, per_composer)]
    lines = []
    for composer, path in progress(jobs) if progress else jobs:
        score = music21.converter.parse(path)
        parts = score_notes(score, max_seconds)
        if not parts:
            continue
        piece = piece_id(path)
        for genre in sets:
            audio = render(parts, INSTRUMENT_SETS[genre], sample_rate)[: int(max_seconds * sample_rate)]
            name = f"{file_stem(piece)}_{genre}.flac"
            save_audio(out / name, audio, sample_rate)
            lines.append(
                {
                    "path": name,
                    "artist": COMPOSERS[composer],
                    "genre": genre,
                    "title": Path(piece).name,
                    "piece": piece,
                    "duration": round(len(audio) / sample_rate, 3),
                    "license": LICENSE,
                    "source": "music21",
                }
            )
    manifest = out / "manifest.jsonl"
    with atomic_path(manifest) as tmp:
        Path(tmp).write_text("".join(json.dumps(line) + "\n" for line in lines))
    return manifest
