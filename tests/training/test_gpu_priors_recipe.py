"""recipes/gpu_priors_pack.py and recipes/gpu_priors.py: a prior trained from a pack of codes, where
the audio is not, is the prior the same run trains from the audio."""

import dataclasses
import importlib.util
import json
from pathlib import Path

import numpy as np
import torch
from safetensors.torch import load_file

from openjukebox.checkpoint import model_id
from openjukebox.prior.config import get_preset
from openjukebox.training.prior import TRAIN_PRESETS, train_prior

RECIPES = Path(__file__).resolve().parents[2] / "recipes"


def _recipe(name: str):
    spec = importlib.util.spec_from_file_location(name, RECIPES / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_a_prior_trained_from_the_pack_equals_the_one_trained_from_the_audio(
    labelled_manifest, trained_vqvae, tmp_path
):
    vqvae, _ = trained_vqvae
    work = tmp_path / "work"
    work.mkdir()
    lines = [json.loads(line) for line in labelled_manifest.read_text().splitlines()]
    for entry in lines:
        entry["path"] = str(labelled_manifest.parent / entry["path"])
    (work / "all.jsonl").write_text("".join(json.dumps(e) + "\n" for e in lines))
    # the pack encodes the codes (none are cached yet); the run from the audio reuses them
    _recipe("gpu_priors_pack").main([str(work), "--out", str(tmp_path / "pack"), "--vqvae", str(vqvae), "--no-wheels"])
    tc = dataclasses.replace(TRAIN_PRESETS["tiny_upsampler_1"], steps=3, eval_every=3)
    cpu = train_prior(
        work / "all.jsonl",
        work / "up1",
        1,
        vqvae,
        get_preset("tiny_upsampler_1"),
        tc,
        progress=False,
        cache=work / "cache",
    )

    doc = json.loads((tmp_path / "pack" / "tracks.json").read_text())
    assert doc["vqvae_id"] == model_id(vqvae) and doc["levels"] == [2, 1]
    split = json.loads((work / "up1" / "split.json").read_text())
    assert [t["path"] for t in doc["train"]] == split["train"] and [t["path"] for t in doc["val"]] == split[
        "validation"
    ]

    cache = tmp_path / "device_cache"
    argv = [str(tmp_path / "pack"), "--out", str(tmp_path / "run"), "--level", "1", "--preset", "tiny_upsampler_1"]
    packed = _recipe("gpu_priors").main(argv + ["--steps", "3", "--eval-every", "3", "--cache", str(cache)])
    codes = cache / "codes" / model_id(vqvae)
    for original in (work / "cache" / "codes" / model_id(vqvae)).iterdir():
        assert np.array_equal(np.load(original), np.load(codes / original.name))
    assert packed["bits_per_token"] == cpu["bits_per_token"]
    a, b = load_file(work / "up1" / "model.safetensors"), load_file(tmp_path / "run" / "model.safetensors")
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def test_max_train_hours_evens_out_the_shares_of_artist_and_genre():
    from openjukebox.audio.dataset import Track

    pack = _recipe("gpu_priors_pack")
    tracks = [Track(f"a{i}", "", 300, {"artist": "A"}) for i in range(4)]  # long files of one artist
    tracks += [Track(f"b{i}", "", 100, {"artist": "B"}) for i in range(5)]  # short ones of another
    tracks += [Track("c0", "", 50, {"artist": "C"})]
    tracks += [Track("a_sung", "", 40, {"artist": "A", "genre": "sung"})]  # a genre of its own: kept at once
    # a0 (A 300), b0, c0, a_sung (B 100, C 50, A-sung 40), b1 b2 (B 300), a1 (A 600), b3 b4 (B 500: 1190 in all);
    # a2 would make 1490, over 1240
    assert [t.path for t in pack.balanced(tracks, 1240)] == ["a0", "a1", "b0", "b1", "b2", "b3", "b4", "c0", "a_sung"]
    assert [t.path for t in pack.balanced(tracks, 10**9)] == [t.path for t in tracks]
    assert pack.balanced(tracks, 10) == []
