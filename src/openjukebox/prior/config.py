"""Prior and upsampler configuration: frozen dataclasses and named presets.

Official presets reproduce the original Jukebox shapes exactly (parameter counts are tested
against the original's layouts); small presets train on a laptop CPU.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass


@dataclass(frozen=True)
class LabelConfig:
    """Artist/genre start embedding and (top level only) timing embeddings."""

    genre_bins: int = 120
    artist_bins: int = 4111
    max_bow_genre_size: int = 5
    t_bins: int = 128
    timing: bool = True
    min_duration: float = 60.0  # seconds; shorter songs cannot be timed by this model
    max_duration: float = 600.0
    # Not in the original: also add the artist/genre embedding at every position (as timing is), so
    # that a small model cannot lose its labels along the window. No new weights.
    every_position: bool = False


@dataclass(frozen=True)
class ConditionerConfig:
    """The upsampler's conditioner on the codes of the level above (x4 with downs 2, stride 2)."""

    width: int = 1024
    depth: int = 16
    dilation_growth_rate: int = 3
    dilation_cycle: int | None = 8
    res_scale: bool = False
    down_t: int = 2
    stride_t: int = 2
    named_blocks: bool = True  # the original's cond_c_res naming (".blocks.")

    @property
    def upsample(self) -> int:
        return self.stride_t**self.down_t


@dataclass(frozen=True)
class LyricsConfig:
    """Conditioning on ``n_tokens`` lyric characters per window (top level only).

    ``single_enc_dec`` (1b_lyrics): the lyric tokens go ahead of the codes in one sequence, over a
    merged vocabulary (lyric ids, then codes shifted by ``n_vocab``). Otherwise (5b_lyrics) a lyric
    encoder transformer of its own width/depth/heads feeds the prior's cross-attention layers.
    ``alignment_layer``/``alignment_head``: where the lyric alignment is read (None: chosen
    automatically).
    """

    n_tokens: int = 512
    n_vocab: int = 80
    single_enc_dec: bool = False
    width: int = 1280
    depth: int = 18
    heads: int = 4
    attn_order: int = 2
    blocks: int | None = 32
    init_scale: float = 0.7
    loss_fraction: float = 0.4
    alignment_layer: int | None = None
    alignment_head: int | None = None


@dataclass(frozen=True)
class PriorConfig:
    """An autoregressive prior over the codes of one VQ-VAE level."""

    level: int
    l_bins: int = 2048
    n_ctx: int = 8192
    width: int = 4800
    depth: int = 72
    heads: int = 8
    attn_order: int = 2
    blocks: int = 128
    init_scale: float = 0.1
    m_attn: float = 0.25
    m_mlp: float = 1.0
    merged_decoder: bool = True  # False: output tied to the input embedding and x_cond added again
    sample_rate: int = 44100
    hop_length: int = 128  # audio samples per code at this level
    labels: LabelConfig | None = None
    conditioner: ConditionerConfig | None = None  # upsamplers only
    lyrics: LyricsConfig | None = None  # top level only

    @property
    def block_ctx(self) -> int:
        return self.n_ctx // self.blocks

    @property
    def seq_len(self) -> int:
        """Length of the transformer's sequence: the codes, plus the lyrics in the single variant."""
        single = self.lyrics is not None and self.lyrics.single_enc_dec
        return self.n_ctx + (self.lyrics.n_tokens if single else 0)

    @property
    def sample_length(self) -> int:
        """Audio samples covered by one context window."""
        return self.n_ctx * self.hop_length

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> PriorConfig:
        d = dict(d)
        labels = LabelConfig(**d.pop("labels")) if d.get("labels") else None
        cond = ConditionerConfig(**d.pop("conditioner")) if d.get("conditioner") else None
        lyrics = LyricsConfig(**d.pop("lyrics")) if d.get("lyrics") else None
        d.pop("labels", None), d.pop("conditioner", None), d.pop("lyrics", None)
        return cls(**d, labels=labels, conditioner=cond, lyrics=lyrics)


_UPSAMPLER = dict(
    n_ctx=8192,
    width=1920,
    depth=72,
    heads=1,
    attn_order=2,
    blocks=128,
    init_scale=0.4,
    merged_decoder=False,
    labels=LabelConfig(timing=False),
)
_TINY = dict(
    l_bins=64, n_ctx=256, width=64, depth=4, heads=2, attn_order=2, blocks=16, init_scale=1.0, sample_rate=22050
)

_MINI = dict(
    l_bins=64, n_ctx=512, width=128, depth=8, heads=2, attn_order=2, blocks=16, init_scale=1.0, sample_rate=22050
)
# Labels of our own small models: artist and genre at every position, so that they hold along the window.
_OWN_LABELS = LabelConfig(
    genre_bins=16,
    artist_bins=16,
    max_bow_genre_size=1,
    t_bins=32,
    min_duration=1.0,
    max_duration=120.0,
    every_position=True,
)

_MINI_TOP_LYRICS = PriorConfig(
    level=2,
    labels=_OWN_LABELS,
    lyrics=LyricsConfig(n_tokens=64, n_vocab=80, width=96, depth=2, heads=2, attn_order=2, blocks=8, init_scale=1.0),
    **{**_MINI, "depth": 10, "attn_order": 8},
)
_MINI_UPSAMPLER_1 = PriorConfig(
    level=1,
    hop_length=32,
    merged_decoder=False,
    labels=dataclasses.replace(_OWN_LABELS, timing=False),
    conditioner=ConditionerConfig(width=64, depth=4, res_scale=True),
    **{**_MINI, "n_ctx": 512, "depth": 6},
)
_MINI_UPSAMPLER_0 = dataclasses.replace(
    _MINI_UPSAMPLER_1, level=0, hop_length=8, conditioner=ConditionerConfig(width=64, depth=4)
)

