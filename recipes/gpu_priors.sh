#!/usr/bin/env bash
# Runs ON a lent GPU machine, over the pack of recipes/gpu_priors_pack.py (carried as gpu_pack/):
# trains the top prior (base_top_lyrics) and the middle upsampler (base_upsampler_1) side by side
# on the one GPU for MINUTES (default 5.5), each keeping its best validation model (--keep-best),
# then fine-tunes the top prior's best model with the lyric-alignment loss for ALIGN_MINUTES
# (default 1.5), as the CPU recipe's align stage does. What comes back under $OUT: each run's
# exported model, best/ model, train.csv and val.csv (not the optimizer state, over the 16 MiB a
# returned file may have; a GPU run is one stage).
#   dry run on a CPU: OUT=/tmp/out MINUTES=1 ALIGN_MINUTES=0.5 BATCH=8 EVAL=5 bash recipes/gpu_priors.sh
set -euo pipefail
PY=${PY:-python3}
: "${OUT:?set OUT to the folder that comes back}"
PACK=${PACK:-gpu_pack}
if ! $PY -c "import soundfile, soxr, safetensors, tqdm" 2>/dev/null; then
    $PY -m pip install -q --no-index --find-links "$PACK/wheels" soundfile soxr safetensors tqdm
fi
export PYTHONPATH=$PWD/src OPENJUKEBOX_CACHE=/tmp/openjukebox_cache
$PY -c "import torch; print('torch', torch.__version__, torch.cuda.get_device_name() if torch.cuda.is_available() else 'CPU')"
BF16=$($PY -c "import torch; print('--bf16' if torch.cuda.is_available() else '')")
BATCH=${BATCH:-64}
EVAL=${EVAL:-250}
secs() { $PY -c "print(int(float('$1') * 60))"; }
$PY recipes/gpu_priors.py "$PACK" --out /tmp/none --level 2 --steps 1 --preset base_top_lyrics > /dev/null 2>&1 || true  # unpack once
rm -rf /tmp/none
started=$(date +%s)
train() {  # NAME ARGS...: one run, stopped as Ctrl-C would stop it (a saved, whole model)
    local name=$1
    shift
    timeout -s INT "$(secs "${MINUTES:-5.5}")" $PY recipes/gpu_priors.py "$PACK" --out "$OUT/$name" $BF16 --keep-best \
        --batch-size "$BATCH" --eval-every "$EVAL" --save-every "$EVAL" --label-dropout 0.2 "$@" > "$OUT/$name.log" 2>&1 || true
}
mkdir -p "$OUT"
train top --level 2 --preset base_top_lyrics &
train up1 --level 1 --preset base_upsampler_1 &
wait
echo "top and up1 trained for $(($(date +%s) - started)) s"
timeout -s INT "$(secs "${ALIGN_MINUTES:-1.5}")" $PY recipes/gpu_priors.py "$PACK" --out "$OUT/top_align" $BF16 \
    --init-from "$OUT/top/best" --batch-size "$((BATCH / 2))" --lr 3e-4 --eval-every "$EVAL" --save-every "$EVAL" \
    --label-dropout 0.2 --align-weight 0.5 --lyric-jitter 2 --timed-share 0.5 > "$OUT/top_align.log" 2>&1 || true
echo "all trained in $(($(date +%s) - started)) s"
for run in top up1 top_align; do
    rm -f "$OUT/$run/train_state.pt"
    echo "== $run: $(tail -n 1 "$OUT/$run/train.csv" | cut -c1-200)"
    cut -d, -f1-4 "$OUT/$run/val.csv" | tail -n 4
    tail -n 3 "$OUT/$run.log"
done
nvidia-smi --query-gpu=name,memory.used --format=csv 2>/dev/null || true
