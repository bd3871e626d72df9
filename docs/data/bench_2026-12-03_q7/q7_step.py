"""Session script of 2026-12-03 evening (issues 11 and 12, the Intel machine): one W4 LSTM step's parts alone: the gate kernel, the unpacked MKL product, NumPy's product (1 thread).
Run from the repository root: `PYTHONPATH=. python docs/data/bench_2026-12-03_q7/q7_step.py [args]`; see README.md here."""
if __name__ == "__main__":
    import time, numpy as np
    from neurona.backend import kernels
    from neurona.backend.kernels.rnn import rnn_kernels
    import neurona.backend.kernels._rnn as R_
    N,T,H=32,64,256; GH=4*H
    rng=np.random.default_rng(0)
    Z=rng.standard_normal((N*T,GH),dtype=np.float32); zi=np.arange(N*T).reshape(N,T)
    b=np.zeros(GH,np.float32); a=rng.standard_normal((N,GH),dtype=np.float32)
    h0=np.zeros((N,H),np.float32); c0=h0.copy(); m=np.zeros((1,1),np.float32)
    gates=np.empty((T,N,GH),np.float32); tc=np.empty((T,N,H),np.float32); Y=np.empty((N,T,2*H),np.float32)
    k=rnn_kernels(Z)
    def tm(f,n=300):
        f(); t=time.perf_counter()
        for _ in range(n): f()
        return (time.perf_counter()-t)/n*1e6
    print("lstm_forward us", tm(lambda: k.lstm_forward(Z,zi,b,a,5,h0,c0,m,False,gates,tc,Y,0)))
    R=rng.standard_normal((H,GH),dtype=np.float32)*0.05
    Rt=np.ascontiguousarray(R.T); RF=Rt.T
    hrs=np.empty((N,T,H),np.float32); hrs[:]=rng.standard_normal((N,T,H),dtype=np.float32)
    g=kernels.gemm_for(hrs[:,0],RF,a)
    print("gemm fn", g)
    print("gemm us", tm(lambda: g(hrs[:,3],RF,a)))
    print("np.matmul us", tm(lambda: np.matmul(hrs[:,3],RF,out=a)))
    dh=np.zeros((N,H),np.float32); dc=dh.copy(); carry=dh.copy(); db=np.zeros(GH); dZ=np.empty((N,T,GH),np.float32)
    gy=rng.standard_normal((N,T,H),dtype=np.float32)
    print("lstm_backward us", tm(lambda: k.lstm_backward(gy,5,dh,dc,gates,tc,Y,c0,m,False,dZ,carry,db,0)))
    print("gemm bwd us", tm(lambda: g(dZ[:,5],Rt,dh)))
