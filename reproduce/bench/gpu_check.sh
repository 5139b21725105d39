#!/usr/bin/env bash
# A GPU check of the suite in one script (one GPU: the paper's full x axis), about 8 minutes on a datacenter GPU.
# Everything it measures goes under $OUT (default ./gpu_check_out): gpu_check.log (every stage's output),
# summary.txt (each stage's exit code and seconds), bench.json (samples/s per Figure 2 case and mode),
# suite.log (the default test suite) and results/gpu_*/ (the long run's parquet and yaml).
#
#   bash reproduce/bench/gpu_prepare.sh                     # first, on a machine with network: .whl/ and .gpudata/
#   bash reproduce/bench/gpu_check.sh                       # then on the GPU machine, .whl/ and .gpudata/ copied along
#   DRY_RUN=1 bash reproduce/bench/gpu_check.sh             # every stage on the CPU with tiny settings
#
# Stages, each under its own timeout, none stopping the others (a failure is recorded and the script goes on):
#   setup    the copied wheels installed where hydra/omegaconf/wandb are missing; the copied data unpacked; the copy
#            checked against .gpudata/TREE (reproduce/bench/gpu_setup.sh)
#   probe    nvidia-smi; torch, the GPU, the fused Adagrad kernel
#   suite    the default test suite with the device tests required (REPRODUCE_TEST_DEVICE=cuda):
#            tests/test_graphed.py first, then the rest; in the background on the upper half of the CPU cores
#   bench    python -m reproduce.bench --device cuda: each Figure 2 case eager, compiled, graphed and graphed +
#            compiled, then 4 jobs at once in each case's best mode; the paper-scale Figure 2 estimate
#   run      one MNIST n_z = 20 AEVB run with train.cuda_graph=true to 1e8 samples, if the measured graphed
#            rate says it ends in the time left (else the largest of 5e7, 2e7, 1e7 that does)
#   bench_ro torch.compile(mode="reduce-overhead") of the loss, two cases, if time is left
set -u -o pipefail
cd "$(dirname "$0")/../.."
OUT=${OUT:-./gpu_check_out}
mkdir -p "$OUT"
DRY_RUN=${DRY_RUN:-0}
TOTAL_S=${TOTAL_S:-$([ "$DRY_RUN" = 1 ] && echo 300 || echo 450)}  # the whole script's budget, seconds
T0=$(date +%s)
LOG=$OUT/gpu_check.log
SUMMARY=$OUT/summary.txt
: >"$LOG"
: >"$SUMMARY"
export WANDB_SILENT=true
if [ "$DRY_RUN" = 1 ]; then
  DEVICE=cpu
  BENCH=(--cases frey-nz10 --seconds 0.2 --jobs 2 --skip-baselines --run-budget 0 --is-n 20 --is-k 20)
  BENCH_RO=(--cases frey-nz10 --seconds 0.2 --skip-baselines --run-budget 0 --is-n 0)
  SUITE=(tests/test_optim.py)  # a CPU dry run does not run the whole suite
  RUN=(device=cpu train.threads=1)
  BUDGETS=(20000)
else
  DEVICE=cuda
  BENCH=(--seconds 1 --compile --graph --jobs 4 --run-budget 0 --is-n 1000 --is-k 1000)
  BENCH_RO=(--cases mnist-nz20,frey-nz10 --seconds 1 --compile --compile-mode reduce-overhead --skip-baselines
            --run-budget 0 --is-n 0)
  SUITE=(tests --ignore=tests/test_graphed.py)
  RUN=(device=cuda train.cuda_graph=true)
  BUDGETS=(100000000 50000000 20000000 10000000)
fi

left() { echo $((TOTAL_S - ($(date +%s) - T0))); }
note() { echo "$*" | tee -a "$SUMMARY"; }
stage() {  # stage NAME SECONDS CMD...: CMD under a timeout (cut to the time left), output to the log
  local name=$1 limit=$2 t rc
  shift 2
  ((limit > $(left))) && limit=$(left)
  if ((limit < 10)); then
    note "$(printf '%-10s skipped: %ss left' "$name" "$(left)")"
    return 0
  fi
  echo "=== $name (timeout ${limit}s, $(date -u +%T) UTC): $*" >>"$LOG"
  t=$(date +%s)
  timeout -k 10 "$limit" "$@" >>"$LOG" 2>&1
  rc=$?
  note "$(printf '%-10s rc=%-3s %4ss%s' "$name" "$rc" $(($(date +%s) - t)) "$([ "$rc" = 124 ] && echo ' timed out')")"
  return 0
}

# --- setup: wheels, data and commit (in this shell: its exports serve every stage)
source reproduce/bench/gpu_setup.sh
gpu_wheels hydra omegaconf wandb >>"$SUMMARY"
{ gpu_data; gpu_commit; } >>"$SUMMARY" 2>&1

