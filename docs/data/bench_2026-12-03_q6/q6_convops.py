"""Session script of 2026-12-03 (issue 11, the Intel machine): see README.md here."""


def main():
    """ours() of the conv sweep for one shape at kernel threads 1 vs 2: time inside each by-batch entry."""
    import sys, time, statistics, collections
    sys.argv, args = sys.argv[:1], sys.argv[1:]
    import neurona as nr
    from neurona.backend import kernels
    from benchmarks.conv_sweep import _sides
    shape = tuple(map(int, args[:6])); reps = int(args[6]) if len(args) > 6 else 20
    acc = collections.defaultdict(list)
    def wrap(name):
        f = getattr(kernels, name)
        def g(*a, **k):
            t = time.perf_counter(); r = f(*a, **k); acc[name].append(time.perf_counter() - t); return r
        setattr(kernels, name, g)
    for nm in ("conv_by_batch", "conv_input_grad_by_batch", "conv_weight_grad_by_batch"):
        wrap(nm)
    ours, _ = _sides(*shape)
    res = {1: collections.defaultdict(list), 2: collections.defaultdict(list)}
    for block in range(4):
        for n in (1, 2):
            nr.set_num_threads(n); time.sleep(0.25)
            t_end = time.perf_counter() + 0.1
            while time.perf_counter() < t_end: ours()
            acc.clear()
            for _ in range(reps):
                t = time.perf_counter(); ours(); res[n]["total"].append(time.perf_counter() - t)
            for k, v in acc.items(): res[n][k] += v
    for n in (1, 2):
        print(shape, "threads", n, "  ".join("%s %.3f" % (k[:14], statistics.median(v) * 1e3) for k, v in res[n].items()))


if __name__ == "__main__":
    main()
