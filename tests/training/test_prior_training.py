import dataclasses
import os
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from openjukebox.checkpoint import load_prior, model_id
from openjukebox.errors import UserError
from openjukebox.prior.config import get_preset
from openjukebox.prior.model import build_prior
from openjukebox.training.metrics import read_csv
from openjukebox.training.prior import TRAIN_PRESETS, drop_labels, train_prior


def _train(manifest, vqvae, out, preset, level, resume=False, **kw):
    tc = dataclasses.replace(TRAIN_PRESETS[preset], **kw)
    return train_prior(manifest, out, level, vqvae, get_preset(preset), tc, resume=resume, progress=False)


def test_top_prior_beats_the_unigram_entropy_of_its_codes(labelled_manifest, trained_vqvae, tmp_path):
    vqvae, _ = trained_vqvae
    final = _train(labelled_manifest, vqvae, tmp_path / "top", "tiny_top", 2, steps=300, eval_every=300)
    val = read_csv(tmp_path / "top" / "val.csv")
    assert val[0]["bits_per_token"] > 5.5  # untrained: about log2(64) = 6 bits
    assert final["unigram_bits"] > 3.0  # the codes are diverse: the bar is a real one
    assert final["bits_per_token"] < final["unigram_bits"] - 1.0
    train = read_csv(tmp_path / "top" / "train.csv")
    assert train[-1]["tokens_per_s"] > 0
    prior, vocab, doc = load_prior(tmp_path / "top")
    assert vocab.artists.names == ("unknown", "frere_jacques", "minuet_in_g", "ode_to_joy")
    assert prior.cfg.labels.artist_bins == 4 and prior.cfg.labels.genre_bins == 6
    assert doc["vqvae"]["path"] == str(Path(vqvae).resolve())


def test_upsampler_conditioning_is_wired(labelled_manifest, trained_vqvae, tmp_path):
    vqvae, _ = trained_vqvae
    final = _train(labelled_manifest, vqvae, tmp_path / "up", "tiny_upsampler_1", 1, steps=200, eval_every=200)
    assert final["bits_per_token"] < final["bits_per_token_cond_zeroed"] - 1.0


def test_codes_are_encoded_once_per_vqvae_and_resume_is_exact(labelled_manifest, trained_vqvae, tmp_path):
    vqvae, _ = trained_vqvae
    codes_root = Path(os.environ["OPENJUKEBOX_CACHE"]) / "codes"
    _train(labelled_manifest, vqvae, tmp_path / "a", "tiny_top", 2, steps=4, log_every=1)
    cache = codes_root / model_id(vqvae)  # other tests may have cached the codes of other VQ-VAEs
    assert any(cache.iterdir())
    stamps = {p: p.stat().st_mtime_ns for p in cache.iterdir()}
    _train(labelled_manifest, vqvae, tmp_path / "b", "tiny_top", 2, steps=2, log_every=1)
    _train(labelled_manifest, vqvae, tmp_path / "b", "tiny_top", 2, resume=True, steps=4, log_every=1)
    assert {p: p.stat().st_mtime_ns for p in cache.iterdir()} == stamps  # reused, not re-encoded
    a, b = load_file(tmp_path / "a" / "model.safetensors"), load_file(tmp_path / "b" / "model.safetensors")
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_resume_refuses_another_vqvae_and_presets_must_fit_the_level(labelled_manifest, trained_vqvae, tmp_path):
    vqvae, _ = trained_vqvae
    _train(labelled_manifest, vqvae, tmp_path / "run", "tiny_top", 2, steps=1)
    other = tmp_path / "other_vqvae"
    other.mkdir()
    for name in ("config.json", "model.safetensors"):
        data = (Path(vqvae) / name).read_bytes()
        (other / name).write_bytes(data if name == "config.json" else data[:-4] + b"\x00\x00\x00\x00")
    with pytest.raises(ValueError, match="trained on the codes of another VQ-VAE"):
        tc = dataclasses.replace(TRAIN_PRESETS["tiny_top"], steps=2)
        train_prior(
            labelled_manifest, tmp_path / "run", 2, other, get_preset("tiny_top"), tc, resume=True, progress=False
        )
    with pytest.raises(ValueError, match="this preset is an upsampler, but level 2 .* needs a top-level prior"):
        _train(labelled_manifest, vqvae, tmp_path / "x", "tiny_upsampler_1", 2, steps=1)


