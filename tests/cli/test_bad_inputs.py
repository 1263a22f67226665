"""Bad inputs and faults, one row each: every one a clear one-line error that changes nothing on disk.

Each row builds its inputs in a fresh folder, runs the command line in-process (a few rows need
their own process), and asserts: a non-zero exit, stderr exactly one line
``openjukebox: error: ...`` that names the option or file and says what to do, no traceback, and
no file or folder created or changed anywhere under the row's folder. ``src`` says where the case
comes from: issue 12's list, or new.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from openjukebox.cli.main import main

from ..conftest import FIXTURES
from .faults import (
    Row,
    adapter_for_another_prior,
    codes_file,
    copy_bundle,
    edit_config,
    evil,
    immutable,
    mkdir,
    run_folder,
    sampled,
    tampered,
    then,
    tone_at,
    truncate,
    truncated_wav,
    write,
    wrong_shape,
)

OPENAI = FIXTURES / "openai"
ROOT = Path(__file__).parents[2]
ACTION = re.compile(
    r"\b(give|pass|use|choose|check|remove|drop|leave|copy|save|fix|ask|run|start|export|free|see|lists?|"
    r"import|say|shorten|install|train|point|put|add)\b"
)


S = "sample --model {bundle} --seed 1 --seconds 1.2 --out {tmp}/out"  # a sampling run that would work
L = "sample --model {tmp}/model --seed 1 --seconds 3 --lowest-level 2 --out {tmp}/out"  # the singing bundle copy
LYR = copy_bundle("lyrics_bundle")

ROWS = [
    # ---- issue 12: tracebacks
    Row("seconds-inf", S.replace("1.2", "inf"), "--seconds", src="issue"),
    Row("n-samples-0", S + " --n-samples 0", "--n-samples", src="issue"),
    Row("n-samples-negative", S + " --n-samples -1", "--n-samples", src="issue"),
    Row("temperature-0", S + " --temperature 0", "--temperature", src="issue"),
    Row("lowest-level-9", S + " --lowest-level 9", "--lowest-level", src="issue"),
    Row(
        "alignment-head-99:99",
        L + " --lyrics {tmp}/words.txt --alignment-head 99:99",
        "--alignment-head",
        then(LYR, write("words.txt", "la la lu")),
        src="issue",
    ),
    Row("lyrics-is-a-folder", L + " --lyrics {tmp}/words", "words", then(LYR, mkdir("words")), src="issue"),
    Row(
        "truncated-model",
        S.replace("{bundle}", "{tmp}/model"),
        "prior_level_0/model.safetensors",
        then(copy_bundle(), truncate("model/prior_level_0/model.safetensors")),
        src="issue",
    ),
    Row("immutable-out", S, "out", immutable, src="issue"),
    Row("out-is-a-file", S, "out", write("out", "x"), src="issue"),
    Row(
        "decode-o-is-a-folder",
        "decode {tmp}/song.codes --level 2 -o {tmp}/out",
        "out",
        then(codes_file, mkdir("out")),
        src="issue",
    ),
    Row(
        "compose-stdin-closed",
        "compose --model {bundle} --seconds 2 --out {tmp}/out",
        "input",
        src="issue",
        process={"close_stdin": True},
    ),
    Row("read-only-out", S.replace("{tmp}/out", "/sys/kernel"), "/sys/kernel", src="issue"),  # even root cannot
    Row("out-cannot-be-made", S.replace("{tmp}/out", "/sys/openjukebox-out"), "/sys/openjukebox-out"),
    # ---- issue 12: silent results
    Row("temperature-negative", S + " --temperature -1", "--temperature", src="issue"),
    Row("top-p-2", S + " --top-p 2", "--top-p", src="issue"),
    Row("top-k-negative", S + " --top-k -5", "--top-k", src="issue"),
    Row(
        "lrc-past-the-end",
        L + " --lyrics {tmp}/song.lrc",
        "song.lrc",
        then(LYR, write("song.lrc", "[00:00.00]la la\n[04:00.00]lu lu\n")),
        src="issue",
    ),
    Row(
        "100kb-lyrics-in-2s",
        L.replace("--seconds 3", "--seconds 2") + " --lyrics {tmp}/long.txt",
        "long.txt",
        then(LYR, write("long.txt", "la la lu hey you\n" * 6400)),
        src="issue",
    ),
    Row("truncated-wav", "encode {tmp}/cut.wav -o {tmp}/out/x.codes", "cut.wav", truncated_wav, src="issue"),
    # ---- issue 12: unclear messages
    Row("seconds-nan", S.replace("1.2", "nan"), "--seconds", src="issue"),
    Row(
        "binary-lyrics",
        L + " --lyrics {tmp}/words.txt",
        "words.txt",
        then(LYR, write("words.txt", bytes(range(256)) * 4)),
        src="issue",
    ),
    Row(
        "malformed-config-json",
        S.replace("{bundle}", "{tmp}/model"),
        "prior_level_1/config.json",
        then(copy_bundle(), write("model/prior_level_1/config.json", '{"kind": "prior", ')),
        src="issue",
    ),
    Row("folder-named-x.wav", "encode {tmp}/x.wav -o {tmp}/out/x.codes", "x.wav", mkdir("x.wav"), src="issue"),
    Row(
        "text-named-mp3", "encode {tmp}/t.mp3 -o {tmp}/out/x.codes", "t.mp3", write("t.mp3", "hi\n" * 200), src="issue"
    ),
    Row("prompt-seconds-negative", S + " --prompt {tmp}/p.wav --prompt-seconds -1", "--prompt-seconds", src="issue"),
    Row(
        "wrong-shape-in-level-0",
        S.replace("{bundle}", "{tmp}/model"),
        "prior_level_0",
        then(copy_bundle(), wrong_shape),
        src="issue",
    ),
    # ---- issue 12: smaller things
    Row("unknown-artist-names-info", S + " --artist 'Ada Lovelance'", "openjukebox info", src="issue"),
    Row(
        "decode-unknown-format",
        "decode {tmp}/song.codes --level 2 -o {tmp}/out/x.xyz",
        "x.xyz",
        codes_file,
        src="issue",
    ),
    Row(
        "resume-with-other-lr",
        "train vqvae --data {data} --out {tmp}/run --resume --lr 0.5",
        "--lr",
        run_folder,
        src="issue",
    ),
    Row(
        "resume-with-other-batch-size",
        "train vqvae --data {data} --out {tmp}/run --resume --batch-size 4",
        "--batch-size",
        run_folder,
        src="issue",
    ),
    Row(
        "resume-finished-run", "train vqvae --data {data} --out {tmp}/run --resume", "--steps", run_folder, src="issue"
    ),
    Row(
        "import-upsampler-without-vqvae",
        "import-openai " + str(OPENAI / "upsampler_l1.pth.tar") + " --out {tmp}/out",
        "--vqvae",
        src="issue",
    ),
    Row(
        "import-missing-key",
        "import-openai {tmp}/missing.pth.tar --vqvae {vq} --out {tmp}/out",
        "prior.transformer._attn_mods.3.mlp.c_fc.w",
        tampered,
        src="issue",
    ),
    # ---- new: option values
    Row("seconds-0", S.replace("1.2", "0"), "--seconds"),
    Row("seconds-negative", S.replace("1.2", "-3"), "--seconds"),
    Row("seconds-text", S.replace("1.2", "abc"), "--seconds"),
    Row("seconds-beyond-the-model", S.replace("1.2", "5000"), "--seconds 5000"),
    Row("top-p-negative", S + " --top-p -0.1", "--top-p"),
    Row("top-p-nan", S + " --top-p nan", "--top-p"),
    Row("temperature-inf", S + " --temperature inf", "--temperature"),
    Row("guidance-0", S + " --guidance 0", "--guidance"),
    Row("segments-0", S + " --segments 0", "--segments"),
    Row("segments-fraction", S + " --segments 2.5", "--segments"),
    Row("guidance-nan", S + " --guidance nan", "--guidance"),
    Row("guidance-per-level-count", S + " --guidance 3,1", "guidance values for a bundle of"),
    Row("temperature-per-level-count", S + " --temperature 0.9,0.9", "temperature values for a bundle of"),
    Row("temperature-per-level-0", S + " --temperature 0.99,0,0.9", "--temperature"),
    Row("guidance-per-level-empty", S + " --guidance 3,,1", "--guidance"),
    Row("seed-negative", S.replace("--seed 1", "--seed -1"), "--seed"),
    Row("seed-fraction", S.replace("--seed 1", "--seed 1.5"), "--seed"),
    Row("alignment-head-three-parts", S + " --alignment-head 1:2:3", "--alignment-head"),
    Row("alignment-head-words", S + " --alignment-head a:b", "--alignment-head"),
    Row("alignment-head-without-lyrics-model", S + " --alignment-head 0:0", "--alignment-head"),
    Row("unknown-option", S + " --tempo 3", "--tempo"),
    Row("missing-out", "sample --model {bundle} --seconds 1", "--out"),
    Row("unknown-genre", S + " --genre polka", "openjukebox info"),
    Row(
        "prompt-and-codes",
        S + " --prompt {tmp}/p.wav --codes {tmp}/song.codes",
        "--codes",
        then(codes_file, tone_at("p.wav")),
    ),
    Row("prompt-missing", S + " --prompt {tmp}/none.wav", "none.wav"),
    Row("prompt-empty", S + " --prompt {tmp}/p.wav", "p.wav", write("p.wav", b"")),
    Row("prompt-longer-than-file", S + " --prompt {tmp}/p.wav --prompt-seconds 1.1", "p.wav", tone_at("p.wav", 0.2)),
    Row("codes-not-a-codes-file", S + " --codes {tmp}/c.codes", "c.codes", write("c.codes", "not codes")),
    Row("keep-down-to-without-codes", S + " --keep-down-to 1", "--keep-down-to"),
    Row("keep-down-to-level-3", S + " --codes {tmp}/song.codes --keep-down-to 3", "from 1 to 2", codes_file),
    Row("keep-down-to-level-0", S + " --codes {tmp}/song.codes --keep-down-to 0", "--keep-down-to", codes_file),
    Row(
        "keep-down-to-a-level-not-in-the-file",  # the sampled file has the top level alone
        "sample --model {bundle} --seed 1 --codes {tmp}/out/codes.codes --keep-down-to 1 --out {tmp}/again",
        "level-1",
        sampled,
    ),
    Row(
        "keep-down-to-a-shorter-file",
        "sample --model {bundle} --seed 1 --seconds 2 --codes {tmp}/out/codes.codes --keep-down-to 2 --out {tmp}/o",
        "shorter than the song",
        sampled,
    ),
    # ---- new: models
    Row("model-missing", S.replace("{bundle}", "{tmp}/nothing"), "nothing"),
    Row("model-is-a-file", S.replace("{bundle}", "{tmp}/model"), "model", write("model", "x")),
    Row("model-not-a-bundle", S.replace("{bundle}", "{tmp}/model"), "model", mkdir("model")),
    Row(
        "config-json-a-list",
        S.replace("{bundle}", "{tmp}/model"),
        "prior_level_2/config.json",
        then(copy_bundle(), write("model/prior_level_2/config.json", "[1, 2]")),
    ),
    Row(
        "config-json-missing-field",
        S.replace("{bundle}", "{tmp}/model"),
        "config.json",
        then(copy_bundle(), edit_config("model/prior_level_1", lambda d: {**d, "config": {"level": 1}})),
    ),
    Row(
        "config-of-another-kind",
        S.replace("{bundle}", "{tmp}/model"),
        "prior_level_1",
        then(copy_bundle(), edit_config("model/prior_level_1", lambda d: {**d, "kind": "vqvae"})),
    ),
    Row(
        "weights-not-safetensors",
        S.replace("{bundle}", "{tmp}/model"),
        "vqvae/model.safetensors",
        then(copy_bundle(), write("model/vqvae/model.safetensors", b"\0" * 4096)),
    ),
    Row(
        "prior-of-another-vqvae",
        S.replace("{bundle}", "{tmp}/model"),
        "prior_level_1",
        then(copy_bundle(), edit_config("model/prior_level_1", lambda d: {**d, "vqvae": {"id": "0" * 16}})),
    ),
    Row("lyrics-for-a-model-that-cannot-sing", S + " --lyrics {tmp}/w.txt", "--lyrics", write("w.txt", "la")),
    Row("lyrics-missing", L + " --lyrics {tmp}/none.txt", "none.txt", LYR),
    Row("lyrics-nothing-singable", L + " --lyrics {tmp}/w.txt", "w.txt", then(LYR, write("w.txt", "###***"))),
    Row("lrc-line-without-time", L + " --lyrics {tmp}/w.lrc", "w.lrc", then(LYR, write("w.lrc", "[00:00.00]la\nlu\n"))),
    # ---- new: outputs and resumed runs
    Row("out-under-a-file", S.replace("{tmp}/out", "{tmp}/f/out"), "f", write("f", "x")),
    Row("resume-another-run", S.replace("--seed 1", "--seed 2"), "seed", sampled),
    Row("encode-o-is-a-folder", "encode {tmp}/a.wav -o {tmp}/out", "out", then(tone_at("a.wav"), mkdir("out"))),
    Row("encode-level-7", "encode {tmp}/a.wav --levels 7 -o {tmp}/out/a.codes", "--levels", tone_at("a.wav")),
    Row(
        "encode-with-a-prior",
        "encode {tmp}/a.wav --model {bundle}/prior_level_2 -o {tmp}/out/a.codes",
        "prior_level_2",
        tone_at("a.wav"),
    ),
    Row("decode-level-5", "decode {tmp}/song.codes --level 5 -o {tmp}/out/x.wav", "level 5", codes_file),
    Row("decode-missing-codes", "decode {tmp}/none.codes --level 0 -o {tmp}/out/x.wav", "none.codes"),
    Row("decode-no-extension", "decode {tmp}/song.codes --level 2 -o {tmp}/out/x", "x", codes_file),
    Row(
        "decode-chunk-seconds-0",
        "decode {tmp}/song.codes --level 2 --chunk-seconds 0 -o {tmp}/out/x.wav",
        "--chunk-seconds",
        codes_file,
    ),
    # ---- new: training
    Row("train-empty-data-folder", "train vqvae --data {tmp}/data --out {tmp}/out", "data", mkdir("data")),
    Row(
        "train-bad-manifest",
        "train vqvae --data {tmp}/m.jsonl --out {tmp}/out",
        "m.jsonl",
        write("m.jsonl", "{oops\n"),
    ),
    Row(
        "train-binary-manifest",
        "train vqvae --data {tmp}/m.jsonl --out {tmp}/out",
        "m.jsonl",
        write("m.jsonl", b"\xff\xfe\x00"),
    ),
    Row("train-unknown-preset", "train vqvae --data {data} --preset giant --out {tmp}/out", "giant"),
    Row("train-steps-0", "train vqvae --data {data} --steps 0 --out {tmp}/out", "--steps"),
    Row("train-batch-size-negative", "train vqvae --data {data} --batch-size -2 --out {tmp}/out", "--batch-size"),
    Row("train-lr-nan", "train vqvae --data {data} --lr nan --out {tmp}/out", "--lr"),
    Row("train-over-a-run", "train vqvae --data {data} --out {tmp}/run", "--resume", run_folder),
    Row("train-resume-nothing", "train vqvae --data {data} --out {tmp}/out --resume", "train_state.pt"),
    Row(
        "train-prior-label-dropout-1.5",
        "train prior --level 2 --vqvae {vq} --data {data} --label-dropout 1.5 --out {tmp}/out",
        "--label-dropout",
    ),
    Row("train-prior-without-level", "train prior --vqvae {vq} --data {data} --out {tmp}/out", "--level"),
    Row(
        "train-prior-align-without-lyrics",
        "train prior --level 2 --vqvae {vq} --data {data} --align-weight 1 --out {tmp}/out",
        "has no lyrics",
    ),
    Row(
        "train-prior-align-with-checkpointing",
        "train prior --level 2 --preset tiny_top_lyrics --vqvae {vq} --data {data} --align-weight 1 "
        "--activation-checkpointing --out {tmp}/out",
        "--activation-checkpointing",
    ),
    Row(
        "train-prior-jitter-negative",
        "train prior --level 2 --vqvae {vq} --data {data} --lyric-jitter -1",
        "--lyric-jitter",
    ),
    Row(
        "train-prior-artist-balance-2",
        "train prior --level 2 --vqvae {vq} --data {data} --artist-balance 2 --out {tmp}/out",
        "--artist-balance",
    ),
    Row("plan-world-size-0", "train prior --preset prior_5b --plan --world-size 0", "--world-size"),
    Row("plan-unknown-preset", "train prior --preset giant --plan --world-size 8", "giant"),
    Row("train-prior-without-vqvae", "train prior --level 2 --data {data} --out {tmp}/out", "--vqvae"),
    Row("finetune-unknown-mode", "train prior --init-from default --finetune half --data {data}", "--finetune"),
    Row("finetune-lora-rank-0", "train prior --init-from default --lora-rank 0 --data {data}", "--lora-rank"),
    Row(
        "finetune-and-preset",
        "train prior --init-from default --preset tiny_top --data {data} --out {tmp}/out",
        "--init-from",
    ),
    Row(
        "finetune-from-nothing",
        "train prior --init-from {tmp}/nothing --vqvae {vq} --data {data} --out {tmp}/out",
        "--init-from",
    ),
    Row(
        "finetune-another-vqvae",
        "train prior --init-from default --vqvae {vq} --data {data} --out {tmp}/out",
        "another VQ-VAE than --vqvae",
    ),
    Row(
        "finetune-wrong-level",
        "train prior --init-from {bundle}/prior_level_2 --level 1 --vqvae {bundle}/vqvae --data {data} --out {tmp}/out",
        "--level 2",
    ),
    Row("adapter-missing", S + " --adapter {tmp}/nothing", "nothing"),
    Row("adapter-for-another-model", S + " --adapter {tmp}/ad", "--adapter", adapter_for_another_prior),
    # ---- new: import, info, compose, data
    Row("import-nothing", "import-openai --out {tmp}/out", "CHECKPOINT"),
    Row(
        "import-preset-and-hparams",
        "import-openai {tmp}/x.pth.tar --preset vqvae --hparams h.json --out {tmp}/out",
        "--hparams",
    ),
    Row("import-would-run-code", "import-openai {tmp}/evil.pth.tar --out {tmp}/out", "evil.pth.tar", evil),
    Row(
        "import-not-a-checkpoint",
        "import-openai {tmp}/x.pth.tar --out {tmp}/out",
        "x.pth.tar",
        write("x.pth.tar", "no"),
    ),
    Row(
        "import-malformed-hparams",
        "import-openai " + str(OPENAI / "upsampler_l1.pth.tar") + " --hparams {tmp}/h.json --out {tmp}/out",
        "h.json",
        write("h.json", "{levels: 3"),
    ),
    Row("info-missing-model", "info {tmp}/nothing", "nothing"),
    Row("compose-candidates-0", "compose --model {bundle} --seconds 2 --candidates 0 --out {tmp}/out", "--candidates"),
    Row(
        "compose-step-seconds-0",
        "compose --model {bundle} --seconds 2 --step-seconds 0 --out {tmp}/out",
        "--step-seconds",
    ),
    Row("compose-not-a-bundle", "compose --model {tmp}/m --seconds 2 --out {tmp}/out", "m", mkdir("m")),
    Row("data-per-composer-0", "data scores --per-composer 0 --out {tmp}/out", "--per-composer"),
]


@pytest.fixture(scope="module")
def env(bundle, lyrics_bundle, tmp_path_factory) -> dict:
    """Shared inputs: the bundles, a codes file, a finished 2-step VQ-VAE run, a sampled song."""
    root = tmp_path_factory.mktemp("bad_inputs_env")
    data = root / "data"
    data.mkdir()
    for i, f in enumerate((220, 330, 440)):
        t = np.arange(22050 * 2) / 22050
        sf.write(data / f"t{i}.wav", (0.3 * np.sin(2 * np.pi * f * t)).astype(np.float32), 22050)
    common = ["--data", str(data), "--preset", "tiny", "--batch-size", "2", "--sample-length", "4096"]
    assert main(["-q", "train", "vqvae", *common, "--steps", "2", "--out", str(root / "run")]) == 0
    assert main(["-q", "encode", str(data / "t0.wav"), "--model", str(bundle), "-o", str(root / "song.codes")]) == 0
    sample = ["-q", "sample", "--model", str(bundle), "--seed", "1", "--seconds", "1.2", "--lowest-level", "2"]
    assert main([*sample, "--out", str(root / "sampled")]) == 0
    vq = root / "vq"
    assert main(["-q", "import-openai", str(OPENAI / "vqvae.pth.tar"), "--out", str(vq)]) == 0
    return {
        "bundle": bundle,
        "lyrics_bundle": lyrics_bundle,
        "data": data,
        "run": root / "run",
        "codes": root / "song.codes",
        "sampled": root / "sampled",
        "vq": vq,
    }


def _snapshot(root: Path) -> dict[str, tuple]:
    return {
        str(p.relative_to(root)): (p.is_dir(), 0 if p.is_dir() else p.stat().st_size, p.stat().st_mtime_ns)
        for p in sorted(root.rglob("*"))
    }


def _argv(row: Row, tmp: Path, env: dict) -> list[str]:
    import shlex

    places = {"tmp": tmp, "bundle": env["bundle"], "data": env["data"], "vq": env["vq"]}
    return shlex.split(row.argv.format(**{k: str(v) for k, v in places.items()}))


def _in_process(argv: list[str], capsys) -> tuple[int, str]:
    capsys.readouterr()
    rc = main(argv)
    return rc, capsys.readouterr().err


def _subprocess(argv: list[str], how: dict, tmp: Path) -> tuple[int, str]:
    def prepare():
        if how.get("close_stdin"):
            os.close(0)

    cmd = [sys.executable, "-m", "openjukebox", *argv]
    envvars = {**os.environ, "OPENJUKEBOX_CACHE": str(tmp / ".." / "cache")}
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=120, preexec_fn=prepare, env=envvars)
    return proc.returncode, proc.stderr


@pytest.mark.parametrize("row", ROWS, ids=[r.id for r in ROWS])
def test_bad_input(row: Row, env, tmp_path_factory, capsys):
    tmp = tmp_path_factory.mktemp("row")
    try:
        if row.setup:
            row.setup(tmp, env)
        before = _snapshot(tmp)
        argv = ["-q", *_argv(row, tmp, env)]
        rc, err = _subprocess(argv, row.process, tmp) if row.process else _in_process(argv, capsys)
        after = _snapshot(tmp)
    finally:
        if row.id == "immutable-out":
            subprocess.run(["chattr", "-i", str(tmp / "out")], capture_output=True)
    lines = err.strip().splitlines()
    assert rc != 0, err
    assert "Traceback" not in err, err
    assert len(lines) == 1 and lines[0].startswith("openjukebox: error: "), err
    assert row.names in lines[0], lines[0]
    assert ACTION.search(lines[0].lower()), f"the message does not say what to do: {lines[0]}"
    assert after == before, "files changed: " + str(set(after.items()) ^ set(before.items()))


def test_the_table_has_enough_rows():
    assert len(ROWS) >= 60
    assert sum(r.src == "new" for r in ROWS) >= sum(r.src == "issue" for r in ROWS)
