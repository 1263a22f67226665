#!/usr/bin/env bash
# Runs ON a lent GPU machine, over the pack of recipes/gpu_codec_pack.py (carried as gpu_pack/):
# trains the `music` VQ-VAE in bf16 for MINUTES (default 7), stops it as Ctrl-C would (a saved,
# whole model), and leaves the model, its logs and its spectral convergence on the held-out files
# under $OUT/vqvae. The model comes back; the optimizer state (over the 16 MiB a file may have on
# the way back) does not, so a GPU run is one stage: a CPU stage can fine-tune from its weights.
#   dry run on a CPU: OUT=/tmp/out MINUTES=1 PRESET=tiny bash recipes/gpu_codec.sh
set -euo pipefail
PY=${PY:-python3}
: "${OUT:?set OUT to the folder that comes back}"
if ! $PY -c "import soundfile, soxr" 2>/dev/null; then
    $PY -m pip install -q --no-index --no-deps gpu_pack/wheels/*.whl
fi
export PYTHONPATH=$PWD/src OPENJUKEBOX_CACHE=/tmp/openjukebox_cache
$PY -c "import torch; print('torch', torch.__version__, torch.cuda.get_device_name() if torch.cuda.is_available() else 'CPU')"
BF16=$($PY -c "import torch; print('--bf16' if torch.cuda.is_available() else '')")
started=$(date +%s)
timeout -s INT $((${MINUTES:-7} * 60)) $PY -m openjukebox -q train vqvae --data gpu_pack/all.jsonl \
    --preset "${PRESET:-music}" --steps 1000000 $BF16 --out "$OUT/vqvae" --save-every 500 --eval-every 500 || true
echo "trained for $(($(date +%s) - started)) s; last rows of train.csv and val.csv:"
tail -n 2 "$OUT/vqvae/train.csv" "$OUT/vqvae/val.csv"
rm -f "$OUT/vqvae/train_state.pt"
$PY benchmarks/eval_codec.py --model "$OUT/vqvae" --seconds 20 | tee "$OUT/vqvae/eval_codec.txt"
