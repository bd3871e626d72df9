"""W1 step alone at 2 threads with every 2-D GEMM on MKL's threaded layer (LAYER env: 0 intel, 3 gnu)."""


def main():
    import os, sys, ctypes, time, statistics
    sys.path.insert(0, ".")
    import numpy as np
    import neurona as nr
    from neurona.backend import kernels
    from neurona.backend.kernels import cblas
    layer = int(os.environ.get("LAYER", "0"))
    lib = cblas.CBlas(sys.prefix + "/lib/libmkl_rt.so.3")
    lib.lib.MKL_Set_Threading_Layer(layer)
    lib.lib.MKL_Set_Num_Threads(2)
    orig = kernels.gemm
    def gemm(a, b, out=None):
        if lib.takes(a, b, out):
            return lib.gemm(a, b, out)
        return orig(a, b, out)
    kernels.gemm = gemm
    kernels.matmul = lambda a, b: gemm(a, b)
    nr.set_num_threads(2)
    from benchmarks.workloads import build_w1
    step, peer = build_w1()
    for _ in range(20): step()
    ts = []
    for _ in range(200):
        t = time.perf_counter(); step(); ts.append(time.perf_counter() - t)
    print(os.environ.get("TAG", ""), "layer", layer, "median %.2f ms" % (statistics.median(ts) * 1e3))


if __name__ == "__main__":
    main()
