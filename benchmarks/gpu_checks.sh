#!/usr/bin/env bash
# On a GPU machine, one command: the CUDA tests, then the distance and evaluation
# benchmarks on the GPU, each printing its rate as a fraction of the device's peak.
#
#     bash benchmarks/gpu_checks.sh                 # 2,000 x 100,000 values, 500 checkpoints
#     bash benchmarks/gpu_checks.sh --n 500         # extra arguments go to bench_distances.py
set -euo pipefail
cd "$(dirname "$0")/.."
py=${PYTHON:-.venv/bin/python}
"$py" -c "import torch; assert torch.cuda.is_available(), 'torch sees no CUDA GPU'"
nvidia-smi --query-gpu=name,memory.total,clocks.max.sm --format=csv || true
"$py" -m pytest tests/test_device.py tests/test_batched.py -m gpu -q -p no:cacheprovider
"$py" benchmarks/bench_distances.py --device cuda "$@"
"$py" benchmarks/bench_evaluate.py --device cuda --checkpoints 500 --rounds 2
