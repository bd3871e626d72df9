"""Session script of 2026-12-03 (issue 11, the Intel machine): see README.md here."""


def main():
    import ctypes, time, statistics, numpy as np, os, sys
    from threadpoolctl import threadpool_limits
    layer = int(sys.argv[1])  # 1 sequential, 3 gnu, 0 intel
    mkl = ctypes.CDLL(sys.prefix + "/lib/libmkl_rt.so.3", mode=ctypes.RTLD_GLOBAL)
    print("layer set ->", mkl.MKL_Set_Threading_Layer(layer))
    sg = mkl.cblas_sgemm; sg.restype = None
    P = ctypes.c_void_p; I = ctypes.c_int; F = ctypes.c_float
    sg.argtypes = [I, I, I, I, I, I, F, P, I, P, I, F, P, I]
    def mm(a, b, c):
        m, k = a.shape; n = b.shape[1]
        sg(101, 111, 111, m, n, k, 1.0, a.ctypes.data, k, b.ctypes.data, n, 0.0, c.ctypes.data, n)
        return c
    from concurrent.futures import ThreadPoolExecutor
    pool = ThreadPoolExecutor(1)
    def split(a, b, c):
        h = a.shape[0] // 2
        f = pool.submit(mm, a[h:], b, c[h:]); mm(a[:h], b, c[:h]); f.result()
    def t(fn, reps=200):
        for _ in range(10): fn()
        ts=[]
        for _ in range(reps):
            s=time.perf_counter(); fn(); ts.append(time.perf_counter()-s)
        return statistics.median(ts)
    mkl.MKL_Set_Num_Threads(2)
    with threadpool_limits(2):
        for (m,k,n) in ((128,784,512),(32,256,1024),(64,4096,256),(2048,256,1024)):
            a=np.random.rand(m,k).astype(np.float32); b=np.random.rand(k,n).astype(np.float32); c=np.empty((m,n),np.float32)
            fl=2*m*k*n
            print(f"{m}x{k}x{n}: openblas2 {fl/t(lambda: a@b)/1e9:6.1f}  mkl(layer {layer}, 2) {fl/t(lambda: mm(a,b,c))/1e9:6.1f}  mkl split-by-rows in pool {fl/t(lambda: split(a,b,c))/1e9:6.1f} GF/s")


if __name__ == "__main__":
    main()
