"""What the command line promises besides its errors: seeds, info, defaults, formats, files, resume."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from openjukebox.audio.io import output_formats
from openjukebox.checkpoint import load_train_state
from openjukebox.cli.args import help_missing
from openjukebox.cli.main import build_parser, main
from openjukebox.codes import CodesFile
from openjukebox.training.metrics import read_csv


def _tone(path: Path, seconds: float = 1.0, freq: float = 220.0) -> Path:
    t = np.arange(int(seconds * 22050)) / 22050
    sf.write(path, (0.3 * np.sin(2 * np.pi * freq * t)).astype(np.float32), 22050)
    return path


def test_every_option_has_help_and_q_works_after_the_subcommand(bundle, tmp_path):
    assert help_missing(build_parser()) == []
    args = build_parser().parse_args(["sample", "-q", "--out", "x"])
    assert args.quiet is True and build_parser().parse_args(["sample", "--out", "x"]).quiet is False
    assert build_parser().parse_args(["-q", "sample", "--out", "x"]).quiet is True


def test_a_seed_is_drawn_printed_recorded_and_reused_on_resume(bundle, tmp_path, capsys):
    base = ["sample", "-q", "--model", str(bundle), "--seconds", "1.2", "--lowest-level", "2"]
    assert main([*base, "--out", str(tmp_path / "a")]) == 0
    err = capsys.readouterr().err
    seed = json.loads((tmp_path / "a" / "metadata.json").read_text())["seed"]
    assert f"pass --seed {seed}" in err
    assert main([*base, "--out", str(tmp_path / "b")]) == 0
    assert json.loads((tmp_path / "b" / "metadata.json").read_text())["seed"] != seed  # a new song each time
    assert main([*base, "--seed", str(seed), "--out", str(tmp_path / "c")]) == 0
    a, c = CodesFile.load(tmp_path / "a" / "codes.codes"), CodesFile.load(tmp_path / "c" / "codes.codes")
    assert (a.codes[2] == c.codes[2]).all()  # --seed makes it again
    capsys.readouterr()
    assert main([*base, "--out", str(tmp_path / "a")]) == 0  # the same command again: resumes, same seed
    assert f"seed {seed} (the saved run's" in capsys.readouterr().err


def test_info_lists_names_characters_and_lengths(capsys):
    assert main(["info"]) == 0
    out = capsys.readouterr().out
    assert "johann_sebastian_bach" in out and "sung_chorale" in out and "song lengths: from 1 s" in out
    assert "characters (59)" in out and "level 0: upsampler" in out


def test_encode_decode_default_to_the_shipped_model_and_write_every_format(tmp_path, capsys):
    song = _tone(tmp_path / "a.wav")
    assert main(["-q", "encode", str(song), "-o", str(tmp_path / "a.codes")]) == 0
    for ext in output_formats():
        out = tmp_path / f"a{ext}"
        assert main(["-q", "decode", str(tmp_path / "a.codes"), "--level", "2", "-o", str(out)]) == 0
        assert sf.info(out).samplerate == 22050 and sf.info(out).frames > 0
    assert ".mp3" in output_formats()  # libsndfile here writes MP3 (else check_output_format names the need)


def test_written_files_get_ordinary_permissions_and_stale_temporaries_go(bundle, tmp_path):
    os.umask(0o022)
    out = tmp_path / "song"
    killed = subprocess.run(  # a writer killed with -9 in the middle of a save
        [
            sys.executable,
            "-c",
            "import os, sys, time\nfrom openjukebox.fileio import atomic_path\n"
            f"with atomic_path({str(out / 'codes.codes')!r}) as tmp:\n"
            "    open(tmp, 'w').write('half')\n    os.kill(os.getpid(), 9)",
        ],
        capture_output=True,
    )
    assert killed.returncode == -9
    assert len(list(out.glob(".codes.codes.*.tmp"))) == 1
    args = ["-q", "sample", "--model", str(bundle), "--seed", "1", "--seconds", "1.2", "--lowest-level", "2"]
    assert main([*args, "--out", str(out)]) == 0
    assert not list(out.rglob("*.tmp"))
    for path in (out / "codes.codes", out / "metadata.json", out / "level_2" / "sample_0.wav"):
        assert path.stat().st_mode & 0o777 == 0o644, path


def test_primed_preview_writes_no_wav_below_its_lowest_level(bundle, tmp_path):
    prompt = _tone(tmp_path / "p.wav", 1.0)
    args = ["-q", "sample", "--model", str(bundle), "--seed", "1", "--seconds", "1.2", "--lowest-level", "1"]
    assert main([*args, "--prompt", str(prompt), "--prompt-seconds", "0.5", "--out", str(tmp_path / "o")]) == 0
    assert sorted(p.name for p in (tmp_path / "o").glob("level_*")) == ["level_1", "level_2"]
    meta = json.loads((tmp_path / "o" / "metadata.json").read_text())
    assert meta["levels"] == [2, 1] and sorted(meta["files"]) == ["1", "2"]


@pytest.fixture()
def tones(tmp_path) -> Path:
    data = tmp_path / "data"
    data.mkdir()
    for i, f in enumerate((220, 330, 440)):
        _tone(data / f"t{i}.wav", 2.0, f)
    return data


def test_resume_continues_the_saved_plan_and_honours_schedule_changes(tones, tmp_path, capsys):
    run = tmp_path / "run"
    common = ["-q", "train", "vqvae", "--data", str(tones), "--out", str(run)]
    first = ["--preset", "tiny", "--steps", "2", "--batch-size", "2", "--sample-length", "4096", "--lr", "0.002"]
    assert main([*common, *first]) == 0
    capsys.readouterr()
    assert main([*common, "--resume", "--steps", "3", "--save-every", "1"]) == 0
    err = capsys.readouterr().err
    assert "resuming" in err and "at step 2 of 3: batch size 2, lr 0.002, save every 1" in err
    state = load_train_state(run / "train_state.pt")
    assert state["step"] == 3 and state["train_config"]["lr"] == 0.002 and state["train_config"]["save_every"] == 1
    for name in ("model.safetensors", "config.json", "train_state.pt"):
        assert (run / name).stat().st_mode & 0o777 == 0o644 & ~os.umask(os.umask(0)), name
    assert main([*common, "--resume", "--steps", "3"]) == 2  # finished: says to give more steps
    assert "give --steps above 3" in capsys.readouterr().err


def test_the_log_after_a_resume_equals_an_unbroken_runs(tones, tmp_path):
    import dataclasses

    from openjukebox.codec.config import get_preset
    from openjukebox.training.vqvae import TRAIN_PRESETS, train_vqvae

    tc = dataclasses.replace(TRAIN_PRESETS["tiny"], batch_size=2, sample_length=4096, log_every=4, val_fraction=0)
    train_vqvae(tones, tmp_path / "straight", get_preset("tiny"), dataclasses.replace(tc, steps=8), progress=False)
    train_vqvae(tones, tmp_path / "split", get_preset("tiny"), dataclasses.replace(tc, steps=6), progress=False)
    train_vqvae(tones, tmp_path / "split", None, tc, resume=True, progress=False, changes={"steps": 8})
    a, b = read_csv(tmp_path / "straight" / "train.csv"), read_csv(tmp_path / "split" / "train.csv")
    timing = {"examples_per_s", "audio_s_per_s"}
    assert [r["step"] for r in b] == [1, 4, 8]  # step 8's row averages steps 5-8 across the break
    assert [{k: v for k, v in r.items() if k not in timing} for r in a] == [
        {k: v for k, v in r.items() if k not in timing} for r in b
    ]


def test_a_damaged_cache_entry_is_rebuilt(tones, tmp_path, capsys):
    from openjukebox.audio.dataset import prepare_audio

    first = prepare_audio(tones, 22050, tmp_path / "cache", 4096, val_fraction=0)
    Path(first.train[0].cache).write_bytes(b"\x93NUMPY garbage")
    again = prepare_audio(tones, 22050, tmp_path / "cache", 4096, val_fraction=0)
    assert [t.n_samples for t in again.train] == [t.n_samples for t in first.train] and not again.skipped
    assert "is damaged" in capsys.readouterr().err


def test_a_truncated_file_is_skipped_in_training_with_its_reason(tones, tmp_path):
    from openjukebox.audio.dataset import prepare_audio

    data = (tones / "t0.wav").read_bytes()
    (tones / "t0.wav").write_bytes(data[: len(data) // 3])
    audio = prepare_audio(tones, 22050, tmp_path / "cache", 4096, val_fraction=0)
    assert len(audio.train) == 2 and "truncated" in audio.skipped[0][1]
