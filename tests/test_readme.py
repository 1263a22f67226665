"""Every code block of README.md runs.

The ```bash and ```python blocks are taken from README.md as it is, in order, and run in one
working folder, as a reader would. What a block names of the reader's own (``~/music``,
``song.mp3``, ``my_bundle``, ``songs.jsonl``, an original checkpoint) is made here first: rendered
tones, a tiny random bundle with the README's names, the original code's tiny checkpoints. Runs
are shortened to equivalents that fit in a test: training runs 2 steps, songs last about a
twentieth of the README's length, sampling stops after the top level, and the ``small`` VQ-VAE
preset is trained as ``tiny``. ``test_the_quickstart_as_written`` (slow) runs the quickstart's sampling unchanged.

Installation commands (venv, pip) are the setup this test already runs in, and are skipped; a
block placed right after ``<!-- not-run: REASON -->`` is not run (used for torchrun, the official
release files and the test suite itself). ``openjukebox ... --help`` must print its help and exit
with status 0 (``serve``, which runs until stopped, is shown that way). Any other command must be
``openjukebox ...``: a new kind of command needs a rule here or a marker in the README.
"""

from __future__ import annotations

import dataclasses
import json
import re
import shlex
import shutil
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch

from openjukebox.cli.main import main

from .conftest import FIXTURES

README = Path(__file__).parents[1] / "README.md"
SETUP = ("python3 -m venv", "python -m venv", ". .venv/bin/activate", "source .venv/bin/activate", "pip install")
BLOCK = re.compile(r"(?:<!--\s*not-run:(?P<reason>[^>]*)-->\s*\n)?```(?P<lang>bash|python)\n(?P<code>.*?)```", re.S)
NAMES = [("Johann Sebastian Bach", "organ"), ("Joseph Haydn", "piano"), ("Wolfgang Amadeus Mozart", "strings")]
LYRICS = "[00:00.00]Nun danket alle Gott\n[00:00.50]mit Herzen, Mund und Haenden\n"


def readme_blocks() -> list[tuple[str, str, str | None]]:
    """(language, code, reason not to run or None) of every bash and python block, in order."""
    return [(m["lang"], m["code"], m["reason"] and m["reason"].strip()) for m in BLOCK.finditer(README.read_text())]


def bash_commands(code: str) -> list[str]:
    """The commands of a bash block: continuation lines joined, comments dropped, ``&&`` split."""
    joined = code.replace("\\\n", " ")
    commands = []
    for line in joined.splitlines():
        line = line.split(" #", 1)[0].strip() if not line.strip().startswith("#") else ""
        commands += [c.strip() for c in line.split("&&") if c.strip()]
    return commands


def _shorten(argv: list[str], full: bool) -> list[str]:
    """The test's equivalent of a README command (see the module docstring)."""
    argv = list(argv)
    if argv[:1] == ["train"]:
        resume = "--resume" in argv
        argv += ["--steps", "3" if resume else "2"]
        if "--preset" in argv and argv[argv.index("--preset") + 1] == "small":
            argv[argv.index("--preset") + 1] = "tiny"  # the same code, a fraction of the work
        if not resume:
            argv += ["--batch-size", "2"] + (["--sample-length", "4096"] if argv[1] == "vqvae" else [])
    if argv[:1] in (["sample"], ["compose"]):
        shipped = "--model" not in argv
        if not (full and shipped):
            for option, scale in (("--seconds", 20), ("--prompt-seconds", 20), ("--step-seconds", 5)):
                if option in argv:
                    i = argv.index(option) + 1
                    argv[i] = f"{max(float(argv[i]) / scale, 1.0 if option == '--seconds' else 0.4):g}"
            if "--lowest-level" not in argv:
                argv += ["--lowest-level", "2"]
    return argv


def run_block(lang: str, code: str, workspace: Path, full: bool = False) -> None:
    """Run one README block in ``workspace`` (the current folder)."""
    if lang == "python":
        exec(compile(code, "README.md", "exec"), {"__name__": "readme"})
        return
    commands = [c for c in bash_commands(code) if not c.startswith(SETUP)]
    sampling = [a for a in map(shlex.split, commands) if a[1:2] in (["sample"], ["compose"]) and "--out" in a]
    for out in {a[a.index("--out") + 1] for a in sampling}:  # an earlier block's song: the reader starts afresh
        if (workspace / out).exists():
            shutil.move(workspace / out, workspace / f"{out}.before")
    for command in commands:
        argv = shlex.split(command.replace("~/", f"{workspace / 'home'}/"))
        assert argv[0] == "openjukebox", f"no rule to run {command!r}: add one, or a not-run marker in the README"
        argv = _shorten(argv[1:], full)
        if "--help" in argv:  # argparse prints the help and exits with status 0
            with pytest.raises(SystemExit) as done:
                main(argv)
            assert done.value.code == 0, f"README command failed: {command}"
            continue
        assert main(["-q", *argv]) == 0, f"README command failed: {command}\n(run as: {shlex.join(argv)})"


def _tone(path: Path, seconds: float, freq: float) -> Path:
    t = np.arange(int(seconds * 22050)) / 22050
    audio = (0.3 * np.sin(2 * np.pi * freq * t) * (1 + 0.5 * np.sin(2 * np.pi * 3 * t))).astype(np.float32)
    path.parent.mkdir(parents=True, exist_ok=True)
    sf.write(path, audio, 22050)
    return path


