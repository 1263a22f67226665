import json
import pickle

import numpy as np
import pytest
import torch

from openjukebox.checkpoint import load_prior, load_vqvae
from openjukebox.cli.main import main
from openjukebox.convert.importer import import_checkpoint
from openjukebox.convert.openai import ConversionError
from openjukebox.sampling.sampler import sample_window

from ..conftest import FIXTURES

OPENAI = FIXTURES / "openai"


@pytest.fixture(scope="module")
def imported(tmp_path_factory):
    """The original code's tiny checkpoints, imported through the command with their stored hps."""
    out = tmp_path_factory.mktemp("imported")
    assert main(["-q", "import-openai", str(OPENAI / "vqvae.pth.tar"), "--out", str(out / "vqvae")]) == 0
    for name in ("upsampler_l1", "prior_top_single"):
        args = ["-q", "import-openai", str(OPENAI / f"{name}.pth.tar"), "--vqvae", str(out / "vqvae")]
        assert main([*args, "--out", str(out / name)]) == 0
    return out


def _ref(name: str) -> dict[str, torch.Tensor]:
    return {k: torch.from_numpy(v) for k, v in np.load(OPENAI / name).items()}


def test_imported_vqvae_reproduces_the_original(imported):
    model, ref = load_vqvae(imported / "vqvae"), _ref("vqvae_ref.npz")
    x = ref["x"].permute(0, 2, 1)
    with torch.no_grad():
        for level in range(3):
            sure = ref[f"quant_gap_l{level}"] > 1e-3
            assert torch.equal(model.encode(x, level)[sure], ref[f"z_l{level}"][sure])
            x_hat = model.decode(ref[f"z_l{level}"], level).permute(0, 2, 1)
            torch.testing.assert_close(x_hat, ref[f"x_hat_from_l{level}"], atol=1e-4, rtol=1e-4)


def test_imported_upsampler_reproduces_the_original(imported):
    prior, vocab, doc = load_prior(imported / "upsampler_l1")
    assert prior.cfg.hop_length == 32 and prior.cfg.conditioner.res_scale and vocab.version == "v2"
    ref, steps_ref = _ref("upsampler_l1_ref.npz"), _ref("upsampler_l1_sample_ref.npz")
    with torch.no_grad():
        cond = prior.condition(ref["y"], ref["z_cond"])
        torch.testing.assert_close(cond.start, ref["y_cond"], atol=1e-4, rtol=1e-4)
        torch.testing.assert_close(cond.x_cond, ref["x_cond"], atol=1e-4, rtol=1e-4)
        torch.testing.assert_close(prior(ref["z"], cond), ref["logits"], atol=1e-4, rtol=1e-4)
        assert prior.loss(ref["z"], cond).item() == pytest.approx(float(ref["gen_loss"]), rel=1e-5)
        tokens = sample_window(prior, prior.condition(ref["y"], steps_ref["ups1_z_cond"]), 128, top_k=1)
    assert torch.equal(tokens, steps_ref["ups1_greedy_tokens"])


def test_imported_single_lyrics_prior_reproduces_the_original(imported):
    prior, vocab, doc = load_prior(imported / "prior_top_single")
    assert prior.cfg.lyrics.single_enc_dec and prior.cfg.l_bins == 256 and prior.cfg.hop_length == 128
    assert doc["vocab"]["lyrics"]["chars"].endswith("[] \t\n") and "+" not in doc["vocab"]["lyrics"]["chars"]
    ref, samples = _ref("prior_top_single_ref.npz"), _ref("prior_top_single_sample_ref.npz")
    with torch.no_grad():
        cond = prior.condition(ref["y"])
        torch.testing.assert_close(cond.start, ref["y_cond"], atol=1e-4, rtol=1e-4)
        torch.testing.assert_close(cond.x_cond, ref["x_cond"], atol=1e-4, rtol=1e-4)
        lyric_logits, logits = prior(ref["z"], cond, with_lyrics=True)
        torch.testing.assert_close(torch.cat([lyric_logits, logits], 1), ref["logits"], atol=1e-4, rtol=1e-4)
        assert prior.losses(ref["z"], cond)["total"].item() == pytest.approx(float(ref["loss"]), rel=1e-5)
        tokens = sample_window(prior, cond, 128, top_k=1)
    assert torch.equal(tokens, samples["single_greedy_tokens"])
    layer = prior.cfg.lyrics.alignment_layer  # 15, from the checkpoint's hps
    attention = prior.lyric_attention(ref["z"], cond, layer)
    torch.testing.assert_close(attention, ref["attn_alignment_layer"], atol=1e-4, rtol=1e-4)


def _tampered(tmp_path, change) -> str:
    ckpt = torch.load(OPENAI / "upsampler_l1.pth.tar", map_location="cpu", weights_only=True)
    change(ckpt["model"])
    path = tmp_path / "tampered.pth.tar"
    torch.save(ckpt, path)
    return str(path)


