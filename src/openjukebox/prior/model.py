"""The prior: an autoregressive transformer over one level's codes, conditioned by injected parts.

Input at position t is the embedding of code t-1 (position 0 gets the start embedding: artist +
genres, or a learned start token), plus a learned position embedding, plus ``x_cond`` (timing on
the top level, the upsampler conditioner below). Without a merged decoder the output layer is tied
to the input embedding and ``x_cond`` is added again after the transformer, as in the original.
The model is pure: sampling loops live in the sampling engine.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from ..transformer.attention import CROSS, KIND_NAMES, PRIME
from ..transformer.decode import DecodePlan, decode_step, linear_fn
from ..transformer.model import LayerNorm, Transformer
from .conditioning import LabelConditioner, UpsamplerConditioner
from .config import LyricsConfig, PriorConfig


@dataclass
class Conditioning:
    """What a window is conditioned on: start embedding (N, 1, W), x_cond (N, n_ctx, W) or None;
    with lyrics, their tokens (N, n_tokens) and, for the separate encoder, its states (N, n_tokens, W)."""

    start: torch.Tensor
    x_cond: torch.Tensor | None = None
    lyrics: torch.Tensor | None = None
    encoder: torch.Tensor | None = None


@dataclass(frozen=True)
class DecodeState:
    """One window's decode state: caches, the input of code position 0 (N, 1, W), the
    transformer's decode plan and the output layer as a plain callable."""

    caches: list
    first: torch.Tensor
    plan: DecodePlan
    head: Callable[[torch.Tensor], torch.Tensor]


class LyricEncoder(nn.Module):
    """The separate variant's lyric encoder: a causal transformer LM over the window's lyric tokens."""

    def __init__(self, lc: LyricsConfig):
        super().__init__()
        self.x_emb = nn.Embedding(lc.n_vocab, lc.width)
        self.start_token = nn.Parameter(torch.zeros(1, lc.width))
        self.pos_emb = nn.Parameter(torch.zeros(lc.n_tokens, lc.width))
        self.transformer = Transformer(lc.width, lc.depth, lc.heads, lc.n_tokens, lc.attn_order, lc.blocks)

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        """Tokens (N, n_tokens) -> activations (N, n_tokens, width); position t sees tokens < t."""
        x = self.x_emb(tokens)
        x = torch.cat([self.start_token.view(1, 1, -1).expand(x.shape[0], 1, -1).to(x.dtype), x[:, :-1]], dim=1)
        return self.transformer(x + self.pos_emb)


