"""What every training run shares: resume, DDP, warmup, logging, validation and checkpoints.

A run folder holds ``train_state.pt`` (everything needed to resume exactly), the exported model
(``config.json`` + ``model.safetensors``, usable as ``--model``), ``train.csv`` and ``val.csv``;
with ``keep_best``, also ``best/``: the model at its lowest validation loss so far.
Checkpoints are written atomically; Ctrl-C finishes the current step, saves, and stops.
Subclasses provide the data, the model and the loss through a few hooks.
"""

from __future__ import annotations

import contextlib
import copy
import dataclasses
import inspect
import math
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn
from torch.nn.parallel import DistributedDataParallel
from tqdm import tqdm

from ..checkpoint import CheckpointError, load_train_state, save_train_state
from ..errors import UserError
from . import distributed as D
from . import sharding as S
from .metrics import CSVLog
from .stop import GracefulStop

STATE_NAME = "train_state.pt"


@dataclass(frozen=True)
class TrainConfig:
    """Optimisation settings; ``batch_size`` is global (split over torchrun processes)."""

    steps: int = 20000
    batch_size: int = 8
    sample_length: int = 32768  # VQ-VAE crops, in samples (priors use their n_ctx)
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
    # Priors: the probability that a window's artist, and independently its genres, are replaced by
    # "unknown" (artist 0, no genre). It teaches the unconditional model that guidance needs.
    label_dropout: float = 0.0
    # Lyrics priors, from timed lyrics: the weight of the alignment loss (the alignment head's bits
    # per code for the character sung there, added to the loss); how far (seconds, either way) each
    # window's lyrics are moved at random, as the linear rule's errors move them when sampling; and
    # the share of each batch drawn from the songs with timed lyrics.
    align_weight: float = 0.0
    lyric_jitter: float = 0.0
    timed_share: float = 0.0
    # Priors: the share of the windows the timed share leaves (all without it) drawn with every
    # artist equally likely rather than by length (0: by length alone).
    artist_balance: float = 0.0
    # Priors: the share of each window's input codes replaced by the prior's own draws given the true
    # codes before them (parallel scheduled sampling), so that it learns to go on from codes it drew
    # itself, as sampling makes it; the loss is still on the true codes (0: always the true codes).
    sampled_inputs: float = 0.0
    # Priors: "ddp" (every rank holds the whole model) or "fsdp" (fully_shard per residual block,
    # sharded checkpoints); and recomputing each block in the backward pass to save memory.
    strategy: str = "ddp"
    activation_checkpointing: bool = False
    # Also export the model of the best validation so far into ``best/`` (early stopping that
    # keeps training: a run that starts to overfit keeps its best model).
    keep_best: bool = False


def open_run(out: Path, resume: bool) -> dict | None:
    """The saved state of run folder ``out`` when resuming, else None after checking it is free."""
    if not resume:
        if (out / STATE_NAME).exists():
            raise UserError(f"{out} already holds a training run; pass --resume to continue it, or another --out")
        return None
    if not (out / STATE_NAME).exists():
        raise UserError(
            f"nothing to resume: {out / STATE_NAME} does not exist; leave out --resume to start a new run, "
            "or give the --out of the run to continue"
        )
    return load_train_state(out / STATE_NAME)


# may change when a run resumes (on any number of ranks)
RESUMABLE = (
    "steps",
    "save_every",
    "eval_every",
    "log_every",
    "bf16",
    "strategy",
    "activation_checkpointing",
    "keep_best",
)


def resume_config(
    out: Path, state: dict, tc: TrainConfig, changes: dict | None = None, report: bool = True
) -> TrainConfig:
    """The saved run's settings with the ``changes`` asked for on resume (default: where ``tc``
    differs from the saved settings). The schedule (steps, saving, evaluation, logging, bf16) may
    change; a change of what is trained (lr, batch size, crops, seed, ...) is refused, since the run
    would no longer be the one it continues. A finished run needs more ``steps`` to go on."""
    saved = TrainConfig(**state["train_config"])
    if changes is None:
        changes = {k: v for k, v in dataclasses.asdict(tc).items() if getattr(saved, k) != v}
    fixed = {k: v for k, v in changes.items() if k not in RESUMABLE and getattr(saved, k) != v}
    if fixed:
        given = ", ".join(f"--{k.replace('_', '-')} {v} (the run has {getattr(saved, k)})" for k, v in fixed.items())
        raise UserError(
            f"{out}: resuming keeps what the run trains with, but {given} was given; leave it out to continue "
            "the run, or start a new run in another --out"
        )
    tc = dataclasses.replace(saved, **{k: v for k, v in changes.items() if k in RESUMABLE})
    done = int(state["step"])
    if tc.steps <= done:
        raise UserError(
            f"{out}: the run has already trained {done} of its {saved.steps} steps; "
            f"give --steps above {done} to train it further"
        )
    if report:
        print(
            f"resuming {out} at step {done} of {tc.steps}: batch size {tc.batch_size}, lr {tc.lr:g}, "
            f"save every {tc.save_every}, validate every {tc.eval_every} steps",
            file=sys.stderr,
        )
    return tc