def test_bad_checkpoints_are_refused_naming_the_problem(imported, tmp_path, capsys):
    vq = str(imported / "vqvae")
    cases = {
        "['transformer.layers.3.mlp.fc.weight (prior.transformer._attn_mods.3.mlp.c_fc.w)']": lambda s: s.pop(
            "prior.transformer._attn_mods.3.mlp.c_fc.w"
        ),
        "unexpected keys: ['prior.extra.w']": lambda s: s.update({"prior.extra.w": torch.zeros(2)}),
        "transformer.layers.0.attn.proj.weight: checkpoint (64, 8)": lambda s: s.update(
            {"prior.transformer._attn_mods.0.attn.c_proj.w": torch.zeros(8, 64)}
        ),
    }
    for message, change in cases.items():
        path = _tampered(tmp_path, change)
        assert main(["-q", "import-openai", path, "--vqvae", vq, "--out", str(tmp_path / "x")]) == 2
        err = capsys.readouterr().err
        assert message in err, err
    assert not (tmp_path / "x").exists()  # nothing written on failure


class Payload:
    """An object whose unpickling would run code (it would call print)."""

    def __reduce__(self):
        return (print, ("this must never run",))


def test_a_checkpoint_that_would_run_code_is_refused(tmp_path, capsys):
    path = tmp_path / "evil.pth.tar"
    state = torch.load(OPENAI / "vqvae.pth.tar", map_location="cpu", weights_only=True)
    state["opt"] = Payload()
    torch.save(state, path)
    with pytest.raises(ConversionError, match="cannot be loaded with weights_only=True") as info:
        import_checkpoint(path, tmp_path / "out")
    assert "would run code" in str(info.value)
    assert "this must never run" not in capsys.readouterr().out
    with pytest.raises(pickle.UnpicklingError):  # the refusal is torch's safe loader, not a name check
        torch.load(path, weights_only=True)


def test_hparams_file_overrides_and_missing_hop_is_explained(tmp_path):
    path = OPENAI / "upsampler_l1.pth.tar"
    hparams = tmp_path / "h.json"
    hparams.write_text(json.dumps({"levels": 1, "downs_t": [1], "strides_t": [2]}))  # level 1 of 1: impossible
    from openjukebox.convert.importer import read_hparams

    with pytest.raises(ConversionError, match="pass --vqvae"):
        import_checkpoint(path, tmp_path / "a", hparams=read_hparams(hparams))
    with pytest.raises(ConversionError, match="no such checkpoint"):
        import_checkpoint(tmp_path / "none.pth.tar", tmp_path / "b")


@pytest.mark.parametrize("level", [0, 1])
def test_an_upsampler_without_vqvae_is_refused_when_its_hps_are_the_defaults(tmp_path, capsys, level):
    ckpt = torch.load(OPENAI / "upsampler_l1.pth.tar", map_location="cpu", weights_only=True)
    ckpt["hps"] = {**ckpt["hps"], "level": level}  # the stored defaults: levels 2, downs_t (1, 1)
    torch.save(ckpt, tmp_path / "up.pth.tar")
    assert main(["-q", "import-openai", str(tmp_path / "up.pth.tar"), "--out", str(tmp_path / "x")]) == 2
    err = capsys.readouterr().err
    assert f"this upsampler of level {level} turns each code of level {level + 1} into 4 codes" in err
    assert "the original's defaults" in err and "pass --vqvae" in err and not (tmp_path / "x").exists()


def test_an_upsampler_with_consistent_hps_gets_their_hop(tmp_path):
    ckpt = torch.load(OPENAI / "upsampler_l1.pth.tar", map_location="cpu", weights_only=True)
    ckpt["hps"] = {**ckpt["hps"], "levels": 3, "downs_t": [3, 2, 2], "strides_t": [2, 2, 2]}
    torch.save(ckpt, tmp_path / "up.pth.tar")
    import_checkpoint(tmp_path / "up.pth.tar", tmp_path / "x")
    assert load_prior(tmp_path / "x")[0].cfg.hop_length == 32  # 2**3 * 2**2, as the VQ-VAE's level 1


def test_ids_are_stored_with_the_imported_prior(imported, tmp_path):
    ids = tmp_path / "ids"
    ids.mkdir()
    (ids / "v3_artist_ids.txt").write_text("unknown;0\nalan jackson;6785\n")
    (ids / "v3_genre_ids.txt").write_text("unknown;0\ncountry;507\n")
    import_checkpoint(OPENAI / "prior_top_single.pth.tar", tmp_path / "top", vqvae_dir=imported / "vqvae", ids=ids)
    _, vocab, _ = load_prior(tmp_path / "top")
    assert vocab.artist_id("Alan Jackson") == 6785 and vocab.genre_ids("Country", 1) == [507]
    _, bare, _ = load_prior(imported / "prior_top_single")
    with pytest.raises(ValueError, match="import it again with --ids"):
        bare.artist_id("Alan Jackson")


