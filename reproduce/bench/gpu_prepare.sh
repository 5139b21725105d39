#!/usr/bin/env bash
# Prepares, on a machine with network access, what a GPU machine that has none needs to run the suite
# (reproduce/bench/gpu_check.sh, results/make_fig2_1e8_gpu.sh; both source reproduce/bench/gpu_setup.sh there):
# in the repo root, .whl/ (wheels for Python 3.12 x86_64 of the packages its image lacks: hydra-core, omegaconf,
# antlr4 4.9, wandb and their needs, at this environment's versions) and .gpudata/ (MNIST gzipped, Frey Face, and
# TREE: HEAD and the blob of every tracked file outside results/ and checkpoints/, which the runs there check the
# copy against before they record HEAD as their commit). Both are git-ignored: carry them with the checkout.
#   bash reproduce/bench/gpu_prepare.sh          (REPRODUCE_DATA or ../shared/data: the data to pack; WANDB=0: no
#                                                 wandb, a few hundred kB instead of about 40 MB)
#   bash reproduce/bench/gpu_prepare.sh untrack  before copying the tracked tree without the results (results/
#                                                 alone is about 47 MiB): results/ and checkpoints/ leave the index
#                                                 and are ignored; `... retrack` after the copy puts them back
set -euo pipefail
cd "$(git rev-parse --show-toplevel)"
EXCLUDE=$(git rev-parse --git-path info/exclude)
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
data=${REPRODUCE_DATA:-../shared/data}
version() { python3 -c "import importlib.metadata as m; print(m.version('$1'))"; }
platforms=()
for p in manylinux_2_28_x86_64 manylinux_2_27_x86_64 manylinux_2_24_x86_64 manylinux_2_17_x86_64 manylinux2014_x86_64 \
         manylinux1_x86_64 manylinux_2_31_x86_64 manylinux_2_34_x86_64 manylinux_2_35_x86_64; do
  platforms+=(--platform "$p")
done

# WANDB=0: Hydra alone (jobs then run with log.wandb=disabled)
extra=()
[ "${WANDB:-1}" = 1 ] && extra=("wandb==$(version wandb)" "hydra-joblib-launcher==$(version hydra-joblib-launcher)"
                                "hydra-submitit-launcher==$(version hydra-submitit-launcher)" platformdirs)
rm -rf .whl .gpudata
mkdir -p .whl .gpudata/MNIST/raw
# antlr4-python3-runtime 4.9.x (what omegaconf 2.3 pins) is a source distribution only: build its pure-Python wheel
python3 -m pip wheel -q --no-deps antlr4-python3-runtime=="$(version antlr4-python3-runtime)" -w .whl
python3 -m pip download -q --only-binary=:all: --python-version 3.12 --implementation cp "${platforms[@]}" \
  --find-links .whl -d .whl "hydra-core==$(version hydra-core)" "omegaconf==$(version omegaconf)" "${extra[@]}"
# the device image has these already (/work/.library/device/KINDS.md): keep its versions
for name in anyio certifi charset_normalizer click cloudpickle h11 httpcore httpx idna joblib packaging pyyaml \
            requests sniffio urllib3 xxhash; do
  rm -f .whl/"$name"-*.whl
done

for f in train-images-idx3-ubyte train-labels-idx1-ubyte t10k-images-idx3-ubyte t10k-labels-idx1-ubyte; do
  gzip -c "$data/MNIST/raw/$f" > ".gpudata/MNIST/raw/$f.gz"
done
cp "$data/frey_rawface.mat" .gpudata/
{ git rev-parse HEAD; git ls-files -s -- . ':!results' ':!checkpoints'; } >.gpudata/TREE

ls .whl
du -sh .whl .gpudata
tree_mb=$(git ls-files -z --cached --others --exclude-standard | du -cm --files0-from=- | tail -1 | cut -f1)
echo "checkout: ${tree_mb} MB, plus .whl/ and .gpudata/ above"