PRESETS: dict[str, PriorConfig] = {
    "prior_5b": PriorConfig(level=2, labels=LabelConfig(min_duration=60.0)),
    "prior_5b_lyrics": PriorConfig(
        level=2,
        depth=79,
        attn_order=10,
        labels=LabelConfig(min_duration=23.8),
        lyrics=LyricsConfig(alignment_layer=68, alignment_head=2),
    ),
    "prior_1b_lyrics": PriorConfig(
        level=2,
        n_ctx=6144,
        width=2048,
        depth=72,
        heads=2,
        attn_order=12,
        blocks=64,
        init_scale=0.2,
        merged_decoder=False,
        labels=LabelConfig(genre_bins=604, artist_bins=7898, max_bow_genre_size=1, t_bins=64, min_duration=17.84),
        lyrics=LyricsConfig(n_tokens=384, n_vocab=79, single_enc_dec=True, alignment_layer=63, alignment_head=0),
    ),
    "upsampler_level_1": PriorConfig(
        level=1, hop_length=32, conditioner=ConditionerConfig(res_scale=True), **_UPSAMPLER
    ),
    "upsampler_level_0": PriorConfig(
        level=0, hop_length=8, conditioner=ConditionerConfig(res_scale=False), **_UPSAMPLER
    ),
    # The "small" shape of the benchmarks (W 512, depth 12, heads 4, n_ctx 1024, blocks 16, 2048 codes).
    "small": PriorConfig(
        level=2,
        l_bins=2048,
        n_ctx=1024,
        width=512,
        depth=12,
        heads=4,
        blocks=16,
        init_scale=0.7,
        sample_rate=22050,
        labels=LabelConfig(),
    ),
    # CPU-trainable presets for a `small`/`tiny` VQ-VAE at 22.05 kHz.
    "tiny_top": PriorConfig(
        level=2,
        labels=_OWN_LABELS,
        **_TINY,
    ),
    # Tiny lyric priors: the separate encoder-decoder (attn_order 8: cross-attention in layer 9)
    # and the single-sequence variant (prime attention in layer 15).
    "tiny_top_lyrics": PriorConfig(
        level=2,
        labels=_OWN_LABELS,
        lyrics=LyricsConfig(
            n_tokens=64, n_vocab=80, width=64, depth=2, heads=2, attn_order=2, blocks=8, init_scale=1.0
        ),
        **{**_TINY, "depth": 10, "attn_order": 8},
    ),
    "tiny_top_single": PriorConfig(
        level=2,
        merged_decoder=False,
        labels=_OWN_LABELS,
        lyrics=LyricsConfig(n_tokens=64, n_vocab=80, single_enc_dec=True),
        **{**_TINY, "depth": 16, "attn_order": 12},
    ),
    # The default model's shapes: W 128, 3 s of top-level context at 22.05 kHz, upsamplers that also
    # take artist and genre (as the original's do), so that timbre follows the genre at every level.
    "mini_top_lyrics": _MINI_TOP_LYRICS,
    "mini_upsampler_1": _MINI_UPSAMPLER_1,
    "mini_upsampler_0": _MINI_UPSAMPLER_0,
    # Wider than the mini shapes (W 256 and 192), for a GPU (recipes/gpu_priors.sh): with the shipped
    # vocabularies 2.97 M and 1.66 M parameters, each file under the 16 MiB a lent GPU machine returns.
    "base_top_lyrics": dataclasses.replace(
        _MINI_TOP_LYRICS, width=256, heads=4, depth=12, lyrics=dataclasses.replace(_MINI_TOP_LYRICS.lyrics, width=128)
    ),
    "base_upsampler_1": dataclasses.replace(
        _MINI_UPSAMPLER_1, width=192, depth=8, conditioner=dataclasses.replace(_MINI_UPSAMPLER_1.conditioner, width=96)
    ),
    # The bottom upsampler for a GPU: W 256, depth 8, 0.37 s of context (1,024 codes); with the
    # shipped vocabularies 2.94 M parameters. With it the quickstart's song took 37.6 s against
    # mini_upsampler_0's 20.2 s (--segments 8, one thread, random weights, one run).
    "base_upsampler_0": dataclasses.replace(
        _MINI_UPSAMPLER_0, n_ctx=1024, width=256, depth=8, conditioner=ConditionerConfig(width=128, depth=4)
    ),
    "tiny_upsampler_1": PriorConfig(
        level=1,
        hop_length=32,
        merged_decoder=False,
        conditioner=ConditionerConfig(width=32, depth=2, res_scale=True),
        **_TINY,
    ),
    "tiny_upsampler_0": PriorConfig(
        level=0, hop_length=8, merged_decoder=False, conditioner=ConditionerConfig(width=32, depth=2), **_TINY
    ),
}


def get_preset(name: str) -> PriorConfig:
    try:
        return PRESETS[name]
    except KeyError:
        raise ValueError(f"unknown prior preset {name!r}; give one of: {', '.join(PRESETS)}") from None
