#!/usr/bin/env bash
# Figure 2's AEVB curves to 1e8 samples on one CUDA GPU: the jobs of results/make_paper_end.sh (budget=cpu_1e8,
# sweep fig2_1e8, weights saved; the same run ids, since where a job runs is not part of it), each with
# train.cuda_graph=true, JOBS at once, in the order of PANELS, until DEADLINE_S seconds after the start. It runs
# on a machine with a copy of the suite but no network (and no .git, or a stale one):
#   WANDB=0 bash reproduce/bench/gpu_prepare.sh  here: .whl/ (Hydra's wheels), .gpudata/ (the data and TREE)
#   bash reproduce/bench/gpu_prepare.sh untrack  here, before copying the tracked tree;
#                                                 `... retrack` after it
#   OUT=DIR bash results/make_fig2_1e8_gpu.sh    there, with .whl/ and .gpudata/ carried along
# There, every file is checked against TREE first and the jobs record its commit (with "-dirty" if any file
# differs; reproduce/bench/gpu_setup.sh). Each finished job comes back as DIR/<run id>.tar (its parquet, yaml and
# weights; unpack it in the repository root); DIR/gpu.log has every job's output. An unfinished job is dropped: a
# CUDA checkpoint holds a CUDA generator's state and does not resume on a CPU. DRY_RUN=1: the same on the CPU with
# 20,000 samples per job.
set -u -o pipefail
cd "$(dirname "$0")/.."
OUT=${OUT:-./gpu_out}
JOBS=${JOBS:-2}
DEADLINE_S=${DEADLINE_S:-480}
PANELS=${PANELS:-mnist_200 mnist_10 mnist_5 mnist_3 frey_20 frey_5 frey_2}
DRY_RUN=${DRY_RUN:-0}
T0=$(date +%s)
mkdir -p "$OUT"
LOG=$OUT/gpu.log
source reproduce/bench/gpu_setup.sh
{ gpu_wheels hydra omegaconf || exit 1; gpu_data; gpu_commit; } > >(tee -a "$LOG") 2>&1  # (not a pipe: the exports stay)
if [ "$DRY_RUN" = 1 ]; then
  PLACE=(device=cpu train.budget=20000 eval.is_k_final=100)
else
  PLACE=(device=cuda train.cuda_graph=true)
fi
python3 -c "import torch; print('torch', torch.__version__, 'cuda', torch.cuda.is_available() and torch.cuda.get_device_name())" \
  2>&1 | tee -a "$LOG"

job() {  # job PANEL: one AEVB curve, under the time left
  local left=$((DEADLINE_S - ($(date +%s) - T0)))
  ((left < 30)) && { echo "[gpu] $1 skipped: ${left}s left" >>"$LOG"; return; }
  timeout -k 10 "$left" python3 -m reproduce +sweep=fig2 +panel="$1" algorithm=aevb budget=cpu_1e8 log.sweep=fig2_1e8 \
    log.save_weights=true "${PLACE[@]}" log.results_dir=/tmp/gpu_results log.checkpoint_dir=/tmp/gpu_ckpt \
    log.wandb=disabled log.progress=false launcher=basic hydra.sweep.dir=/tmp/gpu_multirun/"$1" >"/tmp/gpu_$1.log" 2>&1
  echo "[gpu] $1 rc=$? after $(($(date +%s) - T0))s" >>"$LOG"
}
export -f job
export T0 DEADLINE_S LOG
export PLACE_ARGS="${PLACE[*]}"
# (bash cannot export arrays: each worker rebuilds PLACE from PLACE_ARGS)
printf '%s\n' $PANELS | xargs -P "$JOBS" -I{} bash -c 'PLACE=($PLACE_ARGS); job {}'
for f in /tmp/gpu_*.log; do echo "=== $f"; tail -n 15 "$f"; done >>"$LOG"
python3 - "$OUT" <<'EOF' 2>&1 | tee -a "$LOG"
import pathlib, sys, tarfile, yaml
out = pathlib.Path(sys.argv[1])
for meta in sorted(pathlib.Path("/tmp/gpu_results/fig2_1e8").glob("*.yaml")):
    m = yaml.safe_load(meta.read_text())["meta"]
    print(meta.stem, {k: m.get(k) for k in ("status", "commit", "n_seen", "wall_s", "eval_s", "train_samples_per_s",
                                            "train_lower_bound", "test_lower_bound", "test_marginal_ll_is")})
    if m.get("status") == "done":
        with tarfile.open(out / f"{meta.stem}.tar", "w") as tar:
            for f in sorted(meta.parent.glob(meta.stem + ".*")):
                tar.add(f, arcname=f"results/fig2_1e8/{f.name}")
EOF
echo "total $(($(date +%s) - T0))s" | tee -a "$LOG"
