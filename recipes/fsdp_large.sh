#!/usr/bin/env bash
# A few hundred FSDP steps of a large prior in bf16 with activation checkpointing, on every GPU of
# one machine: the check that sharded training runs where it is meant to run.
#   bash recipes/fsdp_large.sh WORK_DIR [PRESET] [STEPS]      (default: prior_5b, 300 steps)
# It prints the memory plan first, trains on rendered scores (the codes of the shipped VQ-VAE, so the
# preset is fitted to its 512 codes at 22.05 kHz), then resumes the sharded checkpoint for 10 more
# steps. Needs: pip install -e '.[data]' && pip install --no-deps tinysoundfont.
# Dry run on CPU (2 gloo processes, a tiny preset):  NPROC=2 bash recipes/fsdp_large.sh /tmp/x tiny_top 4
set -euo pipefail
WORK=${1:-runs/fsdp_large}
PRESET=${2:-prior_5b}
STEPS=${3:-300}
NPROC=${NPROC:-$(nvidia-smi -L 2>/dev/null | wc -l)}
[ "$NPROC" -ge 1 ] || NPROC=1
BF16=$(python -c "import torch; print('--bf16' if torch.cuda.is_available() else '')")
VQ=$(python -c "from openjukebox.models import default_model; print(default_model() / 'vqvae')")
export OPENJUKEBOX_CACHE="$WORK/cache"
mkdir -p "$WORK"
python -m openjukebox train prior --preset "$PRESET" --plan --world-size "$NPROC" | tee "$WORK/plan.txt"
[ -f "$WORK/scores/manifest.jsonl" ] || python -m openjukebox -q data scores --out "$WORK/scores" \
    --composers bach beethoven mozart haydn --per-composer 4 --sets piano strings organ guitar --max-seconds 60
RUN=(torchrun --standalone --nproc_per_node "$NPROC" -m openjukebox -q train prior --level 2 --vqvae "$VQ"
     --data "$WORK/scores/manifest.jsonl" --out "$WORK/run" --eval-every 100 --save-every 100)
[ -f "$WORK/run/train_state.pt" ] || "${RUN[@]}" --preset "$PRESET" --steps "$STEPS" --batch-size "$NPROC" \
    --strategy fsdp --activation-checkpointing $BF16
"${RUN[@]}" --resume --steps $((STEPS + 10))
python - "$WORK/run" <<'PY'
import sys
from openjukebox.training.metrics import read_csv
rows = read_csv(f"{sys.argv[1]}/train.csv")
print(f"steps {rows[0]['step']:.0f}..{rows[-1]['step']:.0f}: loss {rows[0]['loss']:.3f} -> {rows[-1]['loss']:.3f}, "
      f"{rows[-1]['tokens_per_s']:.0f} tokens/s")
PY
