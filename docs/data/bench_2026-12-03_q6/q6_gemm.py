"""Session script of 2026-12-03 (issue 11, the Intel machine): see README.md here."""


def main():
    import time, statistics, numpy as np, torch
    from threadpoolctl import threadpool_limits
    def t(fn, reps=30):
        for _ in range(3): fn()
        ts=[]
        for _ in range(reps):
            s=time.perf_counter(); fn(); ts.append(time.perf_counter()-s)
        return statistics.median(ts)
    for th in (1, 2):
        torch.set_num_threads(th)
        with threadpool_limits(th):
            for (m,k,n) in ((1024,1024,1024),(2048,256,1024),(32,256,1024),(128,784,512),(2048,256,65),(64,4096,256)):
                a=np.random.rand(m,k).astype(np.float32); b=np.random.rand(k,n).astype(np.float32)
                ta,tb=torch.from_numpy(a),torch.from_numpy(b)
                tn=t(lambda: a@b); tt=t(lambda: ta@tb)
                print(f"threads {th} {m}x{k}x{n}: numpy {2*m*k*n/tn/1e9:6.1f} GF/s torch {2*m*k*n/tt/1e9:6.1f} GF/s ratio {tn/tt:.2f}")


if __name__ == "__main__":
    main()
