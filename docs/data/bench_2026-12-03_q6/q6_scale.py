"""Two Python threads each running a nogil numba loop or 20 GEMMs 256×1024×512 (one BLAS thread)
against one thread alone: `python docs/data/bench_2026-12-03_q6/q6_scale.py`."""


def main():
    import time, statistics, threading
    import numpy as np
    from numba import njit
    from threadpoolctl import threadpool_limits
    @njit(nogil=True, cache=True)
    def spin(n):
        s = 0.0
        for i in range(n):
            s += (i % 7) * 0.5
        return s
    spin(10)
    a = np.random.rand(256, 1024).astype(np.float32); b = np.random.rand(1024, 512).astype(np.float32)
    def gemm(k=20):
        for _ in range(k): a @ b
    def both(fn):
        t = threading.Thread(target=fn); t0 = time.perf_counter(); t.start(); fn(); t.join(); return time.perf_counter() - t0
    def one(fn):
        t0 = time.perf_counter(); fn(); return time.perf_counter() - t0
    with threadpool_limits(1):
        for name, fn in (("numba scalar loop", lambda: spin(20_000_000)), ("GEMM 256x1024x512 x20", gemm)):
            o = statistics.median(one(fn) for _ in range(5)); t = statistics.median(both(fn) for _ in range(5))
            print(f"{name}: one thread {o*1e3:.1f} ms; two threads each the same: {t*1e3:.1f} ms -> scaling {2*o/t:.2f}x")


if __name__ == "__main__":
    main()
