"""Per-machine break-evens for the convolution algorithm choice, measured once and cached.

Whether Winograd beats im2col + GEMM depends on the CPU (cache sizes, BLAS kernel, memory
bandwidth), so `winograd.suits` asks this module for its thresholds instead of using constants
tuned on one machine. The first conv2d that needs them (NEURONA_CONV_ALGO=auto, a numba-backed
3×3 or 5×5 stride-1 layer) times both algorithms, forward + both gradients at one thread, on a
ladder of probe layers (batch 8 → 32, channels 8 → 32, a 16×16 map: no tile waste), plus a 14×14
probe whose 4×4 tiles waste 31 % of their area; it takes about a second. The result is written
as JSON to `$XDG_CACHE_HOME/neurona/conv_calibration.json` (else `~/.cache/neurona/`), keyed by
the CPU model, the CPU count, NumPy's BLAS and numba's version, and read back by later processes.

    min_work[r]   the smallest N·OH·OW·min(C, K) from which Winograd won on every larger probe
                  (r = 3 or 5; None: it never won, so auto keeps im2col)
    max_waste[r]  the tile waste allowed: 1.35 if Winograd won on the 14×14 probe, else 1.15

NEURONA_CONV_CALIBRATION=0 turns this off (the constants in winograd.py apply, as before);
`python -m neurona.backend.kernels.calibrate` re-measures and prints the result. A probe timed
while other processes load the machine can come out wrong: remeasure on a quiet machine.
May import: numpy, threadpoolctl (lazily), neurona.backend.
"""
from __future__ import annotations

import json
import os
import platform
import threading
import time
from pathlib import Path

import numpy

VERSION = 3  # 3: F(4×4, 5×5)'s transforms written out, the 5×5 tile chosen by data volume
# (batch, channels C = K, map) for each rung of the ladder, smallest work first
LADDER = ((8, 8, 16), (8, 16, 16), (16, 16, 16), (16, 32, 16), (32, 32, 16))
WASTE_PROBE = (16, 32, 14)
REPS = 5

_lock = threading.Lock()
_rules: dict | None = None


def enabled() -> bool:
    return os.environ.get("NEURONA_CONV_CALIBRATION", "1").strip() != "0"


def cache_path() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "neurona" / "conv_calibration.json"


def machine_key() -> str:
    model = platform.machine()
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    model = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    try:
        import numba  # noqa: PLC0415 - only present with the numba kernels
        nb = numba.__version__
    except ImportError:
        nb = "none"
    blas = "unknown"
    try:
        cfg = numpy.show_config(mode="dicts")
        blas = cfg.get("Build Dependencies", {}).get("blas", {}).get("name", "unknown")
    except (TypeError, AttributeError):
        pass
    return f"v{VERSION}|{model}|cpus={os.cpu_count()}|numpy={numpy.__version__}|blas={blas}|numba={nb}"


def _best(fn):
    fn()
    best = float("inf")
    for _ in range(REPS):
        t0 = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t0)
    return best


def _probe(r, n, c, size):
    """(im2col seconds, Winograd seconds) for one layer, forward + both gradients, float32."""
    from . import _xp, col2im, _fast  # noqa: PLC0415 - the package imports this module lazily
    from . import winograd as W  # noqa: PLC0415

    mod = _fast(numpy.zeros(1, numpy.float32))
    rng = numpy.random.default_rng(0)
    x = rng.standard_normal((n, c, size, size), dtype=numpy.float32)
    w = rng.standard_normal((c, c, r, r), dtype=numpy.float32)
    gy = rng.standard_normal((n, c, size, size), dtype=numpy.float32)
    p = r // 2
    geo = (r, r, 1, 1, p, p, 1, 1, size, size)
    w2 = w.reshape(c, -1)

    def im2col_step():
        cols = _xp.im2col(x, geo)
        y = (w2 @ cols).reshape(c, n, size, size).transpose(1, 0, 2, 3)
        numpy.ascontiguousarray(y)
        g2 = gy.transpose(1, 0, 2, 3).reshape(c, -1)
        col2im(w2.T @ g2, x.shape, geo)
        (cols @ g2.T).T.copy()

    def winograd_step():
        _, v = W.forward(mod, x, w, geo)
        with W.sharing_output_adjoint():
            W.input_grad(mod, gy, w, geo, x.shape)
            W.weight_grad(mod, x, gy, geo, v)

    return _best(im2col_step), _best(winograd_step)


def measure() -> dict:
    """Time the probes (one thread for the BLAS and the kernels) and derive the thresholds."""
    from threadpoolctl import threadpool_limits  # noqa: PLC0415 - a core dependency, heavy-ish

    from ..threads import thread_limit  # noqa: PLC0415

    out = {"key": machine_key(), "min_work": {}, "max_waste": {}, "probes": {},
           "date": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), "loadavg": list(os.getloadavg())}
    with threadpool_limits(1), thread_limit(1):
        for r in (3, 5):
            wins = []
            for n, c, size in LADDER:
                t_i, t_w = _probe(r, n, c, size)
                out["probes"][f"{r}x{r} {n}x{c}x{size}"] = [round(t_i * 1e3, 3), round(t_w * 1e3, 3)]
                wins.append((n * size * size * c, t_w < t_i))
            min_work = None
            for work, won in reversed(wins):  # the smallest work from which every larger rung won
                if not won:
                    break
                min_work = work
            out["min_work"][str(r)] = min_work
            n, c, size = WASTE_PROBE
            t_i, t_w = _probe(r, n, c, size)
            out["probes"][f"{r}x{r} {n}x{c}x{size}"] = [round(t_i * 1e3, 3), round(t_w * 1e3, 3)]
            out["max_waste"][str(r)] = 1.35 if t_w < t_i else 1.15
    return out


