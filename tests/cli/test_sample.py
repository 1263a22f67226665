import json
import re
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch

from openjukebox.cli.main import main
from openjukebox.codes import CodesFile


def test_sample_writes_audio_codes_metadata_and_spectrogram(bundle, tmp_path):
    out = tmp_path / "song"
    args = [
        "-q",
        "sample",
        "--model",
        str(bundle),
        "--artist",
        "Ada Lovelace",
        "--genre",
        "organ",
        "--seconds",
        "1.2",
        "--n-samples",
        "2",
        "--seed",
        "4",
        "--out",
        str(out),
    ]
    assert main(args) == 0
    codes = CodesFile.load(out / "codes.codes")
    n = codes.n_samples
    assert n >= 1.2 * 22050 and n % 128 == 0
    for level in (2, 1, 0):
        for i in (0, 1):
            audio, sr = sf.read(out / f"level_{level}" / f"sample_{i}.wav")
            assert sr == 22050 and audio.shape == (n,) and np.abs(audio).max() > 0
    meta = json.loads((out / "metadata.json").read_text())
    assert (meta["artist"], meta["genre"], meta["seed"], meta["levels"]) == ("Ada Lovelace", "organ", 4, [2, 1, 0])
    assert meta["labels"]["2"][0][:5] == [n, 0, 256 * 128, 1, 2]  # artist id 1 (ada_lovelace), genre id 2 (organ)
    assert (out / "spectrogram.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    recorded = codes.extra["sampling"]["models"]
    assert recorded["vqvae"] == codes.model["id"] and sorted(recorded["priors"]) == ["0", "1", "2"]


def test_preview_then_continue_down(bundle, tmp_path):
    out = tmp_path / "song"
    base = ["-q", "sample", "--model", str(bundle), "--artist", "Bach", "--seconds", "1.2", "--out", str(out)]
    assert main([*base, "--lowest-level", "2"]) == 0
    top = CodesFile.load(out / "codes.codes").codes
    assert sorted(top) == [2] and not (out / "level_0").exists()
    assert (out / "level_2" / "sample_0.wav").exists()  # one song is still sample_0
    assert main(base) == 0
    full = CodesFile.load(out / "codes.codes").codes
    assert sorted(full) == [0, 1, 2] and torch.equal(full[2], top[2])


def test_clear_sampling_errors(bundle, tmp_path, capsys):
    base = ["-q", "sample", "--model", str(bundle), "--out", str(tmp_path / "x")]
    assert main([*base, "--artist", "Ada Lovelance", "--seconds", "2"]) == 2
    assert "unknown artist 'Ada Lovelance' for this model; closest known: ada_lovelace" in capsys.readouterr().err
    assert main([*base, "--seconds", "0.5"]) == 2
    assert "--seconds 0.5 is outside what the level-2 prior was trained for" in capsys.readouterr().err
    assert main(["-q", "sample", "--model", str(tmp_path), "--out", str(tmp_path / "y"), "--seconds", "2"]) == 2
    assert "is not a model bundle: it needs vqvae/ and prior_level_N/" in capsys.readouterr().err


def _run(bundle, out, *extra):
    base = ["-q", "sample", "--model", str(bundle), "--artist", "Ada Lovelace", "--out", str(out)]
    assert main([*base, *extra]) == 0
    return CodesFile.load(out / "codes.codes"), json.loads((out / "metadata.json").read_text())


def test_primed_songs_start_with_the_encoded_prompt(bundle, tmp_path):
    from openjukebox.api import encode
    from openjukebox.audio.synth import render_score

    prompt = tmp_path / "prompt.wav"
    sf.write(prompt, render_score("ode_to_joy", "organ", 44100, bpm=200)[: 44100 * 2], 44100)
    codes, meta = _run(
        bundle,
        tmp_path / "p",
        "--prompt",
        str(prompt),
        "--prompt-seconds",
        "0.5",
        "--seconds",
        "1.2",
        "--n-samples",
        "2",
    )
    assert meta["mode"] == "primed"
    reference = encode(prompt, bundle / "vqvae")
    keep = int(0.5 * 22050) // 128 * 128
    for level, hop in enumerate((8, 32, 128)):
        p = keep // hop
        assert torch.equal(codes.codes[level][:, :p], reference.codes[level][:1, :p].expand(2, -1))
        assert not torch.equal(codes.codes[level][0, p:], codes.codes[level][1, p:])  # then they diverge


def test_continue_extends_a_song_and_upsample_rerenders_below_its_top(bundle, tmp_path):
    first, _ = _run(bundle, tmp_path / "a", "--seconds", "1.2")
    longer, meta = _run(bundle, tmp_path / "b", "--codes", str(tmp_path / "a" / "codes.codes"), "--seconds", "2.0")
    assert meta["mode"] == "continue" and longer.n_samples >= 2.0 * 22050
    for level in (0, 1, 2):
        have = first.codes[level].shape[1]
        assert torch.equal(longer.codes[level][:, :have], first.codes[level])
    again, meta = _run(bundle, tmp_path / "c", "--codes", str(tmp_path / "a" / "codes.codes"), "--seed", "9")
    assert meta["mode"] == "upsample" and again.n_samples == first.n_samples
    assert torch.equal(again.codes[2], first.codes[2])  # the top level is kept...
    assert not torch.equal(again.codes[0], first.codes[0])  # ...the levels below are sampled anew
    kept, meta = _run(bundle, tmp_path / "d", "--codes", str(tmp_path / "a" / "codes.codes"), "--keep-down-to", "1")
    assert meta["mode"] == "upsample" and kept.n_samples == first.n_samples
    assert torch.equal(kept.codes[2], first.codes[2]) and torch.equal(kept.codes[1], first.codes[1])  # both kept
    assert not torch.equal(kept.codes[0], first.codes[0])  # the bottom level alone is sampled anew


def test_keep_down_to_keeps_the_levels_of_an_encoded_file_and_refuses_unfinished_ones(bundle, tmp_path):
    from openjukebox.api import encode
    from openjukebox.audio.synth import render_score
    from openjukebox.errors import UserError
    from openjukebox.sampling.bundle import Bundle
    from openjukebox.sampling.song import codes_to_keep

    wav = tmp_path / "tune.wav"  # 1.3 s: not a whole number of top hops, as most recordings
    sf.write(wav, render_score("ode_to_joy", "organ", 22050, bpm=200)[:28665], 22050)
    encoded = encode(wav, bundle / "vqvae")
    encoded.save(tmp_path / "tune.codes")
    kept, meta = _run(bundle, tmp_path / "e", "--codes", str(tmp_path / "tune.codes"), "--keep-down-to", "1")
    assert meta["mode"] == "upsample"  # its top level has all its codes: a complete song
    assert torch.equal(kept.codes[2], encoded.codes[2]) and torch.equal(kept.codes[1], encoded.codes[1])
    assert not torch.equal(kept.codes[0], encoded.codes[0])
    configs = Bundle(bundle).configs
    unfinished = CodesFile({**encoded.codes, 1: encoded.codes[1][:, :-4]}, 22050, 28665, encoded.hop_lengths, {})
    with pytest.raises(UserError, match=r"level-1 codes are incomplete \(.*\): resume the run .* --keep-down-to 2"):
        codes_to_keep(configs, unfinished, "tune.codes", 1, 28665 / 22050, 1)
    given, mode = codes_to_keep(configs, unfinished, "tune.codes", 2, 28665 / 22050, 2)  # level 1 not kept: fine
    assert mode == "upsample" and sorted(given) == [2] and given[2].shape[0] == 2
    for bad in (0, 3, 1.0, True):
        with pytest.raises(UserError, match="--keep-down-to must be a level from 1 to 2"):
            codes_to_keep(configs, encoded, "tune.codes", 1, 28665 / 22050, bad)


def test_mode_errors(bundle, tmp_path, capsys):
    base = ["-q", "sample", "--model", str(bundle), "--out", str(tmp_path / "x"), "--seconds", "2"]
    (tmp_path / "bad.wav").write_bytes(b"RIFF....")
    assert main([*base, "--prompt", str(tmp_path / "bad.wav")]) == 2
    assert "bad.wav: not a readable audio file" in capsys.readouterr().err
    assert main(["-q", "sample", "--model", str(bundle), "--out", str(tmp_path / "y")]) == 2
    assert "say how long the song should be (--seconds)" in capsys.readouterr().err
    (tmp_path / "words.txt").write_text("la la la")
    assert main([*base, "--lyrics", str(tmp_path / "words.txt")]) == 2
    assert "has no lyrics conditioning, so it cannot sing lyrics" in capsys.readouterr().err


def test_sampling_with_timed_lyrics_writes_their_alignment(lyrics_bundle, tmp_path):
    (tmp_path / "song.lrc").write_text("[00:00.00]la la lu\n[00:01.50]hey you\n")
    (tmp_path / "other.txt").write_text("you you hey")
    base = ["-q", "sample", "--model", str(lyrics_bundle), "--seconds", "3", "--lowest-level", "2"]
    assert main([*base, "--lyrics", str(tmp_path / "song.lrc"), "--out", str(tmp_path / "a")]) == 0
    meta = json.loads((tmp_path / "a" / "metadata.json").read_text())
    assert meta["alignment"]["layer"] == 15 and meta["alignment"]["chosen"].startswith("automatically")
    stem = tmp_path / "a" / "alignment" / "sample_0"
    aligned = json.loads(stem.with_suffix(".json").read_text())
    assert "".join(c["char"] for c in aligned["characters"]) == "la la lu\nhey you\n"
    times = [c["start"] for c in aligned["characters"]]
    assert times == sorted(times) and 0 <= times[-1] <= 3.0
    lrc = stem.with_suffix(".lrc").read_text().splitlines()
    words = [[re.sub(r"<\d\d:\d\d\.\d\d>", "", w) for w in line.split("]", 1)[1].split()] for line in lrc]
    assert words == [["la", "la", "lu"], ["hey", "you"]] and stem.with_suffix(".png").stat().st_size > 1000
    # other lyrics reach the sampler and the alignment (that they condition the logits is tested on
    # the prior: a random model's samples are too close to uniform to tell two lyrics apart reliably)
    assert main([*base, "--lyrics", str(tmp_path / "other.txt"), "--out", str(tmp_path / "b")]) == 0
    a, b = CodesFile.load(tmp_path / "a" / "codes.codes"), CodesFile.load(tmp_path / "b" / "codes.codes")
    assert a.extra["sampling"]["lyrics"] != b.extra["sampling"]["lyrics"]
    other = json.loads((tmp_path / "b" / "alignment" / "sample_0.json").read_text())
    assert "".join(c["char"] for c in other["characters"]) == "you you hey"


def test_the_shipped_model_samples_every_level_without_model(tmp_path):
    from openjukebox.models import DEFAULT_MODEL

    if not (DEFAULT_MODEL / "prior_level_2" / "model.safetensors").exists():
        pytest.fail(f"the default model is missing from {DEFAULT_MODEL}; build it with recipes/music_model.sh")
    lyrics = Path(__file__).parents[2] / "examples" / "chorale.txt"
    out = tmp_path / "song"
    args = ["-q", "sample", "--seconds", "1", "--genre", "sung chorale", "--lyrics", str(lyrics), "--out", str(out)]
    assert main(args) == 0
    codes = CodesFile.load(out / "codes.codes")
    assert sorted(codes.codes) == [0, 1, 2] and codes.n_samples >= 22050
    for level in (0, 1, 2):
        audio, sr = sf.read(out / f"level_{level}" / "sample_0.wav")
        assert sr == 22050 and len(audio) == codes.n_samples and np.abs(audio).max() > 1e-3
    aligned = json.loads((out / "alignment" / "sample_0.json").read_text())
    assert aligned["text"].startswith("Nun danket alle Gott")


def test_guidance_defaults_to_the_models_label_dropout_and_is_recorded(bundle, tmp_path, capsys):
    import shutil

    guided = tmp_path / "guided_bundle"
    shutil.copytree(bundle, guided)
    config = guided / "prior_level_2" / "config.json"
    doc = json.loads(config.read_text())
    config.write_text(json.dumps({**doc, "label_dropout": 0.2}))
    base = ["-q", "sample", "--artist", "Ada Lovelace", "--genre", "organ", "--seconds", "1.2", "--lowest-level", "2"]
    settings = lambda out: json.loads((out / "metadata.json").read_text())["settings"]["2"]  # noqa: E731
    assert main([*base, "--model", str(bundle), "--out", str(tmp_path / "plain")]) == 0
    assert settings(tmp_path / "plain")["guidance"] == 1.0  # trained without label dropout: no guidance
    assert main([*base, "--model", str(guided), "--out", str(tmp_path / "default")]) == 0
    assert settings(tmp_path / "default")["guidance"] == 3.0
    assert main([*base, "--model", str(guided), "--guidance", "1.5", "--out", str(tmp_path / "given")]) == 0
    assert settings(tmp_path / "given")["guidance"] == 1.5
    assert main([*base, "--model", str(guided), "--guidance", "0", "--out", str(tmp_path / "bad")]) == 2
    assert "argument --guidance: must be a number, above 0, not 0" in capsys.readouterr().err


def test_every_level_trained_with_label_dropout_is_guided_by_default_and_levels_can_differ(bundle, tmp_path, capsys):
    """On the default model, guiding the upsamplers too carried the artist and genre better than
    guiding the top prior alone; a level trained without label dropout has no unconditional side."""
    import shutil

    from openjukebox.cli.info import describe_model
    from openjukebox.errors import UserError
    from openjukebox.sampling.bundle import DEFAULT_GUIDANCE, Bundle

    guided = tmp_path / "guided_bundle"
    shutil.copytree(bundle, guided)
    for level in (2, 0):  # the middle upsampler trained without label dropout
        config = guided / f"prior_level_{level}" / "config.json"
        config.write_text(json.dumps({**json.loads(config.read_text()), "label_dropout": 0.2}))
    b = Bundle(guided)
    assert b.label_dropout == {2: 0.2, 1: 0.0, 0: 0.2} and b.top == 2
    assert [b.guidance(lv, None) for lv in (2, 1, 0)] == [DEFAULT_GUIDANCE, 1.0, DEFAULT_GUIDANCE]
    assert [b.guidance(lv, 2.0) for lv in (2, 1, 0)] == [2.0, 2.0, 2.0]  # one value: every level
    assert [b.guidance(lv, (3.0, 1.0, 1.5)) for lv in (2, 1, 0)] == [3.0, 1.0, 1.5]  # from the top down
    with pytest.raises(UserError, match=r"2 guidance values for a bundle of 3 levels.*e\.g\. 3,1,1 guides the top"):
        b.guidance(2, (3.0, 1.0))
    assert [b.guidance(lv, (2.0, 1.5, None)) for lv in (2, 1, 0)] == [2.0, 1.5, DEFAULT_GUIDANCE]  # None: its default
    for bad in ("3,1,1", True, (3.0, "1", 1.0)):
        with pytest.raises(UserError, match="guidance must be"):
            b.guidance(1, bad)
    assert "guidance by default on levels 2, 0 (trained with label dropout)" in describe_model(guided)

    base = ["-q", "sample", "--model", str(guided), "--artist", "Ada Lovelace", "--genre", "organ", "--seconds", "1.2"]
    assert main([*base, "--lowest-level", "1", "--guidance", "3, 1.5 ,1", "--out", str(tmp_path / "levels")]) == 0
    settings = json.loads((tmp_path / "levels" / "metadata.json").read_text())["settings"]
    assert (settings["2"]["guidance"], settings["1"]["guidance"]) == (3.0, 1.5)
    assert main([*base, "--guidance", "3,0,1", "--out", str(tmp_path / "bad")]) == 2
    assert "argument --guidance: must be a number, above 0, not 0" in capsys.readouterr().err
    assert main([*base, "--guidance", "3,1", "--out", str(tmp_path / "short")]) == 2
    assert "2 guidance values for a bundle of 3 levels" in capsys.readouterr().err


def test_temperature_can_differ_per_level_and_only_the_levels_it_changes_change(bundle, tmp_path, capsys):
    from openjukebox.errors import UserError
    from openjukebox.sampling.bundle import Bundle

    b = Bundle(bundle)
    assert [b.temperature(lv, 0.9) for lv in (2, 1, 0)] == [0.9, 0.9, 0.9]  # one value: every level
    assert [b.temperature(lv, (0.99, 0.8, 0.7)) for lv in (2, 1, 0)] == [0.99, 0.8, 0.7]  # from the top down
    with pytest.raises(UserError, match=r"2 temperature values for a bundle of 3 levels.*e\.g\. 0\.99,0\.9,0\.9"):
        b.temperature(2, (0.99, 0.9))
    for bad in (0.0, -1.0, float("nan"), True, "0.9", (0.99, None, 0.9)):
        with pytest.raises(UserError, match="temperature must be"):
            b.temperature(1, bad)
    which = r"\(the value for level 1; the list goes from the top level down\)"
    with pytest.raises(UserError, match=r"above 0, not 0\.0 " + which):
        b.temperature(1, (0.99, 0.0, 0.9))  # a list's bad value names its level
    with pytest.raises(UserError, match=r"guidance must be positive .* got -1\.0 " + which):
        b.guidance(1, (3.0, -1.0, 3.0))

    base = ["-q", "sample", "--model", str(bundle), "--artist", "Bach", "--seconds", "1.2", "--seed", "3"]
    base += ["--lowest-level", "1"]
    assert main([*base, "--out", str(tmp_path / "even")]) == 0
    assert main([*base, "--temperature", "0.99, 0.5,0.7", "--out", str(tmp_path / "cool")]) == 0
    settings = json.loads((tmp_path / "cool" / "metadata.json").read_text())["settings"]
    assert (settings["2"]["temperature"], settings["1"]["temperature"]) == (0.99, 0.5)
    even, cool = (CodesFile.load(tmp_path / name / "codes.codes").codes for name in ("even", "cool"))
    assert torch.equal(even[2], cool[2])  # the top level at 0.99 in both: the same codes
    assert not torch.equal(even[1], cool[1])
    assert main([*base, "--temperature", "0.99,0.9", "--out", str(tmp_path / "short")]) == 2
    assert "2 temperature values for a bundle of 3 levels" in capsys.readouterr().err


def test_segments_change_only_the_upsampled_levels_and_a_preview_continues_down_with_them(
    bundle, tmp_path, monkeypatch, capsys
):
    def run(out, *extra):
        base = ["-q", "sample", "--model", str(bundle), "--artist", "Bach", "--seconds", "1.2", "--seed", "4"]
        return main([*base, "--out", str(out), *extra])

    assert run(tmp_path / "one") == 0
    one = CodesFile.load(tmp_path / "one" / "codes.codes")
    assert run(tmp_path / "four", "--lowest-level", "2") == 0  # a preview, then down in segments
    assert run(tmp_path / "four", "--segments", "4") == 0
    four = CodesFile.load(tmp_path / "four" / "codes.codes")
    assert torch.equal(one.codes[2], four.codes[2])  # the top level is sampled as before
    # level 1 (832 codes) is too short for two stretches of twice its 256-code context: as before
    assert torch.equal(one.codes[1], four.codes[1])
    assert four.codes[0].shape == one.codes[0].shape and not torch.equal(four.codes[0], one.codes[0])
    settings = four.extra["sampling"]["settings"]
    assert (settings["2"]["segments"], settings["1"]["segments"], settings["0"]["segments"]) == (1, 4, 4)

    def no_sampling(*args, **kwargs):
        raise AssertionError("a finished run sampled again")

    monkeypatch.setattr("openjukebox.sampling.song.sample_window", no_sampling)
    assert run(tmp_path / "four", "--segments", "4") == 0  # the same command again: nothing to sample
    assert run(tmp_path / "four", "--segments", "2") == 2  # levels already sampled keep their settings
    assert "different level-1 settings: segments 4 there, 2 now; level-0 settings: segments 4 there, 2 now" in (
        capsys.readouterr().err
    )
