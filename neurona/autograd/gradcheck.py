"""Numerical gradient checks (the course's check): central differences in float64.

`gradcheck` compares the gradient autograd computes with (f(x + ε) − f(x − ε)) / 2ε for every
element of every input; `gradgradcheck` does the same for the gradient of the gradient, which
tests backward formulas under `create_graph=True`. On failure the report names the worst
element: which input, which index, both values and the error.
May import: neurona.backend, neurona.tensor, neurona.autograd.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy

from ..tensor import Tensor
from .engine import run_backward
from .grad_mode import no_grad, set_grad_enabled


class GradcheckError(AssertionError):
    pass


@dataclass
class GradcheckReport:
    ok: bool
    max_abs_error: float
    worst: str

    def __bool__(self):
        return self.ok


def _outputs(fn, inputs):
    out = fn(*inputs)
    return list(out) if isinstance(out, (tuple, list)) else [out]


def _scalar(fn, inputs, projections):
    """Σ_i <out_i, v_i>: a random projection turns any outputs into one scalar."""
    total = None
    for out, v in zip(_outputs(fn, inputs), projections):
        term = (out * v).sum()
        total = term if total is None else total + term
    return total


def _check(fn, inputs, eps, atol, rtol, what, numeric_records=False):
    tensors = [t for t in inputs if isinstance(t, Tensor) and t.requires_grad]
    for t in tensors:
        if t.dtype != numpy.float64:
            raise TypeError(f"{what}: inputs must be float64 for a numerical check, got {t.dtype}")
        t.data = numpy.ascontiguousarray(t.data)  # perturbed in place through a flat view
    rng = numpy.random.default_rng(0)
    with no_grad():
        outs = _outputs(fn, inputs)
    projections = [Tensor(rng.standard_normal(o.shape)) for o in outs]
    total = _scalar(fn, inputs, projections)
    analytic = run_backward([total], [Tensor(numpy.ones(()))], tensors, retain_graph=False)
    worst_err, worst = 0.0, "none"
    ok = True
    for k, t in enumerate(tensors):
        a = numpy.zeros(t.shape) if analytic[k] is None else numpy.asarray(analytic[k].data)
        flat = t.data.reshape(-1)
        for i in range(flat.size):
            orig = flat[i]
            with set_grad_enabled(numeric_records):
                flat[i] = orig + eps
                plus = float(_scalar(fn, inputs, projections).data)
                flat[i] = orig - eps
                minus = float(_scalar(fn, inputs, projections).data)
            flat[i] = orig
            numeric = (plus - minus) / (2 * eps)
            got = float(a.reshape(-1)[i])
            err = abs(got - numeric)
            if err > atol + rtol * abs(numeric):
                ok = False
            if err >= worst_err:
                idx = numpy.unravel_index(i, t.shape) if t.shape else ()
                worst_err = err
                worst = (f"input {_index(inputs, t)} (shape {t.shape}) at index "
                         f"{tuple(int(j) for j in idx)}: analytic {got:.8g}, numerical {numeric:.8g}, "
                         f"abs error {err:.3g}")
    return GradcheckReport(ok, worst_err, worst)


def _index(seq, t):
    for i, s in enumerate(seq):
        if s is t:
            return i
    return -1


def gradcheck(fn, inputs, eps=1e-6, atol=1e-5, rtol=1e-3, raise_exception=True):
    """Check autograd's gradients of `fn(*inputs)` against central differences.

    Inputs that require grad must be float64. Returns a report (truthy when it passes); with
    `raise_exception` a failure raises GradcheckError naming the worst element.

    >>> import neurona as nr
    >>> x = nr.tensor([0.5, -1.0], dtype="float64", requires_grad=True)
    >>> bool(nr.gradcheck(lambda t: (t * t).tanh(), [x]))
    True
    """
    report = _check(fn, list(inputs), eps, atol, rtol, "gradcheck")
    if not report.ok and raise_exception:
        raise GradcheckError(f"gradcheck failed; worst element: {report.worst}")
    return report


def gradgradcheck(fn, inputs, eps=1e-6, atol=1e-5, rtol=1e-3, raise_exception=True):
    """Check second-order gradients: the gradient (built with create_graph=True) of
    Σ <∂fn/∂inputs, u> is compared with central differences of that first-order gradient."""
    inputs = list(inputs)
    tensors = [t for t in inputs if isinstance(t, Tensor) and t.requires_grad]
    rng = numpy.random.default_rng(1)
    with no_grad():
        outs = _outputs(fn, inputs)
    v = [Tensor(rng.standard_normal(o.shape)) for o in outs]

    def first_order(*xs):
        total = _scalar(fn, list(xs), v)
        wrt = [x for x in xs if isinstance(x, Tensor) and x.requires_grad]
        grads = run_backward([total], [Tensor(numpy.ones(()))], wrt, retain_graph=True, create_graph=True)
        return [g if g is not None else Tensor(numpy.zeros(w.shape)) for g, w in zip(grads, wrt)]

    report = _check(first_order, inputs, eps, atol, rtol, "gradgradcheck", numeric_records=True)
    if not report.ok and raise_exception:
        raise GradcheckError(f"gradgradcheck failed; worst element: {report.worst}")
    return report
