"""Session script of 2026-12-03 evening (issues 11 and 12, the Intel machine): single-row products with their matrices out of L2: NumPy, MKL sgemv, MKL sgemm.
Run from the repository root: `PYTHONPATH=. python docs/data/bench_2026-12-03_q7/q7_gemv.py [args]`; see README.md here."""
if __name__ == "__main__":
    import time, ctypes, numpy as np
    from neurona.backend.kernels import cblas
    lib=cblas.mkl(); L=lib.lib
    rng=np.random.default_rng(0)
    Ms=[rng.standard_normal((256,1024),dtype=np.float32) for _ in range(4)]
    x=rng.standard_normal((1,256),dtype=np.float32); out=np.empty((1,1024),np.float32)
    L.cblas_sgemv.restype=None
    L.cblas_sgemv.argtypes=[ctypes.c_int]*4+[ctypes.c_float,ctypes.c_void_p,ctypes.c_int,ctypes.c_void_p,ctypes.c_int,ctypes.c_float,ctypes.c_void_p,ctypes.c_int]
    def np_mm():
        for M in Ms: np.matmul(x,M,out=out)
    def mkl_gemv():
        for M in Ms: L.cblas_sgemv(101,112,256,1024,1.0,M.ctypes.data,1024,x.ctypes.data,1,0.0,out.ctypes.data,1)
    def mkl_gemm():
        for M in Ms: lib.gemm(x,M,out)
    Mt=[np.ascontiguousarray(M.T) for M in Ms]
    def np_mv_t():
        for M in Mt: np.matmul(M,x[0],out=out[0])
    def tm(f,n=2000):
        f(); t=time.perf_counter()
        for _ in range(n): f()
        return (time.perf_counter()-t)/n/4*1e6
    for f in (np_mm, mkl_gemv, mkl_gemm, np_mv_t, np_mm, mkl_gemv):
        print(f.__name__, round(tm(f),2), "us per 256x1024 product (4 matrices cycled, 4 MB)")
