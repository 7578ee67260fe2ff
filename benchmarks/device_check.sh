#!/usr/bin/env bash
# The GPU check, in one go (under 8 minutes on one CUDA GPU): the project
# against the PyTorch reference, float32 and bfloat16, plus the project's own
# benchmark, each as JSON in OUT_DIR.
#
#   bash benchmarks/device_check.sh OUT_DIR
#
# Needs what a stock CUDA image with JAX and PyTorch has, plus the project's
# pure-Python dependencies that such an image lacks (ml-collections; absl-py,
# sentencepiece and sacrebleu if absent). Where pip cannot download, install
# them from wheels first, e.g. `pip install --no-index --target /tmp/site
# .whl/*.whl && export PYTHONPATH=/tmp/site`.
set -uo pipefail
OUT="${1:?usage: bash benchmarks/device_check.sh OUT_DIR}"
mkdir -p "$OUT"
cd "$(dirname "$0")/.."
export PYTHONUNBUFFERED=1
PY="${PYTHON:-python3}"

{
  nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv
  "$PY" -c "import jax, torch; print('jax', jax.__version__, jax.devices()); print('torch', torch.__version__, torch.cuda.is_available())"
} 2>&1 | tee "$OUT/devices.txt"

# Equal work is checked on the CPU path inside compare_pytorch (tiny sizes,
# float32) before anything is timed; --device=cuda then times on the GPU.
timeout 200 "$PY" -m benchmarks.compare_pytorch --device=cuda --rounds=5 \
    --json="$OUT/compare_float32.json" 2>&1 | tee "$OUT/compare_float32.txt"
timeout 150 "$PY" -m benchmarks.compare_pytorch --device=cuda --rounds=5 \
    --dtype=bfloat16 --no_decode --skip_check \
    --json="$OUT/compare_bfloat16.json" 2>&1 | tee "$OUT/compare_bfloat16.txt"
timeout 100 "$PY" -m benchmarks.benchmark --repeats=5 \
    --json="$OUT/benchmark.json" 2>&1 | tee "$OUT/benchmark.txt"
# cuDNN LSTM layers (model.recurrence=cudnn) against the default recurrence.
timeout 60 "$PY" -m benchmarks.benchmark --cases=lstm_h512,lstm_h512_cudnn \
    --repeats=5 --json="$OUT/benchmark_cudnn.json" 2>&1 \
    | tee "$OUT/benchmark_cudnn.txt"
echo "device check done: $(ls "$OUT")"
