"""The fused LSTM step kernels (neurona/backend/kernels/_rnn.py) against the NumPy formulas they
replace, on W4's sizes (N = 32, H = 256): the kernel's vectorised tanh per element against
NumPy's float32 tanh, one LSTM step's forward and BPTT elementwise work (the GEMM excluded),
and the recurrent kernel's column-major copy (`transpose_into` against `np.asfortranarray`).
Single thread; prints medians of many calls.

    python -m benchmarks.rnn_kernels [--reps 2000]
"""
from __future__ import annotations

import argparse
import os

import numpy as np

from .harness import median_s


def _median_us(fn, reps):
    return median_s(fn, reps) * 1e6


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--reps", type=int, default=2000)
    args = p.parse_args(argv)
    from numba import njit

    from neurona.backend.kernels import _rnn

    @njit(fastmath=_rnn._FM, error_model="numpy")  # the flags of the kernels that inline it
    def kernel_tanh(x, out):
        for k in range(x.shape[0]):
            out[k] = _rnn.tanh(x[k])

    rng = np.random.default_rng(0)
    x = (rng.standard_normal(32 * 1024) * 3).astype(np.float32)
    out = np.empty_like(x)
    t_np = _median_us(lambda: np.tanh(x, out=out), args.reps)
    t_k = _median_us(lambda: kernel_tanh(x, out), args.reps)
    print(f"machine load {os.getloadavg()[0]:.2f}")
    print(f"tanh over 32,768 float32: NumPy {t_np:.1f} us ({t_np * 1e3 / x.size:.2f} ns/element), "
          f"kernel {t_k:.1f} us ({t_k * 1e3 / x.size:.2f} ns/element): {t_np / t_k:.1f}x")

    N, T, H = 32, 64, 256
    f32 = lambda *s: rng.standard_normal(s).astype(np.float32)  # noqa: E731
    Z, a, b, h0, c0 = f32(N, T, 4 * H), f32(N, 4 * H), f32(4 * H), f32(N, H), f32(N, H)
    zi = np.arange(N * T).reshape(N, T)
    gates, tc, Y, m = f32(T, N, 4 * H), f32(T, N, H), f32(N, T, 2 * H), np.zeros((N, T), np.float32)
    gy, dh, dc, dZ, kh, db = f32(N, T, 2 * H), f32(N, H), f32(N, H), f32(N, T, 4 * H), f32(N, H), np.zeros(4 * H)
    Z2 = Z.reshape(N * T, 4 * H)
    fwd = _median_us(lambda: _rnn.lstm_forward(Z2, zi, b, a, 5, h0, c0, m, False, gates, tc, Y, 0), args.reps)
    bwd = _median_us(lambda: _rnn.lstm_backward(gy, 5, dh, dc, gates, tc, Y, c0, m, False, dZ, kh, db, 0), args.reps)

    # the NumPy formulas: one step of RecurrentSequence's float64/CuPy path, GEMM result given
    sig = lambda v: 0.5 * (1.0 + np.tanh(0.5 * v))  # noqa: E731

    def np_forward():
        z = Z[:, 5] + a
        z[:, :2 * H] = sig(z[:, :2 * H])
        z[:, 2 * H:3 * H] = np.tanh(z[:, 2 * H:3 * H])
        z[:, 3 * H:] = sig(z[:, 3 * H:])
        gates[5] = z
        c = z[:, H:2 * H] * c0 + z[:, :H] * z[:, 2 * H:3 * H]
        t = np.tanh(c)
        tc[5] = t
        Y[:, 5, :H] = z[:, 3 * H:] * t
        Y[:, 5, H:] = c

    def np_backward():
        g = gates[5]
        i, f, gg, o = g[:, :H], g[:, H:2 * H], g[:, 2 * H:3 * H], g[:, 3 * H:]
        t = tc[5]
        d_h = dh + gy[:, 5, :H]
        d_c = dc + gy[:, 5, H:] + d_h * o * (1 - t * t)
        dz = dZ[:, 5]
        dz[:, :H] = d_c * gg * i * (1 - i)
        dz[:, H:2 * H] = d_c * c0 * f * (1 - f)
        dz[:, 2 * H:3 * H] = d_c * i * (1 - gg * gg)
        dz[:, 3 * H:] = d_h * t * o * (1 - o)

    nfwd, nbwd = _median_us(np_forward, args.reps), _median_us(np_backward, args.reps)
    print(f"one LSTM step's elementwise work, N={N}, H={H} (GEMM excluded): forward kernel {fwd:.1f} us vs "
          f"NumPy {nfwd:.1f} us ({nfwd / fwd:.1f}x); BPTT kernel {bwd:.1f} us vs NumPy {nbwd:.1f} us ({nbwd / bwd:.1f}x)")

    R = f32(H, 4 * H)
    Rt = np.empty((4 * H, H), np.float32)
    t_f = _median_us(lambda: np.asfortranarray(R), args.reps)
    t_t = _median_us(lambda: _rnn.transpose_into(R, Rt), args.reps)
    print(f"the recurrent kernel ({H}, {4 * H}) column-major: np.asfortranarray {t_f:.1f} us, "
          f"transpose_into {t_t:.1f} us ({t_f / t_t:.1f}x)")


if __name__ == "__main__":
    main()
