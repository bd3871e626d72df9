"""Session script of 2026-12-03 evening (issues 11 and 12, the Intel machine): the op's row blocks at 2 threads: when each block starts and ends (they ran in turn until over_rows split them).
Run from the repository root: `PYTHONPATH=. python docs/data/bench_2026-12-03_q7/q7_interf4.py [args]`; see README.md here."""
if __name__ == "__main__":
    import time, threading, numpy as np, neurona as nr
    from neurona.backend import kernels
    from neurona.backend.kernels import rnn as rnnmod
    from neurona.nn.layers.recurrent import RecurrentSequence
    import neurona.nn.layers.recurrent as rec
    kernels.tune_malloc()
    nr.set_num_threads(2)
    log=[]
    orig=rnnmod.over_rows
    def over_rows(task, n, compiled=False):
        def wrapped(n0,n1):
            t0=time.perf_counter(); r=task(n0,n1); log.append((threading.get_ident()%1000, n0, round((t0-T0)*1e3,2), round((time.perf_counter()-T0)*1e3,2))); return r
        return orig(wrapped, n, compiled)
    rec.over_rows=over_rows
    N,T,H=32,64,256; GH=4*H
    rng=np.random.default_rng(0)
    Z=rng.standard_normal((N,T,GH),dtype=np.float32); R=rng.standard_normal((H,GH),dtype=np.float32)*0.05
    h0=np.zeros((N,H),np.float32); c0=h0.copy(); b=np.zeros(GH,np.float32)
    for i in range(4):
        log.clear(); T0=time.perf_counter(); RecurrentSequence().forward(Z,R,h0,c0,b,kind="lstm"); print(round((time.perf_counter()-T0)*1e3,2), log)
