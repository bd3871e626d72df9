"""Session script of 2026-12-03 evening (issues 11 and 12, the Intel machine): W1's step at N threads with each split GEMM's time logged.
Run from the repository root: `PYTHONPATH=. python docs/data/bench_2026-12-03_q7/q7_w1dbg.py [args]`; see README.md here."""
if __name__ == "__main__":
    import time, threading, sys, os, numpy as np
    import torch
    import neurona as nr
    from neurona.backend import kernels
    from benchmarks.harness import set_threads
    from benchmarks.workloads import build_w1
    log=[]; T0=0
    orig=kernels._gemm_split
    def split(a,b,out=None):
        global T0
        t0=time.perf_counter(); r=orig(a,b,out); log.append((a.shape,b.shape, round((t0-T0)*1e3,3), round((time.perf_counter()-t0)*1e3,3))); return r
    kernels._gemm_split=split
    set_threads(int(sys.argv[1]))
    ours, peer = build_w1()
    for i in range(30): ours()
    for i in range(3):
        log.clear(); T0=time.perf_counter(); ours(); print(round((time.perf_counter()-T0)*1e3,2)); [print("  ",l) for l in log]
    def tm(f,n=50):
        t=time.perf_counter()
        for _ in range(n): f()
        return (time.perf_counter()-t)/n*1e3
    print("ours ms", tm(ours), "peer ms", tm(peer), "ours", tm(ours))
