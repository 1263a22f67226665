"""Pack the training data of recipes/music_model.sh small enough to carry to a lent GPU machine.

    python recipes/gpu_codec_pack.py WORK [--out gpu_pack] [--budget-mb 40]

The device tool carries at most 64 MiB of working tree and nothing can be fetched there, so the
pack holds: excerpts of every file of WORK/all.jsonl as 22.05 kHz mono Ogg Vorbis (every real
recording; one instrument set per rendered piece, in turn; every sung chorale), a manifest with the
same labels and ``piece`` names (so the split is the same as on the CPU), and the wheels of the
audio libraries the device image lacks. Then, with the pack's folder ignored by git
(``echo /gpu_pack >> .git/info/exclude``), one device call trains the codec and brings it back:

    run(carry=["gpu_pack"], timeout_s=540, command="bash recipes/gpu_codec.sh")
"""

from __future__ import annotations

import argparse
import io
import json
import subprocess
import sys
from pathlib import Path

import soundfile as sf

from openjukebox.audio.dataset import read_sources
from openjukebox.audio.io import load_audio

SR = 22050
QUALITY = 0.5  # Vorbis compression level: about 6 KB/s of 22.05 kHz mono music
WHEELS = ["soundfile", "soxr", "cffi", "pycparser"]


def excerpt(audio, seconds: float):
    """The middle ``seconds`` of a (T,) clip (all of it when shorter)."""
    n = int(seconds * SR)
    start = max(0, (len(audio) - n) // 2)
    return audio[start : start + n]


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("work", type=Path)
    p.add_argument("--out", type=Path, default=Path("gpu_pack"))
    p.add_argument("--budget-mb", type=float, default=40.0)
    p.add_argument("--real-seconds", type=float, default=45.0, help="excerpt of each real recording")
    args = p.parse_args()
    entries = read_sources(args.work / "all.jsonl")  # absolute paths, and each file's piece as training names it
    rendered = sorted({e["piece"] for e in entries if e.get("source") == "music21"})
    sets = sorted({e["genre"] for e in entries if e.get("source") == "music21"})
    keep_set = {piece: sets[i % len(sets)] for i, piece in enumerate(rendered)}
    (args.out / "audio").mkdir(parents=True, exist_ok=True)
    lines, total = [], 0
    for i, e in enumerate(entries):
        if e.get("source") == "music21" and e["genre"] != keep_set[e["piece"]]:
            continue
        audio = load_audio(e["path"], SR)
        if "music21" not in str(e.get("source", "")):
            audio = excerpt(audio, args.real_seconds)
        buf = io.BytesIO()
        sf.write(buf, audio, SR, format="OGG", subtype="VORBIS", compression_level=QUALITY)
        name = f"audio/{i:04d}.ogg"
        (args.out / name).write_bytes(buf.getvalue())
        total += len(buf.getvalue())
        entry = {k: v for k, v in e.items() if k != "lyrics"} | {"path": name}
        lines.append(json.dumps(entry, ensure_ascii=False))
        if total > args.budget_mb * 2**20:
            sys.exit(f"over the {args.budget_mb} MB budget at {name}; lower --real-seconds")
    (args.out / "all.jsonl").write_text("\n".join(lines) + "\n")
    wheels = args.out / "wheels"
    subprocess.run(
        [sys.executable, "-m", "pip", "download", "-q", "--only-binary=:all:", "--no-deps", "--python-version", "3.12"]
        + ["--platform", "manylinux2014_x86_64", "--platform", "manylinux_2_28_x86_64", "-d", str(wheels), *WHEELS],
        check=True,
    )
    size = sum(f.stat().st_size for f in args.out.rglob("*") if f.is_file())
    print(f"{len(lines)} files, {total / 2**20:.1f} MB of audio, {size / 2**20:.1f} MB in {args.out}")


if __name__ == "__main__":
    main()