class Prior(nn.Module):
    """Codes (N, n_ctx) -> logits (N, n_ctx, l_bins), conditioned on labels and/or upper codes."""

    def __init__(
        self, cfg: PriorConfig, labels: LabelConditioner | None = None, conditioner: UpsamplerConditioner | None = None
    ):
        super().__init__()
        self.cfg = cfg
        w = cfg.width
        self.labels = labels
        self.conditioner = conditioner
        lc = cfg.lyrics
        self.single = lc is not None and lc.single_enc_dec
        self.prefix_len = lc.n_tokens if self.single else 0  # lyric positions ahead of the codes
        self.code_offset = lc.n_vocab if self.single else 0  # codes' ids in the merged vocabulary
        self.x_emb = nn.Embedding(cfg.l_bins + self.code_offset, w)
        self.pos_emb = nn.Parameter(torch.zeros(cfg.seq_len, w))
        if labels is None:
            self.start_token = nn.Parameter(torch.zeros(1, w))
        if lc is not None and not self.single:
            self.lyric_encoder = LyricEncoder(lc)
            self.lyric_proj = nn.Linear(lc.width, w)
            self.lyric_ln = LayerNorm(w)
            self.lyric_out = nn.Linear(w, lc.n_vocab, bias=False)
        # The original's prime-attention quirk: the lyric keys are padded with `blocks`, not block_ctx.
        prime_len = (lc.n_tokens // cfg.blocks + 1) * cfg.blocks if self.single else 0
        self.transformer = Transformer(
            w, cfg.depth, cfg.heads, cfg.seq_len, cfg.attn_order, cfg.blocks, prime_len, cfg.m_attn, cfg.m_mlp
        )
        self.x_out = nn.Linear(w, cfg.l_bins + self.code_offset, bias=False) if cfg.merged_decoder else None
        self.reset_parameters()

    @torch.no_grad()
    def reset_parameters(self) -> None:
        """The original's init: N(0, 0.02 s) for weights and code embeddings, N(0, 0.01 s) for
        positions, start token and label embeddings; the conditioner's convs keep torch's init."""
        s = self.cfg.init_scale
        for module in self.modules():
            if isinstance(module, nn.Linear):
                module.weight.normal_(0, 0.02 * s)
                if module.bias is not None:
                    module.bias.zero_()
            elif isinstance(module, nn.Embedding):
                module.weight.normal_(0, 0.02 * s)
        if self.labels is not None:
            for module in self.labels.modules():
                if isinstance(module, nn.Embedding):
                    module.weight.normal_(0, 0.01 * s)
        self.pos_emb.normal_(0, 0.01 * s)
        if self.labels is None:
            self.start_token.normal_(0, 0.01 * s)
        for layer in self.transformer.layers:
            if layer.attn.kind == CROSS:  # the original forces zero_out on cross-attention
                layer.attn.proj.weight.zero_()
        lc = self.cfg.lyrics
        if lc is not None and not self.single:
            ps = lc.init_scale
            for module in [*self.lyric_encoder.modules(), self.lyric_proj]:
                if isinstance(module, (nn.Linear, nn.Embedding)):
                    module.weight.normal_(0, 0.02 * ps)
            self.lyric_encoder.start_token.normal_(0, 0.01 * ps)
            self.lyric_encoder.pos_emb.normal_(0, 0.01 * ps)

    def condition(
        self, y: torch.Tensor | None = None, z_above: torch.Tensor | None = None, batch: int | None = None
    ) -> Conditioning:
        """Label rows (N, 4+G[+n_tokens]) and/or codes of the level above (N, n_ctx / upsample) -> Conditioning."""
        x_cond = lyrics = encoder = None
        lc = self.cfg.lyrics
        if self.labels is not None:
            if y is None:
                raise ValueError("this prior is conditioned on labels: pass a label row y")
            width = 4 + self.cfg.labels.max_bow_genre_size + (lc.n_tokens if lc else 0)
            if y.shape[1] != width:
                raise ValueError(
                    f"label rows have {y.shape[1]} columns; this prior takes {width} "
                    "(total, offset, length, artist, genres" + (", lyric tokens)" if lc else ")")
                )
            if lc is not None:
                y, lyrics = y[:, : -lc.n_tokens], y[:, -lc.n_tokens :]
                if not self.single:
                    encoder = self.lyric_ln(self.lyric_proj(self.lyric_encoder(lyrics)))
            start, x_cond = self.labels(y)
        else:
            n = batch if batch is not None else (z_above.shape[0] if z_above is not None else 1)
            start = self.start_token.view(1, 1, -1).expand(n, 1, -1)
        if self.conditioner is not None:
            if z_above is None:
                raise ValueError("an upsampler needs the codes of the level above (z_above)")
            up = self.conditioner(z_above)
            x_cond = up if x_cond is None else x_cond + up
        return Conditioning(start, x_cond, lyrics, encoder)

    def embed(self, prev: torch.Tensor, t0: int, cond: Conditioning) -> torch.Tensor:
        """Inputs for code positions [t0, t0+C) from the codes at [t0-1, t0+C-1) (N, C) -> (N, C, W).

        Code position 0 gets the start embedding, or in the single variant the last lyric token.
        """
        x = self.x_emb(prev + self.code_offset)
        if t0 == 0:
            first = self.x_emb(cond.lyrics[:, -1:]) if self.single else cond.start.to(x.dtype)
            x = torch.cat([first, x[:, 1:]], dim=1)
        s = t0 + self.prefix_len
        x = x + self.pos_emb[s : s + x.shape[1]]
        if cond.x_cond is not None:
            x = x + cond.x_cond[:, t0 : t0 + x.shape[1]]
        return x

    def embed_lyrics(self, cond: Conditioning) -> torch.Tensor:
        """Single variant: inputs of the lyric positions (N, n_tokens, W): start, then the lyrics shifted."""
        x = self.x_emb(cond.lyrics)
        x = torch.cat([cond.start.to(x.dtype), x[:, :-1]], dim=1)
        return x + self.pos_emb[: self.prefix_len]

    def head(self, h: torch.Tensor, t0: int, cond: Conditioning) -> torch.Tensor:
        """Transformer output (N, C, W) for positions from t0 -> logits (N, C, l_bins)."""
        if self.x_out is None and cond.x_cond is not None:
            h = h + cond.x_cond[:, t0 : t0 + h.shape[1]]
        return F.linear(h, self.x_emb.weight) if self.x_out is None else self.x_out(h)

    def forward(
        self,
        codes: torch.Tensor,
        cond: Conditioning,
        reference: bool = False,
        with_lyrics: bool = False,
        inputs: torch.Tensor | None = None,
    ) -> torch.Tensor | tuple[torch.Tensor | None, torch.Tensor]:
        """Teacher-forced logits (N, L, V) for codes (N, L), L <= n_ctx.

        V is l_bins, or in the single variant the merged vocabulary (lyric ids first). With
        ``with_lyrics``, returns (lyric logits (N, n_tokens, V_lyrics) or None, code logits).
        ``inputs`` (N, L): the codes fed in as each position's past instead of ``codes`` (position t
        sees inputs[:, :t]), as when training on the prior's own draws.
        """
        x = self.embed(F.pad((codes if inputs is None else inputs)[:, :-1], (1, 0)), 0, cond)
        if self.single:
            x = torch.cat([self.embed_lyrics(cond), x], dim=1)
        h = self.transformer(x, cond.encoder, reference=reference)
        logits = self.head(h[:, self.prefix_len :], 0, cond)
        if not with_lyrics:
            return logits
        lyric_logits = None
        if self.single:
            lyric_logits = self.head(h[:, : self.prefix_len], 0, Conditioning(cond.start))  # no x_cond there
        elif cond.encoder is not None:
            lyric_logits = self.lyric_out(cond.encoder)
        return lyric_logits, logits

    def make_caches(self, cond: Conditioning) -> list:
        """Fresh caches for sampling under ``cond``: encoder keys/values set, the lyric prefix prefilled."""
        n = cond.start.shape[0]
        caches = self.transformer.make_caches(n, cond.encoder, self.pos_emb.dtype, self.pos_emb.device)
        if self.single:
            self.transformer.forward_cached(self.embed_lyrics(cond), 0, caches)
        return caches

    def forward_cached(self, prev: torch.Tensor, t0: int, cond: Conditioning, caches: list) -> torch.Tensor:
        """Logits (N, C, V) for code positions [t0, t0+C), given the codes at [t0-1, t0+C-1)."""
        h = self.transformer.forward_cached(self.embed(prev, t0, cond), t0 + self.prefix_len, caches)
        return self.head(h, t0, cond)

    def decode_state(self, cond: Conditioning, caches: list) -> DecodeState:
        """What ``decode_step`` needs for a window sampled under ``cond`` with ``caches``."""
        first = self.x_emb(cond.lyrics[:, -1:]) if self.single else cond.start.to(self.pos_emb.dtype)
        head = (lambda h: F.linear(h, self.x_emb.weight)) if self.x_out is None else linear_fn(self.x_out)
        plan = DecodePlan.of(self.transformer, self.pos_emb.device, self.pos_emb.dtype)
        return DecodeState(caches, first, plan, head)

    def decode_step(
        self, prev: torch.Tensor, pos: int | torch.Tensor, cond: Conditioning, state: DecodeState
    ) -> torch.Tensor:
        """Logits (N, V) of code position ``pos`` given the code at pos-1 (N, 1): the one-token
        step of ``forward_cached`` (the same values up to float rounding).

        ``pos`` is an int (each layer attends a view of its visible slots), or a (1,) long tensor
        on the device: then the shapes are static and nothing waits for the host, so a GPU can
        replay the step from a CUDA graph.
        """
        x = self.x_emb(prev + self.code_offset) if self.code_offset else self.x_emb(prev)
        s = pos + self.prefix_len
        if isinstance(pos, int):
            x = state.first if pos == 0 else x
            x = x + self.pos_emb[s : s + 1]
            x_cond = None if cond.x_cond is None else cond.x_cond[:, pos : pos + 1]
        else:
            x = torch.where(pos == 0, state.first, x)
            x = x + self.pos_emb.index_select(0, s)
            x_cond = None if cond.x_cond is None else cond.x_cond.index_select(1, pos)
        if x_cond is not None:
            x = x + x_cond
        h = decode_step(state.plan, x, s, state.caches)
        if self.x_out is None and x_cond is not None:
            h = h + x_cond
        return state.head(h[:, 0])

    def losses(
        self,
        codes: torch.Tensor,
        cond: Conditioning,
        align: torch.Tensor | None = None,
        inputs: torch.Tensor | None = None,
    ) -> dict[str, torch.Tensor]:
        """Bits per token: ``gen`` (codes), ``lyrics`` (the lyric prediction, if any) and their
        weighted ``total``: fraction * lyrics * n_tokens / (n_tokens + L) + gen * L / (n_tokens + L).

        With ``align`` (N, L), the lyric-window position of the character sung at each code (-1:
        none), also ``align`` (bits per code of the alignment head's attention to that character,
        not in ``total``), ``align_accuracy`` (how often the head attends most to it) and
        ``align_codes`` (how many codes have a target). ``inputs``: the past fed in, as in ``forward``."""
        attn = self._alignment_attention() if align is not None else None
        if attn is not None:
            attn.record = True
        try:
            lyric_logits, logits = self(codes, cond, with_lyrics=True, inputs=inputs)
            weights = None if attn is None else attn.log_weights
        finally:
            if attn is not None:
                attn.record, attn.weights, attn.log_weights = False, None, None
        gen = _bits(logits, codes + self.code_offset)
        if lyric_logits is None:
            return {"total": gen, "gen": gen}
        lyrics = _bits(lyric_logits, cond.lyrics)
        n_tok, n_gen = cond.lyrics.shape[1], codes.shape[1]
        frac = self.cfg.lyrics.loss_fraction
        total = frac * lyrics * n_tok / (n_tok + n_gen) + gen * n_gen / (n_tok + n_gen)
        out = {"total": total, "gen": gen, "lyrics": lyrics}
        if weights is not None:
            if self.single:
                weights = weights[:, :, self.prefix_len :, : self.prefix_len]
            out |= _alignment_bits(weights[:, self.cfg.lyrics.alignment_head or 0], align)
        return out

    def _alignment_attention(self):
        """The attention layer read for the lyric alignment (the config's ``alignment_layer``)."""
        lc = self.cfg.lyrics
        if lc is None or lc.alignment_layer is None:
            raise ValueError("alignment targets need a lyrics prior whose config names its alignment_layer")
        attn = self.transformer.layers[lc.alignment_layer].attn
        if attn.kind not in (CROSS, PRIME):
            kind = KIND_NAMES[attn.kind]
            raise ValueError(f"alignment_layer {lc.alignment_layer} is a {kind} layer, which does not attend to lyrics")
        return attn

    def loss(self, codes: torch.Tensor, cond: Conditioning) -> torch.Tensor:
        """The training loss in bits per token (codes, plus the weighted lyric loss with lyrics)."""
        return self.losses(codes, cond)["total"]

    @torch.no_grad()
    def lyric_attention(self, codes: torch.Tensor, cond: Conditioning, layer: int) -> torch.Tensor:
        """Attention of the code positions to the lyric tokens in ``layer`` (N, H, L, n_tokens).

        The layer must be a cross-attention (separate variant) or prime-attention (single) layer.
        """
        attn = self.transformer.layers[layer].attn
        if attn.kind not in (CROSS, PRIME):
            raise ValueError(f"layer {layer} is a {KIND_NAMES[attn.kind]} layer; it does not attend to lyrics")
        attn.record = True
        try:
            self(codes, cond)
            weights = attn.weights
        finally:
            attn.record, attn.weights, attn.log_weights = False, None, None
        if self.single:
            weights = weights[:, :, self.prefix_len :, : self.prefix_len]
        return weights

    def lyric_layers(self) -> list[int]:
        """Indices of the layers that attend to the lyrics."""
        return [i for i, kind in enumerate(self.transformer.kinds) if kind in (CROSS, PRIME)]


def _alignment_bits(log_weights: torch.Tensor, target: torch.Tensor) -> dict[str, torch.Tensor]:
    """Log attention weights (N, L, S) against target positions (N, L; -1 ignored): mean bits of
    the target under the weights, how often it has the largest weight, and how many targets there are."""
    known = target >= 0
    picked = log_weights.gather(-1, target.clamp_min(0).unsqueeze(-1)).squeeze(-1).float()
    n = known.sum()
    bits = -torch.where(known, picked, 0.0).sum() / n.clamp_min(1) / math.log(2)
    accuracy = ((log_weights.argmax(-1) == target) & known).sum() / n.clamp_min(1)
    return {"align": bits, "align_accuracy": accuracy.detach(), "align_codes": n.detach()}


def _bits(logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    return F.cross_entropy(logits.reshape(-1, logits.shape[-1]).float(), targets.reshape(-1)) / math.log(2)


def build_prior(cfg: PriorConfig) -> Prior:
    """The one place where a PriorConfig becomes modules."""
    labels = None
    if cfg.labels is not None:
        lc = cfg.labels
        labels = LabelConditioner(
            lc.genre_bins,
            lc.artist_bins,
            cfg.width,
            cfg.n_ctx,
            lc.t_bins,
            lc.timing,
            lc.min_duration * cfg.sample_rate,
            lc.max_duration * cfg.sample_rate,
            lc.every_position,
        )
    conditioner = None
    if cfg.conditioner is not None:
        c = cfg.conditioner
        conditioner = UpsamplerConditioner(
            cfg.l_bins,
            cfg.width,
            c.width,
            c.depth,
            c.down_t,
            c.stride_t,
            c.dilation_growth_rate,
            c.dilation_cycle,
            c.res_scale,
            c.named_blocks,
        )
    return Prior(cfg, labels, conditioner)
