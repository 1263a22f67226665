"""Training a prior (top level) or an upsampler on the codes of a trained VQ-VAE.

The data set is decoded once, encoded to codes once per VQ-VAE, and drawn as n_ctx windows with
their true offsets and timing labels. Loss and validation are in bits per token; validation also
reports the unigram entropy of the codes (a prior must beat it) and, for upsamplers, the loss with
the conditioning zeroed (the conditioning must help).
"""

from __future__ import annotations

import dataclasses
import math
import sys
from pathlib import Path

import numpy as np
import torch
from torch import nn
from tqdm import tqdm

from ..checkpoint import load_vqvae, model_id, save_model
from ..errors import UserError
from ..fileio import default_cache_dir
from ..lyrics.alignment import choose_head
from ..lyrics.timed import all_lyric_text
from ..lyrics.tokenizer import Tokenizer
from ..prior.conditioning import forget_labels
from ..prior.config import PriorConfig
from ..prior.model import Conditioning, Prior, build_prior
from ..prior.vocab import LabelVocab, vocab_from_dict
from . import distributed as D
from . import finetune as FT
from .code_windows import CodeWindows, encode_tracks
from .loop import TrainConfig, TrainingRun, open_run, resume_config
from .vqvae import prepare_training_audio, write_split

_TINY = TrainConfig(steps=400, batch_size=8, lr=1e-3, warmup_steps=20, eval_every=100, save_every=100)
_TOP = dataclasses.replace(_TINY, label_dropout=0.2)  # top priors: guidance-ready
_BASE = dataclasses.replace(_TOP, batch_size=64, lr=5e-4, warmup_steps=200, eval_every=250)  # the GPU shapes
TRAIN_PRESETS: dict[str, TrainConfig] = {
    "tiny_top": _TOP,
    "tiny_upsampler_1": _TINY,
    "tiny_upsampler_0": _TINY,
    "mini_top_lyrics": _TOP,
    "mini_upsampler_1": _TINY,
    "mini_upsampler_0": _TINY,
    "base_top_lyrics": _BASE,
    "base_upsampler_1": _BASE,
    "base_upsampler_0": _BASE,
    "small": TrainConfig(batch_size=4, lr=3e-4, eval_every=250, save_every=250),
}


UNIFORM_STEPS = 2**24  # --sampled-inputs: the uniforms of the draws as integers, u = k / UNIFORM_STEPS


