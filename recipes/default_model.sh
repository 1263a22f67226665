#!/usr/bin/env bash
# How the model shipped inside the package (src/openjukebox/models/default) is built, end to end,
# offline on a CPU: data, VQ-VAE, top prior with artist/genre/lyrics, two upsamplers conditioned on
# artist and genre too. About 50 minutes on 2 cores. Then: python benchmarks/eval_model.py --runs WORK
#   bash recipes/default_model.sh WORK_DIR     (needs: pip install -e '.[data]' && pip install --no-deps tinysoundfont)
set -euo pipefail
WORK=${1:-runs/default_model}
OJ="python -m openjukebox -q"
mkdir -p "$WORK"
[ -f "$WORK/scores/manifest.jsonl" ] || $OJ data scores --out "$WORK/scores" --composers bach beethoven mozart haydn \
    --per-composer 4 --sets piano strings organ guitar --max-seconds 30
[ -f "$WORK/chorales/manifest.jsonl" ] || $OJ data chorales --out "$WORK/chorales" --limit 24 --max-seconds 45
python - "$WORK" <<'PY'
import json, sys
from pathlib import Path
work = Path(sys.argv[1])
lines = []
for part in ("scores", "chorales"):
    for line in (work / part / "manifest.jsonl").read_text().splitlines():
        entry = json.loads(line)
        entry["path"] = f"{part}/{entry['path']}"
        lines.append(json.dumps(entry, ensure_ascii=False))
(work / "all.jsonl").write_text("\n".join(lines) + "\n")
PY
export OPENJUKEBOX_CACHE="$WORK/cache"
[ -f "$WORK/vqvae/model.safetensors" ] || $OJ train vqvae --data "$WORK/all.jsonl" --preset tiny --steps 1500 --out "$WORK/vqvae"
# mini_top_lyrics: W 128, 3 s of context, labels at every position, label dropout 0.2 (guidance-ready)
[ -f "$WORK/top/model.safetensors" ] || $OJ train prior --level 2 --vqvae "$WORK/vqvae" --data "$WORK/all.jsonl" \
    --preset mini_top_lyrics --steps 4000 --eval-every 500 --out "$WORK/top"
[ -f "$WORK/up1/model.safetensors" ] || $OJ train prior --level 1 --vqvae "$WORK/vqvae" --data "$WORK/all.jsonl" \
    --preset mini_upsampler_1 --steps 1200 --eval-every 400 --out "$WORK/up1"
[ -f "$WORK/up0/model.safetensors" ] || $OJ train prior --level 0 --vqvae "$WORK/vqvae" --data "$WORK/all.jsonl" \
    --preset mini_upsampler_0 --steps 1200 --eval-every 400 --out "$WORK/up0"
BUNDLE="$WORK/bundle"
mkdir -p "$BUNDLE"
for pair in vqvae:vqvae top:prior_level_2 up1:prior_level_1 up0:prior_level_0; do
    mkdir -p "$BUNDLE/${pair#*:}"
    cp "$WORK/${pair%%:*}/config.json" "$WORK/${pair%%:*}/model.safetensors" "$BUNDLE/${pair#*:}/"
done
echo "bundle ready: $BUNDLE (copy it to src/openjukebox/models/default)"
