#!/usr/bin/env bash
# The accelerator check of issue 19 (python -m benchmarks --accelerator), ready for a lent GPU.
#
#   bash scripts/accelerator_check.sh prepare   # here, once: wheels of what the device image lacks → .whl/
#   bash scripts/accelerator_check.sh run       # there: the device tool's command, with carry=[".whl"]
#
# The device image has jax (CUDA), flax, optax, orbax, scipy, scikit-learn, matplotlib and
# safetensors for Python 3.12 but not the audio and config packages below, and it cannot reach
# a package index; `prepare` downloads those (no dependencies beyond the ones named) for
# CPython 3.12 on manylinux x86-64 and keeps .whl/ out of git. `run` installs them into
# /tmp/site, runs the check from this checkout (PYTHONPATH, no install) in well under five
# minutes, and writes accelerator.json and accelerator.md into $OUT.
set -euo pipefail
cd "$(dirname "$0")/.."
WHEELS=(
  ml-collections librosa soundfile soxr audioread pooch platformdirs decorator standard-aifc standard-sunau
  cffi pycparser grain array-record dm-tree tensorboardX pretty_midi mido tinysoundfont
)
case "${1:-}" in
  prepare)
    grep -qxF "/.whl/" .git/info/exclude 2>/dev/null || echo "/.whl/" >> .git/info/exclude
    mkdir -p .whl
    for name in "${WHEELS[@]}"; do
      python3 -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
        --platform manylinux_2_28_x86_64 --platform manylinux_2_27_x86_64 --platform manylinux_2_17_x86_64 \
        --platform manylinux2014_x86_64 --platform manylinux1_x86_64 --platform any -d .whl "$name" \
        || echo "no wheel for $name (the check may not need it)"
    done
    du -sh .whl
    ;;
  run)
    python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl
    export PYTHONPATH="/tmp/site:$PWD" PYTHONUNBUFFERED=1 OVERTONE_CACHE=/tmp/overtone-cache
    nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader || true
    python3 -m benchmarks --accelerator --out="${OUT:-.}/accelerator.json" --markdown="${OUT:-.}/accelerator.md"
    ;;
  *)
    echo "usage: bash scripts/accelerator_check.sh prepare|run" >&2
    exit 2
    ;;
esac
