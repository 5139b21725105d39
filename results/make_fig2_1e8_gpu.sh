#!/usr/bin/env bash
# Figure 2's AEVB curves to 1e8 samples on one CUDA GPU: the jobs of results/make_paper_end.sh (budget=cpu_1e8,
# sweep fig2_1e8, weights saved; the same run ids, since where a job runs is not part of it), each with
# train.cuda_graph=true, JOBS at once, in the order of PANELS, until DEADLINE_S seconds after the start. It runs
# on a machine with a copy of the suite but no network (and no .git, or a stale one):
#   bash results/make_fig2_1e8_gpu.sh prepare    here: .whl/ (Hydra's wheels), .gpudata/ (the data, and TREE: HEAD
#                                                 and the blob of every tracked file outside results/ and checkpoints/)
#   OUT=DIR bash results/make_fig2_1e8_gpu.sh    there, with .whl/ and .gpudata/ copied along
#   bash results/make_fig2_1e8_gpu.sh untrack    here, before a call of a device tool that sends the tracked tree
#                                                 (results/ alone is about 47 MiB): results/ and checkpoints/
#                                                 leave the index and are ignored; `... retrack` after the call
# There, every file is checked against TREE first and the jobs record HEAD as their commit (HEAD-dirty if any
# differs). Each finished job comes back as DIR/<run id>.tar (its parquet, yaml and weights; unpack it in the
# repository root); DIR/gpu.log has every job's output. An unfinished job is dropped: a CUDA checkpoint holds a
# CUDA generator's state and does not resume on a CPU. DRY_RUN=1: the same on the CPU with 20,000 samples per job.
set -u -o pipefail
cd "$(dirname "$0")/.."
EXCLUDE=$(git rev-parse --git-path info/exclude 2>/dev/null)
if [ "${1:-}" = untrack ]; then
  git rm -r --cached -q results checkpoints && git add results/*.sh
  printf '/results/*\n!/results/*.sh\n/checkpoints/\n' >>"$EXCLUDE"
  echo "untracked results/ and checkpoints/; the tree now sends $(git ls-files -z --cached --others --exclude-standard |
    xargs -0 stat -c %s | awk '{s += $1} END {printf "%.1f MiB", s / 1048576}'); undo: bash $0 retrack"
  exit
fi
if [ "${1:-}" = retrack ]; then
  git reset -q -- results checkpoints && sed -i '\#^/results/\*$#d; \#^!/results/\*\.sh$#d; \#^/checkpoints/$#d' "$EXCLUDE"
  git status --short | head
  exit
fi
if [ "${1:-}" = prepare ]; then
  WANDB=0 bash reproduce/bench/gpu_prepare.sh
  { git rev-parse HEAD; git ls-files -s -- . ':!results' ':!checkpoints'; } >.gpudata/TREE
  exit
fi
OUT=${OUT:-./gpu_out}
JOBS=${JOBS:-2}
DEADLINE_S=${DEADLINE_S:-480}
PANELS=${PANELS:-mnist_200 mnist_10 mnist_5 mnist_3 frey_20 frey_5 frey_2}
DRY_RUN=${DRY_RUN:-0}
T0=$(date +%s)
mkdir -p "$OUT"
LOG=$OUT/gpu.log
export PYTHONUNBUFFERED=1 PYTHONPATH=$PWD${PYTHONPATH:+:$PYTHONPATH}
if ! python3 -c "import hydra, omegaconf" 2>/dev/null; then
  python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl \
    >>"$LOG" 2>&1 || { echo "wheels from .whl/ failed (see $LOG)"; exit 1; }
  export PYTHONPATH=$PYTHONPATH:/tmp/site
fi
mkdir -p /tmp/gpudata/MNIST/raw
for f in .gpudata/MNIST/raw/*.gz; do gunzip -c "$f" >"/tmp/gpudata/MNIST/raw/$(basename "$f" .gz)"; done
cp .gpudata/frey_rawface.mat /tmp/gpudata/
export REPRODUCE_DATA=/tmp/gpudata
REPRODUCE_COMMIT=$(python3 - <<'EOF'
import hashlib, pathlib, sys
head, *rows = pathlib.Path(".gpudata/TREE").read_text().splitlines()
differ = []
for row in rows:  # git ls-files -s: <mode> <blob> <stage>\t<path>
    meta, path = row.split("\t", 1)
    p = pathlib.Path(path)
    data = p.read_bytes() if p.is_file() else None
    if data is None or hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest() != meta.split()[1]:
        differ.append(path)
print(f"{len(rows)} files checked against {head}; differ: {differ or 'none'}", file=sys.stderr)
print(head + ("-dirty" if differ else ""))
EOF
)
export REPRODUCE_COMMIT
echo "commit $REPRODUCE_COMMIT" | tee -a "$LOG"
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
