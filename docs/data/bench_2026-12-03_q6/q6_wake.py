"""Session script of 2026-12-03 (issue 11, the Intel machine): see README.md here."""


def main():
    import time, statistics, threading
    from concurrent.futures import ThreadPoolExecutor
    import numpy as np
    from numba import njit
    @njit(nogil=True, cache=True)
    def spin(n):
        s = 0.0
        for i in range(n):
            s += i * 0.5
        return s
    spin(10)
    pool = ThreadPoolExecutor(1)
    pool.submit(lambda: None).result()
    def lat(idle_s, work):
        starts = []
        ds = []
        for _ in range(200):
            time.sleep(idle_s)
            t0 = time.perf_counter()
            fut = pool.submit(lambda: (starts.append(time.perf_counter()), spin(work)))
            spin(work)
            t1 = time.perf_counter()
            fut.result()
            t2 = time.perf_counter()
            ds.append((starts[-1] - t0, t1 - t0, t2 - t0))
        return [statistics.median(d[i] for d in ds) * 1e6 for i in range(3)]
    for idle in (0, 0.0002, 0.001, 0.01):
        for work in (0, 100000):
            s, mine, tot = lat(idle, work)
            print(f"idle {idle*1e3:5.1f} ms work {work:6d}: worker starts after {s:7.1f} us; main done {mine:7.1f}; both done {tot:7.1f} us")
    import os, threading
    print("pinning: main to cpu 0, worker to cpu 1")
    os.sched_setaffinity(0, {0})
    pool.submit(lambda: os.sched_setaffinity(threading.get_native_id(), {1})).result()
    for idle in (0, 0.0002, 0.001, 0.01):
        for work in (0, 100000):
            s, mine, tot = lat(idle, work)
            print(f"idle {idle*1e3:5.1f} ms work {work:6d}: worker starts after {s:7.1f} us; main done {mine:7.1f}; both done {tot:7.1f} us")


if __name__ == "__main__":
    main()
