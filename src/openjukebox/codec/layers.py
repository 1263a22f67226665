"""Convolutional building blocks of the VQ-VAE (and of the upsampler conditioner).

Module nesting and indices follow the original Jukebox code, so that its state dicts load without
any key renaming: ``level_blocks.{i}.model.{j}.{0,1}`` and ``model.{r}.model.{1,3}`` in resnets.
All tensors are (N, C, T).
"""

from __future__ import annotations

import math

import torch
from torch import nn


class ResConv1DBlock(nn.Module):
    """x + res_scale * conv1x1(relu(dilated_conv3(relu(x)))); keeps (N, C, T)."""

    def __init__(self, n_in: int, n_state: int, dilation: int = 1, res_scale: float = 1.0):
        super().__init__()
        self.model = nn.Sequential(
            nn.ReLU(),
            nn.Conv1d(n_in, n_state, 3, 1, padding=dilation, dilation=dilation),
            nn.ReLU(),
            nn.Conv1d(n_state, n_in, 1, 1, 0),
        )
        self.res_scale = res_scale

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.res_scale * self.model(x)


class Resnet1D(nn.Module):
    """``depth`` residual blocks with dilations growth**(j % cycle); keeps (N, C, T).

    ``named_blocks`` stores them as ``self.blocks`` (a ModuleList) instead of ``self.model``: the
    original does that for ``checkpoint_res``, and its upsampler checkpoints use those names.
    """

    def __init__(
        self,
        n_in: int,
        depth: int,
        m_conv: float = 1.0,
        dilation_growth_rate: int = 1,
        dilation_cycle: int | None = None,
        reverse_dilation: bool = False,
        res_scale: bool = False,
        named_blocks: bool = False,
    ):
        super().__init__()
        scale = 1.0 / math.sqrt(depth) if res_scale else 1.0
        blocks = [
            ResConv1DBlock(
                n_in,
                int(m_conv * n_in),
                dilation=dilation_growth_rate ** (j if dilation_cycle is None else j % dilation_cycle),
                res_scale=scale,
            )
            for j in range(depth)
        ]
        if reverse_dilation:
            blocks = blocks[::-1]
        self.named_blocks = named_blocks
        if named_blocks:
            self.blocks = nn.ModuleList(blocks)
        else:
            self.model = nn.Sequential(*blocks)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.named_blocks:
            return self.model(x)
        for block in self.blocks:
            x = block(x)
        return x


class EncoderConvBlock(nn.Module):
    """Downsample (N, c_in, T) -> (N, c_out, T / stride**down_t) with strided convs and resnets."""

    def __init__(self, c_in: int, c_out: int, down_t: int, stride_t: int, width: int, depth: int, **resnet_kwargs):
        super().__init__()
        steps: list[nn.Module] = [
            nn.Sequential(
                nn.Conv1d(c_in if i == 0 else width, width, 2 * stride_t, stride_t, stride_t // 2),
                Resnet1D(width, depth, **resnet_kwargs),
            )
            for i in range(down_t)
        ]
        steps.append(nn.Conv1d(width, c_out, 3, 1, 1))
        self.model = nn.Sequential(*steps)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model(x)


class DecoderConvBlock(nn.Module):
    """Upsample (N, c_in, T) -> (N, c_out, T * stride**down_t) with resnets and transposed convs."""

    def __init__(self, c_in: int, c_out: int, down_t: int, stride_t: int, width: int, depth: int, **resnet_kwargs):
        super().__init__()
        steps: list[nn.Module] = [nn.Conv1d(c_in, width, 3, 1, 1)]
        steps += [
            nn.Sequential(
                Resnet1D(width, depth, **resnet_kwargs),
                nn.ConvTranspose1d(width, c_out if i == down_t - 1 else width, 2 * stride_t, stride_t, stride_t // 2),
            )
            for i in range(down_t)
        ]
        self.model = nn.Sequential(*steps)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model(x)


class Encoder(nn.Module):
    """Audio (N, 1, T) -> latents (N, emb_width, T / prod(downsamples)) through blocks 0..L."""

    def __init__(self, emb_width: int, downs_t, strides_t, width: int, depth: int, **resnet_kwargs):
        super().__init__()
        self.level_blocks = nn.ModuleList(
            EncoderConvBlock(1 if i == 0 else emb_width, emb_width, d, s, width, depth, **resnet_kwargs)
            for i, (d, s) in enumerate(zip(downs_t, strides_t, strict=True))
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for block in self.level_blocks:
            x = block(x)
        return x


class Decoder(nn.Module):
    """Latents (N, emb_width, T') -> audio (N, 1, T' * prod(downsamples)); blocks run L..0."""

    def __init__(self, emb_width: int, downs_t, strides_t, width: int, depth: int, **resnet_kwargs):
        super().__init__()
        self.level_blocks = nn.ModuleList(
            DecoderConvBlock(emb_width, emb_width, d, s, width, depth, **resnet_kwargs)
            for d, s in zip(downs_t, strides_t, strict=True)
        )
        self.out = nn.Conv1d(emb_width, 1, 3, 1, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for block in reversed(self.level_blocks):
            x = block(x)
        return self.out(x)


def context_radius(convs: list[nn.Module], unit: float = 1.0) -> float:
    """Upper bound on how far (in input units) an output of a conv stack can see to either side.

    ``convs`` lists the stack's Conv1d/ConvTranspose1d layers in execution order; residual skips
    never widen the view, so summing over every conv bounds the receptive field. Used to pick the
    overlap of chunked encode/decode so that chunks equal the one-shot result.
    """
    radius, step = 0.0, unit
    for conv in convs:
        (k,), (s,), (d,), (p,) = conv.kernel_size, conv.stride, conv.dilation, conv.padding
        if isinstance(conv, nn.ConvTranspose1d):
            radius += math.ceil(k / s) * step
            step /= s
        else:
            radius += max(p, (k - 1) * d - p) * step
            step *= s
    return radius


def convs_in_order(module: nn.Module) -> list[nn.Module]:
    """The Conv1d/ConvTranspose1d layers of an Encoder or Decoder in the order they run."""
    blocks = list(module.level_blocks)
    if isinstance(module, Decoder):
        blocks = blocks[::-1] + [module.out]
    return [m for b in blocks for m in b.modules() if isinstance(m, (nn.Conv1d, nn.ConvTranspose1d))]