def test_the_command_uses_the_cache_it_is_given(labelled_manifest, trained_vqvae, tmp_path, capsys):
    from openjukebox.checkpoint import model_id
    from openjukebox.cli.main import main

    vqvae, _ = trained_vqvae
    args = [
        "-q",
        "train",
        "prior",
        "--level",
        "2",
        "--vqvae",
        str(vqvae),
        "--data",
        str(labelled_manifest),
        "--preset",
        "tiny_top",
        "--out",
        str(tmp_path / "run"),
        "--steps",
        "1",
        "--cache",
        str(tmp_path / "c"),
    ]
    assert main(args) == 0
    codes = sorted((tmp_path / "c" / "codes" / model_id(vqvae)).glob("*.l2.npy"))
    assert len(codes) == 15 and any((tmp_path / "c" / "audio").iterdir())
    err = capsys.readouterr().err
    assert "encoding codes" not in err and "decoding audio" not in err  # -q: no progress bars


def test_label_dropout_forgets_artist_and_genres_independently_and_reproducibly():
    n, slots = 4000, 2
    y = torch.tensor([[100, 10, 20, 3, 5, 6, 41, 42]] * n)  # 2 genre slots, then 2 lyric tokens
    assert torch.equal(drop_labels(y, slots, 0.0, [0, 1]), y)
    assert drop_labels(y, slots, 1.0, [0, 1])[0].tolist() == [100, 10, 20, 0, -1, -1, 41, 42]
    out = drop_labels(y, slots, 0.3, [0, 1])
    assert torch.equal(out, drop_labels(y, slots, 0.3, [0, 1]))  # the same step draws the same
    assert not torch.equal(out, drop_labels(y, slots, 0.3, [0, 2]))
    no_artist, no_genre = out[:, 3] == 0, out[:, 4] == -1
    assert torch.equal(no_genre, out[:, 5] == -1)  # a row loses all its genres or none
    assert torch.equal(out[:, [0, 1, 2, 6, 7]], y[:, [0, 1, 2, 6, 7]])  # timing and lyrics are kept
    assert abs(no_artist.float().mean() - 0.3) < 0.03 and abs(no_genre.float().mean() - 0.3) < 0.03
    assert abs((no_artist & no_genre).float().mean() - 0.09) < 0.02  # independent


def test_validation_measures_the_codes_with_artist_and_genre_unknown():
    """``unknown``: the codes' bits with the labels forgotten (timing and lyrics kept), next to ``gen``."""
    from openjukebox.models import DEFAULT_MODEL
    from openjukebox.prior.conditioning import forget_labels
    from openjukebox.training.prior import PriorLoss

    prior = load_prior(DEFAULT_MODEL / "prior_level_2")[0]
    slots, n_tokens = prior.cfg.labels.max_bow_genre_size, prior.cfg.lyrics.n_tokens
    codes = torch.randint(0, prior.cfg.l_bins, (2, 64), generator=torch.Generator().manual_seed(0))
    y = torch.tensor([[30 * 22050, 0, 4 * 22050, 5, 4] + [0] * n_tokens] * 2)  # Bach, organ, no lyrics
    with torch.no_grad():
        got = PriorLoss(prior).metrics(codes, y, None)
        forgotten = forget_labels(y, slots)
        assert forgotten[0, 3] == 0 and forgotten[0, 4] == -1
        want = prior.losses(codes, prior.condition(forgotten, None, 2))["gen"]
    assert torch.allclose(got["unknown"], want)
    assert abs(got["unknown"] - got["gen"]) > 1e-3  # the labels change the prediction