def _read(path, key, valid=lambda entry: {"min_work", "max_waste"} <= entry.keys()):
    """The cached entry `key` of JSON file `path`, or None (no file, no entry, or `valid` says no)."""
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    entry = data.get(key) if isinstance(data, dict) else None
    if not isinstance(entry, dict) or not valid(entry):
        return None
    return entry


def _write(path, key, entry):
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        try:
            data = json.loads(path.read_text())
            data = data if isinstance(data, dict) else {}
        except (OSError, ValueError):
            data = {}
        data[key] = entry
        tmp = path.with_suffix(f".{os.getpid()}.tmp")
        tmp.write_text(json.dumps(data, indent=1))
        os.replace(tmp, path)
    except OSError:
        pass  # a read-only home: keep the result for this process only


def rules(remeasure=False) -> dict | None:
    """The calibrated thresholds ({"min_work": {"3": int|None, "5": ...}, "max_waste": {...}}),
    measured on first use and cached; None when NEURONA_CONV_CALIBRATION=0."""
    global _rules
    if not enabled():
        return None
    with _lock:
        if _rules is None or remeasure:
            key, path = machine_key(), cache_path()
            entry = None if remeasure else _read(path, key)
            if entry is None:
                entry = measure()
                _write(path, key, entry)
            _rules = entry
        return _rules


# == which BLAS for kernels.gemm (cblas.py) ======================================================
# GEMM shapes of the workloads' small nets, (m, k, n): W1's first layer, a recurrent step (batch 32
# against a 256 × 1024 kernel), W3's classifier, W4's input projection. MKL is chosen when its
# total time on one thread is below NumPy's BLAS's by more than BLAS_MARGIN.
BLAS_PROBES = ((128, 784, 512), (32, 256, 1024), (64, 4096, 256), (2048, 64, 1024))
BLAS_MARGIN = 0.03
_blas: dict | None = None


def blas_path() -> Path:
    return cache_path().with_name("blas_calibration.json")


def _blas_key(lib) -> str:
    return f"{machine_key()}|{lib.path}"


def measure_blas(lib) -> dict:
    """Time NumPy's BLAS and `lib` (a cblas.CBlas) on BLAS_PROBES, one thread each, and choose."""
    from threadpoolctl import threadpool_limits  # noqa: PLC0415

    out = {"key": _blas_key(lib), "probes": {}, "date": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
           "loadavg": list(os.getloadavg())}
    rng = numpy.random.default_rng(0)
    total = [0.0, 0.0]
    with threadpool_limits(1):
        for m, k, n in BLAS_PROBES:
            a = rng.standard_normal((m, k), dtype=numpy.float32)
            b = rng.standard_normal((k, n), dtype=numpy.float32)
            c = numpy.empty((m, n), numpy.float32)
            t_np = _best(lambda: numpy.matmul(a, b, out=c))
            t_lib = _best(lambda: lib.gemm(a, b, c))
            out["probes"][f"{m}x{k}x{n}"] = [round(t_np * 1e6, 1), round(t_lib * 1e6, 1)]
            total[0] += t_np
            total[1] += t_lib
    out["total_us"] = [round(t * 1e6, 1) for t in total]
    out["use"] = "mkl" if total[1] < total[0] * (1 - BLAS_MARGIN) else "numpy"
    return out


def blas_rules(lib, remeasure=False) -> dict | None:
    """{"use": "mkl" | "numpy", "probes": {...}} for `lib` on this machine, measured on first use and
    cached in blas_calibration.json; None when NEURONA_CONV_CALIBRATION=0 (then NumPy's BLAS)."""
    global _blas
    if not enabled():
        return None
    with _lock:
        key = _blas_key(lib)
        if _blas is None or _blas.get("key") != key or remeasure:
            path = blas_path()
            entry = None if remeasure else _read(path, key, lambda e: e.get("use") in ("mkl", "numpy"))
            if entry is None:
                entry = measure_blas(lib)
                _write(path, key, entry)
            _blas = entry
        return _blas


if __name__ == "__main__":
    print(json.dumps(rules(remeasure=True), indent=1))
    print("cached in", cache_path())
    from . import cblas  # noqa: PLC0415

    if cblas.mkl() is not None:
        print(json.dumps(blas_rules(cblas.mkl(), remeasure=True), indent=1))
        print("cached in", blas_path())
    else:
        print("BLAS: NumPy's (MKL not loaded:", cblas.mkl_error(), ")")
