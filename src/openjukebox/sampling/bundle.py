"""A sampling bundle: one folder with a VQ-VAE and a prior per level, in the official layout.

    BUNDLE/vqvae/            the VQ-VAE model folder
    BUNDLE/prior_level_2/    the top-level prior
    BUNDLE/prior_level_1/    upsamplers, down to prior_level_0/

Configs and vocabularies are read up front (cheap); weights load one level at a time.
"""

from __future__ import annotations

import math
import numbers
import os
import warnings
from collections.abc import Sequence
from pathlib import Path

import torch

from ..checkpoint import check_weights, load_prior, load_vqvae, model_id, parse_config, quick_id, read_model_config
from ..codec.config import VQVAEConfig
from ..codec.vqvae import VQVAE
from ..errors import UserError
from ..lyrics.timed import SongLyrics, check_lyrics_fit, read_lyrics_file
from ..lyrics.tokenizer import Tokenizer
from ..models import DEFAULT_MODEL
from ..prior.config import PriorConfig
from ..prior.model import Prior, build_prior
from ..prior.vocab import LabelVocab, vocab_from_dict

DEFAULT_GUIDANCE = 3.0  # for priors trained with label dropout; see benchmarks/eval_model.py


class Bundle:
    """A bundle's configs, vocabularies and tokenizers (read at once) and its models (loaded on demand)."""

    def __init__(self, path: str | os.PathLike, adapter: str | os.PathLike | None = None):
        self.path = Path(path)
        self.vqvae_dir = self.path / "vqvae"
        if not self.path.is_dir():
            raise UserError(f"{self.path}: no such model folder; give --model a bundle folder (or leave it out)")
        self.prior_dirs = {
            int(d.name.rsplit("_", 1)[1]): d
            for d in sorted(self.path.glob("prior_level_*"))
            if d.name.rsplit("_", 1)[1].isdigit()
        }
        if not self.vqvae_dir.is_dir() or not self.prior_dirs:
            raise UserError(
                f"{self.path} is not a model bundle: it needs vqvae/ and prior_level_N/ model folders "
                "(the top-level prior and the upsamplers below it); give --model such a folder, or leave it out "
                "for the model that ships inside"
            )
        docs = {lv: read_model_config(d, "prior") for lv, d in self.prior_dirs.items()}
        self.configs = {lv: parse_config(self.prior_dirs[lv], doc, PriorConfig.from_dict) for lv, doc in docs.items()}
        self.vocabs = {lv: vocab_from_dict(doc["vocab"]) if doc.get("vocab") else None for lv, doc in docs.items()}
        self.tokenizers = {
            lv: Tokenizer.from_dict(doc["vocab"]["lyrics"]) if (doc.get("vocab") or {}).get("lyrics") else None
            for lv, doc in docs.items()
        }
        self.label_dropout = {lv: float(doc.get("label_dropout") or 0.0) for lv, doc in docs.items()}
        vq_doc = read_model_config(self.vqvae_dir, "vqvae")
        self.vqvae_config = parse_config(self.vqvae_dir, vq_doc, VQVAEConfig.from_dict)
        self.hop_lengths = self.vqvae_config.hop_lengths
        top = max(self.configs)
        if sorted(self.configs) != list(range(min(self.configs), top + 1)):
            raise UserError(
                f"{self.path}: prior levels {sorted(self.configs)} are not contiguous; add the missing prior_level_N"
            )
        for lv, cfg in self.configs.items():
            if (cfg.conditioner is None) != (lv == top):
                raise UserError(
                    f"{self.prior_dirs[lv]}: level {lv} should be {'a top prior' if lv == top else 'an upsampler'} "
                    "by its config.json; check that the folder holds the right model, or copy it again"
                )
        self.codec_id = model_id(self.vqvae_dir)
        self.prior_ids = {lv: quick_id(d) for lv, d in self.prior_dirs.items()}
        self._made_for = {lv: (doc.get("vqvae") or {}).get("id") for lv, doc in docs.items()}
        self.base_configs = dict(self.configs)  # what the weights files hold (an adapter changes configs)
        self.adapter, self.adapter_level = (Path(adapter), self._use_adapter(adapter)) if adapter else (None, None)

    def _use_adapter(self, adapter: str | os.PathLike) -> int:
        """Take a LoRA adapter's config, vocabulary and identity for its level; returns the level."""
        from ..adapters import adapter_id, check_base, read_adapter

        doc = read_adapter(adapter)
        level = int(doc["level"])
        if level not in self.prior_dirs:
            raise UserError(f"--adapter {adapter} is for a level-{level} prior, which {self.path} does not have")
        check_base(doc, adapter, self.prior_dirs[level])
        self.configs[level] = PriorConfig.from_dict(doc["config"])
        self.vocabs[level] = vocab_from_dict(doc["vocab"])
        self.label_dropout[level] = float(doc.get("label_dropout") or 0.0)
        self.prior_ids[level] = f"{self.prior_ids[level]}+{adapter_id(adapter)}"
        return level

    def check(self) -> None:
        """Check every model of the bundle before any work: each weights file complete, with every
        tensor the config needs in the right shape (from the files' headers; nothing is loaded)."""
        with torch.device("meta"):
            check_weights(self.vqvae_dir, VQVAE(self.vqvae_config))
            for lv, cfg in self.base_configs.items():
                prior = build_prior(cfg)
                check_weights(self.prior_dirs[lv], prior)
                if lv == self.top:
                    self.lyric_layers = prior.lyric_layers()
        for lv, made_for in self._made_for.items():
            if made_for and made_for != self.codec_id:
                raise UserError(
                    f"{self.prior_dirs[lv]} was trained on another VQ-VAE than {self.vqvae_dir}; put the VQ-VAE "
                    "it was trained on (its config.json records the path) into the bundle"
                )

    def check_alignment_head(self, head: tuple[int, int] | None) -> None:
        """Refuse a --alignment-head LAYER:HEAD that is not a lyric-attention head of the top prior."""
        if head is None:
            return
        if not self.sings:
            raise UserError(
                "--alignment-head needs a model that sings; give --model a bundle with lyrics, or leave it out"
            )
        layers = getattr(self, "lyric_layers", None)
        if layers is None:
            with torch.device("meta"):
                layers = build_prior(self.configs[self.top]).lyric_layers()
        heads = self.configs[self.top].heads
        layer, h = head
        if layer not in layers or not 0 <= h < heads:
            raise UserError(
                f"--alignment-head {layer}:{h} is not a lyric-attention head of this model: the layers that "
                f"attend to lyrics are {', '.join(map(str, layers))}, with heads 0 to {heads - 1}; give one of "
                "them or leave it out"
            )

    def check_level(self, lowest: int | None) -> None:
        """Refuse a --lowest-level that is not one of the bundle's levels."""
        if lowest is not None and lowest not in self.configs:
            raise UserError(
                f"--lowest-level {lowest} is not a level of {self.path}: it has levels "
                f"{min(self.configs)} to {self.top}; give one of them"
            )

    @property
    def top(self) -> int:
        return max(self.configs)

    @property
    def identity(self) -> dict:
        """What a sampling state records: the models that made it (resuming with others is refused)."""
        return {"vqvae": self.codec_id, "priors": {str(lv): i for lv, i in self.prior_ids.items()}}

    @property
    def sings(self) -> bool:
        """Whether the top prior is conditioned on lyrics."""
        return self.configs[self.top].lyrics is not None

    def lyrics(
        self,
        n: int,
        text: str | None = None,
        path: str | os.PathLike | None = None,
        seconds: float | None = None,
    ) -> list[SongLyrics] | None:
        """The same lyrics for ``n`` songs, from text or a file (``.lrc``: timed), for the top prior.

        None when no lyrics are given; an error when the top prior cannot sing them, or when they do
        not fit a song of ``seconds`` (a timestamp after its end, far too many characters).
        """
        if text is None and path is None:
            return None
        if not self.sings:
            raise ValueError(
                f"the top prior in {self.path} has no lyrics conditioning, so it cannot sing lyrics; "
                "drop --lyrics, or use a model trained with lyrics"
            )
        tokenizer = self.tokenizers[self.top]
        if tokenizer is None:
            raise ValueError(f"{self.prior_dirs[self.top]} has no lyric vocabulary in its config.json")
        with warnings.catch_warnings(record=True) as dropped:
            warnings.simplefilter("always")
            song = read_lyrics_file(path, tokenizer) if path is not None else SongLyrics.from_text(tokenizer, text)
        source = str(path) if path is not None else "the lyrics"
        if song.tokens:
            for w in dropped:
                warnings.warn(w.message, w.category, stacklevel=2)
        else:
            chars = tokenizer.chars.replace("\n", "\\n").replace("\t", "\\t")
            raise UserError(f"{source}: no character this model can sing; give lyrics in the characters {chars!r}")
        if seconds is not None:
            check_lyrics_fit(song, seconds, source)
        return [song] * n

    def labels(self, n: int, artist: str | None, genre: str | None) -> dict[int, torch.Tensor | None]:
        """Label rows (n, 4+G[+n_tokens]) per level for an artist and genre, from each level's vocabulary.

        Unknown names raise with the closest known names; the total length is filled in by the sampler.
        With an adapter, a name only it knows (one it learnt) is "unknown" to the other levels, with a warning.
        """
        rows = {}
        for lv, cfg in self.configs.items():
            if cfg.labels is None:
                rows[lv] = None
                continue
            vocab = self.vocabs[lv] or LabelVocab.from_dict({"artists": ["unknown"], "genres": ["unknown"]})
            try:
                a, g = self._known_here(lv, artist, genre)
                ids = vocab.artist_id(a), vocab.genre_ids(g, cfg.labels.max_bow_genre_size)
            except ValueError as e:
                listing = "openjukebox info" + ("" if self.path == DEFAULT_MODEL else f" {self.path}")
                raise UserError(f"{e}; `{listing}` lists them all") from None
            row = [
                0,
                0,
                cfg.sample_length,
                ids[0],
                *ids[1],
                *[0] * (cfg.lyrics.n_tokens if cfg.lyrics else 0),  # lyric tokens: set per window
            ]
            rows[lv] = torch.tensor([row] * n)
        return rows

    def _known_here(self, level: int, artist: str | None, genre: str | None) -> tuple[str | None, str | None]:
        """The artist and genre for ``level``: names that only the adapter of another level learnt
        become None (unknown) here, with a warning saying how to teach them to this level too."""
        if self.adapter_level is None or level == self.adapter_level:
            return artist, genre
        mine, theirs = self.vocabs[level], self.vocabs[self.adapter_level]
        if mine is None or theirs is None:
            return artist, genre
        slots = self.configs[self.adapter_level].labels.max_bow_genre_size

        def knows(vocab, kind: str, name: str) -> bool:
            try:
                vocab.artist_id(name) if kind == "artist" else vocab.genre_ids(name, slots)
                return True
            except ValueError:
                return False

        pairs = (("artist", artist), ("genre", genre))
        names = [kind for kind, name in pairs if name and not knows(mine, kind, name) and knows(theirs, kind, name)]
        if names:
            warnings.warn(
                f"level {level} does not know the {' and '.join(names)} that --adapter learnt: its prior takes "
                f"them as unknown (fine-tune it too with --init-from {self.path} --level {level})",
                stacklevel=3,
            )
        return (None if "artist" in names else artist), (None if "genre" in names else genre)

    def _per_level(self, level: int, requested: object, what: str, example: str) -> object:
        """``requested`` for ``level``: one value for every level, or a list of one per level from the
        top down (``example`` shows such a list in the error for a list of the wrong length)."""
        if requested is None or isinstance(requested, numbers.Real):
            return requested
        if isinstance(requested, (str, bytes)) or not isinstance(requested, Sequence):
            raise UserError(f"{what} must be a number or a list of numbers, one per level; got {requested!r}")
        values, levels = list(requested), sorted(self.configs, reverse=True)
        if len(values) != len(levels):
            raise UserError(
                f"{len(values)} {what} values for a bundle of {len(levels)} levels: give one number for "
                f"every level, or {len(levels)}, from the top level down (e.g. {example})"
            )
        return values[levels.index(level)]

    def guidance(self, level: int, requested: float | Sequence[float] | None) -> float:
        """The guidance to sample ``level`` with: ``requested`` (one value for every level, or one per
        level from the top down, None for a level's default), else DEFAULT_GUIDANCE for a prior
        trained with label dropout (it knows the unconditional side), else 1 (none). A guided level
        does twice the work (on small batches it costs less than twice the time). On the default
        model, guiding the upsamplers too carried the artist better than guiding the top prior
        alone (its model card), so every level trained for it is guided; on an earlier default
        model it cost pitched frames."""
        example = f"{DEFAULT_GUIDANCE:g}{',1' * (len(self.configs) - 1)} guides the top prior only"
        value = self._per_level(level, requested, "guidance", example)
        if value is None:
            return DEFAULT_GUIDANCE if self.label_dropout[level] > 0 else 1.0
        if not _positive(value):
            where = _which(level, value, requested)
            raise UserError(f"guidance must be positive (1 = none, 2 to 5 = stronger labels); got {value!r}{where}")
        return float(value)

    def temperature(self, level: int, requested: float | Sequence[float]) -> float:
        """The temperature to sample ``level`` with: one value for every level, or one per level from
        the top down (a cooler one for the upsamplers draws fewer of their unlikely codes)."""
        example = "0.99" + ",0.9" * (len(self.configs) - 1) + " samples the upsamplers cooler"
        value = self._per_level(level, requested, "temperature", example)
        if not _positive(value):
            raise UserError(f"--temperature must be above 0, not {value!r}{_which(level, value, requested)}")
        return float(value)

    def load_prior(self, level: int, device: torch.device | str = "cpu") -> Prior:
        """The prior of ``level``, with the adapter merged into it when it is the adapter's level."""
        prior = load_prior(self.prior_dirs[level], "cpu" if level == self.adapter_level else device)[0]
        if level == self.adapter_level:
            from ..adapters import apply_adapter

            prior = apply_adapter(prior, self.adapter).to(device)
        return prior

    def load_vqvae(self, device: torch.device | str = "cpu") -> VQVAE:
        return load_vqvae(self.vqvae_dir, device)


def _positive(value: object) -> bool:
    """A finite real number above 0 (not a bool)."""
    return isinstance(value, numbers.Real) and not isinstance(value, bool) and value > 0 and math.isfinite(value)


def _which(level: int, value: object, requested: object) -> str:
    """Where a bad ``value`` came from when ``requested`` was a list: for an error message."""
    return "" if value is requested else f" (the value for level {level}; the list goes from the top level down)"
