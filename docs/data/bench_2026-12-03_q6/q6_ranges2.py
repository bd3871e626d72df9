"""Session script of 2026-12-03 (issue 11, the Intel machine): see README.md here."""


def main():
    import sys, time, statistics
    import numpy as np
    import neurona as nr
    from neurona.backend import thread_limit, blas_threads
    from neurona.backend.kernels import winograd as W
    from neurona.ops import conv as C
    b, c, k_out, m, k, s = map(int, sys.argv[1:7])
    rng = np.random.default_rng(0)
    x = rng.standard_normal((b, c, m, m)).astype(np.float32)
    w = (rng.standard_normal((k_out, c, k, k)) / np.sqrt(c * k * k)).astype(np.float32)
    geo = C.make_geometry("conv2d", x.shape, (k, k), s, k // 2, 1, "floor")
    h = b // 2
    nr.set_num_threads(2)
    from neurona.backend.kernels import tune_malloc; tune_malloc()
    def f(lo, hi):
        with thread_limit(1):
            C.conv_forward(x[lo:hi], w, geo)
    def timeit(fn, reps=40):
        for _ in range(5): fn()
        ts = []
        for _ in range(reps):
            t = time.perf_counter(); fn(); ts.append(time.perf_counter() - t)
        return statistics.median(ts) * 1e3
    with blas_threads(1):
        for r in range(3):
            print("round", r, "whole %.3f  half %.3f  quarter %.3f  side-by-side halves %.3f" % (
                timeit(lambda: f(0, b)), timeit(lambda: f(0, h)), timeit(lambda: f(0, h // 2)),
                timeit(lambda: W.run_side_by_side([lambda: f(0, h), lambda: f(h, b)]))))
    cpu, wall = [], []
    def g(lo, hi):
        t = time.perf_counter(); c0 = time.thread_time(); f(lo, hi); cpu.append(time.thread_time() - c0); wall.append(time.perf_counter() - t)
    with blas_threads(1):
        timeit(lambda: W.run_side_by_side([lambda: g(0, h), lambda: g(h, b)]), reps=200)
        print("side by side: each half wall %.3f cpu %.3f" % (statistics.median(wall) * 1e3, statistics.median(cpu) * 1e3))
        cpu.clear(); wall.clear()
        timeit(lambda: g(0, h), reps=200)
        print("alone: half wall %.3f cpu %.3f" % (statistics.median(wall) * 1e3, statistics.median(cpu) * 1e3))


if __name__ == "__main__":
    main()
