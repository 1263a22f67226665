"""FSDP2 for priors that outgrow one device, activation checkpointing, and sharded checkpoints.

``--strategy fsdp`` shards every residual block with ``torch.distributed.fsdp.fully_shard`` (then
the root: embeddings, conditioners, output layer), with bf16 compute and fp32 gradient reduction
under ``--bf16``. Its checkpoints go through ``torch.distributed.checkpoint`` (DCP): each rank
writes its shards into ``train_state.dcp/step_N/``, and a run resumes from them on any number of
ranks (one included, without a process group) since DCP reshards on load.
"""

from __future__ import annotations

import contextlib
import shutil
import warnings
from pathlib import Path

import torch
import torch.distributed as dist
import torch.distributed.checkpoint as dcp
from torch import nn
from torch.distributed.checkpoint.state_dict import (
    StateDictOptions,
    get_model_state_dict,
    get_state_dict,
    set_state_dict,
)
from torch.distributed.fsdp import MixedPrecisionPolicy, fully_shard, register_fsdp_forward_method

from ..transformer.model import ResidualAttentionBlock

DCP_DIR = "train_state.dcp"


def set_checkpointing(model: nn.Module, on: bool) -> None:
    """Recompute every residual block in the backward pass (``torch.utils.checkpoint``) when ``on``."""
    for m in model.modules():
        if hasattr(m, "checkpointing"):
            m.checkpointing = on


def shard(model: nn.Module, bf16: bool, methods: tuple[str, ...] = ()) -> nn.Module:
    """``fully_shard`` each residual block, then the whole model (in place; returns it); the
    model's ``methods`` other than forward get FSDP's forward hooks too."""
    mp = MixedPrecisionPolicy(param_dtype=torch.bfloat16, reduce_dtype=torch.float32) if bf16 else None
    kw = {"mp_policy": mp} if mp else {}
    for m in model.modules():
        if isinstance(m, ResidualAttentionBlock):
            fully_shard(m, **kw)
    fully_shard(model, **kw)
    for name in methods:
        register_fsdp_forward_method(model, name)
    return model


def plain(value: torch.Tensor) -> torch.Tensor:
    """A DTensor's full value (a plain tensor as it is)."""
    return value.full_tensor() if hasattr(value, "full_tensor") else value


def save_sharded(out: Path, step: int, model: nn.Module, opt: torch.optim.Optimizer) -> str:
    """Every rank writes its shards of model and optimizer into ``DCP_DIR/step_{step}`` (through a
    temporary folder renamed when complete); returns the folder's path relative to ``out``."""
    model_sd, optim_sd = get_state_dict(model, opt)
    final = out / DCP_DIR / f"step_{step}"
    tmp = out / DCP_DIR / f".step_{step}.tmp"
    main = not dist.is_initialized() or dist.get_rank() == 0
    if main:
        shutil.rmtree(tmp, ignore_errors=True)
    _barrier()
    with _one_process():
        dcp.save({"model": model_sd, "optim": optim_sd}, checkpoint_id=str(tmp))
    _barrier()
    if main:
        shutil.rmtree(final, ignore_errors=True)
        tmp.rename(final)
    _barrier()
    return str(final.relative_to(out))


def drop_older(out: Path, keep: str) -> None:
    """Remove the sharded checkpoints other than ``keep`` (after the state pointing to it is written)."""
    for d in (out / DCP_DIR).glob("step_*"):
        if d != out / keep:
            shutil.rmtree(d, ignore_errors=True)


def load_sharded(path: Path, model: nn.Module, opt: torch.optim.Optimizer) -> None:
    """Load a sharded checkpoint into ``model`` and ``opt``, sharded or not, on any number of ranks."""
    model_sd, optim_sd = get_state_dict(model, opt)
    state = {"model": model_sd, "optim": optim_sd}
    with _one_process():
        dcp.load(state, checkpoint_id=str(path))
    set_state_dict(model, opt, model_state_dict=state["model"], optim_state_dict=state["optim"])


def full_model_state(model: nn.Module) -> dict[str, torch.Tensor]:
    """The whole model's state on CPU, gathered from every rank (a collective: all ranks call it);
    complete on rank 0, empty on the others."""
    return get_model_state_dict(model, options=StateDictOptions(full_state_dict=True, cpu_offload=True))


@contextlib.contextmanager
def _one_process():
    """DCP warns that it runs in a single process when there is no process group: that is meant."""
    with warnings.catch_warnings():
        if not dist.is_initialized():
            warnings.filterwarnings("ignore", message="torch.distributed is disabled")
        yield


def _barrier() -> None:
    if dist.is_initialized():
        dist.barrier()
