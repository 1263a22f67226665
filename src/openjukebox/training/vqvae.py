"""Training the VQ-VAE on audio: random crops, bandwidth-normalised losses, per-level metrics.

The run folder is also the trained model (``--model RUN_DIR``); see ``training.loop`` for the
checkpoint, resume and torchrun behaviour shared with the priors.
"""

from __future__ import annotations

import dataclasses
import json
import sys
from pathlib import Path

import torch
from torch import nn
from tqdm import tqdm

from ..audio.dataset import AudioSet, CropSampler, fixed_crops, prepare_audio
from ..checkpoint import save_model
from ..codec.config import VQVAEConfig
from ..codec.losses import Bandwidth, compute_bandwidth
from ..codec.vqvae import VQVAE
from ..errors import UserError
from ..fileio import default_cache_dir
from . import distributed as D
from .loop import TrainConfig, TrainingRun, open_run, resume_config

TRAIN_PRESETS: dict[str, TrainConfig] = {
    "vqvae": TrainConfig(batch_size=4, sample_length=262144),
    "music": TrainConfig(batch_size=32, sample_length=32768, eval_every=500, save_every=500),
    "small": TrainConfig(batch_size=8, sample_length=16384, eval_every=250, save_every=250),
    "tiny": TrainConfig(
        steps=300, batch_size=4, sample_length=8192, lr=1e-3, warmup_steps=20, eval_every=100, save_every=100
    ),
}


@torch.no_grad()
def evaluate(model: VQVAE, crops: torch.Tensor, bw: Bandwidth, batch_size: int) -> dict[str, float]:
    """Validation losses averaged over ``crops`` (M, 1, T), plus code usage per level."""
    was_training = model.training
    model.eval()
    sums: dict[str, float] = {}
    counts = [torch.zeros(model.config.l_bins) for _ in range(model.config.levels)]
    device = next(model.parameters()).device
    n_batches = 0
    for i in range(0, crops.shape[0], batch_size):
        x = crops[i : i + batch_size].to(device)
        _, metrics = model(x, bw)
        for k, v in metrics.items():
            if k.startswith(("recons", "multispectral", "sc_db", "loss")):
                sums[k] = sums.get(k, 0.0) + float(v)
        for lv in range(model.config.levels):
            counts[lv] += torch.bincount(model.encode(x, lv).flatten().cpu(), minlength=model.config.l_bins)
        n_batches += 1
    out = {k: v / n_batches for k, v in sums.items()}
    for lv, c in enumerate(counts):
        p = c / c.sum()
        out[f"codes_used_l{lv}"] = float((c > 0).sum())
        out[f"entropy_bits_l{lv}"] = float(-(p * torch.log2(p.clamp(min=1e-12))).sum())
    model.train(was_training)
    return out


def write_split(out: Path, audio: AudioSet) -> None:
    """``split.json``: the run's training and validation files."""
    split = {"train": [t.path for t in audio.train], "validation": [t.path for t in audio.val]}
    (out / "split.json").write_text(json.dumps(split, indent=1))


def prepare_training_audio(
    data,
    out: Path,
    sample_rate: int,
    min_samples: int,
    tc: TrainConfig,
    dist: D.DistInfo,
    cache: Path,
    progress: bool = True,
) -> AudioSet:
    """Decode the data set into ``cache/audio`` (rank 0 first), report and record skipped files in ``out``.

    ``data`` may also be an ``AudioSet`` already split (tracks whose codes are cached, e.g. carried to
    another machine without their audio: see ``recipes/gpu_priors.py``); it is used as it is."""
    if isinstance(data, AudioSet):
        if dist.is_main:
            write_split(out, data)
            print(f"data: {data.summary()}", file=sys.stderr)
        return data
    kw = dict(min_samples=min_samples, val_fraction=tc.val_fraction, seed=tc.seed)
    if dist.is_main:
        bar = lambda xs: tqdm(xs, desc="decoding audio", unit="file", disable=not progress)  # noqa: E731
        audio = prepare_audio(data, sample_rate, cache / "audio", progress=bar, **kw)
        (out / "skipped.txt").write_text("".join(f"{p}\t{r}\n" for p, r in audio.skipped))
        write_split(out, audio)
        print(f"data: {audio.summary()}", file=sys.stderr)
        for p, r in audio.skipped[:10]:
            print(f"  skipped {p}: {r}", file=sys.stderr)
    D.barrier()
    if not dist.is_main:
        audio = prepare_audio(data, sample_rate, cache / "audio", **kw)
    return audio


