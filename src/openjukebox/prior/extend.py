"""Growing a prior's label embeddings for names it never saw, keeping everything it learnt.

Fine-tuning on new artists or genres appends rows to ``labels.artist_emb`` / ``labels.genre_emb``;
rows 0..n-1 are copied unchanged (so every old name samples as before) and the new rows start
from ``init``: ``"mean"``, the mean of the known names' rows (1..n-1; row 0 when there are none),
or ``"unknown"``, a copy of row 0 (the "unknown" label).
"""

from __future__ import annotations

import dataclasses

import torch

from .config import PriorConfig
from .model import Prior, build_prior

INITS = ("mean", "unknown")


def _grown(old: torch.Tensor, rows: int, init: str) -> torch.Tensor:
    """(n, W) -> (rows, W): the old rows, then new rows from ``init``."""
    if init not in INITS:
        raise ValueError(f"unknown label initialisation {init!r}; give one of: {', '.join(INITS)}")
    start = old[1:].mean(0) if init == "mean" and old.shape[0] > 1 else old[0]
    return torch.cat([old, start.expand(rows - old.shape[0], -1)]) if rows > old.shape[0] else old.clone()


def grow_labels(prior: Prior, artist_bins: int, genre_bins: int, init: str = "mean") -> Prior:
    """A copy of ``prior`` (on CPU, its dtype) with ``artist_bins`` artist and ``genre_bins`` genre rows."""
    lc = prior.cfg.labels
    if lc is None:
        raise ValueError("this prior takes no artist or genre labels, so it cannot learn new ones")
    if artist_bins < lc.artist_bins or genre_bins < lc.genre_bins:
        raise ValueError(
            f"label embeddings only grow: {artist_bins} artists and {genre_bins} genres asked of a prior "
            f"with {lc.artist_bins} and {lc.genre_bins}"
        )
    cfg: PriorConfig = dataclasses.replace(
        prior.cfg, labels=dataclasses.replace(lc, artist_bins=artist_bins, genre_bins=genre_bins)
    )
    state = {k: v.detach().cpu() for k, v in prior.state_dict().items()}
    state["labels.artist_emb.weight"] = _grown(state["labels.artist_emb.weight"], artist_bins, init)
    state["labels.genre_emb.weight"] = _grown(state["labels.genre_emb.weight"], genre_bins, init)
    with torch.device("meta"):
        grown = build_prior(cfg)
    grown.load_state_dict({k: v.clone() for k, v in state.items()}, strict=True, assign=True)
    return grown.train(prior.training)
