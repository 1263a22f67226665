"""The spectral audio measures (noise-likeness, harmonic share) of the clips eval_model.py kept.

    python benchmarks/kept_clips_audio.py DIR [DIR ...] [--guidance default] [--level 0] [--out FILE]

DIR is an ``eval_model.py --clips-dir``: the clips of every request sampled with ``--guidance``
are measured at ``--level``, as ``openjukebox.audio.measures`` measures them (without the pitch
track, the slow part of ``mean_measures``).
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
from generated_clips import kept_files  # beside this script
from reports import emit  # beside this script

from openjukebox.audio.io import load_audio
from openjukebox.audio.measures import harmonic_share, magnitude, noise_likeness

SR = 22050


def spectral_measures(files: list[Path]) -> dict:
    """Mean noise-likeness and harmonic share of ``files`` (NaN-skipping), and their number."""
    if not files:
        raise SystemExit("no kept clips there: check the folder, --guidance and --level")
    rows = [(noise_likeness(m, SR), harmonic_share(m)) for m in (magnitude(load_audio(f, SR)) for f in files)]
    nl, hs = np.array(rows, dtype=float).T
    return {"clips": len(rows), "noise_likeness": round(float(np.nanmean(nl)), 4),
            "harmonic_share": round(float(np.nanmean(hs)), 4)}  # fmt: skip


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("clips_dirs", type=Path, nargs="+", help="eval_model.py --clips-dir folders")
    p.add_argument("--guidance", default="default", help="which kept clips: the folders guidance_NAME (default)")
    p.add_argument("--level", type=int, default=0, help="the level the clips were decoded from (default 0)")
    p.add_argument("--out", type=Path, help="write the report here too (JSON)")
    args = p.parse_args()
    report = {str(d): spectral_measures(kept_files(d, args.guidance, args.level)) for d in args.clips_dirs}
    emit(report, args.out)


if __name__ == "__main__":
    main()
