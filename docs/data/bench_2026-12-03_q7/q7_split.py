"""Session script of 2026-12-03 evening (issues 11 and 12, the Intel machine): one large GEMM: NumPy at 2 OpenBLAS threads, split over the pool with MKL blocks, MKL on one thread.
Run from the repository root: `PYTHONPATH=. python docs/data/bench_2026-12-03_q7/q7_split.py [args]`; see README.md here."""
if __name__ == "__main__":
    import time, numpy as np, os
    import neurona as nr
    from neurona.backend import kernels
    from neurona.backend.kernels import cblas
    rng=np.random.default_rng(0)
    def tm(f,n=20):
        f(); t=time.perf_counter()
        for _ in range(n): f()
        return (time.perf_counter()-t)/n*1e3
    nr.set_num_threads(2); from neurona.backend import kernel_threads; print("kt", kernel_threads())
    lib=cblas.chosen(); print("chosen", cblas.name())
    for (m,k,n) in [(2048,256,1024),(256,2048,1024),(128,784,512),(2048,256,65)]:
        a=rng.standard_normal((m,k),dtype=np.float32); b=rng.standard_normal((k,n),dtype=np.float32)
        t_np=tm(lambda: a@b)
        t_split=tm(lambda: kernels._gemm_split(a,b))
        t_mkl1=tm(lambda: lib.gemm(a,b))
        print((m,k,n), "numpy(2thr) %.3f split-mkl %.3f mkl1 %.3f" % (t_np,t_split,t_mkl1))
