"""Session script of 2026-12-03 evening (issue 11, the Intel machine): one GEMM in two row blocks inside numba's
parallel runtime (prange, MKL per block), OpenBLAS held at one thread, against MKL on one thread.
Run from the repository root: `PYTHONPATH=. python docs/data/bench_2026-12-03_q7/q7_prange.py` (and with
NUMBA_THREADING_LAYER=workqueue); see README.md here."""
if __name__ == "__main__":
    import os, time, numpy as np
    os.environ.setdefault("NUMBA_THREADING_LAYER", "omp")
    import llvmlite.binding as llb
    from numba import njit, prange, types, config
    import numba
    from neurona.backend.kernels import cblas
    lib = cblas.mkl()
    llb.add_symbol("neurona_mkl_sgemm_t", lib.address("cblas_sgemm"))
    i32, ip = types.int32, types.intp
    sgemm = types.ExternalFunction("neurona_mkl_sgemm_t", types.void(i32, i32, i32, i32, i32, i32, types.float32, ip, i32, ip, i32, types.float32, ip, i32))
    @njit(parallel=True, nogil=True)
    def split_rows(a, b, out, parts):
        m, k = a.shape; n = b.shape[1]
        for p in prange(parts):
            r0 = m * p // parts; r1 = m * (p + 1) // parts
            sgemm(101, 111, 111, r1 - r0, n, k, np.float32(1.0), a.ctypes.data + r0 * k * 4, k, b.ctypes.data, n, np.float32(0.0), out.ctypes.data + r0 * n * 4, n)
    numba.set_num_threads(2)
    from threadpoolctl import threadpool_limits
    threadpool_limits(1, user_api='blas')
    rng = np.random.default_rng(0)
    for (m, k, n) in [(128, 784, 512), (128, 512, 512), (512, 128, 512)]:
        a = rng.standard_normal((m, k), dtype=np.float32); b = rng.standard_normal((k, n), dtype=np.float32); out = np.empty((m, n), np.float32)
        split_rows(a, b, out, 2)
        assert np.allclose(out, a @ b, atol=1e-3)
        def tm(f, nn=300):
            f(); t = time.perf_counter()
            for _ in range(nn): f()
            return (time.perf_counter() - t) / nn * 1e3
        print((m, k, n), "prange2 %.3f  mkl1 %.3f" % (tm(lambda: split_rows(a, b, out, 2)), tm(lambda: lib.gemm(a, b, out))), numba.threading_layer())