# --- probe
ncpu=$(nproc)
if ((ncpu >= 8)); then  # the suite on the upper half of the cores, the timed stages on the lower half
  PIN_SUITE=(taskset -c $((ncpu / 2))-$((ncpu - 1)))
  PIN_MAIN=(taskset -c 0-$((ncpu / 2 - 1)))
else
  PIN_SUITE=()
  PIN_MAIN=()
fi
PROBE='
import torch
from reproduce.optim import fused_kernel
cuda = torch.cuda.is_available()
print("torch", torch.__version__, "CUDA", torch.version.cuda, "available", cuda, torch.cuda.get_device_name() if cuda else "")
print("fused Adagrad kernel: cpu", fused_kernel(torch.device("cpu")), "cuda", fused_kernel(torch.device("cuda")))
print("CUDAGraph.register_generator_state:", hasattr(torch.cuda.CUDAGraph, "register_generator_state"))
'
stage nvidia-smi 30 nvidia-smi
stage probe 60 python3 -c "$PROBE"

# --- suite, in the background
(
  for part in graphed rest; do  # the device tests first, so that they report even if the rest times out
    if [ $part = graphed ]; then args=(tests/test_graphed.py); else args=("${SUITE[@]}"); fi
    t=$(date +%s)
    REPRODUCE_TEST_DEVICE=$DEVICE OMP_NUM_THREADS=4 timeout -k 10 $(($(left) - 10)) "${PIN_SUITE[@]}" \
      python3 -m pytest -q -p no:cacheprovider -rfE "${args[@]}" >>"$OUT/suite.log" 2>&1
    rc=$?
    note "$(printf '%-10s rc=%-3s %4ss%s (background; %s)' "suite_$part" "$rc" $(($(date +%s) - t)) \
      "$([ "$rc" = 124 ] && echo ' timed out')" "$(tail -1 "$OUT/suite.log")")"
  done
) &
SUITE_PID=$!

# --- bench
stage bench 240 "${PIN_MAIN[@]}" python3 -m reproduce.bench --device "$DEVICE" "${BENCH[@]}" --json "$OUT/bench.json"
sed -n '/^=== bench /,/^=== /p' "$LOG" | grep -E '^\| |paper-scale|best measured|IS log' >>"$SUMMARY"

# --- the long run: the largest budget that the measured rate (graphed, else best) says ends in the time left
read -r rate mode < <(python3 -c "
import json
r = json.load(open('$OUT/bench.json'))['rates']
m = r.get('mnist-nz20') or next(iter(r.values()))
m = {k: v for k, v in m.items() if v == v}  # NaN: that mode failed
mode = max((k for k in m if k.startswith('graphed')), key=m.get, default=max(m, key=m.get))
print(int(m[mode]), mode)" 2>/dev/null || echo 0 none)
[ "$mode" = graphed+compiled ] && RUN+=(train.compile=true)
budget=0
for b in "${BUDGETS[@]}"; do
  if ((rate > 0 && b / rate + 60 < $(left) - 20)); then  # 60 s: start-up, evaluation, checkpoints
    budget=$b
    break
  fi
done
note "run        measured MNIST n_z=20 rate ${rate} samples/s (${mode}), $(left)s left: budget ${budget}"
if ((budget > 0)); then
  tag=$(python3 -c "print(f'{$budget:.0e}'.replace('+0', ''))")
  stage run $(($(left) - 15)) "${PIN_MAIN[@]}" python3 -m reproduce +panel=mnist_20 algorithm=aevb "train.budget=$budget" \
    "${RUN[@]}" "log.sweep=gpu_$tag" log.wandb=disabled log.progress=false "log.results_dir=$OUT/results" \
    log.checkpoint_dir=/tmp/gpu_check_ckpt hydra.run.dir=/tmp/gpu_check_hydra
  python3 -c "
import glob, yaml
for f in glob.glob('$OUT/results/gpu_*/*.yaml'):
    m = yaml.safe_load(open(f))['meta']
    print('run       ', {k: m.get(k) for k in ('status', 'n_seen', 'wall_s', 'eval_s', 'train_samples_per_s', 'train_lower_bound', 'test_lower_bound', 'test_marginal_ll_is')})
" 2>&1 | tee -a "$SUMMARY"
fi

# --- reduce-overhead, if time is left
stage bench_ro 90 "${PIN_MAIN[@]}" python3 -m reproduce.bench --device "$DEVICE" "${BENCH_RO[@]}"
grep -A8 "=== bench_ro" "$LOG" | grep -E "^\| (mnist|frey)" >>"$SUMMARY"

wait "$SUITE_PID"
note "total      $(($(date +%s) - T0))s"
echo "=== summary ($SUMMARY)"
cat "$SUMMARY"
