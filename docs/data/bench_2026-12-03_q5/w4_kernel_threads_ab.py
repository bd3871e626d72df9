"""W4's step at 1 and 2 kernel threads alternating in one process (see README.md beside it).
Usage: PYTHONPATH=. python w4_kernel_threads_ab.py [split|blas]"""


def main():
    import time, statistics, sys
    import numpy as np, neurona as nr, torch
    from threadpoolctl import threadpool_limits
    from benchmarks.w4_w6_text import build_w4
    from neurona.backend import kernels
    # argv[1]: "split" (kernels.SPLIT_LARGE_GEMMS, the rule of the first A/B), "blas" (MatMul as a
    # plain a @ b), else the default (large GEMMs on the BLAS's threads: "old" when it ran)
    if len(sys.argv) > 1 and sys.argv[1] == "split":
        kernels.SPLIT_LARGE_GEMMS = True
    if len(sys.argv) > 1 and sys.argv[1] == "blas":
        kernels.matmul = lambda a, b: a @ b
    nr.set_num_threads(2); torch.set_num_threads(1)
    threadpool_limits(2, user_api="blas")
    model, tm, ours, peer = build_w4()
    for _ in range(3): ours()
    res = {"k1": [], "k2": []}
    for r in range(12):
        for k in ("k1", "k2"):
            if k == "k1":
                with nr.backend.thread_limit(1):
                    t0 = time.perf_counter(); ours(); ours(); res[k].append((time.perf_counter() - t0) / 2)
            else:
                t0 = time.perf_counter(); ours(); ours(); res[k].append((time.perf_counter() - t0) / 2)
    for k, v in res.items(): print(k, round(statistics.median(v) * 1e3, 1), round(min(v) * 1e3, 1))


if __name__ == "__main__":
    main()
