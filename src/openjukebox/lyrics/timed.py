"""A song's lyrics as tokens, optionally timed, and the lyric window of each stretch of audio.

Without times the original's linear rule applies: the characters are assumed spread evenly over
the song, and a window of audio gets the ``n_tokens`` characters around its proportional position.
With times (LRC, or per-word/per-syllable timestamps in the metadata) the window is centred on the
character sung at the middle of the audio window instead, which keeps fast songs in step.
"""

from __future__ import annotations

import bisect
import re
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..errors import UserError
from ..fileio import read_text
from .tokenizer import Tokenizer

_LRC_TIME = re.compile(r"\[(\d+):(\d+(?:\.\d+)?)\]")
_LRC_WORD = re.compile(r"<(\d+):(\d+(?:\.\d+)?)>")
SECONDS_PER_CHAR = 0.08  # spread of the last timed segment, which has no next timestamp to end it
MAX_CHARS_PER_SECOND = 100  # the fastest rap is about 30; more means the lyrics do not fit the song


@dataclass(frozen=True)
class Segment:
    """Text sung from ``time`` (seconds) until the next segment starts."""

    time: float
    text: str


@dataclass(frozen=True)
class SongLyrics:
    """Token ids of a whole song; ``times`` (seconds, one per token, non-decreasing) when timed."""

    tokens: tuple[int, ...]
    times: tuple[float, ...] | None = None
    starts: tuple[float, ...] | None = field(default=None, compare=False)  # the timestamps, as given

    @classmethod
    def from_text(cls, tokenizer: Tokenizer, text: str) -> SongLyrics:
        return cls(tuple(tokenizer.encode(text)))

    @classmethod
    def from_segments(cls, tokenizer: Tokenizer, segments: list[Segment]) -> SongLyrics:
        """Timed lyrics: each segment's characters spread evenly from its time to the next segment's."""
        segments = sorted(segments, key=lambda s: s.time)
        text, starts = "", []
        for seg in segments:
            starts.append(len(text))
            text += seg.text
        ends = starts[1:] + [len(text)]
        char_time = [0.0] * len(text)
        for k, seg in enumerate(segments):
            n = ends[k] - starts[k]
            stop = segments[k + 1].time if k + 1 < len(segments) else seg.time + SECONDS_PER_CHAR * n
            for i in range(n):
                char_time[starts[k] + i] = seg.time + (stop - seg.time) * i / max(n, 1)
        index = {c: i + 1 for i, c in enumerate(tokenizer.chars)}
        kept = tokenizer.clean_chars(text)
        tokens, times = tuple(index[c] for _, c in kept), tuple(char_time[i] for i, _ in kept)
        return cls(tokens, times, tuple(seg.time for seg in segments))

    def window(
        self, n_tokens: int, total_length: int, offset: int, duration: int, sample_rate: int, shift: float = 0.0
    ) -> tuple[list[int], list[int]]:
        """(tokens, indices into the song's tokens; -1 for padding) for audio [offset, offset+duration).

        Lengths are in samples. Shorter lyrics are left-padded with 0, as in the original. ``shift``
        (seconds) moves the point whose character centres the window, as an error of the linear rule
        would (training uses it so that the alignment cannot rely on the window's centre).
        """
        full = self.tokens
        if len(full) < n_tokens:
            pad = n_tokens - len(full)
            return [0] * pad + list(full), [-1] * pad + list(range(len(full)))
        if not 0 <= offset < total_length:
            raise ValueError(f"window offset {offset} is outside the song (0..{total_length})")
        centre = offset + duration / 2.0 + shift * sample_rate
        if self.times is None:
            midpoint = int(len(full) * centre / total_length)
        else:
            midpoint = bisect.bisect_left(self.times, centre / sample_rate)
        half = n_tokens // 2
        midpoint = min(max(midpoint, half), len(full) - half)
        indices = list(range(midpoint - half, midpoint + half))
        return [full[i] for i in indices], indices

    def sung_at(self, seconds: np.ndarray) -> np.ndarray:
        """Index of the character being sung at each time (seconds); -1 before the first character,
        after the last one's end, and for lyrics without times."""
        seconds = np.asarray(seconds, dtype=np.float64)
        if self.times is None or not self.times:
            return np.full(seconds.shape, -1, dtype=np.int64)
        index = np.searchsorted(np.asarray(self.times), seconds, side="right") - 1
        index[seconds >= self.times[-1] + SECONDS_PER_CHAR] = -1
        return index


