"""VQ-VAE configuration: one frozen dataclass and named presets.

The official preset reproduces the original Jukebox VQ-VAE exactly (44.1 kHz, hops 8/32/128,
2048 codes per level); the small presets train on a laptop CPU at 22.05 kHz.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field


@dataclass(frozen=True)
class LossConfig:
    """Weights of the training loss (summed over levels).

    loss = l2 * mse/bw.l2 + linf * topk_mse/bw.l2 + multispectral * multispec/bw.spec + commit * commit
    """

    l2: float = 1.0
    linf: float = 0.02
    linf_k: int = 2048
    spectral: float = 0.0
    multispectral: float = 1.0
    commit: float = 0.02
    # (n_fft, hop, window) of the multi-resolution STFTs, as in the original.
    multispec_n_fft: tuple[int, ...] = (2048, 1024, 512)
    multispec_hop: tuple[int, ...] = (240, 120, 50)
    multispec_window: tuple[int, ...] = (1200, 600, 240)


@dataclass(frozen=True)
class VQVAEConfig:
    """Architecture of the hierarchical VQ-VAE: one encoder and one decoder per level.

    Level L's encoder stacks blocks 0..L; block i downsamples by ``strides_t[i] ** downs_t[i]``.
    Width and depth of level L's encoder/decoder are multiplied by ``multipliers[L]``.
    """

    sample_rate: int = 44100
    levels: int = 3
    downs_t: tuple[int, ...] = (3, 2, 2)
    strides_t: tuple[int, ...] = (2, 2, 2)
    emb_width: int = 64
    l_bins: int = 2048
    width: int = 32
    depth: int = 4
    m_conv: float = 1.0
    dilation_growth_rate: int = 3
    dilation_cycle: int | None = None
    multipliers: tuple[int, ...] = (2, 1, 1)
    reverse_decoder_dilation: bool = True
    mu: float = 0.99  # codebook EMA decay
    revival_threshold: float = 1.0  # codes whose EMA count falls below this are restarted
    loss: LossConfig = field(default_factory=LossConfig)

    def __post_init__(self) -> None:
        n = self.levels
        if not (len(self.downs_t) == len(self.strides_t) == len(self.multipliers) == n):
            raise ValueError(
                f"downs_t, strides_t and multipliers need one entry per level ({n}); got "
                f"{self.downs_t}, {self.strides_t}, {self.multipliers}"
            )

    @property
    def downsamples(self) -> tuple[int, ...]:
        """Downsampling factor of each encoder block, e.g. (8, 4, 4)."""
        return tuple(s**d for s, d in zip(self.strides_t, self.downs_t, strict=True))

    @property
    def hop_lengths(self) -> tuple[int, ...]:
        """Audio samples per code at each level, e.g. (8, 32, 128)."""
        return tuple(math.prod(self.downsamples[: i + 1]) for i in range(self.levels))

    def level_width(self, level: int) -> int:
        return self.width * self.multipliers[level]

    def level_depth(self, level: int) -> int:
        return self.depth * self.multipliers[level]

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> VQVAEConfig:
        d = dict(d)
        loss = LossConfig(**{k: tuple(v) if isinstance(v, list) else v for k, v in d.pop("loss", {}).items()})
        d = {k: tuple(v) if isinstance(v, list) else v for k, v in d.items()}
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = set(d) - known
        if unknown:
            raise ValueError(f"unknown VQ-VAE config fields: {sorted(unknown)}")
        return cls(**d, loss=loss)


PRESETS: dict[str, VQVAEConfig] = {
    # The original Jukebox VQ-VAE (official weights load into this).
    "vqvae": VQVAEConfig(),
    # GPU-sized, 22.05 kHz, hops 8/32/128: the original's 2048 codes, width 64 (2.6 M parameters).
    "music": VQVAEConfig(sample_rate=22050, emb_width=64, l_bins=2048, width=64, depth=4, multipliers=(1, 1, 1)),
    # CPU-sized, 22.05 kHz, same hop lengths 8/32/128: trains in about an hour on 2 cores.
    "small": VQVAEConfig(
        sample_rate=22050,
        emb_width=32,
        l_bins=512,
        width=32,
        depth=3,
        multipliers=(1, 1, 1),
        loss=LossConfig(linf_k=512),
    ),
    # For tests and the demo: trains a few hundred steps in under a minute.
    "tiny": VQVAEConfig(
        sample_rate=22050,
        emb_width=16,
        l_bins=64,
        width=16,
        depth=2,
        multipliers=(1, 1, 1),
        loss=LossConfig(linf_k=256),
    ),
}


def get_preset(name: str) -> VQVAEConfig:
    """The named preset; an unknown name is an error listing the known ones."""
    try:
        return PRESETS[name]
    except KeyError:
        raise ValueError(f"unknown VQ-VAE preset {name!r}; give one of: {', '.join(PRESETS)}") from None
