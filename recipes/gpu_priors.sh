#!/usr/bin/env bash
# Runs ON a lent GPU machine, over the pack of recipes/gpu_priors_pack.py (carried as gpu_pack/):
# trains the top prior (base_top_lyrics) and the middle upsampler (base_upsampler_1) side by side
# on the one GPU, TOP_STEPS and UP1_STEPS (default 4250 and 5750: the shipped model's best
# validations are at steps 4,000 and 5,750; about 4.2 minutes on an H200), each keeping its best
# validation model (--keep-best), then fine-tunes the top prior's best model with the
# lyric-alignment loss for ALIGN_STEPS (default 575, 0.7 minutes), as the CPU recipe's align stage
# does. MINUTES and ALIGN_MINUTES (default 6 and 1.5) stop a stage
# early, as Ctrl-C would (a saved, whole model). The runs are kept in RUNS (default /tmp/gpu_runs);
# what comes back is one archive of their models (best/ and the alignment run's), logs, train.csv
# and val.csv, in parts of 15 MiB under $OUT (a lent machine returns few files, each under 16
# MiB; the optimizer state stays behind, so a GPU run is one stage). On this machine:
#   cat OUT/gpu_runs.tgz.* | tar xzf - -C WORK
#   dry run on a CPU: OUT=/tmp/out TOP_STEPS=20 UP1_STEPS=20 ALIGN_STEPS=10 BATCH=8 EVAL=5 bash recipes/gpu_priors.sh
# JOBS (default "top up1") names the runs side by side: up0 is the bottom upsampler (base_upsampler_0,
# UP0_STEPS, default until MINUTES run out), on a pack that has level 0's codes (see
# recipes/gpu_priors_pack.py: JOBS=up0 MINUTES=7.5 on a pack of levels 1 and 0). The alignment stage
# runs when top is among them.
set -euo pipefail
PY=${PY:-python3}
: "${OUT:?set OUT to the folder that comes back}"
PACK=${PACK:-gpu_pack}
JOBS=${JOBS:-top up1}
for job in $JOBS; do  # checked before any device time is spent
    case $job in top | up1 | up0) ;; *) echo "unknown job $job: give JOBS from top up1 up0" >&2; exit 2 ;; esac
done
[ -n "${JOBS// /}" ] || { echo "JOBS names no run: give JOBS from top up1 up0" >&2; exit 2; }
mkdir -p "$OUT"
OUT=$(cd "$OUT" && pwd)  # absolute: the archive is written from the runs' folder
if ! $PY -c "import soundfile, soxr, safetensors, tqdm" 2>/dev/null; then
    $PY -m pip install -q --no-index --find-links "$PACK/wheels" soundfile soxr safetensors tqdm
fi
export PYTHONPATH=$PWD/src OPENJUKEBOX_CACHE=/tmp/openjukebox_cache
$PY -c "import torch; print(torch.__version__, torch.cuda.get_device_name() if torch.cuda.is_available() else 'CPU')"
BF16=$($PY -c "import torch; print('--bf16' if torch.cuda.is_available() else '')")
BATCH=${BATCH:-64}
EVAL=${EVAL:-250}
secs() { $PY -c "print(int(float('$1') * 60))"; }
$PY recipes/gpu_priors.py "$PACK" --unpack-only  # once, before the runs that share the codes
started=$(date +%s)
train() {  # NAME ARGS...: one run, stopped as Ctrl-C would stop it (a saved, whole model)
    local name=$1
    shift
    timeout -s INT "$(secs "${MINUTES:-6}")" $PY recipes/gpu_priors.py "$PACK" --out "$RUNS/$name" $BF16 \
        --keep-best --batch-size "$BATCH" --eval-every "$EVAL" --save-every "$EVAL" --label-dropout 0.2 "$@" \
        > "$RUNS/$name.log" 2>&1 || true
}
RUNS=${RUNS:-/tmp/gpu_runs}
mkdir -p "$OUT" "$RUNS"
for job in $JOBS; do
    case $job in
        top) train top --level 2 --preset base_top_lyrics --steps "${TOP_STEPS:-4250}" & ;;
        up1) train up1 --level 1 --preset base_upsampler_1 --steps "${UP1_STEPS:-5750}" & ;;
        up0) train up0 --level 0 --preset base_upsampler_0 --steps "${UP0_STEPS:-1000000}" & ;;
    esac
done
wait
echo "$JOBS trained for $(($(date +%s) - started)) s"
keep=()
for job in $JOBS; do
    keep+=("$job/best" "$job/train.csv" "$job/val.csv" "$job/split.json" "$job.log")
done
if [[ " $JOBS " == *" top "* ]]; then
    timeout -s INT "$(secs "${ALIGN_MINUTES:-1.5}")" $PY recipes/gpu_priors.py "$PACK" --out "$RUNS/top_align" $BF16 \
        --init-from "$RUNS/top/best" --steps "${ALIGN_STEPS:-575}" --batch-size "$((BATCH / 2))" --lr 3e-4 \
        --eval-every "$EVAL" --save-every "$EVAL" --label-dropout 0.2 --align-weight 0.5 --lyric-jitter 2 \
        --timed-share 0.5 > "$RUNS/top_align.log" 2>&1 || true
    JOBS="$JOBS top_align"
    for name in config.json model.safetensors train.csv val.csv split.json; do keep+=("top_align/$name"); done
    keep+=(top_align.log)
fi
echo "all trained in $(($(date +%s) - started)) s"
cd "$RUNS"
for run in $JOBS; do  # a report: a run that failed or stopped early still lets the rest come back
    echo "== $run: $(tail -n 1 "$run/train.csv" 2>/dev/null | cut -c1-200)"
    cut -d, -f1-4 "$run/val.csv" 2>/dev/null | tail -n 4 || true
    tail -n 3 "$run.log" 2>/dev/null || true
done
there=()
for path in "${keep[@]}"; do
    if [ -e "$path" ]; then there+=("$path"); else echo "missing: $RUNS/$path"; fi
done
tar czf "$OUT/gpu_runs.tgz" "${there[@]}"
split -b 15M "$OUT/gpu_runs.tgz" "$OUT/gpu_runs.tgz."
rm "$OUT/gpu_runs.tgz"
ls -l "$OUT"
nvidia-smi --query-gpu=name,memory.used --format=csv 2>/dev/null || true
