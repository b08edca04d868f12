#!/bin/bash
# Reduced-but-real DDPM memorization run of issue 8 on one GPU, App. J.1's U-Net unchanged:
# 2 pairs (Bag 8, Trouser 1) x 2 Sneaker fractions (0.25, 0.75), SIZE training images (default 256,
# paper 8000), STEPS steps (default 4000, paper ~1e6), CKPTS log-spaced checkpoints (default 8, paper 32),
# NS samples per checkpoint (default 100, paper 500). Every reduction is recorded in each run's run.json
# (meta.reduced) and memorization.json ("reduced").
#
# Phase 1 trains the 4 runs concurrently (the step is host-bound: one process leaves the GPU mostly
# idle), phase 2 evaluates them (pair classifier, samples at every checkpoint, memorization), then
# fig5 and fig6 are drawn. Each phase has a hard timeout; a timed-out training keeps its checkpoints
# (atomic writes) and phase 2 evaluates what exists.
#
# Inputs, in the folder named by CARRY (default .devcarry, ignored by git; bring it with the device
# tool's `carry`):
#   CARRY/diffusers-0.42.1-py3-none-any.whl   (pip download --no-deps diffusers==0.42.1; the GPU
#                                               image has huggingface_hub >= 1.32, safetensors, regex)
#   CARRY/fashion-mnist.npz                   (x_train, y_train, x_test, y_test: np.savez_compressed of
#                                               diffmix.gpu.load_fashion_mnist(); ~31 MB)
# EXTRA, MEMEXTRA, FIGEXTRA: extra options of train, memorization and the two figures (a CPU dry
# run: LOCAL=1 EXTRA="--config tiny --device cpu" SIZE=32 STEPS=4 CKPTS=2 NS=8
# MEMEXTRA="--classifier-epochs 1" FIGEXTRA="--d 2 --seeds 1", fig5 ignores FIGEXTRA).
# Outputs under $OUT (or OUT=...): mem_p<K>_f<F>.json, fig5/, fig6/ (PNG, PDF, JSON, provenance), log.txt.
#
#   run(command="bash validation/ddpm_reduced_run.sh", carry=[".devcarry"], timeout_s=780)
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
ddpm() { $PY -m diffmix ddpm "$@"; }
stamp start
for K in ${PARTNERS:-8 1}; do for F in ${FRACTIONS:-0.25 0.75}; do
  timeout "${TRAIN_S:-420}" $PY -m diffmix ddpm train --partner "$K" --sneaker-fraction "$F" \
    --size "${SIZE:-256}" --steps "${STEPS:-4000}" --checkpoints "${CKPTS:-8}" --data "$DATA" \
    --no-progress --out "$RUNS/p${K}_f${F}" ${EXTRA:-} > "$RUNS/train_p${K}_f${F}.log" 2>&1 &
done; done; wait
stamp "training done"
for K in ${PARTNERS:-8 1}; do for F in ${FRACTIONS:-0.25 0.75}; do
  timeout "${MEM_S:-240}" $PY -m diffmix ddpm memorization --run "$RUNS/p${K}_f${F}" --data "$DATA" \
    --n "${NS:-100}" --sample-batch "${NS:-100}" --no-progress --json ${MEMEXTRA:-} \
    > "$OUT/mem_p${K}_f${F}.json" 2> "$RUNS/mem_p${K}_f${F}.log" &
done; done; wait
stamp "memorization done"
$PY -m diffmix figure fig5 --runs "$RUNS"/p* --data "$DATA" --out "$OUT/fig5" >> "$OUT/log.txt" 2>&1
$PY -m diffmix figure fig6 --runs "$RUNS"/p* --data "$DATA" --out "$OUT/fig6" ${FIGEXTRA:-} >> "$OUT/log.txt" 2>&1
stamp "figures done"
for f in "$RUNS"/*.log; do echo "== $f"; tail -n 12 "$f"; done >> "$OUT/log.txt"
