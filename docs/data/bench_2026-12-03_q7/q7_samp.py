"""Session script of 2026-12-03 evening (issues 11 and 12, the Intel machine): W4's sampler: 1,000 characters, one step, one token draw (1 thread).
Run from the repository root: `PYTHONPATH=. python docs/data/bench_2026-12-03_q7/q7_samp.py [args]`; see README.md here."""
if __name__ == "__main__":
    import time, numpy as np, sys

    import neurona as nr
    nr.set_num_threads(1)
    from benchmarks.harness import set_threads
    set_threads(1)
    from benchmarks.w4_w6_text import build_w4
    from neurona.text.generate import Sampler
    model, tm, ours, peer = build_w4()
    s = Sampler(model)
    s.generate([1], 50, temperature=0.8, seed=0)
    def tmf(f, n=5):
        best=1e9
        for _ in range(n):
            t=time.perf_counter(); f(); best=min(best, time.perf_counter()-t)
        return best
    print("generate 1000 ms", tmf(lambda: s.generate([1], 1000, temperature=0.8, seed=0))*1e3)
    s.reset(1); ids=np.array([3])
    print("step us", tmf(lambda: [s.step(ids) for _ in range(1000)])*1e3)
    logits = s.step(ids)[0]
    rng=np.random.default_rng(0)
    def draw():
        l = logits.astype(np.float64) / 0.8
        p = np.exp(l - l.max()); cdf = (p / p.sum()).cumsum(); cdf /= cdf[-1]
        return int(cdf.searchsorted(rng.random(), side="right"))
    print("draw us", tmf(lambda: [draw() for _ in range(1000)])*1e3)
