"""The table-driven op oracle (after tinygrad's `helper_test_op`): run one op in neurona and in
PyTorch 2.13 CPU on the same inputs, compare the forward values, the output dtype and every input
gradient, then check the gradient numerically with `nr.gradcheck` and, when asked, the gradient of
the gradient with `nr.gradgradcheck`.

>>> import torch, neurona as nr
>>> check_op([(2, 3), (3,)], nr.mul, torch.mul, gradgrad=True)
"""
from __future__ import annotations

import numpy as np
import torch

import neurona as nr

TOL = {"float32": dict(rtol=1e-5, atol=1e-5), "float64": dict(rtol=1e-10, atol=1e-12)}


def uniform(low=-2.0, high=2.0):
    """Inputs uniform in [low, high): far enough from any kink that central differences hold."""
    return lambda rng, shape: rng.uniform(low, high, shape)


def away_from_zero(low=0.1, high=2.0):
    """|x| in [low, high) with a random sign: for ops with a kink at 0 (abs, relu, ...)."""
    return lambda rng, shape: rng.uniform(low, high, shape) * rng.choice([-1.0, 1.0], shape)


def distinct(low=-2.0, high=2.0):
    """Values spaced at least 0.05 apart: max/min/sort-like ops have no ties to blur."""

    def gen(rng, shape):
        n = int(np.prod(shape, dtype=int))
        grid = np.linspace(low, high, max(n, 2))[:n] if n else np.zeros(0)
        return rng.permutation(grid).reshape(shape)

    return gen


def _as_list(out):
    return list(out) if isinstance(out, (tuple, list)) else [out]


def _arrays(shapes, gen, seed):
    rng = np.random.default_rng(seed)
    gens = gen if isinstance(gen, (list, tuple)) else [gen] * len(shapes)
    return [g(rng, s) for g, s in zip(gens, shapes)]


def check_op(shapes, nr_fn, torch_fn, *, gen=None, grad=True, gradcheck=True, gradgrad=False,
             dtypes=("float32", "float64"), tol=None, gc_shapes=None, seed=0):
    """Compare `nr_fn(*tensors)` with `torch_fn(*torch_tensors)` for inputs of `shapes`.

    `gen` makes the float64 input data (one generator, or one per input). For each dtype the
    forward results must match in value and dtype, and for `grad` so must the gradient of
    Σ out·v (v random) with respect to every input. Then `gradcheck` (float64, on `gc_shapes`
    if the shapes are too large for central differences) and, with `gradgrad`, `gradgradcheck`.
    """
    gen = gen or uniform()
    arrays = _arrays(shapes, gen, seed)
    for dtype in dtypes:
        tol_d = {**TOL[dtype], **((tol or {}).get(dtype, {}))}
        xs = [nr.tensor(a.astype(dtype), requires_grad=grad) for a in arrays]
        ts = [torch.tensor(a.astype(dtype), requires_grad=grad) for a in arrays]
        outs, refs = _as_list(nr_fn(*xs)), _as_list(torch_fn(*ts))
        assert len(outs) == len(refs), f"{len(outs)} outputs, torch has {len(refs)}"
        for k, (o, r) in enumerate(zip(outs, refs)):
            r_np = r.detach().numpy()
            assert o.shape == tuple(r_np.shape), f"output {k}: shape {o.shape}, torch {tuple(r_np.shape)}"
            assert o.dtype == r_np.dtype, f"output {k}: dtype {o.dtype}, torch {r_np.dtype}"
            np.testing.assert_allclose(o.numpy(), r_np, **tol_d, err_msg=f"forward {dtype} output {k}")
        if not grad:
            continue
        rng = np.random.default_rng(seed + 1)
        vs = [rng.standard_normal(o.shape).astype(dtype) for o in outs]
        total = sum(((o * nr.tensor(v)).sum() for o, v in zip(outs, vs)), nr.tensor(np.zeros((), dtype)))
        total.backward()
        ref_total = sum((r * torch.tensor(v)).sum() for r, v in zip(refs, vs))
        ref_grads = torch.autograd.grad(ref_total, ts, allow_unused=True)
        for i, (x, rg) in enumerate(zip(xs, ref_grads)):
            want = np.zeros(x.shape, dtype) if rg is None else rg.numpy()
            got = np.zeros(x.shape, dtype) if x.grad is None else x.grad.numpy()
            assert got.dtype == want.dtype, f"grad of input {i}: dtype {got.dtype}, torch {want.dtype}"
            np.testing.assert_allclose(got, want, **tol_d, err_msg=f"gradient {dtype} of input {i}")
    if gradcheck or gradgrad:
        gc_arrays = arrays if gc_shapes is None else _arrays(gc_shapes, gen, seed)
        xs = [nr.tensor(a, dtype="float64", requires_grad=True) for a in gc_arrays]
        if gradcheck:
            nr.gradcheck(nr_fn, xs)
        if gradgrad:
            nr.gradgradcheck(nr_fn, xs)


def hvp_check(fn, x_data, torch_fn):
    """A Hessian-vector product built with create_graph=True matches torch's double backward."""
    rng = np.random.default_rng(7)
    v = rng.standard_normal(x_data.shape)
    x = nr.tensor(x_data, dtype="float64", requires_grad=True)
    (g,) = nr.grad(fn(x), [x], create_graph=True)
    (hv,) = nr.grad((g * nr.tensor(v)).sum(), [x])
    xt = torch.tensor(x_data, dtype=torch.float64, requires_grad=True)
    (gt,) = torch.autograd.grad(torch_fn(xt), [xt], create_graph=True)
    (hvt,) = torch.autograd.grad((gt * torch.tensor(v)).sum(), [xt])
    np.testing.assert_allclose(g.numpy(), gt.detach().numpy(), rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(hv.numpy(), hvt.numpy(), rtol=1e-9, atol=1e-11)
