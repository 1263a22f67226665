"""Training data of the priors: each track encoded once to codes, then n_ctx windows with labels.

Codes are cached per VQ-VAE (by its weights id): a different VQ-VAE gets a fresh cache, the same one
reuses it. A window carries its true offset, so its label row holds real timing:
``[total_length, offset, length, artist, genre_1..genre_G]`` (samples), then, for a lyrics prior,
the window's lyric tokens (linear or timed, see ``openjukebox.lyrics.timed``); upsampler windows
come with the matching slice of the level above. With ``align``, a window of a song with timed
lyrics also carries, for every code, the position in its lyric window of the character sung there
(-1: none), the target of the supervised alignment head.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from ..audio.dataset import Track, cached_length
from ..codec.vqvae import VQVAE, encode_chunked
from ..fileio import atomic_path
from ..lyrics.timed import SongLyrics, read_lyrics
from ..lyrics.tokenizer import Tokenizer
from ..prior.vocab import LabelVocab


def encode_tracks(vqvae: VQVAE, tracks: list[Track], levels: list[int], cache_dir: Path, progress=None) -> list[Path]:
    """Encode every track at ``levels`` into ``cache_dir``: one ``{track}.l{L}.npy`` per track and level.

    Files already there are reused, so priors of different levels share what they both need.
    Returns each track's path prefix (``{track}``), to be completed by ``level_file``.
    """
    cache_dir.mkdir(parents=True, exist_ok=True)
    device = next(vqvae.parameters()).device
    chunk = 10 * vqvae.config.sample_rate
    prefixes = []
    for track in progress(tracks) if progress else tracks:
        prefix = cache_dir / Path(track.cache).stem
        todo = [lv for lv in levels if cached_length(level_file(prefix, lv)) is None]
        if todo:
            audio = np.load(track.cache)
            audio = np.pad(audio, (0, -len(audio) % max(vqvae.hop_lengths[lv] for lv in todo)))
            x = torch.from_numpy(audio).to(device).view(1, 1, -1)
            for lv in todo:
                codes = encode_chunked(vqvae, x, lv, chunk)[0].cpu().numpy().astype(np.int16)
                with atomic_path(level_file(prefix, lv)) as tmp, open(tmp, "wb") as f:
                    np.save(f, codes)
        prefixes.append(prefix)
    return prefixes


def level_file(prefix: Path, level: int) -> Path:
    return prefix.with_name(f"{prefix.name}.l{level}.npy")


@dataclass
class _Item:
    codes: np.ndarray  # (T_L,)
    above: np.ndarray | None  # (T_L / upsample,)
    n_samples: int
    artist: int
    genres: list[int]
    lyrics: SongLyrics | None = None


class CodeWindows:
    """Random n_ctx windows of one level's codes, with label rows and (upsamplers) upper codes."""

    def __init__(
        self,
        tracks: list[Track],
        code_paths: list[Path],
        level: int,
        n_ctx: int,
        hop: int,
        upsample: int | None,
        vocab: LabelVocab,
        genre_slots: int,
        seed: int,
        tokenizer: Tokenizer | None = None,
        n_tokens: int = 0,
        sample_rate: int = 0,
        align: bool = False,
        jitter: float = 0.0,
        timed_share: float = 0.0,
        need_timed: bool = False,
        artist_balance: float = 0.0,
    ):
        """``align``: windows carry alignment targets; ``jitter``: the lyric window's centre moves by
        up to this many seconds either way (uniform, seeded); ``timed_share``: on average that
        fraction of each batch comes from the tracks with timed lyrics; ``need_timed``: refuse
        tracks without any (the training windows of an alignment loss); ``artist_balance``: the
        share of the other windows drawn with every artist equally likely (an artist's tracks by
        their length), the rest by length alone, so that an artist with one track is not drowned
        by one with hours of them."""
        if not 0.0 <= artist_balance <= 1.0:
            raise ValueError(f"the artist balance is a share from 0 to 1, not {artist_balance}")
        self.level, self.n_ctx, self.hop, self.upsample, self.seed = level, n_ctx, hop, upsample, seed
        self.n_tokens, self.sample_rate = n_tokens, sample_rate
        self.align, self.jitter = align and n_tokens > 0, jitter if n_tokens else 0.0
        self.items = []
        for track, prefix in zip(tracks, code_paths, strict=True):
            z = np.load(level_file(prefix, level)).astype(np.int64)
            if len(z) < n_ctx:
                continue
            above = np.load(level_file(prefix, level + 1)).astype(np.int64) if upsample else None
            artist = vocab.artist_id(track.meta.get("artist"))
            genres = vocab.genre_ids(track.meta.get("genre"), genre_slots)
            lyrics = read_lyrics(track.meta, track.path, tokenizer) if tokenizer is not None else None
            self.items.append(_Item(z, above, track.n_samples, artist, genres, lyrics))
        if not self.items:
            raise ValueError(f"no track is long enough for {n_ctx} codes at level {level} ({n_ctx * hop} samples)")
        step = upsample or 1
        self._starts = [(len(it.codes) - n_ctx) // step + 1 for it in self.items]  # start choices per item
        weights = np.array(self._starts, dtype=np.float64)
        self._p = weights / weights.sum()
        if artist_balance:
            _, artist = np.unique([it.artist for it in self.items], return_inverse=True)
            per_artist = np.bincount(artist, weights)  # each artist's total start choices
            even = weights / per_artist[artist] / len(per_artist)
            self._p = (1 - artist_balance) * self._p + artist_balance * even
        timed = np.array([it.lyrics is not None and it.lyrics.times is not None for it in self.items])
        if (timed_share > 0 or need_timed) and not timed.any():
            raise ValueError(
                "--timed-share and --align-weight need songs with timed lyrics, but no training file has any: give "
                "lyrics with times (a list of {'time', 'text'} in the manifest, or an .lrc file), or leave them out"
            )
        self._timed_share = timed_share
        self._p_timed = weights * timed / (weights * timed).sum() if timed.any() else None

    def _window(self, item: _Item, start: int, shift: float = 0.0) -> tuple:
        z = item.codes[start : start + self.n_ctx]
        y = [item.n_samples, start * self.hop, self.n_ctx * self.hop, item.artist, *item.genres]
        target = None
        if self.n_tokens:  # the window's lyric tokens (all padding for a track without lyrics)
            song = item.lyrics or SongLyrics(())
            tokens, indices = song.window(
                self.n_tokens, item.n_samples, start * self.hop, self.n_ctx * self.hop, self.sample_rate, shift
            )
            y += tokens
            if self.align:
                seconds = (start + np.arange(self.n_ctx) + 0.5) * self.hop / self.sample_rate
                target = _alignment_target(song, indices, seconds)
        above = None
        if self.upsample:
            a = start // self.upsample
            above = item.above[a : a + self.n_ctx // self.upsample]
        return z, y, above, target

    def _shift(self, rng: np.random.Generator) -> float:
        return float(rng.uniform(-self.jitter, self.jitter)) if self.jitter else 0.0

    def _stack(self, windows: list[tuple]) -> tuple:
        z = torch.from_numpy(np.stack([w[0] for w in windows]))
        y = torch.tensor([w[1] for w in windows], dtype=torch.long)
        above = torch.from_numpy(np.stack([w[2] for w in windows])) if self.upsample else None
        target = torch.from_numpy(np.stack([w[3] for w in windows])) if self.align else None
        return z, y, above, target

    def batch(self, batch_size: int, step: int, rank: int = 0) -> tuple:
        """(codes (B, n_ctx), labels (B, 4+G), codes above (B, n_ctx/upsample) or None, alignment
        targets (B, n_ctx) or None) for this step."""
        rng = np.random.default_rng([self.seed, step, rank])
        # rounded at random (seeded), so that a small batch per rank still gets the share on average
        n_timed = int(self._timed_share * batch_size + rng.random()) if self._timed_share else 0
        picks = np.concatenate(
            [
                rng.choice(len(self.items), size=n_timed, p=self._p_timed) if n_timed else np.zeros(0, dtype=int),
                rng.choice(len(self.items), size=batch_size - n_timed, p=self._p),
            ]
        )
        step_size = self.upsample or 1
        starts = [int(rng.integers(self._starts[i])) * step_size for i in picks]
        windows = [self._window(self.items[i], s, self._shift(rng)) for i, s in zip(picks, starts, strict=True)]
        return self._stack(windows)

    def fixed(self, per_file: int) -> tuple:
        """Evenly spaced windows of every track: the same validation set every time (with the
        same seeded jitter of the lyric windows)."""
        step_size = self.upsample or 1
        rng = np.random.default_rng([self.seed, 1])
        windows = [
            self._window(it, int(s) * step_size, self._shift(rng))
            for it, n in zip(self.items, self._starts, strict=True)
            for s in np.linspace(0, n - 1, per_file).astype(int)
        ]
        return self._stack(windows)

    def unigram_bits(self) -> float:
        """Entropy of the codes' marginal distribution (bits): what a prior without context achieves."""
        counts = np.bincount(np.concatenate([it.codes for it in self.items]))
        p = counts[counts > 0] / counts.sum()
        return float(-(p * np.log2(p)).sum())


def _alignment_target(song: SongLyrics, indices: list[int], seconds: np.ndarray) -> np.ndarray:
    """For code centres at ``seconds``, the position in the lyric window (``indices``: the song's
    characters there) of the character being sung; -1 where none is sung, where it lies outside the
    window, or where the lyrics have no times."""
    where = np.full(len(song.tokens) + 1, -1, dtype=np.int64)  # the last slot answers "none sung" (-1)
    for k, i in enumerate(indices):
        if i >= 0:
            where[i] = k
    return where[song.sung_at(seconds)]