def test_the_timing_range_widens_to_the_data_and_a_fixed_range_leaves_longer_files_out(tmp_path, capsys):
    """A 130 s file: a new prior's song lengths widen past the preset's 120 s to 180 s (whole
    minutes); a fine-tune keeps its base's range and leaves that file out, saying so."""
    import json

    import numpy as np
    import soundfile as sf

    from openjukebox.models import DEFAULT_MODEL
    from openjukebox.training.finetune import FinetuneSpec, train_config

    lines = []
    for i, seconds in enumerate((3, 4, 5, 130, 6)):
        t = np.arange(int(22050 * seconds)) / 22050
        sf.write(tmp_path / f"t{i}.wav", (0.3 * np.sin(2 * np.pi * (200 + 50 * i) * t)).astype(np.float32), 22050)
        artist = "Only Long" if seconds > 120 else "a"  # a name found only in the file a fine-tune leaves out
        lines.append(json.dumps({"path": f"t{i}.wav", "artist": artist, "genre": "g", "piece": f"p{i}"}))
    manifest = tmp_path / "m.jsonl"
    manifest.write_text("\n".join(lines) + "\n")
    vq = DEFAULT_MODEL / "vqvae"
    assert get_preset("tiny_top").labels.max_duration == 120.0
    _train(manifest, vq, tmp_path / "new", "tiny_top", 2, steps=1, eval_every=100, batch_size=2)
    labels = json.loads((tmp_path / "new" / "config.json").read_text())["config"]["labels"]
    assert (labels["min_duration"], labels["max_duration"]) == (1.0, 180.0)
    assert "widened to hold every file" in capsys.readouterr().err
    short = tmp_path / "short.jsonl"  # the same files but the long one: a base of 1 s to under 120 s
    short.write_text("\n".join(line for line in lines if "Only Long" not in line) + "\n")
    _train(short, vq, tmp_path / "base", "tiny_top", 2, steps=1, eval_every=100, batch_size=2)
    spec = FinetuneSpec(str(tmp_path / "base"), "frozen")
    tc = dataclasses.replace(train_config(spec, None), steps=1, batch_size=2, eval_every=100)
    train_prior(manifest, tmp_path / "ft", None, vq, None, tc, progress=False, finetune=spec)
    err = capsys.readouterr().err
    assert "left out 1 file(s) outside the model's song lengths (1 s to under 120 s)" in err and "t3.wav" in err
    assert "t3.wav\toutside the model's song lengths" in (tmp_path / "ft" / "skipped.txt").read_text()
    split = json.loads((tmp_path / "ft" / "split.json").read_text())
    assert not any("t3.wav" in p for p in split["train"] + split["validation"])
    artists = json.loads((tmp_path / "ft" / "config.json").read_text())["vocab"]["artists"]
    assert "a" in artists and "only_long" not in artists  # no untrained row for a name it never trained on


def test_keep_best_exports_the_model_of_the_lowest_validation(labelled_manifest, trained_vqvae, tmp_path):
    vqvae, _ = trained_vqvae
    run = tmp_path / "run"
    _train(labelled_manifest, vqvae, run, "tiny_top", 2, steps=4, eval_every=2, save_every=2, keep_best=True, lr=3e-2)
    _train(
        labelled_manifest,
        vqvae,
        run,
        "tiny_top",
        2,
        resume=True,
        steps=8,
        eval_every=2,
        save_every=2,
        keep_best=True,
        lr=3e-2,
    )
    rows = [r for r in read_csv(run / "val.csv") if r["step"] > 0]
    best = min(rows, key=lambda r: r["bits_per_token"])
    _, _, doc = load_prior(run / "best")
    assert doc["trained_steps"] == best["step"]
    # the same run stopped at that step has exactly best/'s weights (the schedule does not depend on --steps)
    _train(labelled_manifest, vqvae, tmp_path / "short", "tiny_top", 2, steps=int(best["step"]), eval_every=2, lr=3e-2)
    a, b = load_file(run / "best" / "model.safetensors"), load_file(tmp_path / "short" / "model.safetensors")
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_keep_best_exports_only_on_a_new_lowest_value_and_remembers_it_across_resume(tmp_path):
    from openjukebox.training.loop import TrainingRun

    class Run(TrainingRun):
        best_key = "bits"

        def __init__(self, best=None):
            self.out, self.best, self.exported_at = tmp_path, best, []
            self.dist = type("D", (), {"is_main": True})()

        def export(self, done, dest=None):
            self.exported_at.append((done, dest))

    run = Run()
    for step, bits in [(1, 3.0), (2, 2.0), (3, 2.5), (4, 2.0), (5, 1.0)]:
        run._keep_if_best({"bits": bits}, step)
    assert run.exported_at == [(1, tmp_path / "best"), (2, tmp_path / "best"), (5, tmp_path / "best")]
    resumed = Run(best=run.best)  # what train_state.pt carries
    resumed._keep_if_best({"bits": 1.5}, 6)
    assert resumed.exported_at == [] and resumed.best == [1.0, 5]


