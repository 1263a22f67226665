"""Training the VQ-VAE: one process or many under torchrun, exact resume, CSV metrics.

A run folder holds ``train_state.pt`` (everything needed to resume), the exported model
(``config.json`` + ``model.safetensors``, usable as ``--model``), ``train.csv``/``val.csv`` and
``skipped.txt``. Checkpoints are written atomically; a killed run loses at most ``save_every`` steps.
"""

from __future__ import annotations

import contextlib
import dataclasses
import sys
from dataclasses import dataclass
from pathlib import Path

import torch
from torch.nn.parallel import DistributedDataParallel
from tqdm import tqdm

from ..audio.dataset import AudioSet, CropSampler, fixed_crops, prepare_audio
from ..checkpoint import CheckpointError, load_train_state, save_model, save_train_state
from ..codec.config import VQVAEConfig
from ..codec.losses import Bandwidth, compute_bandwidth
from ..codec.vqvae import VQVAE
from . import distributed as D
from .metrics import CSVLog
from .stop import GracefulStop

STATE_NAME = "train_state.pt"


@dataclass(frozen=True)
class TrainConfig:
    """Optimisation settings; ``batch_size`` is global (split over torchrun processes)."""

    steps: int = 20000
    batch_size: int = 8
    sample_length: int = 32768
    lr: float = 3e-4
    warmup_steps: int = 100
    clip_grad: float = 100.0
    log_every: int = 10
    eval_every: int = 500
    save_every: int = 500
    val_fraction: float = 0.1
    val_crops_per_file: int = 4
    seed: int = 0
    bf16: bool = False


TRAIN_PRESETS: dict[str, TrainConfig] = {
    "vqvae": TrainConfig(batch_size=4, sample_length=262144),
    "small": TrainConfig(batch_size=8, sample_length=16384, eval_every=250, save_every=250),
    "tiny": TrainConfig(
        steps=300, batch_size=4, sample_length=8192, lr=1e-3, warmup_steps=20, eval_every=100, save_every=100
    ),
}


def _full_state(model: VQVAE) -> dict[str, torch.Tensor]:
    """Parameters and all buffers, including the non-persistent codebook EMA statistics."""
    return {k: v.detach().cpu().clone() for k, v in [*model.named_parameters(), *model.named_buffers()]}


def _load_full_state(model: VQVAE, state: dict[str, torch.Tensor]) -> None:
    own = dict([*model.named_parameters(), *model.named_buffers()])
    if set(own) != set(state):
        raise CheckpointError(f"training state does not match the model: {sorted(set(own) ^ set(state))[:10]}")
    with torch.no_grad():
        for k, v in own.items():
            v.copy_(state[k])


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


def _prepare_data(data, out: Path, cfg: VQVAEConfig, tc: TrainConfig, dist: D.DistInfo) -> AudioSet:
    kw = dict(min_samples=tc.sample_length, val_fraction=tc.val_fraction, seed=tc.seed)
    if dist.is_main:
        bar = lambda xs: tqdm(xs, desc="decoding audio", unit="file")  # noqa: E731
        audio = prepare_audio(data, cfg.sample_rate, out / "cache", progress=bar, **kw)
        skipped = "".join(f"{p}\t{r}\n" for p, r in audio.skipped)
        (out / "skipped.txt").write_text(skipped)
        print(f"data: {audio.summary()}", file=sys.stderr)
        for p, r in audio.skipped[:10]:
            print(f"  skipped {p}: {r}", file=sys.stderr)
    D.barrier()
    if not dist.is_main:
        audio = prepare_audio(data, cfg.sample_rate, out / "cache", **kw)
    return audio


def _load_run(
    out: Path, cfg: VQVAEConfig, tc: TrainConfig, resume: bool
) -> tuple[dict | None, VQVAEConfig, TrainConfig]:
    """The saved state and configs of a run folder (resume), or checks that ``out`` is free."""
    if not resume:
        if (out / STATE_NAME).exists():
            raise ValueError(f"{out} already holds a training run; pass --resume to continue it, or another --out")
        return None, cfg, tc
    if not (out / STATE_NAME).exists():
        raise ValueError(f"nothing to resume: {out / STATE_NAME} does not exist")
    state = load_train_state(out / STATE_NAME)
    saved_tc = dataclasses.replace(TrainConfig(**state["train_config"]), steps=tc.steps)
    return state, VQVAEConfig.from_dict(state["model_config"]), saved_tc


