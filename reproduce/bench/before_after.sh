#!/usr/bin/env bash
# Before/after speed on this machine, interleaved: `python -m reproduce.bench` of an earlier commit and of the
# working tree, one case at a time, alternating, each with its own same-run sgemm ceiling; then IS log p(x).
#   bash reproduce/bench/before_after.sh BEFORE_COMMIT [seconds]    (one thread; about 10 minutes)
set -eu
before=${1:?usage: before_after.sh BEFORE_COMMIT [SECONDS]}
seconds=${2:-4}
cd "$(dirname "$0")/../.."
tree=$(mktemp -d)/before
git worktree add -q --detach "$tree" "$before"
trap 'git worktree remove --force "$tree"' EXIT
lscpu | grep -m1 "Model name"
echo "before: $(git -C "$tree" rev-parse --short HEAD); after: $(git rev-parse --short HEAD)$(git diff --quiet HEAD || echo -dirty)"
args="--threads 1 --seconds $seconds --skip-baselines --run-budget 0 --is-n 0 --compile"
for case in mnist-nz3 mnist-nz20 mnist-nz200 frey-nz10; do
  for side in before after; do
    dir=$([ $side = before ] && echo "$tree" || echo .)
    echo "== $case, $side"
    (cd "$dir" && python -m reproduce.bench $args --cases $case 2>/dev/null | grep -E "ceiling|^\| $case")
  done
done
for side in before after; do
  dir=$([ $side = before ] && echo "$tree" || echo .)
  echo "== IS log p(x), MNIST n_z = 20, k = 5000, $side"
  (cd "$dir" && python -m reproduce.bench --threads 1 --seconds 2 --cases "" --is-n 20 --is-k 5000 --run-budget 0 2>/dev/null | grep -E "ceiling|IS log")
done
