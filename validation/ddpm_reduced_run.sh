#!/bin/bash
# Reduced-but-real DDPM memorization run of issue 8 on one GPU, App. J.1's U-Net unchanged:
# 2 pairs (Bag 8, Trouser 1) x 2 Sneaker fractions (0.25, 0.75), SIZE training images (default 32,
# paper 8000) at batch BATCH (default 32: full batch), trained for TIME_LIMIT seconds (default 220;
# STEPS, default 100000, only bounds it), checkpoints at CKPT_STEPS plus the last step, NS samples per
# checkpoint (default 64, paper 500), the pair classifier trained on CLF_SIZE images of the pair
# (default 4000, balanced, in each run's units; the run's own 32 images are too few). Every reduction is
# recorded in each run's run.json (meta.reduced) and memorization.json ("reduced").
#
# Why so small: memorization time grows linearly with the training-set size (Bonnaire et al.), and the
# device budget of a session (15 minutes, start included) leaves about 4 minutes of training for the
# four runs together.
#
# Phase 1 trains the 4 runs concurrently, phase 2 evaluates them (pair classifier, samples at every
# checkpoint, memorization), then fig5 and fig6 are drawn. Each phase has a hard timeout. fig6's RF
# gaps (CPU) are computed into the disk cache while the GPU trains (without FIGEXTRA).
#
# Inputs, in the folder named by CARRY (default .devcarry, ignored by git; bring it with the device
# tool's `carry`):
#   CARRY/diffusers-0.42.1-py3-none-any.whl   (pip download --no-deps diffusers==0.42.1; the GPU
#                                               image has huggingface_hub >= 1.32, safetensors, regex)
#   CARRY/fashion-mnist.npz                   (x_train, y_train, x_test, y_test: np.savez_compressed of
#                                               diffmix.gpu.load_fashion_mnist(); ~31 MB)
# EXTRA, MEMEXTRA, FIGEXTRA: extra options of train, memorization and fig6 (a CPU dry run:
# LOCAL=1 EXTRA="--config tiny --device cpu" TIME_LIMIT=5 CKPT_STEPS=2,4 NS=8 CLF_SIZE=200
# MEMEXTRA="--classifier-epochs 1" FIGEXTRA="--d 2 --seeds 1").
# Outputs under $OUT (or OUT=...): mem_p<K>_f<F>.json, runs/p<K>_f<F>/ (run.json, memorization.json and
# .csv, written after every checkpoint, and the samples), fig5/, fig6/ (PNG, PDF, JSON, provenance), log.txt.
#
# TAR_OUT=1 packs everything under $OUT into $OUT/results.tgz at the end (the device tool brings back
# only a few files per call):
#
#   run(command="TAR_OUT=1 bash validation/ddpm_reduced_run.sh", carry=[".devcarry"], timeout_s=600)
set -u
export PYTHONUNBUFFERED=1 HF_HUB_OFFLINE=1
PY=${PY:-python3}
CARRY=${CARRY:-.devcarry}
OUT=${OUT:-out/ddpm-reduced}
RUNS=${RUNS:-out/ddpm-reduced-runs}          # checkpoints (~100 MB each): not under $OUT
DATA=${DATA:-$CARRY/fashion-mnist.npz}
mkdir -p "$RUNS" "$OUT"
if [ -z "${LOCAL:-}" ]; then
  $PY -m pip install -q --no-index --no-deps --no-compile --target out/ddpm-site "$CARRY"/*.whl || exit 1
  $PY -m pip install -q --no-deps --no-build-isolation --no-index -e . > /dev/null || exit 1
  export PYTHONPATH="$PWD/out/ddpm-site"
fi
T0=$(date +%s); stamp() { echo "[t=$(( $(date +%s) - T0 ))s] $*" | tee -a "$OUT/log.txt"; }
stamp start
for K in ${PARTNERS:-8 1}; do for F in ${FRACTIONS:-0.25 0.75}; do
  timeout "${TRAIN_S:-300}" $PY -m diffmix ddpm train --partner "$K" --sneaker-fraction "$F" \
    --size "${SIZE:-32}" --batch-size "${BATCH:-32}" --steps "${STEPS:-100000}" \
    --checkpoint-steps "${CKPT_STEPS:-400,1000,2000,3000}" --time-limit "${TIME_LIMIT:-220}" --data "$DATA" \
    --no-progress --out "$RUNS/p${K}_f${F}" ${EXTRA:-} > "$RUNS/train_p${K}_f${F}.log" 2>&1 &
done; done
# fig6's RF gaps (CPU only, cached on disk) computed while the GPU trains
[ -z "${FIGEXTRA:-}" ] && $PY - "$DATA" ${PARTNERS:-8 1} <<'PYEOF' > "$RUNS/rf_warm.log" 2>&1 &
import os, sys
from diffmix.gpu import class_statistics, load_fashion_mnist
from diffmix.validation._ddpm import rf_pair_gaps
data = load_fashion_mnist(sys.argv[1])
stats = class_statistics(data.x_train, data.y_train)
pairs = [(int(k), float(f)) for k in sys.argv[2:] for f in os.environ.get("FRACTIONS", "0.25 0.75").split()]
for gap in rf_pair_gaps(stats, pairs):
    print(gap)
PYEOF
wait
stamp "training done"
for f in "$RUNS"/p*/run.json; do echo "== $f"; grep -E '"(n_steps|status|images_per_s_last_call|wall_s)"' "$f"; done >> "$OUT/log.txt"
for K in ${PARTNERS:-8 1}; do for F in ${FRACTIONS:-0.25 0.75}; do
  timeout "${MEM_S:-240}" $PY -m diffmix ddpm memorization --run "$RUNS/p${K}_f${F}" --data "$DATA" \
    --n "${NS:-64}" --sample-batch "${NS:-64}" --classifier-size "${CLF_SIZE:-4000}" --no-progress --json \
    ${MEMEXTRA:-} > "$OUT/mem_p${K}_f${F}.json" 2> "$RUNS/mem_p${K}_f${F}.log" &
done; done; wait
stamp "memorization done"
for d in "$RUNS"/p*; do
  mkdir -p "$OUT/runs/${d##*/}"
  cp -r "$d"/run.json "$d"/memorization.* "$d"/samples "$OUT/runs/${d##*/}/" 2>/dev/null
done
$PY -m diffmix figure fig5 --runs "$RUNS"/p* --data "$DATA" --out "$OUT/fig5" >> "$OUT/log.txt" 2>&1
$PY -m diffmix figure fig6 --runs "$RUNS"/p* --data "$DATA" --out "$OUT/fig6" ${FIGEXTRA:-} >> "$OUT/log.txt" 2>&1
stamp "figures done"
for f in "$RUNS"/*.log; do echo "== $f"; tail -n 12 "$f"; done >> "$OUT/log.txt"
if [ -n "${TAR_OUT:-}" ]; then
  (cd "$OUT" && tar czf results.tgz --exclude=results.tgz . && find . -mindepth 1 ! -name results.tgz -delete)
fi
