"""Session script of 2026-12-03 (issue 11, the Intel machine): see README.md here."""


def main():
    import sys, time, statistics, os
    import neurona as nr
    sys.path.insert(0, ".")
    from benchmarks.workloads import build_w1
    n = int(sys.argv[1])
    nr.set_num_threads(n)
    step, peer = build_w1()
    for _ in range(20): step()
    ts = []
    for _ in range(200):
        t = time.perf_counter(); step(); ts.append(time.perf_counter() - t)
    from neurona.backend.kernels import cblas
    print(os.environ.get("NEURONA_BLAS"), cblas.name(), "threads", n, "median %.2f ms min %.2f" % (statistics.median(ts) * 1e3, min(ts) * 1e3))


if __name__ == "__main__":
    main()
