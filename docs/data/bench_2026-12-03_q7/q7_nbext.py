"""Session script of 2026-12-03 evening (issues 11 and 12, the Intel machine): the prototype: one LSTM layer's forward as one numba loop calling MKL's packed product, against the op's Python step loop.
Run from the repository root: `PYTHONPATH=. python docs/data/bench_2026-12-03_q7/q7_nbext.py [args]`; see README.md here."""
if __name__ == "__main__":
    import time, ctypes, numpy as np
    import llvmlite.binding as llb
    from numba import njit, types
    from neurona.backend.kernels import cblas
    from neurona.backend.kernels.rnn import rnn_kernels
    lib = cblas.mkl(); L = lib.lib
    for nm in ("cblas_sgemm_compute",):
        llb.add_symbol(nm, ctypes.cast(getattr(L, nm), ctypes.c_void_p).value)
    i32, f32, ip = types.int32, types.float32, types.intp
    compute = types.ExternalFunction("cblas_sgemm_compute", types.void(i32,i32,i32,i32,i32,i32, ip,i32, ip,i32, f32, ip,i32))
    L.cblas_sgemm_pack_get_size.restype=ctypes.c_size_t
    L.cblas_sgemm_pack_get_size.argtypes=[ctypes.c_int]*4
    L.cblas_sgemm_pack.restype=None
    L.cblas_sgemm_pack.argtypes=[ctypes.c_int]*6+[ctypes.c_float, ctypes.c_void_p, ctypes.c_int, ctypes.c_void_p]
    from neurona.backend.kernels._rnn import lstm_forward

    @njit(nogil=True, cache=True)
    def seq_fwd(Z, zi, b, pack, h0, c0, m, use_mask, gates, tc, Y, hrs, a, n0, n1):
        T = hrs.shape[1]; H = hrs.shape[2]; GH = 4 * H; rows = n1 - n0
        for t in range(T):
            for r in range(rows):
                src = h0[n0 + r] if t == 0 else Y[n0 + r, t - 1, :H]
                dst = hrs[n0 + r, t]
                for j in range(H):
                    dst[j] = src[j]
            compute(101, 111, 151, rows, GH, H, hrs[n0:, t].ctypes.data, T * H, pack.ctypes.data, GH, np.float32(0.0), a.ctypes.data, GH)
            lstm_forward(Z, zi, b, a, t, h0, c0, m, use_mask, gates, tc, Y, n0)

    N,T,H=32,64,256; GH=4*H
    rng=np.random.default_rng(0)
    Z=rng.standard_normal((N*T,GH),dtype=np.float32); zi=np.arange(N*T).reshape(N,T)
    b=np.zeros(GH,np.float32); R=(rng.standard_normal((H,GH),dtype=np.float32)*0.05)
    h0=rng.standard_normal((N,H),dtype=np.float32); c0=h0.copy(); m=np.zeros((1,1),np.float32)
    gates=np.empty((T,N,GH),np.float32); tc=np.empty((T,N,H),np.float32); Y=np.empty((N,T,2*H),np.float32)
    hrs=np.empty((N,T,H),np.float32); a=np.empty((N,GH),np.float32)
    sz=L.cblas_sgemm_pack_get_size(162, N, GH, H); pack=np.empty(sz//4+16,np.float32)
    t0=time.perf_counter(); L.cblas_sgemm_pack(101,162,111,N,GH,H,1.0,R.ctypes.data,GH,pack.ctypes.data); print("pack", time.perf_counter()-t0)
    t0=time.perf_counter(); seq_fwd(Z,zi,b,pack,h0,c0,m,False,gates,tc,Y,hrs,a,0,N); print("first call s", time.perf_counter()-t0)
    Y1=Y.copy()
    # reference via the op
    import neurona as nr
    from neurona.nn.layers.recurrent import RecurrentSequence
    def ref():
        op=RecurrentSequence()
        return op.forward(Z.reshape(N,T,GH),R,h0,c0,b,kind="lstm")
    Yr=ref()
    print("maxdiff", np.abs(Yr-Y1).max())
    def tm(f,n=20):
        f(); t=time.perf_counter()
        for _ in range(n): f()
        return (time.perf_counter()-t)/n*1e3
    for _ in range(2):
        print("numba seq ms", tm(lambda: seq_fwd(Z,zi,b,pack,h0,c0,m,False,gates,tc,Y,hrs,a,0,N)))
        print("current op ms", tm(ref))
    # half rows
    a2=np.empty((16,GH),np.float32)
    print("numba seq 16 rows ms", tm(lambda: seq_fwd(Z,zi,b,pack,h0,c0,m,False,gates,tc,Y,hrs,a2,0,16)))
