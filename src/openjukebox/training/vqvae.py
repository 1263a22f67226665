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


def _checkpoint(out: Path, model: VQVAE, opt, step: int, bw: Bandwidth, cfg, tc) -> None:
    state = {
        "step": step, "model": _full_state(model), "optimizer": opt.state_dict(),
        "rng": torch.get_rng_state(), "bandwidth": dataclasses.asdict(bw),
        "model_config": cfg.to_dict(), "train_config": dataclasses.asdict(tc),
    }
    save_train_state(out / STATE_NAME, state)
    save_model(out, model, "vqvae", cfg.to_dict(), bandwidth=dataclasses.asdict(bw), trained_steps=step)


def train_vqvae(
    data: str | Path, out: str | Path, cfg: VQVAEConfig, tc: TrainConfig, resume: bool = False,
    progress: bool = True,
) -> dict[str, float]:
    """Train (or resume) a VQ-VAE on ``data`` into run folder ``out``; returns the last validation metrics."""
    dist = D.setup()
    out = Path(out)
    state = None
    if (out / STATE_NAME).exists() and not resume:
        raise ValueError(f"{out} already holds a training run; pass --resume to continue it, or another --out")
    if resume:
        if not (out / STATE_NAME).exists():
            raise ValueError(f"nothing to resume: {out / STATE_NAME} does not exist")
        state = load_train_state(out / STATE_NAME)
        cfg = VQVAEConfig.from_dict(state["model_config"])
        tc = dataclasses.replace(TrainConfig(**state["train_config"]), steps=tc.steps)
    out.mkdir(parents=True, exist_ok=True)
    if tc.batch_size % dist.world_size:
        raise ValueError(f"batch size {tc.batch_size} is not divisible by {dist.world_size} processes")
    audio = _prepare_data(data, out, cfg, tc, dist)
    sampler = CropSampler(audio.train, tc.sample_length, tc.seed)
    val = fixed_crops(audio.val, tc.sample_length, tc.val_crops_per_file) if audio.val else None
    if state:
        bw = Bandwidth(**state["bandwidth"])
    else:
        bw = compute_bandwidth(sampler.batch(tc.batch_size, 10**9 + i) for i in range(8))

    torch.manual_seed(tc.seed)
    model = VQVAE(cfg).to(dist.device).train()
    opt = torch.optim.Adam(model.parameters(), lr=tc.lr)
    start = 0
    if state:
        _load_full_state(model, state["model"])
        opt.load_state_dict(state["optimizer"])
        torch.set_rng_state(state["rng"])
        start = state["step"]
    ddp = DistributedDataParallel(model, broadcast_buffers=False) if dist.world_size > 1 else model
    train_log = CSVLog(out / "train.csv", start if state else None) if dist.is_main else None
    val_log = CSVLog(out / "val.csv", start if state else None) if dist.is_main else None
    local_bs = tc.batch_size // dist.world_size
    autocast = (
        torch.autocast(dist.device.type, dtype=torch.bfloat16) if tc.bf16 else contextlib.nullcontext()
    )
    last_val: dict[str, float] = {}
    interval: list[torch.Tensor] = []  # per-step metrics since the last log row
    bar = tqdm(range(start, tc.steps), initial=start, total=tc.steps, desc="train vqvae",
               disable=not (progress and dist.is_main))

    def _train_step(step: int) -> dict[str, float] | None:
        for group in opt.param_groups:
            group["lr"] = tc.lr * min(1.0, (step + 1) / max(1, tc.warmup_steps))
        x = sampler.batch(local_bs, step, dist.rank).to(dist.device)
        with autocast:
            loss, metrics = ddp(x, bw)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        grad_norm = torch.nn.utils.clip_grad_norm_(model.parameters(), tc.clip_grad)
        opt.step()
        names = sorted(metrics)
        interval.append(torch.stack([metrics[k].float() for k in names] + [grad_norm.float()]).cpu())
        if (step + 1) % tc.log_every == 0 or step == 0:  # log the mean over the interval
            values = D.mean_across_ranks(torch.stack(interval).mean(0))
            interval.clear()
            row = {"step": step + 1, "lr": opt.param_groups[0]["lr"], "grad_norm": float(values[-1])}
            row.update({k: float(v) for k, v in zip(names, values)})
            if train_log:
                train_log.write(row)
            bar.set_postfix(loss=f"{row['loss']:.3g}", sc_db_l0=f"{row['sc_db_l0']:.1f}")
        done = step + 1
        if dist.is_main and val is not None and (done % tc.eval_every == 0 or done == tc.steps):
            result = {"step": done, **evaluate(model, val, bw, tc.batch_size)}
            val_log.write(result)
            return result
        return None

    if dist.is_main and val is not None and start == 0:
        val_log.write({"step": 0, **evaluate(model, val, bw, tc.batch_size)})  # the untrained baseline
    try:
        with GracefulStop() as stopper:
            for step in bar:
                last_val = _train_step(step) or last_val
                done = step + 1
                stop = stopper.requested()
                if done % tc.save_every == 0 or done == tc.steps or stop:
                    if dist.is_main:
                        _checkpoint(out, model, opt, done, bw, cfg, tc)
                    D.barrier()
                if stop:
                    if dist.is_main:
                        print(f"\nstopped: saved step {done} to {out}; continue with --resume", file=sys.stderr)
                    raise KeyboardInterrupt
    finally:
        bar.close()
        D.cleanup()
    return last_val