def _tiny_bundle(root: Path) -> Path:
    """A bundle with random weights that knows the README's names and sings its lyrics."""
    from openjukebox.checkpoint import model_id, save_model
    from openjukebox.codec.config import get_preset as codec_preset
    from openjukebox.codec.vqvae import VQVAE
    from openjukebox.lyrics.tokenizer import Tokenizer
    from openjukebox.prior.config import get_preset
    from openjukebox.prior.model import build_prior
    from openjukebox.prior.vocab import LabelVocab

    torch.manual_seed(0)
    vq = VQVAE(codec_preset("tiny")).eval()
    save_model(root / "vqvae", vq, "vqvae", vq.config.to_dict())
    vocab = LabelVocab.from_metadata([{"artist": a, "genre": g} for a, g in NAMES]).to_dict()
    tokenizer = Tokenizer.build([LYRICS])
    for level, preset in ((2, "tiny_top_single"), (1, "tiny_upsampler_1"), (0, "tiny_upsampler_0")):
        cfg = get_preset(preset)
        if cfg.lyrics is not None:
            cfg = dataclasses.replace(cfg, lyrics=dataclasses.replace(cfg.lyrics, n_vocab=tokenizer.n_vocab))
        extra = {"vocab": {**vocab, "lyrics": tokenizer.to_dict() if cfg.lyrics else None}}
        save_model(root / f"prior_level_{level}", build_prior(cfg), "prior", cfg.to_dict(), **extra)
        doc = json.loads((root / f"prior_level_{level}" / "config.json").read_text())
        doc["vqvae"] = {"id": model_id(root / "vqvae")}
        (root / f"prior_level_{level}" / "config.json").write_text(json.dumps(doc))
    return root


@pytest.fixture(scope="module")
def workspace(tmp_path_factory):
    """The reader's folder, with the files the README assumes they have."""
    ws = tmp_path_factory.mktemp("readme")
    for i, f in enumerate((196, 262, 330)):
        _tone(ws / "home" / "music" / f"piece_{i}.wav", 3.0, f)
    sf.write(ws / "song.mp3", sf.read(ws / "home" / "music" / "piece_0.wav")[0], 22050, format="MP3")
    shutil.copy(ws / "song.mp3", ws / "my_song.mp3")
    entries = [{"path": f"home/music/piece_{i}.wav", "artist": a, "genre": g} for i, (a, g) in enumerate(NAMES)]
    (ws / "songs.jsonl").write_text("".join(json.dumps(e) + "\n" for e in entries))
    mine = [{"path": f"home/music/piece_{i}.wav", "artist": "Ada Lovelace", "genre": "harp"} for i in range(3)]
    (ws / "mine.jsonl").write_text("".join(json.dumps(e) + "\n" for e in mine))  # a name the shipped model lacks
    sung = [{**e, "lyrics": "Nun danket alle Gott mit Herzen, Mund und Haenden"} for e in entries]
    for e in sung[:2]:  # timed, so that whichever song is held out, one with times trains
        e["lyrics"] = [{"time": 0.0, "text": "Nun danket "}, {"time": 1.2, "text": "alle Gott"}]
    (ws / "sung.jsonl").write_text("".join(json.dumps(e) + "\n" for e in sung))
    (ws / "words.lrc").write_text(LYRICS)
    (ws / "examples").symlink_to(README.parent / "examples")
    _tiny_bundle(ws / "my_bundle")
    (ws / "5b").mkdir()
    shutil.copy(FIXTURES / "openai" / "vqvae.pth.tar", ws / "5b" / "vqvae.pth.tar")
    (ws / "my_run").mkdir()
    shutil.copy(FIXTURES / "openai" / "prior_top_single.pth.tar", ws / "my_run" / "checkpoint_latest.pth.tar")
    return ws


BLOCKS = readme_blocks()


def test_the_readme_has_blocks_and_few_are_left_out():
    assert len(BLOCKS) >= 8 and sum(reason is not None for _, _, reason in BLOCKS) <= 5


@pytest.mark.parametrize("index", range(len(BLOCKS)), ids=[f"block{i}-{b[0]}" for i, b in enumerate(BLOCKS)])
def test_readme_block_runs(index, workspace, monkeypatch):
    lang, code, reason = BLOCKS[index]
    if reason:
        pytest.skip(f"not run: {reason}")
    monkeypatch.chdir(workspace)
    monkeypatch.setenv("HOME", str(workspace / "home"))
    monkeypatch.setenv("OPENJUKEBOX_CACHE", str(workspace / "cache"))  # its own: other tests count cache entries
    run_block(lang, code, workspace)


def test_the_plan_table_is_what_the_command_prints(capsys):
    """The ```text block after the README's ``--plan`` command is that command's output today."""
    found = re.search(
        r"```bash\n(openjukebox train prior [^\n]*--plan[^\n]*)\n```\s*```text\n(.*?)```", README.read_text(), re.S
    )
    assert found, "the README shows a --plan command followed by its output"
    capsys.readouterr()
    assert main(shlex.split(found[1])[1:]) == 0
    assert capsys.readouterr().out == found[2]


@pytest.mark.slow
def test_the_quickstart_as_written(workspace, monkeypatch, tmp_path):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "examples").symlink_to(README.parent / "examples")
    lang, code, _ = BLOCKS[0]
    run_block(lang, code, tmp_path, full=True)
    assert sf.info(tmp_path / "song" / "level_0" / "sample_0.wav").duration >= 10
