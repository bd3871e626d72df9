"""A/B of MatMul's rules at several kernel threads (see README.md beside it): VARIANT = asis (the code as it is),
old (the rule before the split: the same as asis once SPLIT_LARGE_GEMMS exists), split, blas (plain a @ b), nosplit
(every GEMM on one BLAS thread). Usage: PYTHONPATH=. python matmul_rules_ab.py VARIANT W1,W4 5"""
import os, sys
for v in ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE"):
    os.environ.pop(v, None)
variant = sys.argv[1]
import numpy
from neurona.backend import kernels
from neurona.backend.threads import kernel_threads, blas_threads
orig = kernels.matmul
def old_rule(a, b):
    if (kernel_threads() <= 1 or type(a) is not numpy.ndarray or type(b) is not numpy.ndarray or a.ndim != 2
            or b.ndim != 2 or a.shape[0] * a.shape[1] * b.shape[-1] >= kernels.MIN_GEMM_THREADS_WORK):
        return a @ b
    with blas_threads(1):
        return a @ b
if variant == "old":
    kernels.matmul = old_rule
elif variant == "split":  # the large-GEMM split over the kernel pool
    kernels.SPLIT_LARGE_GEMMS = True
elif variant == "blas":
    kernels.matmul = lambda a, b: a @ b
elif variant == "nosplit":
    kernels.MIN_GEMM_THREADS_WORK = 1 << 60
import benchmarks.run as r
r.main(["--only", sys.argv[2], "--threads", "all", "--reps", sys.argv[3]])
