#!/usr/bin/env bash
# The GPU check, in one short device run (about 2-3 minutes; every step is time-limited):
# run from the repository root on the GPU machine, `bash .gpu/check.sh`. Logs go to $OUT.
#  1. the device and the library versions;
#  2. a one-line smoke test of a CUDA tensor;
#  3. tests/test_cuda.py (no -x: one run must show every failure, not the first one only;
#     --noconftest: tests/conftest.py imports hypothesis, which that machine lacks, and the
#     file seeds itself);
#  4. benchmarks/gpu.py: W1-W3, neurona on CuPy against PyTorch CUDA, one JSON line each.
# The exit status is the tests' (the benchmark prints its own errors per workload).
set -u
export PYTHONPATH=.
OUT=${OUT:-out/gpu}
mkdir -p "$OUT"

nvidia-smi -L 2>&1 | tee "$OUT/device.log"
python3 - <<'PY' 2>&1 | tee -a "$OUT/device.log"
import cupy, numba, numpy, torch
print("cupy", cupy.__version__, "cuda runtime", cupy.cuda.runtime.runtimeGetVersion(),
      "devices", cupy.cuda.runtime.getDeviceCount())
print("numba", numba.__version__, "numpy", numpy.__version__, "torch", torch.__version__,
      "torch.cuda", torch.cuda.is_available())
PY
timeout 120 python3 -c "import neurona as nr; x = nr.ones(3, device='cuda', requires_grad=True); \
(x * x).sum().backward(); print('smoke:', x.grad.device, x.grad.tolist())" 2>&1 | tee "$OUT/smoke.log"

timeout 240 python3 -m pytest -q -rfE --tb=short --durations=15 --noconftest -p no:cacheprovider \
    tests/test_cuda.py 2>&1 | tee "$OUT/cuda_tests.log"
tests_rc=${PIPESTATUS[0]}

timeout 150 python3 -m benchmarks.gpu 2>&1 | tee "$OUT/gpu_bench.log"
echo "tests exit status: $tests_rc (124: timed out)" | tee -a "$OUT/cuda_tests.log"
exit "$tests_rc"
