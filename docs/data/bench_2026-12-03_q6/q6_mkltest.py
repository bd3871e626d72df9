"""Session script of 2026-12-03 (issue 11, the Intel machine): see README.md here."""


def main():
    import sys, ctypes, time, statistics, numpy as np, os
    from threadpoolctl import threadpool_limits
    lib = sys.prefix + "/lib/"
    os.environ.setdefault("MKL_THREADING_LAYER", "SEQUENTIAL")
    mkl = ctypes.CDLL(lib + "libmkl_rt.so.3")
    mkl.MKL_Set_Threading_Layer(1)  # 1 = SEQUENTIAL
    sg = mkl.cblas_sgemm
    sg.restype = None
    P = ctypes.c_void_p; I = ctypes.c_int; F = ctypes.c_float
    sg.argtypes = [I, I, I, I, I, I, F, P, I, P, I, F, P, I]
    def mm(a, b):
        m, k = a.shape; n = b.shape[1]
        c = np.empty((m, n), np.float32)
        sg(101, 111, 111, m, n, k, 1.0, a.ctypes.data, k, b.ctypes.data, n, 0.0, c.ctypes.data, n)
        return c
    def t(fn, reps=100):
        for _ in range(5): fn()
        ts=[]
        for _ in range(reps):
            s=time.perf_counter(); fn(); ts.append(time.perf_counter()-s)
        return statistics.median(ts)
    with threadpool_limits(1):
        for (m,k,n) in ((1024,1024,1024),(2048,256,1024),(32,256,1024),(128,784,512),(64,4096,256),(128,512,10)):
            a=np.random.rand(m,k).astype(np.float32); b=np.random.rand(k,n).astype(np.float32)
            assert np.allclose(mm(a,b), a@b, rtol=1e-4)
            tn=t(lambda: a@b); tm=t(lambda: mm(a,b))
            print(f"{m}x{k}x{n}: numpy {2*m*k*n/tn/1e9:6.1f} GF/s  mkl via ctypes {2*m*k*n/tm/1e9:6.1f} GF/s  ({tm*1e6:.1f} us)")


if __name__ == "__main__":
    main()
