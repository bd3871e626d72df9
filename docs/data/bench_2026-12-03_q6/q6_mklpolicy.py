"""benchmarks.run with a patched kernels.gemm: at several kernel threads, large GEMMs (>= 8 M) on MKL's
threaded layer (count = nr threads, set globally, never toggled); everything else as the code does
(small ones NumPy one BLAS thread; at 1 thread MKL sequential-like via count 1)."""


def main():
    import os, sys
    sys.path.insert(0, ".")
    import numpy
    import neurona as nr
    from neurona.backend import kernels, kernel_threads
    from neurona.backend.kernels import cblas
    layer = int(os.environ.get("LAYER", "0"))
    lib = cblas.CBlas(sys.prefix + "/lib/libmkl_rt.so.3")
    lib.lib.MKL_Set_Threading_Layer(layer)
    cblas._mkl = lib
    cblas._chosen = lib
    orig_gemm = kernels.gemm
    state = {"n": None}
    def set_global(n):
        if state["n"] != n:
            lib.lib.MKL_Set_Num_Threads(n); state["n"] = n
    orig_set = nr.set_num_threads
    def set_num_threads(n):
        orig_set(n); set_global(n)
    nr.set_num_threads = set_num_threads
    def gemm(a, b, out=None):
        if (type(a) is numpy.ndarray and type(b) is numpy.ndarray and a.ndim == 2 and b.ndim == 2 and kernel_threads() > 1
                and a.shape[0] * a.shape[1] * b.shape[1] >= kernels.MIN_GEMM_THREADS_WORK and lib.takes(a, b, out)):
            return lib.gemm(a, b, out)
        if kernel_threads() > 1:   # small at several threads, or ... : NumPy's rule (no MKL: its count must not toggle)
            saved = cblas._chosen; cblas._chosen = None
            try:
                return orig_gemm(a, b, out)
            finally:
                cblas._chosen = saved
        return orig_gemm(a, b, out)  # one kernel thread: the landed rule (MKL at the global count, which is 1 here)
    kernels.gemm = gemm
    kernels.matmul = lambda a, b: gemm(a, b)
    import neurona.ops.conv  # noqa  (uses kernels.gemm by attribute)
    from benchmarks import run
    run.main(sys.argv[1:])


if __name__ == "__main__":
    main()
