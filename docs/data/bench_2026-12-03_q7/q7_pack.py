"""Session script of 2026-12-03 evening (issues 11 and 12, the Intel machine): MKL's packed product (cblas_sgemm_pack/compute) against the unpacked one for the recurrent kernel's shapes.
Run from the repository root: `PYTHONPATH=. python docs/data/bench_2026-12-03_q7/q7_pack.py [args]`; see README.md here."""
if __name__ == "__main__":
    import time, ctypes, numpy as np
    from neurona.backend.kernels import cblas
    lib = cblas.mkl(); L = lib.lib
    N,H=32,256; GH=4*H
    rng=np.random.default_rng(0)
    R=rng.standard_normal((H,GH),dtype=np.float32)*0.05
    Rt=np.ascontiguousarray(R.T); RF=Rt.T
    x=rng.standard_normal((N,H),dtype=np.float32); out=np.empty((N,GH),np.float32)
    L.cblas_sgemm_pack_get_size.restype=ctypes.c_size_t
    L.cblas_sgemm_pack_get_size.argtypes=[ctypes.c_int]*4
    L.cblas_sgemm_pack.restype=None
    L.cblas_sgemm_pack.argtypes=[ctypes.c_int]*6+[ctypes.c_float, ctypes.c_void_p, ctypes.c_int, ctypes.c_void_p]
    L.cblas_sgemm_compute.restype=None
    L.cblas_sgemm_compute.argtypes=[ctypes.c_int]*6+[ctypes.c_void_p, ctypes.c_int, ctypes.c_void_p, ctypes.c_int, ctypes.c_float, ctypes.c_void_p, ctypes.c_int]
    sz=L.cblas_sgemm_pack_get_size(162, N, GH, H)
    print("pack bytes", sz, "vs", R.nbytes)
    buf=np.empty(sz//4+16, np.float32)
    # B = R (H x GH), row-major, no trans, ldb = GH
    L.cblas_sgemm_pack(101,162,111,N,GH,H,1.0,R.ctypes.data,GH,buf.ctypes.data)
    def comp():
        L.cblas_sgemm_compute(101,111,151,N,GH,H,x.ctypes.data,H,buf.ctypes.data,GH,0.0,out.ctypes.data,GH)
    def tm(f,n=500):
        f(); t=time.perf_counter()
        for _ in range(n): f()
        return (time.perf_counter()-t)/n*1e6
    comp(); print("maxdiff", np.abs(out-x@R).max())
    print("packed us", tm(comp))
    print("plain RF us", tm(lambda: lib.gemm(x,RF,out)))
    print("plain R us", tm(lambda: lib.gemm(x,R,out)))
    print("packed us", tm(comp))
    # backward: dz (N,GH) @ Rt (GH,H)
    dz=rng.standard_normal((N,GH),dtype=np.float32); dh=np.empty((N,H),np.float32)
    sz2=L.cblas_sgemm_pack_get_size(162, N, H, GH); buf2=np.empty(sz2//4+16,np.float32)
    L.cblas_sgemm_pack(101,162,111,N,H,GH,1.0,Rt.ctypes.data,H,buf2.ctypes.data)
    def comp2():
        L.cblas_sgemm_compute(101,111,151,N,H,GH,dz.ctypes.data,GH,buf2.ctypes.data,H,0.0,dh.ctypes.data,H)
    comp2(); print("maxdiff bwd", np.abs(dh-dz@Rt).max())
    print("bwd packed us", tm(comp2)); print("bwd plain us", tm(lambda: lib.gemm(dz,Rt,dh)))
    print("pack cost us", tm(lambda: L.cblas_sgemm_pack(101,162,111,N,GH,H,1.0,R.ctypes.data,GH,buf.ctypes.data),50))
