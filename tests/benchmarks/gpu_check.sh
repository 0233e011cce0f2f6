#!/usr/bin/env bash
# GPU readiness check (issue 13, item 6): on a machine with a CUDA device, run the GPU-marked tests,
# then the 1024 px generator benchmark (tests/benchmarks/gpu_bench.py), within about 8 minutes.
#
#   tests/benchmarks/gpu_check.sh            # on the GPU machine, from the repository root
#   tests/benchmarks/gpu_check.sh --dry-run  # anywhere: the same steps on a tiny CPU model
#
# PYTHON picks the interpreter (default: .venv/bin/python, else python3). Run from the checkout's
# root with PYTHONPATH set so `import latentmirror` resolves to it (as for the tests).
set -euo pipefail
cd "$(dirname "$0")/../.."
PYTHON="${PYTHON:-$( [ -x .venv/bin/python ] && echo .venv/bin/python || echo python3 )}"
DRY_RUN=""
[ "${1:-}" = "--dry-run" ] && DRY_RUN="--dry-run"

"$PYTHON" -c "import torch; print('torch', torch.__version__, 'cuda', torch.cuda.is_available())"
if [ -z "$DRY_RUN" ]; then
    "$PYTHON" -c "import torch, sys; sys.exit(0 if torch.cuda.is_available() else 'no CUDA device: use --dry-run')"
    nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv || true
    # the GPU-marked tests (they skip, saying why, without a device)
    timeout 180 "$PYTHON" -m pytest -q -p no:cacheprovider -m gpu tests/
else
    # here the GPU tests are only collected: they must skip with a reason, not fail
    timeout 180 "$PYTHON" -m pytest -q -p no:cacheprovider -m gpu -rs tests/test_generator_speed.py
fi
# the dry run's inversion scores with LPIPS-VGG on the CPU: minutes on a loaded machine
BENCH_LIMIT=$([ -n "$DRY_RUN" ] && echo 900 || echo 300)
timeout "$BENCH_LIMIT" "$PYTHON" tests/benchmarks/gpu_bench.py $DRY_RUN || {
    echo "gpu_check: gpu_bench.py failed or ran past ${BENCH_LIMIT} s" >&2; exit 1; }
