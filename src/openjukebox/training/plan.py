"""A memory plan for training a prior: what one rank holds, before renting the hardware.

Everything is worked out on the meta device (no memory, no weights): the parameter counts come
from the model built there, and the activations from one teacher-forced forward pass there, whose
tensors saved for the backward pass are counted by ``torch.autograd.graph.saved_tensors_hooks``.

Per rank, training with Adam, fp32 master weights and bf16 compute:

- DDP: fp32 parameters ``4 P``, the bf16 copies autocast caches for the forward ``2 P``, fp32
  gradients ``4 P`` and Adam's two moments ``8 P``.
- FSDP (``fully_shard`` per residual block): the fp32 parameters, gradients and moments divided
  over the ranks (``ceil(P / R)`` each); bf16 weights: the root's (embeddings, output layer) plus
  two blocks all-gathered at a time (the one computing and the one prefetched).
- Activations of a rank's windows: without checkpointing every block's saved tensors plus those
  of the embedding, output layer and loss; with activation checkpointing, each block keeps only
  its input (B, L, W) in bf16, and one block's saved tensors live again while it is recomputed.

Not counted: the label conditioner and lyric encoder's activations (small beside the prior's),
communication buffers, allocator fragmentation and the CUDA context (about 1 GiB); leave room.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from ..prior.config import PriorConfig
from ..prior.model import Conditioning, build_prior

GIB = 2**30
FP32, BF16 = 4, 2


@dataclass(frozen=True)
class RankMemory:
    """Bytes per rank of one strategy."""

    strategy: str
    checkpointing: bool
    params: int
    bf16_weights: int
    grads: int
    optimizer: int
    activations: int

    @property
    def total(self) -> int:
        return self.params + self.bf16_weights + self.grads + self.optimizer + self.activations


@dataclass(frozen=True)
class MemoryPlan:
    name: str
    n_params: int
    world_size: int
    batch_per_rank: int
    tokens: int
    rows: tuple[RankMemory, ...]

    def table(self) -> str:
        """The plan as the text ``train prior --plan`` prints."""
        head = (
            f"{self.name}: {self.n_params:,} parameters; {self.world_size} ranks, {self.batch_per_rank} "
            f"window(s) of {self.tokens} tokens per rank; Adam, fp32 master weights, bf16 compute"
        )
        cols = ("params", "bf16 w", "grads", "Adam", "activ.", "total")
        unit, size = ("GiB", GIB) if max(r.total for r in self.rows) >= GIB else ("MiB", 2**20)
        lines = [head, f"{unit + ' per rank':24s}" + "".join(f"{c:>8s}" for c in cols)]
        for r in self.rows:
            name = r.strategy + (" + checkpointing" if r.checkpointing else "")
            values = (r.params, r.bf16_weights, r.grads, r.optimizer, r.activations, r.total)
            lines.append(f"{name:24s}" + "".join(f"{v / size:8.1f}" for v in values))
        return "\n".join(lines)


@dataclass(frozen=True)
class Activations:
    """Bytes saved for backward by one forward: per block, and outside the blocks (``rest``)."""

    blocks: tuple[int, ...]
    rest: int
    block_input: int  # one block's input (B, L, W) in bf16: what a checkpointed block keeps


def measure_activations(cfg: PriorConfig, batch: int) -> Activations:
    """Saved-tensor bytes of a bf16 teacher-forced loss on ``batch`` windows, on the meta device."""
    with torch.device("meta"):
        prior = build_prior(cfg).to(torch.bfloat16)
    where = ["rest"]
    sizes: dict[str, int] = {}
    seen: list[torch.Tensor] = []  # held so that ids stay unique while counting
    weights = {id(p) for p in prior.parameters()}  # saved weights are parameters, counted apart

    def pack(t: torch.Tensor) -> torch.Tensor:
        if id(t) not in weights and id(t._base) not in weights and not any(t is s for s in seen):
            seen.append(t)
            sizes[where[-1]] = sizes.get(where[-1], 0) + t.numel() * t.element_size()
        return t

    blocks = list(prior.transformer.layers)

    def enter(module, args) -> None:
        where.append(module.plan_name)

    def leave(module, args, out) -> None:
        where.pop()

    for i, block in enumerate(blocks):
        block.plan_name = f"block{i}"
        block.register_forward_pre_hook(enter)
        block.register_forward_hook(leave)
    w, length = cfg.width, cfg.n_ctx
    lc = cfg.lyrics
    with torch.device("meta"):
        codes = torch.zeros(batch, length, dtype=torch.long)
        start = torch.zeros(batch, 1, w, dtype=torch.bfloat16)
        x_cond = torch.zeros(batch, length, w, dtype=torch.bfloat16)
        lyrics = torch.zeros(batch, lc.n_tokens, dtype=torch.long) if lc else None
        encoder = torch.zeros(batch, lc.n_tokens, w, dtype=torch.bfloat16) if lc and not lc.single_enc_dec else None
    cond = Conditioning(start.requires_grad_(), x_cond.requires_grad_(), lyrics, encoder)
    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        logits = prior(codes, cond)
        F.cross_entropy(logits.reshape(-1, logits.shape[-1]).float(), codes.reshape(-1) + prior.code_offset)
    return Activations(
        tuple(sizes.get(f"block{i}", 0) for i in range(len(blocks))),
        sizes.get("rest", 0),
        batch * cfg.seq_len * w * BF16,
    )


def memory_plan(name: str, cfg: PriorConfig, world_size: int, global_batch: int) -> MemoryPlan:
    """DDP and FSDP, each with and without activation checkpointing, per rank of ``world_size``."""
    if world_size < 1:
        raise ValueError(f"a plan needs a world size of 1 or more, not {world_size}")
    with torch.device("meta"):
        prior = build_prior(cfg)
    n = sum(p.numel() for p in prior.parameters())
    per_block = [sum(p.numel() for p in b.parameters()) for b in prior.transformer.layers]
    root = n - sum(per_block)
    batch = max(1, math.ceil(global_batch / world_size))
    act = measure_activations(cfg, batch)
    plain = act.rest + sum(act.blocks)
    checkpointed = act.rest + act.block_input * len(act.blocks) + max(act.blocks, default=0)
    shard = math.ceil(n / world_size)
    rows = []
    for strategy in ("ddp", "fsdp"):
        for ckpt in (False, True):
            if strategy == "ddp":
                params, weights, grads, adam = FP32 * n, BF16 * n, FP32 * n, 2 * FP32 * n
            else:
                params, grads, adam = FP32 * shard, FP32 * shard, 2 * FP32 * shard
                weights = BF16 * (root + 2 * max(per_block, default=0))
            rows.append(RankMemory(strategy, ckpt, params, weights, grads, adam, checkpointed if ckpt else plain))
    return MemoryPlan(name, n, world_size, batch, cfg.seq_len, tuple(rows))
