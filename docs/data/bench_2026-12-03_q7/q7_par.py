"""Session script of 2026-12-03 evening (issues 11 and 12, the Intel machine): two Python threads each running MKL on half a GEMM: do they run side by side (they do).
Run from the repository root: `PYTHONPATH=. python docs/data/bench_2026-12-03_q7/q7_par.py [args]`; see README.md here."""
if __name__ == "__main__":
    import time, threading, numpy as np
    from neurona.backend.kernels import cblas
    lib=cblas.mkl()
    rng=np.random.default_rng(0)
    a=rng.standard_normal((2048,256),dtype=np.float32); b=rng.standard_normal((256,1024),dtype=np.float32)
    out=np.empty((2048,1024),np.float32)
    def half(i, reps):
        for _ in range(reps):
            lib.gemm(a[i*1024:(i+1)*1024], b, out[i*1024:(i+1)*1024])
    for nthr in (1,2):
        t=time.perf_counter()
        th=[threading.Thread(target=half,args=(i,20)) for i in range(nthr)]
        [x.start() for x in th]; [x.join() for x in th]
        print(nthr, "threads: per half-gemm ms", (time.perf_counter()-t)/20*1e3)
