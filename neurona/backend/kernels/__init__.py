"""Optional compiled kernels (numba on CPU), each with a plain-array fallback.

A kernel is looked up by name; when numba is missing or `NEURONA_NO_NUMBA=1`, callers use
their plain-NumPy path. Compilation is cached on disk (numba `cache=True`).
May import: numba (lazily), numpy.
"""
