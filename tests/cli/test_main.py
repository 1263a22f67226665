import json

import numpy as np
import pytest
import soundfile as sf
import torch
from safetensors.torch import save_file

from openjukebox.api import decode, encode
from openjukebox.audio.io import load_audio
from openjukebox.audio.synth import render_score
from openjukebox.checkpoint import load_vqvae, save_model
from openjukebox.cli.main import main
from openjukebox.codec.config import get_preset
from openjukebox.codec.vqvae import VQVAE
from openjukebox.codes import CodesFile


def _make_model(path, seed=0):
    torch.manual_seed(seed)
    model = VQVAE(get_preset("tiny")).eval()
    probe = torch.randn(1, 1, 8192) * 0.3
    for level, block in enumerate(model.bottleneck.level_blocks):
        block.k.copy_(torch.randn_like(block.k) * model.encoders[level](probe).std())
    save_model(path, model, "vqvae", model.config.to_dict())
    return path


@pytest.fixture()
def song(tmp_path):
    """Stereo 44.1 kHz FLAC of a rendered score: the CLI must resample and mix it."""
    audio = render_score("ode_to_joy", "organ", 44100, bpm=240)[: 44100 * 3 + 777]
    path = tmp_path / "song.flac"
    sf.write(path, np.stack([audio, 0.5 * audio], 1), 44100)
    return path


def test_encode_then_decode_every_level(tmp_path, song, capsys):
    model_dir = _make_model(tmp_path / "model")
    assert main(["-q", "encode", str(song), "--model", str(model_dir), "-o", str(tmp_path / "s.codes")]) == 0
    codes = CodesFile.load(tmp_path / "s.codes")
    n = len(load_audio(song, 22050))
    assert codes.n_samples == n and codes.sample_rate == 22050
    padded = -(-n // 128) * 128
    assert {lv: c.shape for lv, c in codes.codes.items()} == {lv: (1, padded // h) for lv, h in enumerate((8, 32, 128))}
    model = load_vqvae(model_dir)
    x = torch.zeros(1, 1, padded)
    x[0, 0, :n] = torch.from_numpy(load_audio(song, 22050))
    for level in range(3):
        assert torch.equal(codes.codes[level], model.encode(x, level))
        out = tmp_path / f"l{level}.wav"
        assert main(["-q", "decode", str(tmp_path / "s.codes"), "--level", str(level), "-o", str(out)]) == 0
        written = sf.read(out, dtype="float32")[0]
        expect = model.decode(codes.codes[level], level)[0, 0, :n].clamp(-1, 1).numpy()
        assert written.shape == (n,)
        np.testing.assert_allclose(written, expect, atol=2 / 32767)
    assert "wrote" in capsys.readouterr().out


def test_encode_some_levels_and_codes_file_records_the_model(tmp_path, song):
    model_dir = _make_model(tmp_path / "model")
    codes = encode(song, model_dir, levels=[2])
    assert sorted(codes.codes) == [2]
    assert codes.model["path"] == str(model_dir.resolve()) and len(codes.model["id"]) == 16
    codes.save(tmp_path / "c.codes")
    again = CodesFile.load(tmp_path / "c.codes")
    assert again.model == codes.model and again.hop_lengths == (8, 32, 128)
    assert torch.equal(again.codes[2], codes.codes[2])
    with pytest.raises(ValueError, match=r"has levels 2, not level 0; give one of them"):
        decode(again, 0)


def test_decode_refuses_a_different_model(tmp_path, song, capsys):
    codes = encode(song, _make_model(tmp_path / "a", seed=0))
    codes.save(tmp_path / "c.codes")
    other = _make_model(tmp_path / "b", seed=1)
    rc = main(
        [
            "-q",
            "decode",
            str(tmp_path / "c.codes"),
            "--level",
            "0",
            "--model",
            str(other),
            "-o",
            str(tmp_path / "x.wav"),
        ]
    )
    assert rc == 2
    assert "is not the VQ-VAE that made these codes" in capsys.readouterr().err


def test_clear_errors(tmp_path, capsys):
    model_dir = _make_model(tmp_path / "model")
    (tmp_path / "bad.mp3").write_bytes(b"\x00" * 100)
    assert main(["-q", "encode", str(tmp_path / "bad.mp3"), "--model", str(model_dir), "-o", "x"]) == 2
    assert "bad.mp3: not a readable audio file" in capsys.readouterr().err
    assert main(["-q", "encode", str(tmp_path / "bad.mp3"), "--model", str(tmp_path), "-o", "x"]) == 2
    assert "is not a model folder: it needs config.json and model.safetensors" in capsys.readouterr().err
    assert main(["-q", "decode", str(tmp_path / "bad.mp3"), "--level", "0", "-o", "x.wav"]) == 2
    assert "not an openjukebox codes file" in capsys.readouterr().err
    args = [
        "-q",
        "train",
        "vqvae",
        "--data",
        str(tmp_path),
        "--preset",
        "giant",
        "--out",
        str(tmp_path / "r"),
    ]
    assert main(args) == 2
    assert "unknown VQ-VAE preset 'giant'; give one of: vqvae, music, small, tiny" in capsys.readouterr().err


def test_model_loading_is_strict(tmp_path):
    model_dir = _make_model(tmp_path / "model")
    state = load_vqvae(model_dir).state_dict()
    state["extra.weight"] = torch.zeros(1)
    del state["decoders.0.out.bias"]
    state["bottleneck.level_blocks.0.k"] = torch.zeros(3, 3)
    save_file(state, model_dir / "model.safetensors")
    with pytest.raises(ValueError) as info:
        load_vqvae(model_dir)
    msg = str(info.value)
    assert "missing keys: ['decoders.0.out.bias']" in msg and "unexpected keys: ['extra.weight']" in msg
    assert "bottleneck.level_blocks.0.k: file (3, 3) vs model (64, 16)" in msg


def test_codes_file_version_is_checked(tmp_path):
    CodesFile({0: torch.zeros(1, 4, dtype=torch.long)}, 22050, 32, (8,)).save(tmp_path / "c.codes")
    from safetensors import safe_open

    with safe_open(str(tmp_path / "c.codes"), "pt") as f:
        header = json.loads(f.metadata()["openjukebox"])
        tensors = {k: f.get_tensor(k) for k in f.keys()}
    header["version"] = 99
    save_file(tensors, tmp_path / "c.codes", metadata={"openjukebox": json.dumps(header)})
    with pytest.raises(ValueError, match="codes file version 99 is not supported"):
        CodesFile.load(tmp_path / "c.codes")


def test_presets_command_lists_presets(capsys):
    assert main(["presets"]) == 0
    out = capsys.readouterr().out
    assert "vqvae" in out and "hops (8, 32, 128)" in out and "tiny" in out
