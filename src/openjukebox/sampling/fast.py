"""The fastest configuration of a prior for sampling on its device, and the per-token step runners.

``prepare_prior`` is the public switch: int8 weights for the transformer's linear layers on a CPU
(PyTorch's dynamic quantization: int8 weights, activations quantized per call), bf16 weights and
caches on a GPU. ``make_stepper`` returns what ``sample_window`` calls once per token: the prior's
``decode_step`` run eagerly (the position an int), or on CUDA with static shapes (the position a
tensor) captured once in a CUDA graph and replayed.
"""

from __future__ import annotations

import copy
import warnings
from collections.abc import Callable

import torch
from torch import nn

from ..prior.model import Conditioning, Prior
from ..transformer.model import MLP

QUANTIZE = ("none", "int8")


def prepare_prior(prior: Prior, quantize: str | None = None, dtype: torch.dtype | None = None) -> Prior:
    """A prior ready for fast sampling.

    ``quantize="int8"`` (CPU only) returns a copy whose transformer linear layers and output layer
    have int8 weights (the embeddings, the lyric encoder and the conditioners keep theirs), with
    quick-GELU's scale folded into the MLP weights first; the argument is left as it was.
    ``dtype`` (e.g. torch.bfloat16, meant for GPUs) converts the prior itself, without a copy
    (official priors have billions of weights): weights and caches in that dtype, layer norms
    computed in float32.
    """
    quantize = quantize or "none"
    if quantize not in QUANTIZE:
        raise ValueError(f"quantize must be one of {', '.join(QUANTIZE)}; got {quantize!r}")
    if quantize == "none" and dtype is None:
        return prior
    device = prior.pos_emb.device
    if quantize == "int8" and device.type != "cpu":
        raise ValueError(f"int8 quantization runs on the CPU; this prior is on {device} (use dtype=torch.bfloat16)")
    if dtype is not None:
        prior = prior.to(dtype)
    if quantize == "int8":
        prior = copy.deepcopy(prior).eval()
        for module in prior.transformer.modules():
            if isinstance(module, MLP):
                module.fold_gelu_scale()  # one SiLU per MLP instead of three operations
        names = {f"transformer.{name}" for name, m in prior.transformer.named_modules() if isinstance(m, nn.Linear)}
        if prior.x_out is not None:
            names.add("x_out")
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # torch.ao's notice that eager quantization moves to torchao
            torch.ao.quantization.quantize_dynamic(prior, names, dtype=torch.qint8, inplace=True)
    return prior


Stepper = Callable[[torch.Tensor, int], torch.Tensor]


def make_stepper(prior: Prior, cond: Conditioning, caches: list, batch: int, start: int, graph: bool) -> Stepper:
    """``step(prev (N, 1), t) -> logits (N, V)`` for code positions t >= ``start``, in order.

    With ``graph`` (CUDA only) the step is captured once and replayed: positions and tokens go
    through static buffers, so a token costs one graph launch and no host synchronisation.
    """
    state = prior.decode_state(cond, caches)
    if not graph:
        return lambda prev, t: prior.decode_step(prev, t, cond, state)
    device = prior.pos_emb.device
    pos = torch.full((1,), start, dtype=torch.long, device=device)
    prev_buf = torch.zeros(batch, 1, dtype=torch.long, device=device)
    # Warm-up off the capture (cuBLAS/SDPA workspaces); it writes only the slots of position
    # ``start``, which the first real step overwrites.
    side = torch.cuda.Stream(device)
    side.wait_stream(torch.cuda.current_stream(device))
    with torch.cuda.stream(side):
        for _ in range(2):
            prior.decode_step(prev_buf, pos, cond, state)
    torch.cuda.current_stream(device).wait_stream(side)
    cuda_graph = torch.cuda.CUDAGraph()
    with torch.cuda.graph(cuda_graph):
        logits = prior.decode_step(prev_buf, pos, cond, state)

    def replay(prev: torch.Tensor, t: int) -> torch.Tensor:
        prev_buf.copy_(prev)
        pos.fill_(t)
        cuda_graph.replay()
        return logits

    return replay
