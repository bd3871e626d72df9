"""A/B of MatMul's rules at several kernel threads (see README.md beside it): VARIANT = asis (the code as it is),
old (the rule before the split: the same as asis once SPLIT_LARGE_GEMMS exists), split, blas (plain a @ b), nosplit
(every GEMM on one BLAS thread). Usage: PYTHONPATH=. python matmul_rules_ab.py VARIANT W1,W4 5"""
import os
import sys


def main():
    for v in ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE"):
        os.environ.pop(v, None)
    variant = sys.argv[1]
    from neurona.backend import kernels
    if variant in ("old", "asis"):  # the default: large GEMMs on the BLAS's threads, small on one
        pass
    elif variant == "split":  # the large-GEMM split over the kernel pool (the helper's "new" when it ran)
        kernels.SPLIT_LARGE_GEMMS = True
    elif variant == "blas":  # MatMul as a plain a @ b
        kernels.matmul = lambda a, b: a @ b
    elif variant == "nosplit":  # every GEMM on one BLAS thread
        kernels.SPLIT_LARGE_GEMMS = True
        kernels.MIN_GEMM_THREADS_WORK = 1 << 60
    import benchmarks.run as r
    r.main(["--only", sys.argv[2], "--threads", "all", "--reps", sys.argv[3]])


if __name__ == "__main__":
    main()
