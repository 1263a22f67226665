"""Sung chorales, the lyrics data set: Bach chorales whose German syllables are sung on the soprano notes.

For each chorale of music21's corpus that has lyrics, every syllable of the soprano part is spoken
by espeak-ng (German voice, through ``espeakng-loader``), then re-pitched and stretched onto its
notes with the WORLD vocoder (``pyworld``): the spectral envelope is kept, the pitch follows the
score, the length fills the notes (melismas included). The alto, tenor and bass parts are played
under it with a General MIDI instrument set. The manifest carries the exact time of every
syllable as timed lyrics. Needs ``pip install 'openjukebox[data]'``.
"""

from __future__ import annotations

import ctypes
import functools
import json
import zlib
from pathlib import Path

import numpy as np

from ..audio.io import save_audio
from ..fileio import atomic_path
from .scores import INSTRUMENT_SETS, TimeMap, piece_id, render, score_notes, tempo_spq

FRAME_MS = 5.0  # WORLD analysis hop
LICENSE = "public domain (music21 corpus: BSD/LGPL; espeak-ng: GPL-3+; TimGM6mb SoundFont: GPL-2)"


_CALLBACK = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.POINTER(ctypes.c_short), ctypes.c_int, ctypes.c_void_p)
_CHUNKS: list[np.ndarray] = []  # what the synthesis callback has delivered since the last ``speak``


def _collect(wav, n, events) -> int:
    if n > 0:
        _CHUNKS.append(np.ctypeslib.as_array(wav, shape=(n,)).copy())
    return 0


_COLLECT = _CALLBACK(_collect)  # module-level: it lives as long as the library may call it


@functools.cache
def _engine() -> tuple[ctypes.CDLL, int]:
    """espeak-ng initialised once per process, with its callback (espeak-ng is one global state: a
    second initialisation while the library may still call an earlier, freed callback crashes)."""
    try:
        import espeakng_loader
    except ImportError:
        raise ImportError("sung chorales need espeakng-loader: pip install 'openjukebox[data]'") from None
    lib = ctypes.CDLL(espeakng_loader.get_library_path())
    data = str(Path(espeakng_loader.get_data_path()).parent).encode()
    sample_rate = lib.espeak_Initialize(2, 0, ctypes.c_char_p(data), 0)  # 2: synchronous
    if sample_rate <= 0:
        raise RuntimeError("espeak-ng failed to initialise")
    lib.espeak_SetSynthCallback(_COLLECT)
    return lib, sample_rate


class Espeak:
    """espeak-ng speech synthesis through its C API (the library and data of ``espeakng-loader``)."""

    def __init__(self, voice: str = "de"):
        self.lib, self.sample_rate = _engine()
        self.voice = voice.encode()
        if self.lib.espeak_SetVoiceByName(self.voice) != 0:
            raise RuntimeError(f"espeak-ng has no voice {voice!r}")

    def speak(self, text: str) -> np.ndarray:
        """Float32 audio of ``text`` at ``self.sample_rate``."""
        self.lib.espeak_SetVoiceByName(self.voice)  # the engine is shared: this instance's voice
        _CHUNKS.clear()
        raw = text.encode("utf-8") + b"\0"
        self.lib.espeak_Synth(ctypes.c_char_p(raw), len(raw), 0, 0, 0, 1, None, None)  # 1: UTF-8
        self.lib.espeak_Synchronize()
        audio = np.concatenate(_CHUNKS) if _CHUNKS else np.zeros(0, np.int16)
        _CHUNKS.clear()
        return audio.astype(np.float32) / 32768.0


def _world():
    try:
        import pyworld
    except ImportError:
        raise ImportError("sung chorales need pyworld: pip install 'openjukebox[data]'") from None
    return pyworld


