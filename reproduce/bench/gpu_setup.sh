# The set-up that reproduce/bench/gpu_check.sh and results/make_fig2_1e8_gpu.sh share on a GPU machine with a copy
# of the suite but no network (and no .git, or a stale one): source it from the repository root, with LOG set.
#   gpu_wheels MODULE...   install .whl/ (reproduce/bench/gpu_prepare.sh) into /tmp/site if a MODULE is missing
#   gpu_data               unpack .gpudata/ into /tmp/gpudata and export REPRODUCE_DATA (else ../shared/data)
#   gpu_commit             export REPRODUCE_COMMIT: .gpudata/TREE's commit, "-dirty" if any file differs from it
# Each prints one line saying what it did; PYTHONPATH gets the repository root (tests run subprocesses elsewhere).
export PYTHONUNBUFFERED=1 PYTHONPATH=$PWD${PYTHONPATH:+:$PYTHONPATH}

gpu_wheels() {
  local imports
  imports=$(printf 'import %s;' "$@")
  python3 -c "$imports" 2>/dev/null && { echo "setup      $* importable"; return 0; }
  if ! ls .whl/*.whl >/dev/null 2>&1; then
    echo "setup      $* missing and no .whl/: run reproduce/bench/gpu_prepare.sh and carry .whl"
    return 1
  fi
  timeout 120 python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site \
    .whl/*.whl >>"$LOG" 2>&1
  local rc=$?
  export PYTHONPATH=$PYTHONPATH:/tmp/site
  echo "setup      wheels from .whl/ rc=$rc"
  return $rc
}

gpu_data() {
  if [ -d .gpudata ]; then
    mkdir -p /tmp/gpudata/MNIST/raw
    for f in .gpudata/MNIST/raw/*.gz; do gunzip -c "$f" >"/tmp/gpudata/MNIST/raw/$(basename "$f" .gz)"; done
    cp .gpudata/frey_rawface.mat /tmp/gpudata/
    export REPRODUCE_DATA=/tmp/gpudata
  fi
  export REPRODUCE_DATA=${REPRODUCE_DATA:-$(cd .. && pwd)/shared/data}
  echo "setup      REPRODUCE_DATA=$REPRODUCE_DATA, $(ls "$REPRODUCE_DATA/MNIST/raw" 2>/dev/null | wc -l) MNIST files"
}

gpu_commit() {
  [ -f .gpudata/TREE ] || { echo "setup      no .gpudata/TREE: the runs record what .git says"; return 0; }
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
print(f"setup      {len(rows)} files checked against {head}; differ: {differ or 'none'}", file=sys.stderr)
print(head + ("-dirty" if differ else ""))
EOF
  )
  export REPRODUCE_COMMIT
  echo "setup      commit $REPRODUCE_COMMIT"
}
