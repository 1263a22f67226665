"""Real scores rendered offline with additive-synthesis instruments.

The project's demo and tests need music without downloads: a few public-domain scores (notes and
rhythms as written) played by harmonic instruments with envelopes and vibrato. Each (score,
instrument) pair is a different piece of "recorded" music; the instrument plays the role of a genre.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .io import save_audio

# Voices as "NOTE:beats" tokens; "R" is a rest. Durations in quarter-note beats.
_MINUET_RH = (
    "D5:1 G4:.5 A4:.5 B4:.5 C5:.5 D5:1 G4:1 G4:1 E5:1 C5:.5 D5:.5 E5:.5 F#5:.5 G5:1 G4:1 G4:1 "
    "C5:1 D5:.5 C5:.5 B4:.5 A4:.5 B4:1 C5:.5 B4:.5 A4:.5 G4:.5 F#4:1 G4:.5 A4:.5 B4:.5 G4:.5 A4:3 "
    "D5:1 G4:.5 A4:.5 B4:.5 C5:.5 D5:1 G4:1 G4:1 E5:1 C5:.5 D5:.5 E5:.5 F#5:.5 G5:1 G4:1 G4:1 "
    "C5:1 D5:.5 C5:.5 B4:.5 A4:.5 B4:1 C5:.5 B4:.5 A4:.5 G4:.5 A4:1 B4:.5 A4:.5 G4:.5 F#4:.5 G4:3"
)
_MINUET_LH = (
    "G3:2 A3:1 B3:3 C4:3 B3:3 A3:3 G3:3 D4:1 B3:1 G3:1 D4:1 D3:1 C4:1 "
    "B3:2 A3:1 B3:1 G3:1 B3:1 C4:3 B3:1 C4:1 A3:1 A3:1 B3:1 G3:1 C4:1 D4:1 D3:1 G3:2 G2:1"
)
_ODE = (
    "E4:1 E4:1 F4:1 G4:1 G4:1 F4:1 E4:1 D4:1 C4:1 C4:1 D4:1 E4:1 E4:1.5 D4:.5 D4:2 "
    "E4:1 E4:1 F4:1 G4:1 G4:1 F4:1 E4:1 D4:1 C4:1 C4:1 D4:1 E4:1 D4:1.5 C4:.5 C4:2"
)
_ODE_BASS = "C3:4 G2:4 C3:4 G2:4 C3:4 G2:4 C3:2 G2:2 G2:2 C3:2"
_JACQUES = (
    "C4:1 D4:1 E4:1 C4:1 C4:1 D4:1 E4:1 C4:1 E4:1 F4:1 G4:2 E4:1 F4:1 G4:2 "
    "G4:.5 A4:.5 G4:.5 F4:.5 E4:1 C4:1 G4:.5 A4:.5 G4:.5 F4:.5 E4:1 C4:1 C4:1 G3:1 C4:2 C4:1 G3:1 C4:2"
)

SCORES: dict[str, list[str]] = {
    "minuet_in_g": [_MINUET_RH, _MINUET_LH],
    "ode_to_joy": [_ODE, _ODE_BASS],
    "frere_jacques": [_JACQUES, "R:8 " + _JACQUES, "R:16 " + _JACQUES],  # a three-voice round
}


@dataclass(frozen=True)
class Instrument:
    """Harmonic amplitudes, envelope times (s), exponential decay (s, 0 = sustained), vibrato."""

    harmonics: tuple[float, ...]
    attack: float
    release: float
    decay: float = 0.0
    vibrato_hz: float = 0.0
    vibrato_depth: float = 0.0


INSTRUMENTS: dict[str, Instrument] = {
    "piano": Instrument(tuple(1 / n**1.5 for n in range(1, 13)), 0.005, 0.05, decay=0.8),
    "organ": Instrument((1, 0.8, 0.6, 0.3, 0.5, 0.2, 0.3, 0.1), 0.02, 0.03),
    "strings": Instrument(tuple(1 / n for n in range(1, 16)), 0.08, 0.1, vibrato_hz=5.0, vibrato_depth=0.004),
    "clarinet": Instrument(tuple(1 / n if n % 2 else 0.02 for n in range(1, 12)), 0.03, 0.05),
    "guitar": Instrument(tuple(1 / n**2 for n in range(1, 10)), 0.002, 0.05, decay=0.35),
}

_NOTE = re.compile(r"^([A-G])([#b]?)(-?\d)$")
_SEMITONE = {"C": 0, "D": 2, "E": 4, "F": 5, "G": 7, "A": 9, "B": 11}


def note_to_midi(name: str) -> int:
    """'A4' -> 69, 'F#5' -> 78, 'Bb3' -> 58."""
    m = _NOTE.match(name)
    if not m:
        raise ValueError(f"not a note name: {name!r} (expected e.g. C4, F#5, Bb3)")
    letter, acc, octave = m.groups()
    return 12 * (int(octave) + 1) + _SEMITONE[letter] + {"#": 1, "b": -1, "": 0}[acc]


def parse_voice(voice: str) -> list[tuple[int | None, float, float]]:
    """'C4:1 R:2 D4:.5' -> [(midi or None, start_beat, beats), ...]."""
    notes, t = [], 0.0
    for token in voice.split():
        name, beats = token.split(":")
        dur = float(beats)
        notes.append((None if name == "R" else note_to_midi(name), t, dur))
        t += dur
    return notes


def _render_note(midi: int, seconds: float, inst: Instrument, sr: int, amp: float) -> np.ndarray:
    n = int(seconds * sr) + int(inst.release * sr)
    t = np.arange(n) / sr
    f0 = 440.0 * 2 ** ((midi - 69) / 12)
    phase = 2 * np.pi * f0 * t
    if inst.vibrato_hz:
        phase += (inst.vibrato_depth * f0 / inst.vibrato_hz) * np.sin(2 * np.pi * inst.vibrato_hz * t)
    tone = sum(a * np.sin(h * phase) for h, a in enumerate(inst.harmonics, 1) if h * f0 < sr / 2.2)
    env = np.minimum(1.0, t / inst.attack)
    if inst.decay:
        env *= np.exp(-t / inst.decay)
    release_start = seconds
    env *= np.clip(1.0 - (t - release_start) / inst.release, 0.0, 1.0)
    return (amp * env * tone).astype(np.float32)


def render_score(score: str, instrument: str, sample_rate: int, bpm: float = 100.0, transpose: int = 0) -> np.ndarray:
    """Render a score of SCORES with an instrument of INSTRUMENTS: mono float32 (T,), peak 0.8."""
    if score not in SCORES:
        raise ValueError(f"unknown score {score!r}; known: {', '.join(SCORES)}")
    if instrument not in INSTRUMENTS:
        raise ValueError(f"unknown instrument {instrument!r}; known: {', '.join(INSTRUMENTS)}")
    inst, spb = INSTRUMENTS[instrument], 60.0 / bpm
    voices = [parse_voice(v) for v in SCORES[score]]
    end = max(start + dur for v in voices for _, start, dur in v)
    out = np.zeros(int((end * spb + 1.0) * sample_rate), dtype=np.float32)
    for voice in voices:
        for midi, start, dur in voice:
            if midi is None:
                continue
            note = _render_note(midi + transpose, dur * spb, inst, sample_rate, amp=1.0 / inst.harmonics[0])
            i = int(start * spb * sample_rate)
            out[i : i + len(note)] += note[: len(out) - i]
    return out * (0.8 / max(float(np.abs(out).max()), 1e-6))


def write_rendered_dataset(
    out_dir: str | Path, sample_rate: int, transposes=(0, -3, 4), scores: tuple[str, ...] | None = None
) -> list[Path]:
    """Render scores (default all) x instruments x transpositions to FLAC files in out_dir."""
    out_dir = Path(out_dir)
    paths = []
    for score in scores or tuple(SCORES):
        for instrument in INSTRUMENTS:
            for k, semitones in enumerate(transposes):
                bpm = 90 + 15 * k
                audio = render_score(score, instrument, sample_rate, bpm=bpm, transpose=semitones)
                path = out_dir / f"{score}__{instrument}__{k}.flac"
                paths.append(save_audio(path, audio, sample_rate))
    return paths