class VQVAERun(TrainingRun):
    name = "vqvae"
    throughput = "audio_s_per_s"

    def __init__(
        self,
        data,
        out: Path,
        cfg: VQVAEConfig | None,
        tc: TrainConfig,
        resume: bool,
        dist: D.DistInfo,
        cache: Path,
        changes: dict | None = None,
        progress: bool = True,
    ):
        state = open_run(out, resume)
        if state:
            saved = VQVAEConfig.from_dict(state["model_config"])
            if cfg is not None and cfg != saved:
                raise UserError(f"{out}: the run trains another VQ-VAE than the preset given; leave --preset out")
            cfg = saved
            tc = resume_config(out, state, tc, changes, report=dist.is_main)
        elif cfg is None:
            raise UserError("give the model to train (--preset)")
        out.mkdir(parents=True, exist_ok=True)
        self.cfg = cfg
        audio = prepare_training_audio(data, out, cfg.sample_rate, tc.sample_length, tc, dist, cache, progress)
        self.sampler = CropSampler(audio.train, tc.sample_length, tc.seed)
        self.val = fixed_crops(audio.val, tc.sample_length, tc.val_crops_per_file) if audio.val else None
        if state:
            self.bw = Bandwidth(**state["bandwidth"])
        else:
            self.bw = compute_bandwidth(self.sampler.batch(tc.batch_size, 10**9 + i) for i in range(8))
        torch.manual_seed(tc.seed)
        self.items_per_example = tc.sample_length / cfg.sample_rate
        self.setup(out, tc, dist, VQVAE(cfg), state)

    def batch(self, step: int, batch_size: int) -> tuple:
        return (self.sampler.batch(batch_size, step, self.dist.rank),)

    def loss(self, module: nn.Module, batch: tuple):
        return module(batch[0], self.bw)

    def has_validation(self) -> bool:
        return self.val is not None

    def evaluate(self) -> dict[str, float]:
        return evaluate(self.model, self.val, self.bw, self.tc.batch_size)

    def extra_state(self) -> dict:
        return {"bandwidth": dataclasses.asdict(self.bw), "model_config": self.cfg.to_dict()}

    def export(self, done: int, dest: Path | None = None) -> None:
        bw = dataclasses.asdict(self.bw)
        save_model(dest or self.out, self.model, "vqvae", self.cfg.to_dict(), bandwidth=bw, trained_steps=done)


def train_vqvae(
    data: str | Path,
    out: str | Path,
    cfg: VQVAEConfig | None,
    tc: TrainConfig,
    resume: bool = False,
    progress: bool = True,
    cache: str | Path | None = None,
    changes: dict | None = None,
) -> dict[str, float]:
    """Train (or resume) a VQ-VAE on ``data`` into run folder ``out``; returns the last validation metrics.

    The same call runs in one process or under torchrun (one rank per process). Decoded audio is
    cached under ``cache`` (default: ``default_cache_dir()``). On resume the run keeps its own
    model and settings; ``changes`` (default: where ``tc`` differs from them) may only change its
    schedule (see ``training.loop.resume_config``). ``cfg`` may be None on resume.
    """
    dist = D.setup()
    try:
        cache = Path(cache) if cache else default_cache_dir()
        run = VQVAERun(data, Path(out), cfg, tc, resume, dist, cache, changes, progress)
        return run.fit(progress, postfix=("loss", "sc_db_l0"))
    finally:
        D.cleanup()
