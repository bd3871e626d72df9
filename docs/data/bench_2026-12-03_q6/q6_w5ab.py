"""W5's traced learner step (nr.jit) with graph-mode MatMuls on np.matmul against every MatMul on
kernels.gemm, two learners in one process, 30 alternating blocks of 50 steps:
`python docs/data/bench_2026-12-03_q6/q6_w5ab.py [THREADS]` (session of 2026-12-03 night)."""


def main():
    import sys, time, statistics
    sys.path.insert(0, ".")
    import numpy as np
    import neurona as nr
    from neurona.graph import executor
    from neurona.backend import kernels
    nr.set_num_threads(int(sys.argv[1]) if len(sys.argv) > 1 else 1)
    from benchmarks import w5_dqn
    _, _, _, tA, _ = w5_dqn.sides()
    for _ in range(3): tA()
    orig = executor.ufunc
    def uf(node):
        if getattr(node.cls, "ufunc", None) == "matmul":
            return kernels.gemm
        return orig(node)
    executor.ufunc = uf
    _, _, _, tB, _ = w5_dqn.sides()
    for _ in range(3): tB()
    executor.ufunc = orig
    res = {"np.matmul": [], "kernels.gemm": []}
    for _ in range(30):
        for name, f in (("np.matmul", tA), ("kernels.gemm", tB)):
            ts = []
            for _ in range(50):
                t = time.perf_counter(); f(); ts.append(time.perf_counter() - t)
            res[name].append(statistics.median(ts))
    for k, v in res.items():
        print(k, "median of block medians %.1f us" % (statistics.median(v) * 1e6), "min %.1f" % (min(v) * 1e6))


if __name__ == "__main__":
    main()
