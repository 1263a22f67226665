import subprocess
import sys

import pytest
import torch

from openjukebox.codes import CodesFile
from openjukebox.compose import AGAIN, STOP, compose


def test_rounds_extend_the_chosen_candidate_and_the_result_is_upsampled(bundle, tmp_path):
    answers = iter([1, AGAIN, 0, 2])
    seen = []

    def choose(files):
        seen.append(files)
        return next(answers)

    meta = compose(bundle, tmp_path, 2.0, 0.7, choose, artist="Bach", candidates=3, seed=1)
    assert [len(f) for f in seen] == [3, 3, 3, 3]
    rounds = [CodesFile.load(tmp_path / f"round_{k:02d}" / "codes.codes").codes[2] for k in range(4)]
    kept_first = rounds[0][1]
    assert torch.equal(rounds[2][0, : kept_first.shape[0]], kept_first)  # round 2 continued candidate 1
    assert torch.equal(rounds[2][1, : kept_first.shape[0]], kept_first)
    final = CodesFile.load(tmp_path / "final" / "codes.codes")
    assert torch.equal(final.codes[2][0], rounds[3][2])  # the last pick, upsampled
    assert sorted(final.codes) == [0, 1, 2] and meta["mode"] == "upsample"
    assert final.n_samples >= 2.0 * 22050
    labels = final.extra["sampling"]["labels"]["2"][0]
    assert labels[0] == final.n_samples  # every round announced the finished length


def test_stopping_early_upsamples_what_was_kept_and_nothing_kept_is_an_error(bundle, tmp_path):
    answers = iter([0, STOP])
    compose(bundle, tmp_path / "a", 3.0, 1.0, lambda files: next(answers), candidates=2)
    final = CodesFile.load(tmp_path / "a" / "final" / "codes.codes")
    assert 22050 <= final.n_samples < 2 * 22050  # one round of 1 s
    with pytest.raises(ValueError, match="no candidate was kept"):
        compose(bundle, tmp_path / "b", 3.0, 1.0, lambda files: STOP, candidates=2)


def test_compose_command_asks_in_the_terminal(bundle, tmp_path):
    cmd = [
        sys.executable,
        "-m",
        "openjukebox",
        "-q",
        "compose",
        "--model",
        str(bundle),
        "--out",
        str(tmp_path),
        "--seconds",
        "1.5",
        "--step-seconds",
        "1.5",
        "--candidates",
        "2",
    ]
    done = subprocess.run(cmd, input="7\n1\n", capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert "please answer 0-1, r or q" in done.stdout and "level 0:" in done.stdout
    assert (tmp_path / "final" / "level_0" / "sample_0.wav").exists()