def parse_lrc(text: str) -> list[Segment]:
    """Segments of an LRC file: ``[mm:ss.xx]line``, with enhanced ``<mm:ss.xx>word`` tags if present.

    Each line ends with a newline; tags such as ``[ar:...]`` are ignored; a line with several
    timestamps is sung at each of them.
    """
    segments = []
    for number, line in enumerate(text.splitlines(), 1):
        times = _LRC_TIME.findall(line)
        if not times:
            if line.strip() and not re.match(r"^\[[a-zA-Z]+:.*\]$", line.strip()):
                raise ValueError(f"LRC line {number} has no [mm:ss.xx] timestamp: {line!r}")
            continue
        body = _LRC_TIME.sub("", line)
        for minutes, seconds in times:
            start = int(minutes) * 60 + float(seconds)
            parts = _LRC_WORD.split(body)  # text, (m, s, text)*
            if parts[0]:
                segments.append(Segment(start, parts[0]))
            for j in range(1, len(parts), 3):
                segments.append(Segment(int(parts[j]) * 60 + float(parts[j + 1]), parts[j + 2]))
            if segments:
                segments[-1] = Segment(segments[-1].time, segments[-1].text + "\n")
    return segments


def read_lyrics(meta: dict, audio_path: str | Path | None, tokenizer: Tokenizer) -> SongLyrics | None:
    """A track's lyrics: ``meta["lyrics"]`` (text, or a list of {"time", "text"}), else an ``.lrc`` or
    ``.txt`` file beside the audio, else None."""
    lyrics = meta.get("lyrics")
    if isinstance(lyrics, str):
        return SongLyrics.from_text(tokenizer, lyrics)
    if isinstance(lyrics, list):
        try:
            return SongLyrics.from_segments(tokenizer, [Segment(float(s["time"]), str(s["text"])) for s in lyrics])
        except (KeyError, TypeError, ValueError) as e:
            raise ValueError(f"timed lyrics must be a list of {{'time': seconds, 'text': ...}}: {e}") from None
    if audio_path is not None:
        path = Path(audio_path)
        if path.with_suffix(".lrc").exists():
            return SongLyrics.from_segments(tokenizer, parse_lrc(path.with_suffix(".lrc").read_text(encoding="utf-8")))
        if path.with_suffix(".txt").exists():
            return SongLyrics.from_text(tokenizer, path.with_suffix(".txt").read_text(encoding="utf-8"))
    return None


def read_lyrics_file(path: str | Path, tokenizer: Tokenizer) -> SongLyrics:
    """A lyrics file given on the command line: ``.lrc`` is timed, anything else is plain text."""
    path = Path(path)
    text = read_text(path, "lyrics file")
    if path.suffix.lower() == ".lrc":
        try:
            return SongLyrics.from_segments(tokenizer, parse_lrc(text))
        except ValueError as e:
            raise UserError(f"{path}: {e}; fix the line or give plain text as a .txt file") from None
    return SongLyrics.from_text(tokenizer, text)


def check_lyrics_fit(song: SongLyrics, seconds: float, source: str) -> None:
    """Refuse lyrics that cannot be sung in ``seconds``: a timestamp after the song's end, or far more
    characters than a singer manages (more than MAX_CHARS_PER_SECOND on average)."""
    if song.times and song.starts and max(song.starts) >= seconds:
        late = max(song.starts)
        raise UserError(
            f"{source}: a line is timed at {int(late // 60)}:{late % 60:05.2f}, after the end of the "
            f"{seconds:g} s song; remove the lines after {seconds:g} s or ask for a longer song (--seconds)"
        )
    rate = len(song.tokens) / seconds
    if rate > MAX_CHARS_PER_SECOND:
        raise UserError(
            f"{source}: {len(song.tokens)} characters in a {seconds:g} s song is {rate:.0f} per second; "
            f"at most {MAX_CHARS_PER_SECOND} can be sung: give fewer lyrics or a longer song (--seconds)"
        )


def all_lyric_text(meta: dict, audio_path: str | Path | None) -> str:
    """The raw text of a track's lyrics (to build a vocabulary), in whatever form they come."""
    lyrics = meta.get("lyrics")
    if isinstance(lyrics, str):
        return lyrics
    if isinstance(lyrics, list):
        return "".join(str(s.get("text", "")) for s in lyrics if isinstance(s, dict))
    if audio_path is not None:
        for suffix in (".lrc", ".txt"):
            path = Path(audio_path).with_suffix(suffix)
            if path.exists():
                text = path.read_text(encoding="utf-8")
                return "".join(s.text for s in parse_lrc(text)) if suffix == ".lrc" else text
    return ""
