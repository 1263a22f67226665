"""Peak memory and time of importing an original checkpoint of an official shape.

    python benchmarks/bench_import.py [--layout upsampler_level_1] [--work /tmp/bench_import]

Writes a checkpoint in the original format with random weights of the layout's exact keys,
shapes and dtypes (tests/convert/original_format.py), then imports it in a fresh process with
``openjukebox import-openai --preset`` and prints wall time and the process's peak resident
memory next to the checkpoint's size (an import that held the model twice would peak at twice it).
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.convert.original_format import random_original_checkpoint  # noqa: E402


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--layout", default="upsampler_level_1", help="a file of tests/fixtures/openai/*_keys.json")
    p.add_argument("--work", default="/tmp/bench_import")
    p.add_argument("--legacy", action="store_true", help="write the checkpoint in torch's pre-1.6 format")
    args = p.parse_args()
    work = Path(args.work)
    work.mkdir(parents=True, exist_ok=True)
    ckpt = work / f"{args.layout}{'_legacy' if args.legacy else ''}.pth.tar"
    layout = ROOT / "tests" / "fixtures" / "openai" / f"{args.layout}_keys.json"
    if not ckpt.exists():
        started = time.time()
        hps = {"merged_decoder": not args.layout.startswith("upsampler")}
        n = random_original_checkpoint(layout, ckpt, hps, legacy=args.legacy)
        print(f"wrote {ckpt} ({n:,} parameters) in {time.time() - started:.0f} s")
    size = ckpt.stat().st_size
    cmd = [sys.executable, "-m", "openjukebox", "-q", "import-openai", str(ckpt), "--preset", args.layout]
    started = time.time()
    proc = subprocess.Popen([*cmd, "--out", str(work / "imported")])
    peak_anon = 0  # anonymous memory: what the import itself holds (mapped file pages are reclaimable)
    while proc.poll() is None:
        try:
            status = Path(f"/proc/{proc.pid}/status").read_text()
            peak_anon = max(peak_anon, int(status.split("RssAnon:")[1].split()[0]) * 1024)
        except (OSError, IndexError):
            pass
        time.sleep(0.1)
    if proc.returncode:
        raise SystemExit(f"import failed with exit code {proc.returncode}")
    elapsed = time.time() - started
    peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss * 1024
    out_size = (work / "imported" / "model.safetensors").stat().st_size
    print(
        json.dumps(
            {
                "layout": args.layout,
                "checkpoint_gb": round(size / 1e9, 2),
                "output_gb": round(out_size / 1e9, 2),
                "import_s": round(elapsed, 1),
                "format": "legacy (torch < 1.6, as the release)" if args.legacy else "zip",
                "peak_rss_gb": round(peak / 1e9, 2),
                "peak_anon_gb": round(peak_anon / 1e9, 2),
                "peak_over_checkpoint": round(peak / size, 2),
            }
        )
    )


if __name__ == "__main__":
    main()