def sing_syllable(speech: np.ndarray, sr: int, pitches: list[tuple[float, float]]) -> np.ndarray:
    """Speech of one syllable re-pitched and stretched onto notes [(frequency Hz, seconds)]."""
    pw = _world()
    x = speech.astype(np.float64)
    if len(x) < sr // 20:
        x = np.pad(x, (0, sr // 20 - len(x)))
    f0, t = pw.dio(x, sr, frame_period=FRAME_MS)
    f0 = pw.stonemask(x, f0, t, sr)
    sp = pw.cheaptrick(x, f0, t, sr)
    ap = pw.d4c(x, f0, t, sr)
    voiced = f0 > 0
    if voiced.any():  # trim leading/trailing silence of the speech to its voiced span (plus consonants)
        energy = sp.sum(1)
        keep = np.flatnonzero(energy > energy.max() * 1e-3)
        sp, ap, voiced = sp[keep[0] : keep[-1] + 1], ap[keep[0] : keep[-1] + 1], voiced[keep[0] : keep[-1] + 1]
    total = sum(sec for _, sec in pitches)
    n = max(2, int(round(total * 1000 / FRAME_MS)))
    src = np.minimum((np.arange(n) * len(sp) / n).astype(int), len(sp) - 1)
    target = np.concatenate([np.full(max(1, int(round(sec * 1000 / FRAME_MS))), hz) for hz, sec in pitches])
    target = np.resize(target, n)
    f0_new = np.where(voiced[src], target, 0.0)
    audio = pw.synthesize(f0_new, np.ascontiguousarray(sp[src]), np.ascontiguousarray(ap[src]), sr, FRAME_MS)
    return audio.astype(np.float32)


def soprano_syllables(score, time: TimeMap) -> list[dict]:
    """Syllables of the soprano part: {"text", "start" s, "notes": [(Hz, s)], "word_end"}."""
    soprano = score.parts[0].stripTies().flatten().notesAndRests
    out: list[dict] = []
    for n in soprano:
        start = time(float(n.offset))
        dur = time(float(n.offset) + float(n.quarterLength)) - start
        if n.isRest:
            if out:
                out[-1]["open"] = False
            continue
        lyric = n.lyrics[0] if n.lyrics else None
        hz = float(n.pitches[0].frequency)
        if lyric is not None and lyric.text:
            out.append(
                {
                    "text": lyric.text,
                    "start": start,
                    "notes": [(hz, dur)],
                    "open": True,
                    "word_end": lyric.syllabic in (None, "single", "end"),
                }
            )
        elif out and out[-1]["open"]:  # a melisma: the syllable continues on this note
            out[-1]["notes"].append((hz, dur))
    return out


def fermata_ends(score) -> list[float]:
    """Where the soprano's phrases end: the end (in quarters) of each note under a fermata."""
    soprano = score.parts[0].stripTies().flatten().notes
    return [
        float(n.offset + n.quarterLength) for n in soprano if any(type(e).__name__ == "Fermata" for e in n.expressions)
    ]


def chorale_plan(score, max_seconds: float, time: TimeMap | None = None) -> tuple[list, list[dict]] | None:
    """(each part's notes, the soprano's syllables) in the first ``max_seconds``, or None when the
    chorale cannot be sung: fewer than 8 syllables, or no lower part to accompany them."""
    time = time or TimeMap(tempo_spq(score))
    syllables = [s for s in soprano_syllables(score, time) if s["start"] < max_seconds]
    parts = score_notes(score, max_seconds, time)
    return (parts, syllables) if len(syllables) >= 8 and len(parts) >= 2 else None


def sing_chorale(
    score,
    sample_rate: int,
    espeak: Espeak,
    accompaniment: str = "organ",
    max_seconds: float = 90.0,
    time: TimeMap | None = None,
):
    """(audio, timed lyrics [{"time", "text"}]) of one chorale, or None when it has no soprano lyrics.

    ``time`` maps score time to seconds (default: the score's steady tempo)."""
    import soxr

    plan = chorale_plan(score, max_seconds, time)
    if plan is None:
        return None
    parts, syllables = plan
    accomp = render(parts[1:], INSTRUMENT_SETS[accompaniment], sample_rate) * 0.35
    voice = np.zeros(len(accomp) + sample_rate, dtype=np.float32)
    timed = []
    for s in syllables:
        speech = espeak.speak(s["text"])
        if not len(speech):
            continue
        sung = sing_syllable(speech, espeak.sample_rate, s["notes"])
        if espeak.sample_rate != sample_rate:
            sung = soxr.resample(sung, espeak.sample_rate, sample_rate)
        i = int(s["start"] * sample_rate)
        sung = sung[: len(voice) - i]
        voice[i : i + len(sung)] += sung
        timed.append({"time": round(s["start"], 4), "text": s["text"] + (" " if s["word_end"] else "")})
    peak = np.abs(voice).max()
    voice = voice * (0.5 / peak) if peak > 0 else voice
    mix = voice[: len(accomp)] + accomp
    end = min(len(mix), int(max_seconds * sample_rate))
    return (mix[:end] / max(1.0, np.abs(mix[:end]).max())).astype(np.float32), timed


def build_chorales(
    out: str | Path,
    sample_rate: int = 22050,
    limit: int = 20,
    accompaniment: str = "organ",
    max_seconds: float = 90.0,
    progress=None,
    skip: int = 0,
    uneven: bool = False,
) -> Path:
    """Sing up to ``limit`` Bach chorales into ``out``; writes ``out/manifest.jsonl`` with timed lyrics.

    ``skip`` passes over the first usable chorales (a set of songs that another build did not
    sing); ``uneven`` sings each in rubato, its phrases at varied tempi with rests after the
    fermatas (``TimeMap.uneven``, drawn from the piece's name), instead of at a steady tempo."""
    import music21

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    espeak = Espeak("de")
    lines, seen = [], 0
    chorales = music21.corpus.chorales.Iterator(returnType="filename")
    for path in progress(chorales) if progress else chorales:
        if seen >= skip + limit:
            break
        score = music21.corpus.parse(path)
        piece = piece_id(path)  # "bach/bwv153.1": the same id the rendered scores give this chorale
        if chorale_plan(score, max_seconds) is None:  # counted at the steady tempo, whatever this build sings
            continue
        seen += 1
        if seen <= skip:
            continue
        time = TimeMap.uneven(tempo_spq(score), fermata_ends(score), zlib.crc32(piece.encode())) if uneven else None
        sung = sing_chorale(score, sample_rate, espeak, accompaniment, max_seconds, time)
        if sung is None:
            continue
        audio, timed = sung
        name = f"chorale_{Path(piece).name}.flac"
        save_audio(out / name, audio, sample_rate)
        lines.append(
            {
                "path": name,
                "artist": "Johann Sebastian Bach",
                "genre": "sung chorale",
                "lyrics": timed,
                "title": Path(piece).name,
                "piece": piece,
                "duration": round(len(audio) / sample_rate, 3),
                "performance": "uneven" if uneven else "steady",
                "license": LICENSE,
                "source": "music21 + espeak-ng",
            }
        )
    manifest = out / "manifest.jsonl"
    with atomic_path(manifest) as tmp:
        Path(tmp).write_text("".join(json.dumps(line, ensure_ascii=False) + "\n" for line in lines))
    return manifest
