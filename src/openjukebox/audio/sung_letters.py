"""A synthetic singing data set where the time of every character is known exactly.

Each letter is "sung" as its own vowel-like tone (a pitch and a formant colour per letter), words
are separated by short rests, and each song's manifest entry carries timed lyrics with one
timestamp per character. It trains small lyrics priors and measures how well their attention
aligns lyrics to audio: the true times are known, so the alignment error can be computed.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from .io import save_audio

LETTERS = "adeiklmnorsu"
WORDS = ["la", "do", "mi", "so", "ru", "ken", "lin", "dream", "sail", "moon", "rise", "lamo", "sunder", "kilo"]


def _tone(letter: str, seconds: float, sr: int) -> np.ndarray:
    """A letter's tone: its own pitch and overtone colour, with a soft attack and release."""
    k = LETTERS.index(letter)
    t = np.arange(int(seconds * sr)) / sr
    f0 = 196.0 * 2 ** (k / 12)
    colour = [1.0, 0.6 if k % 2 else 0.2, 0.3 if k % 3 else 0.7, 0.15 * (1 + k % 4)]
    wave = sum(a * np.sin(2 * np.pi * f0 * (h + 1) * t) for h, a in enumerate(colour))
    env = np.minimum(1.0, np.minimum(t / 0.01, (seconds - t) / 0.02)).clip(0, 1)
    return (0.25 * wave * env).astype(np.float32)


def sing(words: list[str], sr: int, rng: np.random.Generator) -> tuple[np.ndarray, list[dict]]:
    """Audio of the words sung one letter after another, and [{"time", "text"}] per character."""
    pieces, timed, now = [], [], 0.0
    for w, word in enumerate(words):
        for letter in word:
            seconds = float(rng.uniform(0.12, 0.3))
            timed.append({"time": round(now, 4), "text": letter})
            pieces.append(_tone(letter, seconds, sr))
            now += len(pieces[-1]) / sr
        if w + 1 < len(words):
            rest = float(rng.uniform(0.08, 0.2))
            timed.append({"time": round(now, 4), "text": " "})
            pieces.append(np.zeros(int(rest * sr), dtype=np.float32))
            now += len(pieces[-1]) / sr
    return np.concatenate(pieces), timed


def write_sung_letters(out: str | Path, sample_rate: int, n_songs: int, seconds: float = 12.0, seed: int = 0) -> Path:
    """Write ``n_songs`` WAVs of about ``seconds`` each and ``manifest.jsonl`` with timed lyrics."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    lines = []
    for i in range(n_songs):
        words: list[str] = []
        while sum(len(w) for w in words) * 0.27 + len(words) * 0.14 < seconds:
            words.append(WORDS[rng.integers(len(WORDS))])
        audio, timed = sing(words, sample_rate, rng)
        name = f"sung_{i:03d}.wav"
        save_audio(out / name, audio, sample_rate)
        lines.append(json.dumps({"path": name, "artist": "letters", "genre": "sung", "lyrics": timed}))
    manifest = out / "manifest.jsonl"
    manifest.write_text("\n".join(lines) + "\n")
    return manifest
