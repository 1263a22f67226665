"""Sampling one context window of a prior: prefill a prompt in chunks, then one token at a time.

The per-token step goes through the transformer's static caches; nothing is re-computed and
nothing grows. Windowed sampling of whole songs builds on ``sample_window``.
"""

from __future__ import annotations

from collections.abc import Callable
from contextlib import contextmanager

import torch
import torch.nn.functional as F

from ..prior.model import Conditioning, Prior
from .fast import make_stepper


def filter_logits(logits: torch.Tensor, top_k: int = 0, top_p: float = 0.0) -> torch.Tensor:
    """Set to -inf every logit outside the top k, and outside the smallest set whose probability
    exceeds top_p (the token that crosses top_p is kept). (..., V) -> (..., V); the input is not changed."""
    if top_k <= 0 and not 0.0 < top_p < 1.0:
        return logits  # nothing to filter: no copy in the per-token loop
    logits = logits.clone()
    if top_k > 0:
        kth = logits.topk(min(top_k, logits.shape[-1]), dim=-1).values[..., -1:]
        logits[logits < kth] = float("-inf")
    if 0.0 < top_p < 1.0:
        sorted_logits, order = logits.sort(dim=-1, descending=True)
        cum = sorted_logits.softmax(dim=-1).cumsum(dim=-1)
        remove = cum > top_p
        remove[..., 1:] = remove[..., :-1].clone()  # keep the token that crosses top_p
        remove[..., 0] = False
        logits.scatter_(-1, order, sorted_logits.masked_fill(remove, float("-inf")))
    return logits


def draw(logits: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
    """One token per row of logits (N, V) -> (N,), by inverting the cumulative distribution at one
    uniform number per row. (``torch.multinomial`` draws an exponential number per vocabulary
    entry: 0.76 ms of a 10 ms batch-16 step here.) Tokens of probability 0 are never drawn."""
    cdf = logits.softmax(-1).cumsum(-1)
    u = torch.rand(cdf.shape[0], 1, generator=generator, device=cdf.device, dtype=cdf.dtype) * cdf[:, -1:]
    return torch.searchsorted(cdf, u, right=True).squeeze(1).clamp_(max=cdf.shape[1] - 1)


@contextmanager
def _one_thread(active: bool):
    threads = torch.get_num_threads()
    if active:
        torch.set_num_threads(1)
    try:
        yield
    finally:
        if active:
            torch.set_num_threads(threads)


@torch.no_grad()
def sample_window(
    prior: Prior,
    cond: Conditioning,
    length: int,
    prompt: torch.Tensor | None = None,
    temperature: float = 1.0,
    top_k: int = 0,
    top_p: float = 0.0,
    generator: torch.Generator | None = None,
    chunk_size: int = 64,
    on_logits: Callable[[int, torch.Tensor], None] | None = None,
    progress: Callable[[int], None] | None = None,
    uncond: Conditioning | None = None,
    guidance: float = 1.0,
    fast: bool = True,
    graph: bool | None = None,
) -> torch.Tensor:
    """Codes (N, length): ``prompt`` (N, P) kept, positions P..length-1 sampled.

    The prompt is prefilled in chunks of ``chunk_size`` positions to bound memory. ``on_logits``
    sees the logits (N, V) of every sampled position (inference-mode tensors: read or copy them; a
    clone made in the callback is one too, so to train on them clone after ``sample_window``
    returns); ``progress`` is told of each new token.

    Classifier-free guidance: with ``uncond`` (the same windows with the labels unknown) and
    ``guidance`` g != 1, both run as one batch of 2N and the logits are u + g (c - u). It needs a
    prior trained with label dropout.

    ``fast``: each token through the prior's ``decode_step`` (the default), on a CPU
    with one intra-op thread: a token's operations are too small to share, and two threads beside
    another busy process were up to 40x slower. False runs ``forward_cached`` with torch's thread
    setting: the reference. ``graph``: replay the step from a CUDA graph (default: on CUDA).
    """
    n = cond.start.shape[0]
    device = cond.start.device
    tokens = torch.zeros(n, length, dtype=torch.long, device=device)
    p = 0 if prompt is None else prompt.shape[1]
    if p:
        tokens[:, :p] = prompt
    guided = uncond is not None and guidance != 1.0
    run_cond = _cat(cond, uncond) if guided else cond
    both = (lambda x: torch.cat([x, x])) if guided else (lambda x: x)  # noqa: E731
    # inference mode: no version counters or view tracking on the caches and per-token tensors (int8
    # steps 1.15x at batch 1 against no_grad alone, float32 1.02x)
    with _one_thread(fast and device.type == "cpu"), torch.inference_mode():
        caches = prior.make_caches(run_cond)
        for t in range(0, p, chunk_size):  # prefill: inputs of positions [t, t+C) are tokens [t-1, t+C-1)
            c = min(chunk_size, p - t)
            prev = F.pad(tokens[:, max(t - 1, 0) : t + c - 1], (1 if t == 0 else 0, 0))
            prior.forward_cached(both(prev), t, run_cond, caches)
        if fast and p < length:  # (a stepper warms up at position p)
            graph = device.type == "cuda" if graph is None else graph
            step = make_stepper(prior, run_cond, caches, 2 * n if guided else n, p, graph)
        else:
            step = lambda prev, t: prior.forward_cached(prev, t, run_cond, caches)[:, -1]  # noqa: E731
        for t in range(p, length):
            prev = tokens[:, t - 1 : t] if t > 0 else tokens[:, :1]
            logits = step(both(prev), t).float()
            if guided:
                c, u = logits[:n], logits[n:]
                logits = u + guidance * (c - u)
            if on_logits is not None:
                on_logits(t, logits)
            logits = filter_logits(logits if temperature == 1.0 else logits / temperature, top_k, top_p)
            # In the single lyrics variant the vocabulary is merged (lyric ids first); a lyric id drawn at a
            # code position is fed back as drawn and becomes code 0 in the output, as in the original.
            tokens[:, t] = draw(logits, generator) - prior.code_offset
            if progress is not None:
                progress(1)
    return tokens.clamp_(min=0)


def _cat(a: Conditioning, b: Conditioning) -> Conditioning:
    """Two conditionings of N windows each as one of 2N."""
    join = lambda x, y: None if x is None else torch.cat([x, y])  # noqa: E731
    return Conditioning(
        join(a.start, b.start), join(a.x_cond, b.x_cond), join(a.lyrics, b.lyrics), join(a.encoder, b.encoder)
    )