class PriorLoss(nn.Module):
    """What DDP wraps: conditioning and loss in one forward, so every parameter's gradient syncs.
    With alignment targets the loss adds ``align_weight`` times the alignment head's bits."""

    def __init__(self, prior: Prior, align_weight: float = 0.0):
        super().__init__()
        self.prior, self.align_weight = prior, align_weight

    def forward(
        self,
        codes: torch.Tensor,
        y: torch.Tensor,
        above: torch.Tensor | None,
        align: torch.Tensor | None = None,
        resample: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """``resample`` (N, L) integers: where 0 or more, the input code is replaced by the prior's own
        draw (``own_draws`` at the uniform resample / 2**24; integers, so that no mixed-precision cast
        of float inputs rounds it); where negative, kept. The targets stay the codes."""
        cond = self.prior.condition(y, above, batch=codes.shape[0])
        inputs = None
        if resample is not None:
            u = resample.clamp(min=0).float() / UNIFORM_STEPS
            inputs = torch.where(resample >= 0, own_draws(self.prior, codes, cond, u), codes)
        losses = self.prior.losses(codes, cond, align, inputs=inputs)
        return losses["total"] + self.align_weight * losses["align"] if align is not None else losses["total"]

    def metrics(
        self, codes: torch.Tensor, y: torch.Tensor, above: torch.Tensor | None, align: torch.Tensor | None = None
    ) -> dict[str, torch.Tensor]:
        """Validation losses of a batch (bits per token): ``gen``, ``lyrics`` if any, ``zeroed``,
        the upsampler's loss with its conditioning zeroed, ``unknown``, the codes' loss with artist
        and genre unknown (what the labels tell the prior: the room guidance has), and with
        alignment targets those of ``Prior.losses``. Under FSDP a forward method of its own."""
        prior = self.prior
        cond = prior.condition(y, above, batch=codes.shape[0])
        losses = prior.losses(codes, cond, align)
        if prior.conditioner is not None:  # does the upsampler use its conditioning?
            losses["zeroed"] = prior.loss(codes, Conditioning(cond.start, torch.zeros_like(cond.x_cond)))
        if prior.labels is not None:  # how much do artist and genre tell it?
            unknown = prior.condition(forget_labels(y, prior.cfg.labels.max_bow_genre_size), above, codes.shape[0])
            losses["unknown"] = prior.losses(codes, unknown)["gen"]
        return losses


@torch.no_grad()
def own_draws(prior: Prior, codes: torch.Tensor, cond: Conditioning, u: torch.Tensor) -> torch.Tensor:
    """(N, L) a code drawn at every position from the prior's distribution given the true codes
    before it (one teacher-forced pass), by inverting its CDF at the uniforms ``u`` (N, L)."""
    logits = prior(codes, cond)[..., prior.code_offset :]  # the codes' part of a merged vocabulary
    cdf = torch.softmax(logits.float(), -1).cumsum(-1)
    return torch.searchsorted(cdf, u.to(cdf.dtype).unsqueeze(-1)).squeeze(-1).clamp_(max=cdf.shape[-1] - 1)


def drop_labels(y: torch.Tensor, genre_slots: int, p: float, seed: list[int]) -> torch.Tensor:
    """Label rows with each row's artist (and, independently, its genres) set to unknown with
    probability ``p``: artist 0, genre slots -1. Seeded by ``seed``, so a resumed run draws the same."""
    drop = torch.from_numpy(np.random.default_rng(seed).random((y.shape[0], 2)) < p)
    return forget_labels(y, genre_slots, drop[:, 0], drop[:, 1])


def _fit_config(
    cfg: PriorConfig, level: int, vq, vocab: LabelVocab, tokenizer: Tokenizer | None, seconds: list[float]
) -> PriorConfig:
    """The preset adapted to the VQ-VAE (codes, hop, rate), to the label and lyric vocabularies,
    and to the data's song lengths (``seconds``): the timing range widens to hold every track, in
    whole minutes above and whole seconds below."""
    labels = cfg.labels
    if labels is not None:
        labels = dataclasses.replace(labels, artist_bins=len(vocab.artists), genre_bins=len(vocab.genres))
        if labels.timing and seconds:
            lo = min(labels.min_duration, float(math.floor(min(seconds))))
            hi = max(labels.max_duration, 60.0 * (math.floor(max(seconds) / 60.0) + 1))
            labels = dataclasses.replace(labels, min_duration=lo, max_duration=hi)
    lyrics = cfg.lyrics
    if lyrics is not None:
        if labels is None:
            raise ValueError("a lyrics prior needs labels (the lyric tokens travel in the label rows)")
        lyrics = dataclasses.replace(lyrics, n_vocab=tokenizer.n_vocab)
    if (level < vq.config.levels - 1) != (cfg.conditioner is not None):
        kind = "an upsampler" if cfg.conditioner else "a top-level prior"
        raise ValueError(
            f"this preset is {kind}, but level {level} of a {vq.config.levels}-level VQ-VAE needs "
            f"{'an upsampler' if level < vq.config.levels - 1 else 'a top-level prior'}"
        )
    return dataclasses.replace(
        cfg,
        level=level,
        l_bins=vq.config.l_bins,
        hop_length=vq.hop_lengths[level],
        sample_rate=vq.config.sample_rate,
        labels=labels,
        lyrics=lyrics,
    )


def _say_if_widened(preset: PriorConfig, fitted: PriorConfig) -> None:
    a, b = preset.labels, fitted.labels
    if a is not None and (a.min_duration, a.max_duration) != (b.min_duration, b.max_duration):
        print(
            f"song lengths: {b.min_duration:g} s to under {b.max_duration:g} s (the preset's "
            f"{a.min_duration:g}-{a.max_duration:g} s, widened to hold every file)",
            file=sys.stderr,
        )


def _in_timing_range(audio, cfg: PriorConfig, out: Path, report: bool) -> None:
    """Leave out the files whose length a fixed timing range (a fine-tune's, a resumed run's) does
    not hold, as the original does: named in one message, added to ``skipped.txt`` and dropped
    from ``split.json``. (A new prior's range is fitted to hold every file.)"""
    lc = cfg.labels
    if lc is None or not lc.timing:
        return
    fits = lambda t: lc.min_duration <= t.n_samples / cfg.sample_rate < lc.max_duration  # noqa: E731
    left = [t for t in audio.train + audio.val if not fits(t)]
    if not left:
        return
    audio.train, audio.val = [t for t in audio.train if fits(t)], [t for t in audio.val if fits(t)]
    span = f"{lc.min_duration:g} s to under {lc.max_duration:g} s"
    if report:
        print(
            f"left out {len(left)} file(s) outside the model's song lengths ({span}), e.g. {left[0].path}",
            file=sys.stderr,
        )
        with open(out / "skipped.txt", "a") as f:
            f.writelines(f"{t.path}\toutside the model's song lengths ({span})\n" for t in left)
        write_split(out, audio)
    if not audio.train:
        raise UserError(f"no training file fits the model's song lengths ({span}); give songs of those lengths")


def _supervised_head(cfg: PriorConfig, tc: TrainConfig) -> PriorConfig:
    """With an alignment loss, the head it trains: the config's, else head 0 of the last lyric layer."""
    lc = cfg.lyrics
    if tc.align_weight <= 0 or lc is None or lc.alignment_layer is not None:
        return cfg
    from ..transformer.attention import CROSS, PRIME, attn_funcs

    layers = [i for i, kind in enumerate(attn_funcs(cfg.attn_order, cfg.depth)) if kind in (CROSS, PRIME)]
    return dataclasses.replace(cfg, lyrics=dataclasses.replace(lc, alignment_layer=layers[-1], alignment_head=0))


def _shape(cfg: PriorConfig) -> tuple:
    """What a preset fixes of a prior (the rest is fitted to the VQ-VAE and the data)."""
    return cfg.width, cfg.depth, cfg.heads, cfg.n_ctx, cfg.attn_order, cfg.conditioner is None, cfg.lyrics is None


def _build_tokenizer(tracks) -> Tokenizer:
    texts = [all_lyric_text(t.meta, t.path) for t in tracks]
    if not any(texts):
        raise ValueError(
            "this preset is conditioned on lyrics, but no track has any: give a 'lyrics' field in the manifest "
            "(text, or a list of {'time', 'text'}), or an .lrc/.txt file beside each audio file"
        )
    return Tokenizer.build(texts)


class PriorRun(TrainingRun):
    name = "prior"
    forward_methods = ("metrics",)
    throughput = "tokens_per_s"
    best_key = "bits_per_token"

    def __init__(
        self,
        data,
        out: Path,
        level: int | None,
        vqvae_dir,
        cfg: PriorConfig | None,
        tc: TrainConfig,
        resume: bool,
        dist: D.DistInfo,
        cache: Path,
        changes: dict | None = None,
        finetune: FT.FinetuneSpec | None = None,
        progress: bool = True,
    ):
        state = open_run(out, resume)
        vq = load_vqvae(vqvae_dir, dist.device)
        self.vq_id, self.vq_dir = model_id(vqvae_dir), str(Path(vqvae_dir).resolve())
        self.finetune = state.get("finetune") if state else None  # what a fine-tune records (see finetune.py)
        base = None
        if state and finetune is not None:
            raise UserError(f"{out}: resuming continues the run as it started; leave out --init-from")
        if finetune is not None:
            if cfg is not None:
                raise UserError("give either --preset (a new prior) or --init-from (a prior to fine-tune), not both")
            base, base_doc, base_dir = FT.open_base(finetune, level, vq, self.vq_id)
            cfg, level = base.cfg, base.cfg.level
        if state:
            if state["vqvae_id"] != self.vq_id:
                raise ValueError(
                    f"{out} was trained on the codes of another VQ-VAE ({state['vqvae_id']}), "
                    f"not {vqvae_dir} ({self.vq_id})"
                )
            saved = PriorConfig.from_dict(state["model_config"])
            if level is not None and level != saved.level:
                raise UserError(f"{out}: the run trains the level-{saved.level} prior, not level {level}")
            if cfg is not None and _shape(cfg) != _shape(saved):
                raise UserError(f"{out}: the run trains another prior than the preset given; leave --preset out")
            cfg, level = saved, saved.level
            tc = resume_config(out, state, tc, changes, report=dist.is_main)
        elif cfg is None or level is None:
            raise UserError("give the prior to train (--preset) and its level (--level)")
        if cfg.lyrics is None and (tc.align_weight > 0 or tc.lyric_jitter > 0 or tc.timed_share > 0):
            raise UserError(
                "--align-weight, --lyric-jitter and --timed-share train a lyrics prior; this one has no lyrics "
                "(train a lyrics preset such as mini_top_lyrics, fine-tune a prior with lyrics, or leave them out)"
            )
        if not 0.0 <= tc.sampled_inputs <= 1.0:
            raise UserError(f"--sampled-inputs is a share from 0 to 1, not {tc.sampled_inputs}")
        if tc.align_weight > 0 and tc.activation_checkpointing:
            raise UserError(
                "--align-weight reads the alignment head's attention, which --activation-checkpointing recomputes "
                "without it; give one of the two"
            )
        out.mkdir(parents=True, exist_ok=True)
        hop = vq.hop_lengths[level]
        audio = prepare_training_audio(data, out, vq.config.sample_rate, cfg.n_ctx * hop, tc, dist, cache, progress)
        if state or base is not None:  # a range fixed before the data: names are counted after it
            _in_timing_range(audio, cfg, out, dist.is_main)
        metas = [t.meta for t in audio.train + audio.val]
        self.tokenizer = None
        if base is not None:  # a fine-tune: the base's vocabularies, with the data's new names appended
            base, self.vocab, *new = FT.extend_labels(base, base_doc, metas, finetune.new_labels)
            self.tokenizer, self.cfg = FT.tokenizer_of(base_doc), base.cfg
            self.finetune = FT.info_of(finetune, base_dir, *new)
        else:
            self.vocab = vocab_from_dict(state["vocab"]) if state else LabelVocab.from_metadata(metas)
            if cfg.lyrics is not None:
                self.tokenizer = (
                    Tokenizer.from_dict(state["tokenizer"]) if state else _build_tokenizer(audio.train + audio.val)
                )
            seconds = [t.n_samples / vq.config.sample_rate for t in audio.train + audio.val]
            self.cfg = cfg if state else _fit_config(cfg, level, vq, self.vocab, self.tokenizer, seconds)
            if not state and dist.is_main:
                _say_if_widened(cfg, self.cfg)
        self.cfg = _supervised_head(self.cfg, tc)
        if base is not None and self.cfg is not base.cfg:
            base.cfg = self.cfg  # the head the alignment loss trains is the one the fine-tune exports
        upsample = self.cfg.conditioner.upsample if self.cfg.conditioner else None
        levels = [level, level + 1] if upsample else [level]
        codes_dir = cache / "codes" / self.vq_id  # shared by every prior trained on this VQ-VAE
        if dist.is_main:
            bar = lambda xs: tqdm(xs, desc="encoding codes", unit="file", disable=not progress)  # noqa: E731
            encode_tracks(vq, audio.train + audio.val, levels, codes_dir, bar)
        D.barrier()
        paths = encode_tracks(vq, audio.train + audio.val, levels, codes_dir)
        del vq
        slots = self.cfg.labels.max_bow_genre_size if self.cfg.labels else 1

        def windows(tracks, code_paths, training: bool):
            lc = self.cfg.lyrics
            return CodeWindows(
                tracks,
                code_paths,
                level,
                self.cfg.n_ctx,
                hop,
                upsample,
                self.vocab,
                slots,
                tc.seed,
                self.tokenizer,
                lc.n_tokens if lc else 0,
                self.cfg.sample_rate,
                align=tc.align_weight > 0,
                jitter=tc.lyric_jitter,
                timed_share=tc.timed_share if training else 0.0,  # validation: every held-out window
                need_timed=training and tc.align_weight > 0,
                artist_balance=tc.artist_balance if training else 0.0,  # validation: every held-out window
            )

        n_train = len(audio.train)
        self.train_windows = windows(audio.train, paths[:n_train], True)
        self.val = windows(audio.val, paths[n_train:], False).fixed(tc.val_crops_per_file) if audio.val else None
        self.unigram_bits = self.train_windows.unigram_bits()  # fixed: computed once, reported at every validation
        if dist.is_main:
            print(f"level {level}: codes unigram entropy {self.unigram_bits:.3f} bits", file=sys.stderr)
        torch.manual_seed(tc.seed)
        self.items_per_example = self.cfg.n_ctx
        if base is not None:
            model = FT.trainable(base, finetune.mode, finetune.lora_rank, finetune.lora_alpha)
        else:
            model = FT.resumed_model(self.cfg, self.finetune) if self.finetune else build_prior(self.cfg)
        if self.finetune and dist.is_main:
            print(FT.describe(self.finetune, model), file=sys.stderr)
        self.setup(out, tc, dist, PriorLoss(model, tc.align_weight), state)

    def batch(self, step: int, batch_size: int) -> tuple:
        codes, y, above, align = self.train_windows.batch(batch_size, step, self.dist.rank)
        if self.tc.label_dropout > 0 and self.cfg.labels is not None:
            y = drop_labels(
                y, self.cfg.labels.max_bow_genre_size, self.tc.label_dropout, [self.tc.seed, step, self.dist.rank, 1]
            )
        if self.tc.sampled_inputs > 0:  # seeded by the step: a resumed run draws the same
            rng = np.random.default_rng([self.tc.seed, step, self.dist.rank, 2])
            u = rng.integers(0, UNIFORM_STEPS, codes.shape, dtype=np.int32)
            replace = rng.random(codes.shape) < self.tc.sampled_inputs
            return codes, y, above, align, torch.from_numpy(np.where(replace, u, np.int32(-1)))
        return (codes, y, above) if align is None else (codes, y, above, align)

    def loss(self, module: nn.Module, batch: tuple):
        loss = module(*batch)
        return loss, {"loss": loss.detach()}

    def has_validation(self) -> bool:
        return self.val is not None

    def evaluate(self) -> dict[str, float]:
        prior = self.model.prior
        device = self.dist.device
        codes, y, above, align = (None if t is None else t.to(device) for t in self.val)
        bs = self.tc.batch_size
        total = zeroed = unknown = lyric_bits = align_bits = align_hits = align_codes = 0.0
        for i in range(0, codes.shape[0], bs):
            sl = slice(i, i + bs)
            n = codes[sl].shape[0]
            part = [None if t is None else t[sl] for t in (above, align)]
            losses = self.model.metrics(codes[sl], y[sl], *part)
            total += losses["gen"].item() * n
            lyric_bits += losses["lyrics"].item() * n if "lyrics" in losses else 0.0
            zeroed += losses["zeroed"].item() * n if "zeroed" in losses else 0.0
            unknown += losses["unknown"].item() * n if "unknown" in losses else 0.0
            if "align" in losses:
                k = losses["align_codes"].item()
                align_bits += losses["align"].item() * k
                align_hits += losses["align_accuracy"].item() * k
                align_codes += k
        result = {"bits_per_token": total / codes.shape[0], "unigram_bits": self.unigram_bits}
        if prior.conditioner is not None:
            result["bits_per_token_cond_zeroed"] = zeroed / codes.shape[0]
        if prior.labels is not None:  # for every labelled prior (one without label dropout never saw them)
            result["bits_per_token_labels_unknown"] = unknown / codes.shape[0]
        if prior.cfg.lyrics is not None:
            result["lyrics_bits_per_token"] = lyric_bits / codes.shape[0]
        if align_codes:  # the supervised alignment head on the validation songs with timed lyrics
            result["align_bits"], result["align_accuracy"] = align_bits / align_codes, align_hits / align_codes
        return result

    def extra_state(self) -> dict:
        tokenizer = None if self.tokenizer is None else self.tokenizer.to_dict()
        return {
            "model_config": self.cfg.to_dict(),
            "vocab": self.vocab.to_dict(),
            "vqvae_id": self.vq_id,
            "tokenizer": tokenizer,
            "finetune": self.finetune,
        }

    @torch.no_grad()
    def _with_alignment_head(self) -> PriorConfig:
        """The config with the lyric-alignment head set to the most monotonic one on validation windows."""
        lc = self.cfg.lyrics
        if lc is None or self.val is None or lc.alignment_layer is not None:
            return self.cfg
        codes, y, *_ = self.val
        sung = (y[:, -lc.n_tokens :] != 0).any(1)  # windows with lyrics
        if not sung.any():
            return self.cfg
        prior, device = self.exported.prior, next(self.exported.parameters()).device
        was_training = prior.training
        prior.eval()
        codes, y = codes[sung][:16].to(device), y[sung][:16].to(device)
        cond = prior.condition(y)
        weights = {
            layer: list(prior.lyric_attention(codes, cond, layer).float().cpu().numpy())
            for layer in prior.lyric_layers()
        }
        prior.train(was_training)
        layer, head, _ = choose_head(weights)
        return dataclasses.replace(self.cfg, lyrics=dataclasses.replace(lc, alignment_layer=layer, alignment_head=head))

    def export(self, done: int, dest: Path | None = None) -> None:
        dest = dest or self.out
        extra = dict(
            vqvae={"id": self.vq_id, "path": self.vq_dir},
            trained_steps=done,
            label_dropout=self.tc.label_dropout,  # > 0: the model can be sampled with guidance
        )
        vocab = FT.vocab_dict(self.vocab, self.tokenizer)
        if self.finetune and self.finetune["mode"] == "lora":
            FT.export_adapter(dest, self.exported.prior, self.finetune, self._with_alignment_head(), vocab, **extra)
            return
        if self.finetune:
            extra["finetuned_from"] = {k: self.finetune[k] for k in ("init_from", "base_id", "mode", "init")}
        save_model(dest, self.exported.prior, "prior", self._with_alignment_head().to_dict(), vocab=vocab, **extra)


def train_prior(
    data,
    out,
    level: int | None,
    vqvae_dir,
    cfg: PriorConfig | None,
    tc: TrainConfig,
    resume: bool = False,
    progress: bool = True,
    cache: str | Path | None = None,
    changes: dict | None = None,
    finetune: FT.FinetuneSpec | None = None,
) -> dict[str, float]:
    """Train (or resume) the prior of ``level`` on the codes of ``vqvae_dir``; returns the last validation metrics.

    Decoded audio and codes are cached under ``cache`` (default: ``default_cache_dir()``), so the top
    prior and the upsamplers of one VQ-VAE encode the data once. On resume the run keeps its model,
    level and settings (``cfg`` and ``level`` may be None); ``changes`` (default: where ``tc``
    differs from them) may only change its schedule (see ``training.loop.resume_config``).
    ``finetune`` starts from an existing prior instead of ``cfg`` (see ``training.finetune``).
    """
    dist = D.setup()
    try:
        cache = Path(cache) if cache else default_cache_dir()
        run = PriorRun(data, Path(out), level, vqvae_dir, cfg, tc, resume, dist, cache, changes, finetune, progress)
        return run.fit(progress)
    finally:
        D.cleanup()
