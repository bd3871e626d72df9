"""Session script of 2026-12-03 evening (issues 11 and 12, the Intel machine): W4's step at N threads with each row block's start and end logged; BLAS1=1 then holds OpenBLAS at one thread.
Run from the repository root: `PYTHONPATH=. python docs/data/bench_2026-12-03_q7/q7_w4dbg.py [args]`; see README.md here."""
if __name__ == "__main__":
    import time, threading, sys, numpy as np
    import torch
    import neurona as nr
    from neurona.backend.kernels import rnn as rnnmod
    import neurona.nn.layers.recurrent as rec
    from benchmarks.harness import set_threads
    from benchmarks.w4_w6_text import build_w4
    log=[]
    orig=rnnmod.over_rows
    def over_rows(task, n, compiled=False):
        def wrapped(n0,n1):
            t0=time.perf_counter(); r=task(n0,n1); log.append((n0, round((t0-T0)*1e3,2), round((time.perf_counter()-T0)*1e3,2))); return r
        return orig(wrapped, n, compiled)
    rec.over_rows=over_rows
    set_threads(int(sys.argv[1]))
    model, tm, ours, peer = build_w4()
    for i in range(5):
        log.clear(); T0=time.perf_counter(); ours(); print(round((time.perf_counter()-T0)*1e3,1), log)
    from threadpoolctl import threadpool_info
    print([(d['internal_api'], d['num_threads']) for d in threadpool_info()])
    import os
    if os.environ.get("BLAS1"):
        from threadpoolctl import threadpool_limits
        threadpool_limits(limits=1, user_api="blas")
        print("openblas -> 1")
        for i in range(5):
            log.clear(); T0=time.perf_counter(); ours(); print(round((time.perf_counter()-T0)*1e3,1), log)