def test_own_draws_invert_the_priors_cdf_at_the_given_uniforms():
    from openjukebox.training.prior import own_draws

    torch.manual_seed(0)
    prior = build_prior(get_preset("tiny_upsampler_1")).eval()
    g = torch.Generator().manual_seed(1)
    codes = torch.randint(0, 64, (2, prior.cfg.n_ctx), generator=g)
    cond = prior.condition(None, torch.randint(0, 64, (2, prior.cfg.n_ctx // 4), generator=g))
    with torch.no_grad():
        cdf = torch.softmax(prior(codes, cond).float(), -1).cumsum(-1)
    want = torch.randint(1, 64, codes.shape, generator=g)  # the code each position should draw
    below, at = cdf.gather(-1, want[..., None] - 1)[..., 0], cdf.gather(-1, want[..., None])[..., 0]
    u = below + 0.5 * (at - below)  # a uniform inside that code's share of the CDF
    assert torch.equal(own_draws(prior, codes, cond, u), want)
    assert torch.equal(own_draws(prior, codes, cond, torch.zeros_like(u)), torch.zeros_like(codes))


def test_own_draws_of_a_single_sequence_prior_are_codes_drawn_from_the_codes_share_alone():
    from openjukebox.training.prior import own_draws

    torch.manual_seed(0)
    prior = build_prior(get_preset("tiny_top_single")).eval()
    cfg = prior.cfg
    assert prior.code_offset == cfg.lyrics.n_vocab > 0  # lyric tokens first in the merged vocabulary
    g = torch.Generator().manual_seed(1)
    y = torch.tensor([[30 * cfg.sample_rate, 0, cfg.sample_length, 1, 2]] * 2)
    lyrics = torch.randint(1, cfg.lyrics.n_vocab, (2, cfg.lyrics.n_tokens), generator=g)
    cond = prior.condition(torch.cat([y, lyrics], 1))
    codes = torch.randint(0, cfg.l_bins, (2, cfg.n_ctx), generator=g)
    with torch.no_grad():
        logits = prior(codes, cond).float()
    assert logits.shape[-1] == cfg.l_bins + prior.code_offset
    cdf = torch.softmax(logits[..., prior.code_offset :], -1).cumsum(-1)  # over the codes alone
    want = torch.randint(1, cfg.l_bins, codes.shape, generator=g)  # the code each position should draw
    below, at = cdf.gather(-1, want[..., None] - 1)[..., 0], cdf.gather(-1, want[..., None])[..., 0]
    u = below + 0.5 * (at - below)  # a uniform inside that code's share of the codes' CDF
    assert torch.equal(own_draws(prior, codes, cond, u), want)
    merged = (torch.softmax(logits, -1).cumsum(-1) < u[..., None]).sum(-1)  # what the whole vocabulary would give
    assert (merged - prior.code_offset != want).float().mean() > 0.5  # the slice matters: the test can tell


def test_sampled_inputs_feed_the_draws_where_asked_and_score_the_true_codes():
    from openjukebox.training.prior import UNIFORM_STEPS, PriorLoss, own_draws

    torch.manual_seed(0)
    prior = build_prior(get_preset("tiny_upsampler_1")).eval()
    g = torch.Generator().manual_seed(1)
    codes = torch.randint(0, 64, (2, prior.cfg.n_ctx), generator=g)
    above, y = torch.randint(0, 64, (2, prior.cfg.n_ctx // 4), generator=g), None
    k = torch.randint(0, UNIFORM_STEPS, codes.shape, generator=g, dtype=torch.int32)  # integer uniforms
    u, keep = k.float() / UNIFORM_STEPS, torch.full(codes.shape, -1, dtype=torch.int32)
    half = torch.where(torch.rand(codes.shape, generator=g) < 0.5, k, keep)
    loss = PriorLoss(prior)
    with torch.no_grad():
        cond = prior.condition(y, above)
        draws = own_draws(prior, codes, cond, u)
        assert (draws != codes).float().mean() > 0.5  # the draws are other codes: the test can tell
        assert torch.equal(loss(codes, y, above, resample=keep), loss(codes, y, above))
        mixed = torch.where(half >= 0, draws, codes)
        assert torch.equal(loss(codes, y, above, resample=half), prior.losses(codes, cond, inputs=mixed)["total"])
        assert loss(codes, y, above, resample=half) != loss(codes, y, above)


def test_training_on_sampled_inputs_resumes_exactly_and_changes_what_is_learnt(
    labelled_manifest, trained_vqvae, tmp_path
):
    vqvae, _ = trained_vqvae
    run = lambda out, steps, resume=False, share=0.5: _train(  # noqa: E731
        labelled_manifest, vqvae, tmp_path / out, "tiny_upsampler_1", 1, resume, steps=steps, sampled_inputs=share
    )
    run("a", 4)
    run("b", 2)
    run("b", 4, resume=True)
    run("plain", 4, share=0.0)
    a, b, plain = (load_file(tmp_path / f / "model.safetensors") for f in ("a", "b", "plain"))
    assert all(torch.equal(a[k], b[k]) for k in a)  # the same draws after the resume
    assert not all(torch.equal(a[k], plain[k]) for k in a)
    with pytest.raises(UserError, match="--sampled-inputs 0.25 .*the run has 0.5"):
        run("b", 6, resume=True, share=0.25)
    with pytest.raises(UserError, match="--sampled-inputs is a share from 0 to 1, not 1.5"):
        run("c", 1, share=1.5)