class VQVAERun:
    """One training run: data, model, optimizer and logs, built fresh or from a run folder."""

    def __init__(self, data, out: Path, cfg: VQVAEConfig, tc: TrainConfig, resume: bool, dist: D.DistInfo):
        state, cfg, tc = _load_run(out, cfg, tc, resume)
        out.mkdir(parents=True, exist_ok=True)
        if tc.batch_size % dist.world_size:
            raise ValueError(f"batch size {tc.batch_size} is not divisible by {dist.world_size} processes")
        self.out, self.cfg, self.tc, self.dist = out, cfg, tc, dist
        audio = _prepare_data(data, out, cfg, tc, dist)
        self.sampler = CropSampler(audio.train, tc.sample_length, tc.seed)
        self.val = fixed_crops(audio.val, tc.sample_length, tc.val_crops_per_file) if audio.val else None
        torch.manual_seed(tc.seed)
        self.model = VQVAE(cfg).to(dist.device).train()
        self.opt = torch.optim.Adam(self.model.parameters(), lr=tc.lr)
        self.start = 0
        if state:
            self.bw = Bandwidth(**state["bandwidth"])
            _load_full_state(self.model, state["model"])
            self.opt.load_state_dict(state["optimizer"])
            torch.set_rng_state(state["rng"])
            self.start = state["step"]
        else:
            self.bw = compute_bandwidth(self.sampler.batch(tc.batch_size, 10**9 + i) for i in range(8))
        multi = dist.world_size > 1
        self.ddp = DistributedDataParallel(self.model, broadcast_buffers=False) if multi else self.model
        keep = self.start if state else None
        self.train_log = CSVLog(out / "train.csv", keep) if dist.is_main else None
        self.val_log = CSVLog(out / "val.csv", keep) if dist.is_main else None
        self._interval: list[torch.Tensor] = []  # per-step metrics since the last log row

    def step(self, step: int) -> dict[str, float] | None:
        """One optimisation step; returns the logged row when this step is logged."""
        tc, dist = self.tc, self.dist
        for group in self.opt.param_groups:
            group["lr"] = tc.lr * min(1.0, (step + 1) / max(1, tc.warmup_steps))
        x = self.sampler.batch(tc.batch_size // dist.world_size, step, dist.rank).to(dist.device)
        bf16 = torch.autocast(dist.device.type, dtype=torch.bfloat16) if tc.bf16 else contextlib.nullcontext()
        with bf16:
            loss, metrics = self.ddp(x, self.bw)
        self.opt.zero_grad(set_to_none=True)
        loss.backward()
        grad_norm = torch.nn.utils.clip_grad_norm_(self.model.parameters(), tc.clip_grad)
        self.opt.step()
        names = sorted(metrics)
        self._interval.append(torch.stack([metrics[k].float() for k in names] + [grad_norm.float()]).cpu())
        if (step + 1) % tc.log_every and step != 0:
            return None
        values = D.mean_across_ranks(torch.stack(self._interval).mean(0))  # the mean over the interval
        self._interval.clear()
        row = {"step": step + 1, "lr": self.opt.param_groups[0]["lr"], "grad_norm": float(values[-1])}
        row.update({k: float(v) for k, v in zip(names, values[:-1], strict=True)})
        if self.train_log:
            self.train_log.write(row)
        return row

    def validate(self, done: int) -> dict[str, float]:
        result = {"step": done, **evaluate(self.model, self.val, self.bw, self.tc.batch_size)}
        self.val_log.write(result)
        return result

    def save(self, done: int) -> None:
        """Atomically write the resumable state and the exported model (rank 0), then sync ranks."""
        if self.dist.is_main:
            cfg, bw = self.cfg, dataclasses.asdict(self.bw)
            state = {
                "step": done,
                "model": _full_state(self.model),
                "optimizer": self.opt.state_dict(),
                "rng": torch.get_rng_state(),
                "bandwidth": bw,
                "model_config": cfg.to_dict(),
                "train_config": dataclasses.asdict(self.tc),
            }
            save_train_state(self.out / STATE_NAME, state)
            save_model(self.out, self.model, "vqvae", cfg.to_dict(), bandwidth=bw, trained_steps=done)
        D.barrier()

    def fit(self, progress: bool) -> dict[str, float]:
        """Train up to ``tc.steps``; Ctrl-C saves after the current step and re-raises."""
        tc, main = self.tc, self.dist.is_main
        validating = main and self.val is not None
        last_val: dict[str, float] = {}
        if validating and self.start == 0:
            last_val = self.validate(0)  # the untrained baseline
        steps = range(self.start, tc.steps)
        bar = tqdm(steps, initial=self.start, total=tc.steps, desc="train vqvae", disable=not (progress and main))
        with bar, GracefulStop() as stopper:
            for step in bar:
                row = self.step(step)
                if row:
                    bar.set_postfix(loss=f"{row['loss']:.3g}", sc_db_l0=f"{row['sc_db_l0']:.1f}")
                done = step + 1
                if validating and (done % tc.eval_every == 0 or done == tc.steps):
                    last_val = self.validate(done)
                stop = stopper.requested()
                if done % tc.save_every == 0 or done == tc.steps or stop:
                    self.save(done)
                if stop:
                    if main:
                        print(f"\nstopped: saved step {done} to {self.out}; continue with --resume", file=sys.stderr)
                    raise KeyboardInterrupt
        return last_val


def train_vqvae(
    data: str | Path,
    out: str | Path,
    cfg: VQVAEConfig,
    tc: TrainConfig,
    resume: bool = False,
    progress: bool = True,
) -> dict[str, float]:
    """Train (or resume) a VQ-VAE on ``data`` into run folder ``out``; returns the last validation metrics.

    The same call runs in one process or under torchrun (one rank per process).
    """
    dist = D.setup()
    try:
        return VQVAERun(data, Path(out), cfg, tc, resume, dist).fit(progress)
    finally:
        D.cleanup()
