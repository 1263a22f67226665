"""The co-composer loop of the official notebook, as a function and a command.

Round after round, several candidate continuations of the top level are sampled and decoded as
quick previews; the user keeps one, asks for new candidates, or stops. The chosen song is then
upsampled through every level. Each round is an ordinary ``sample`` run in its own folder, so
nothing is lost when the loop is interrupted.
"""

from __future__ import annotations

import os
import secrets
import sys
from collections.abc import Callable
from pathlib import Path

from .api import sample
from .codes import CodesFile
from .errors import UserError
from .sampling.bundle import Bundle

AGAIN, STOP = "again", "stop"


def compose(
    model_dir: str | os.PathLike,
    out_dir: str | os.PathLike,
    seconds: float,
    step_seconds: float,
    choose: Callable[[list[str]], int | str],
    artist: str | None = None,
    genre: str | None = None,
    candidates: int = 3,
    seed: int | None = None,
    device: str | None = None,
    progress: bool = False,
    **sampling,
) -> dict:
    """Build a song of ``seconds`` in steps of ``step_seconds``, then upsample it; returns its metadata.

    ``choose(preview_wavs)`` returns the index of the candidate to keep, ``AGAIN`` for new
    candidates, or ``STOP`` to end the song where it is. The result is in ``out_dir/final``.
    """
    out = Path(out_dir)
    top = Bundle(model_dir, sampling.get("adapter")).top  # a wrong adapter is refused before any round
    if seed is None:  # the first round's seed when resuming, else a new one (printed by sample)
        first = out / "round_00" / "codes.codes"
        seed = CodesFile.load(first).extra["sampling"]["seed"] if first.is_file() else secrets.randbelow(2**31)
        print(f"seed {seed} (to compose from the same candidates again, pass --seed {seed})", file=sys.stderr)
    chosen, length, attempt = None, 0.0, 0
    while length < seconds:
        target = min(seconds, length + step_seconds)
        folder = out / f"round_{attempt:02d}"
        meta = sample(
            model_dir,
            folder,
            target,
            artist,
            genre,
            candidates,
            lowest=top,
            seed=seed + attempt,
            device=device,
            progress=progress,
            codes_file=chosen,
            label_seconds=seconds,
            **sampling,
        )
        attempt += 1
        pick = choose(meta["files"][top])
        if pick == STOP:
            break
        if pick == AGAIN:
            continue
        if not 0 <= int(pick) < candidates:
            raise ValueError(f"choose returned {pick!r}: pick a candidate 0..{candidates - 1}, {AGAIN!r} or {STOP!r}")
        chosen = keep_candidate(CodesFile.load(folder / "codes.codes"), int(pick), top, out / "chosen.codes")
        length = target
    if chosen is None:
        raise ValueError("no candidate was kept: nothing to upsample")
    return sample(
        model_dir,
        out / "final",
        None,
        artist,
        genre,
        1,
        seed=seed,
        device=device,
        progress=progress,
        codes_file=chosen,
        label_seconds=seconds,
        **sampling,
    )


def keep_candidate(codes: CodesFile, pick: int, top: int, path: str | os.PathLike) -> Path:
    """Write the top-level codes of candidate ``pick`` alone to ``path``: the song to extend or
    upsample next (``sample``'s ``codes_file``). Returns the path."""
    codes.codes = {top: codes.codes[top][pick : pick + 1]}
    return Path(codes.save(path))


def ask_in_terminal(files: list[str]) -> int | str:
    """Print the candidates and read a choice: a number, r (new candidates) or q (finish here)."""
    for i, f in enumerate(files):
        print(f"  [{i}] {f}")
    while True:
        try:
            answer = input(f"keep which (0-{len(files) - 1}), r for new candidates, q to finish and upsample? ")
        except EOFError:
            raise UserError(
                "compose asks which candidate to keep, but its input ended; run it in a terminal, or pipe in "
                "answers (a number, r or q per round); the rounds so far are kept"
            ) from None
        answer = answer.strip()
        if answer in ("r", "q"):
            return AGAIN if answer == "r" else STOP
        if answer.isdigit() and int(answer) < len(files):
            return int(answer)
        print(f"  please answer 0-{len(files) - 1}, r or q")