def test_a_release_folder_becomes_ready_to_sample_bundles(tmp_path):
    import shutil

    from openjukebox.convert.importer import import_release
    from openjukebox.sampling.bundle import Bundle

    release = tmp_path / "models"
    for src, dest in (
        ("vqvae.pth.tar", "5b/vqvae.pth.tar"),
        ("upsampler_l1.pth.tar", "5b/prior_level_1.pth.tar"),
        ("prior_top_single.pth.tar", "1b_lyrics/prior_level_2.pth.tar"),
    ):
        (release / dest).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(OPENAI / src, release / dest)
    done = import_release(release, tmp_path / "out", ids=None, presets=False)  # tiny files: their own hps
    assert [d["kind"] for d in done] == ["vqvae", "prior", "prior"]
    bundle = Bundle(tmp_path / "out" / "1b_lyrics")
    assert sorted(bundle.configs) == [1, 2] and bundle.sings and (tmp_path / "out" / "1b_lyrics" / "vqvae").is_symlink()
    assert not (tmp_path / "out" / "5b").exists()  # no 5b top prior in this release folder
    with pytest.raises(ConversionError, match="has no 5b/vqvae.pth.tar"):
        import_release(tmp_path / "out", tmp_path / "again", ids=None)


def test_an_imported_official_prior_fine_tunes_with_lora_and_samples_its_new_artist(imported, tmp_path):
    """End to end on the original's tiny top prior (imported without id lists): a LoRA fine-tune
    on a new artist, then a top-level song with the adapter, in a bundle of the imported models."""
    import dataclasses
    import shutil

    import soundfile as sf

    from openjukebox.api import sample
    from openjukebox.training.finetune import FinetuneSpec, train_config
    from openjukebox.training.prior import train_prior

    lines = []
    for i, f in enumerate((196, 262, 330, 392)):  # 20 s: the model times songs from 17.84 s
        t = np.arange(22050 * 20) / 22050
        sf.write(tmp_path / f"t{i}.wav", (0.3 * np.sin(2 * np.pi * f * t)).astype(np.float32), 22050)
        artist = "Ada Lovelace" if i else "Frank Sinatra"
        lines.append(json.dumps({"path": f"t{i}.wav", "artist": artist, "genre": "pop", "piece": f"p{i}"}))
    (tmp_path / "m.jsonl").write_text("\n".join(lines) + "\n")
    spec = FinetuneSpec(str(imported / "prior_top_single"), "lora", lora_rank=4, lora_alpha=8)
    tc = dataclasses.replace(train_config(spec, None), steps=2, batch_size=2, eval_every=100)
    with pytest.raises(ValueError, match="imported without the original's artist and genre ids"):
        train_prior(tmp_path / "m.jsonl", tmp_path / "x", None, imported / "vqvae", None, tc, finetune=spec)
    ids = tmp_path / "ids"
    ids.mkdir()
    (ids / "v3_artist_ids.txt").write_text("unknown;0\nfrank sinatra;1\n")
    (ids / "v3_genre_ids.txt").write_text("unknown;0\npop;1\n")
    base = tmp_path / "prior_top_single"
    args = ["-q", "import-openai", str(OPENAI / "prior_top_single.pth.tar"), "--vqvae", str(imported / "vqvae")]
    assert main([*args, "--ids", str(ids), "--out", str(base)]) == 0
    spec = dataclasses.replace(spec, init_from=str(base))
    ft = tmp_path / "ft"
    train_prior(tmp_path / "m.jsonl", ft, None, imported / "vqvae", None, tc, progress=False, finetune=spec)
    adapter = json.loads((ft / "adapter.json").read_text())
    artist_bins = load_prior(base)[0].cfg.labels.artist_bins
    assert adapter["new_artists"] == ["ada lovelace"] and adapter["new_genres"] == []  # Sinatra and pop: known
    assert adapter["vocab"]["artists"] == {"unknown": 0, "frank sinatra": 1, "ada lovelace": artist_bins}
    bundle = tmp_path / "bundle"
    shutil.copytree(imported / "vqvae", bundle / "vqvae")
    shutil.copytree(base, bundle / "prior_level_2")
    meta = sample(bundle, tmp_path / "song", 1.0, "Ada Lovelace", "pop", seed=0, label_seconds=20.0, adapter=ft)
    assert meta["labels"]["2"][0][3:5] == [artist_bins, 1]  # the new artist's row after the model's own; pop
    audio, sr = sf.read(meta["files"][2][0])
    assert sr == 22050 and len(audio) >= 22050 and np.abs(audio).max() > 0