def full_state(model: nn.Module) -> dict[str, torch.Tensor]:
    """Parameters and all buffers, including non-persistent ones (e.g. codebook EMA statistics)."""
    return {k: v.detach().cpu().clone() for k, v in [*model.named_parameters(), *model.named_buffers()]}


def load_full_state(model: nn.Module, state: dict[str, torch.Tensor]) -> None:
    own = dict([*model.named_parameters(), *model.named_buffers()])
    if set(own) != set(state):
        raise CheckpointError(f"training state does not match the model: {sorted(set(own) ^ set(state))[:10]}")
    with torch.no_grad():
        for k, v in own.items():
            v.copy_(state[k])


class TrainingRun:
    """The loop; subclasses set ``name`` and implement batch, loss, evaluate, export, extra_state."""

    name = "model"
    forward_methods: tuple[str, ...] = ()  # methods of the model besides forward that run it (FSDP hooks them)
    throughput = "examples_per_s"  # logged per interval: global batch x items_per_example / second
    items_per_example: float = 1.0
    best_key = "loss"  # the validation metric ``keep_best`` minimises

    def setup(self, out: Path, tc: TrainConfig, dist: D.DistInfo, model: nn.Module, state: dict | None) -> None:
        """Call at the end of the subclass constructor, once data and model exist."""
        if tc.batch_size % dist.world_size:
            raise ValueError(f"batch size {tc.batch_size} is not divisible by {dist.world_size} processes")
        self.out, self.tc, self.dist = out, tc, dist
        self.dcp = tc.strategy == "fsdp"  # checkpoints through torch.distributed.checkpoint
        self.sharded = self.dcp and dist.world_size > 1
        if tc.keep_best and self.sharded:
            raise UserError(
                "--keep-best exports whole models, which --strategy fsdp does not gather; give one of the two"
            )
        self.best = state.get("best") if state else None  # [validation value, step] of best/
        if state and self.sharded and not state.get("dcp"):
            raise UserError(
                f"{out} was saved by a run without --strategy fsdp; resume it with --strategy ddp (its checkpoint "
                "holds the whole model, not shards)"
            )
        self.model = model.to(dist.device).train()
        S.set_checkpointing(self.model, tc.activation_checkpointing)
        if self.sharded:
            self._template = copy.deepcopy(self.model).to("meta")  # rank 0 exports from a gathered copy
            S.shard(self.model, tc.bf16, self.forward_methods)
        self.exported = self.model  # what export() writes
        self.opt = torch.optim.Adam([p for p in self.model.parameters() if p.requires_grad], lr=tc.lr)
        self.start = 0
        self._interval: list[torch.Tensor] = []  # per-step metrics since the last log row
        self._interval_start = time.perf_counter()
        if state:
            if state.get("dcp"):
                S.load_sharded(out / state["dcp"], self.model, self.opt)
            else:
                load_full_state(self.model, state["model"])
                self.opt.load_state_dict(state["optimizer"])
            torch.set_rng_state(state["rng"])
            self.start = state["step"]
            if state.get("log_interval") is not None:  # the steps since the last row: the same log as unbroken
                self._interval = list(state["log_interval"].unbind(0))
                self._interval_start -= float(state.get("log_interval_s", 0.0))
        self.ddp = self.model
        if dist.world_size > 1 and not self.sharded:  # buffers start and stay equal: never re-broadcast them
            params = inspect.signature(DistributedDataParallel.__init__).parameters
            no_sync = (
                {"forward_sync_buffers": False} if "forward_sync_buffers" in params else {"broadcast_buffers": False}
            )
            self.ddp = DistributedDataParallel(self.model, **no_sync)
        keep = self.start if state else None
        self.train_log = CSVLog(out / "train.csv", keep) if dist.is_main else None
        self.val_log = CSVLog(out / "val.csv", keep) if dist.is_main else None

    # hooks -----------------------------------------------------------------------------------
    def batch(self, step: int, batch_size: int) -> tuple:
        raise NotImplementedError

    def loss(self, module: nn.Module, batch: tuple) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        raise NotImplementedError

    def evaluate(self) -> dict[str, float]:
        """Validation metrics (called in eval mode, without gradients) when has_validation()."""
        return {}

    def export(self, done: int, dest: Path | None = None) -> None:
        """Write the model as trained for ``done`` steps into ``dest`` (default: the run folder)."""
        raise NotImplementedError

    def extra_state(self) -> dict:
        return {}

    # the loop --------------------------------------------------------------------------------
    def step(self, step: int) -> dict[str, float] | None:
        """One optimisation step; returns the logged row when this step is logged."""
        tc, dist = self.tc, self.dist
        for group in self.opt.param_groups:
            group["lr"] = tc.lr * min(1.0, (step + 1) / max(1, tc.warmup_steps))
        local = self.batch(step, tc.batch_size // dist.world_size)
        batch = tuple(None if b is None else b.to(dist.device) for b in local)
        autocast = tc.bf16 and not self.sharded  # FSDP computes in bf16 by its mixed-precision policy
        bf16 = torch.autocast(dist.device.type, dtype=torch.bfloat16) if autocast else contextlib.nullcontext()
        with bf16:
            loss, metrics = self.loss(self.ddp, batch)
        self.opt.zero_grad(set_to_none=True)
        loss.backward()
        grad_norm = S.plain(torch.nn.utils.clip_grad_norm_(self.model.parameters(), tc.clip_grad))
        self.opt.step()
        names = sorted(metrics)
        self._interval.append(torch.stack([metrics[k].float() for k in names] + [grad_norm.float()]).cpu())
        if (step + 1) % tc.log_every and step != 0:
            return None
        values = D.mean_across_ranks(torch.stack(self._interval).mean(0))  # the mean over the interval
        seconds = time.perf_counter() - self._interval_start
        speed = len(self._interval) * tc.batch_size * self.items_per_example / max(seconds, 1e-9)
        self._interval.clear()
        self._interval_start = time.perf_counter()
        row = {
            "step": step + 1,
            "lr": self.opt.param_groups[0]["lr"],
            "grad_norm": float(values[-1]),
            self.throughput: speed,
        }
        row.update({k: float(v) for k, v in zip(names, values[:-1], strict=True)})
        if self.train_log:
            self.train_log.write(row)
        return row

    def validate(self, done: int) -> dict[str, float]:
        """Validation metrics, logged by rank 0 (every rank computes them under FSDP: a collective)."""
        was_training = self.model.training
        self.model.eval()
        with torch.no_grad():
            result = {"step": done, **self.evaluate()}
        self.model.train(was_training)
        if self.val_log:
            self.val_log.write(result)
        return result

    def _gathered(self) -> nn.Module:
        """Under FSDP, an unsharded copy of the model on rank 0 (all ranks must call this)."""
        state = S.full_model_state(self.model)
        if not self.dist.is_main:
            return self.model
        copy_ = copy.deepcopy(self._template).to_empty(device="cpu")
        copy_.load_state_dict(state, strict=True)
        return copy_

    def save(self, done: int) -> None:
        """Atomically write the resumable state and the exported model (rank 0), then sync ranks.

        Under ``--strategy fsdp`` every rank writes its shards first (see ``sharding.save_sharded``)."""
        shards = S.save_sharded(self.out, done, self.model, self.opt) if self.dcp else None
        self.exported = self._gathered() if self.sharded else self.model
        if self.dist.is_main:
            state = {
                "step": done,
                "dcp": shards,
                "model": None if shards else full_state(self.model),
                "optimizer": None if shards else self.opt.state_dict(),
                "rng": torch.get_rng_state(),
                "train_config": dataclasses.asdict(self.tc),
                "log_interval": torch.stack(self._interval) if self._interval else None,
                "log_interval_s": time.perf_counter() - self._interval_start,
                "best": self.best,
                **self.extra_state(),
            }
            save_train_state(self.out / STATE_NAME, state)
            if shards:
                S.drop_older(self.out, shards)
            self.export(done)
        self.exported = self.model
        D.barrier()

    def fit(self, progress: bool, postfix: tuple[str, ...] = ("loss",)) -> dict[str, float]:
        """Train up to ``tc.steps``; Ctrl-C saves after the current step and re-raises."""
        tc, main = self.tc, self.dist.is_main
        validating = (main or self.sharded) and self.has_validation()
        last_val: dict[str, float] = {}
        if validating and self.start == 0:
            last_val = self.validate(0)  # the untrained baseline
        steps = range(self.start, tc.steps)
        desc = f"train {self.name}"
        bar = tqdm(steps, initial=self.start, total=tc.steps, desc=desc, disable=not (progress and main))
        with bar, GracefulStop() as stopper:
            for step in bar:
                row = self.step(step)
                if row:
                    bar.set_postfix({k: f"{row[k]:.3g}" for k in (*postfix, self.throughput) if k in row})
                done = step + 1
                if validating and (done % tc.eval_every == 0 or done == tc.steps):
                    last_val = self.validate(done)
                    if tc.keep_best:
                        self._keep_if_best(last_val, done)
                stop = stopper.requested()
                if done % tc.save_every == 0 or done == tc.steps or stop:
                    self.save(done)
                if stop:
                    if main:
                        print(f"\nstopped: saved step {done} to {self.out}; continue with --resume", file=sys.stderr)
                    raise KeyboardInterrupt
        return last_val

    def has_validation(self) -> bool:
        return False

    def _keep_if_best(self, result: dict[str, float], done: int) -> None:
        """Export into ``best/`` when ``result`` is the lowest validation so far (rank 0)."""
        value = result[self.best_key]
        if not math.isfinite(value) or (self.best is not None and not value < self.best[0]):
            return  # a diverged validation (nan, inf) is never the best
        self.best = [value, done]
        if self.dist.is_main:
            self.export(done, self.out / "best")
            print(
                f"\nbest validation so far ({self.best_key} {value:.4f}, step {done}): {self.out / 'best'}",
                file=sys.stderr,
            )
