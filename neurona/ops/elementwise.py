"""Elementwise ops with NumPy broadcasting: arithmetic, exp/log family, min/max, clip, where,
comparisons (no gradient), casts.
May import: neurona.backend, neurona.autograd, neurona.ops._base.
"""
from __future__ import annotations

from .. import backend as B
from ..autograd.function import Function, literal
from ..autograd.grad_mode import no_grad
from ._base import as_tensor, broadcast_error, const, tensor_operands, unbroadcast


class Add(Function):
    elementwise = "({0} + {1})"
    ufunc = "add"

    def forward(self, a, b):
        try:
            return a + b
        except ValueError:
            raise broadcast_error("add", a, b) from None

    def backward(self, g):
        a, b = self.inputs
        return (unbroadcast(g, a.shape) if a.requires_grad else None,
                unbroadcast(g, b.shape) if b.requires_grad else None)


class Sub(Function):
    elementwise = "({0} - {1})"
    ufunc = "subtract"

    def forward(self, a, b):
        try:
            return a - b
        except ValueError:
            raise broadcast_error("sub", a, b) from None

    def backward(self, g):
        a, b = self.inputs
        return (unbroadcast(g, a.shape) if a.requires_grad else None,
                unbroadcast(-g, b.shape) if b.requires_grad else None)


class Mul(Function):
    elementwise = "({0} * {1})"
    ufunc = "multiply"

    def forward(self, a, b):
        try:
            return a * b
        except ValueError:
            raise broadcast_error("mul", a, b) from None

    def backward(self, g):
        a, b = self.inputs
        return (unbroadcast(g * b, a.shape) if a.requires_grad else None,
                unbroadcast(g * a, b.shape) if b.requires_grad else None)


class Div(Function):
    elementwise = "({0} / {1})"
    ufunc = "true_divide"

    def forward(self, a, b):
        try:
            return a / b
        except ValueError:
            raise broadcast_error("div", a, b) from None

    def backward(self, g):
        a, b = self.inputs
        return (unbroadcast(g / b, a.shape) if a.requires_grad else None,
                unbroadcast(-g * self.output() / b, b.shape) if b.requires_grad else None)


class Pow(Function):
    elementwise = "({0} ** {1})"

    def forward(self, a, b):
        try:
            return a**b
        except ValueError:
            raise broadcast_error("pow", a, b) from None

    def backward(self, g):
        a, b = self.inputs
        ga = unbroadcast(g * b * a ** (b - 1), a.shape) if a.requires_grad else None
        gb = unbroadcast(g * self.output() * log(a), b.shape) if b.requires_grad else None
        return ga, gb


class PowScalar(Function):
    @classmethod
    def elementwise(cls, dtype, p):
        simple = {1: "{0}", 2: "({0} * {0})", 3: "({0} * {0} * {0})", 0.5: "math.sqrt({0})",
                  -1: f"({literal(1, dtype)} / {{0}})"}
        return simple.get(p, f"({{0}} ** {literal(p, dtype)})")

    def forward(self, a, p):
        self.p = p
        return a**p

    def backward(self, g):
        (a,) = self.inputs
        p = self.p
        # p = 0 and p = 1 skip a ** (p − 1): at a = 0 it is 0 ** −1 = inf, and 0 · inf = nan.
        return g * p if p in (0, 1) else g * p * a ** (p - 1)


class Neg(Function):
    elementwise = "(-{0})"
    ufunc = "negative"

    def forward(self, a):
        return -a

    def backward(self, g):
        return -g


class Exp(Function):
    elementwise = "math.exp({0})"
    ufunc = "exp"

    def forward(self, a):
        return B.array_module(a).exp(a)

    def backward(self, g):
        return g * self.output()


class Log(Function):
    elementwise = "math.log({0})"
    ufunc = "log"

    def forward(self, a):
        return B.array_module(a).log(a)

    def backward(self, g):
        return g / self.inputs[0]


class Log1p(Function):
    elementwise = "math.log1p({0})"
    ufunc = "log1p"

    def forward(self, a):
        return B.array_module(a).log1p(a)

    def backward(self, g):
        return g / (self.inputs[0] + 1)


class Sqrt(Function):
    elementwise = "math.sqrt({0})"
    ufunc = "sqrt"

    def forward(self, a):
        return B.array_module(a).sqrt(a)

    def backward(self, g):
        return g / (2 * self.output())


class Abs(Function):
    # the output, and the sign that forward saves for backward: a fused `g * sign` never stores it
    elementwise = ("abs({0})", "(1.0 if {0} > 0 else (-1.0 if {0} < 0 else 0.0))")

    def forward(self, a):
        xp = B.array_module(a)
        self.sign = xp.sign(a)
        return xp.abs(a)

    def backward(self, g):
        return g * const(self.sign)


class Maximum(Function):
    """Ties split the gradient in half between the two inputs, as PyTorch does."""

    @classmethod
    def elementwise(cls, dtype, take_max=True):
        gt, fn = (">", "max") if take_max else ("<", "min")
        return (f"{fn}({{0}}, {{1}})", f"(0.5 if {{0}} == {{1}} else (1.0 if {{0}} {gt} {{1}} else 0.0))")

    def forward(self, a, b, take_max=True):
        xp = B.array_module(a)
        try:
            out = xp.maximum(a, b) if take_max else xp.minimum(a, b)
        except ValueError:
            raise broadcast_error("maximum" if take_max else "minimum", a, b) from None
        first = (a > b) if take_max else (a < b)
        self.share = xp.where(a == b, 0.5, first).astype(out.dtype)
        return out

    def backward(self, g):
        a, b = self.inputs
        share = const(self.share)
        return (unbroadcast(g * share, a.shape) if a.requires_grad else None,
                unbroadcast(g * (1 - share), b.shape) if b.requires_grad else None)


class Clip(Function):
    @classmethod
    def elementwise(cls, dtype, lo, hi):
        v, cond = "{0}", []
        if lo is not None:
            v, cond = f"max({v}, {literal(lo, dtype)})", cond + [f"{{0}} >= {literal(lo, dtype)}"]
        if hi is not None:
            v, cond = f"min({v}, {literal(hi, dtype)})", cond + [f"{{0}} <= {literal(hi, dtype)}"]
        return v, f"(1.0 if {' and '.join(cond) or 'True'} else 0.0)"

    def forward(self, a, lo, hi):
        xp = B.array_module(a)
        self.mask = xp.ones(a.shape, dtype=a.dtype)
        if lo is not None:
            self.mask *= a >= lo
        if hi is not None:
            self.mask *= a <= hi
        return xp.clip(a, lo, hi)

    def backward(self, g):
        return g * const(self.mask)


class Where(Function):
    elementwise = "({0} if {2} else {1})"  # {2}: the cond array, a parameter the graph feeds as input 2

    def forward(self, a, b, cond):
        self.cond = cond
        try:
            return B.array_module(a).where(cond, a, b)
        except ValueError:
            raise broadcast_error("where", cond, a, b) from None

    def backward(self, g):
        a, b = self.inputs
        zero = const(B.array_module(g.data).zeros((), g.dtype))
        c = self.cond
        return (unbroadcast(where(c, g, zero), a.shape) if a.requires_grad else None,
                unbroadcast(where(c, zero, g), b.shape) if b.requires_grad else None)


class Cast(Function):
    elementwise = "{0}"  # the fused kernel casts every result to its dtype

    def forward(self, a, dtype):
        self.src = a.dtype
        return a.astype(dtype)

    def backward(self, g):
        return cast(g, self.src)


class ToDevice(Function):
    def forward(self, a, device):
        self.src = B.device_of(a)
        return B.to_device(a, device)

    def backward(self, g):
        return to_device(g, self.src)


def add(a, b):
    """`a + b` with broadcasting."""
    return Add.apply(*tensor_operands(a, b))


def sub(a, b):
    """`a - b` with broadcasting."""
    return Sub.apply(*tensor_operands(a, b))


def mul(a, b):
    """`a * b` with broadcasting."""
    return Mul.apply(*tensor_operands(a, b))


def div(a, b):
    """`a / b` with broadcasting; integer operands give float32 (true division, as PyTorch)."""
    a, b = tensor_operands(a, b)
    if a.dtype.kind in "iub" and b.dtype.kind in "iub":
        a, b = cast(a, B.default_float), cast(b, B.default_float)
    return Div.apply(a, b)


def pow(a, b):  # noqa: A001 - NumPy's name
    """`a ** b`; a Python-number exponent is the fast, common case."""
    if isinstance(b, (int, float)) and not isinstance(b, bool):
        return PowScalar.apply(as_tensor(a), p=b)
    return Pow.apply(*tensor_operands(a, b))


def neg(a):
    """−a."""
    return Neg.apply(as_tensor(a))


def exp(a):
    """e^a; its derivative is itself."""
    return Exp.apply(as_tensor(a))


def log(a):
    """Natural logarithm."""
    return Log.apply(as_tensor(a))


def log1p(a):
    """log(1 + a), accurate for small a."""
    return Log1p.apply(as_tensor(a))


def sqrt(a):
    """√a; the derivative 1/(2√a) is infinite at 0."""
    return Sqrt.apply(as_tensor(a))


def abs(a):  # noqa: A001 - NumPy's name
    """|a|; the gradient at 0 is 0 (sign(0))."""
    return Abs.apply(as_tensor(a))


def maximum(a, b):
    """Elementwise maximum; on ties each input gets half the gradient."""
    return Maximum.apply(*tensor_operands(a, b), take_max=True)


def minimum(a, b):
    """Elementwise minimum; on ties each input gets half the gradient."""
    return Maximum.apply(*tensor_operands(a, b), take_max=False)


def clip(a, a_min=None, a_max=None):
    """Clamp into [a_min, a_max]; the gradient passes where a_min <= a <= a_max."""
    return Clip.apply(as_tensor(a), lo=a_min, hi=a_max)


def where(cond, a, b):
    """`a` where `cond` holds, else `b` (cond takes no gradient)."""
    cond = cond.data if hasattr(cond, "_ctx") else cond
    a, b = tensor_operands(a, b)
    return Where.apply(a, b, cond=cond)


def cast(a, dtype):
    """`a` as `dtype`; the gradient is cast back."""
    a = as_tensor(a)
    if a.dtype == B.as_dtype(dtype):
        return a
    return Cast.apply(a, dtype=B.as_dtype(dtype))


def to_device(a, device):
    """`a` on `device` ('cpu' or 'cuda'); the gradient comes back."""
    return ToDevice.apply(as_tensor(a), device=device)


class Compare(Function):
    """`a <name> b` as a bool array, `name` a NumPy comparison ('less', 'equal', ...). It has no
    gradient (`differentiable = False`: its output never links into a graph); being a Function,
    graph mode records it as an ordinary node."""

    _SYMBOLS = {"less": "<", "less_equal": "<=", "greater": ">", "greater_equal": ">=",
                "equal": "==", "not_equal": "!="}
    
    @classmethod
    def elementwise(cls, dtype, name):
        sym = cls._SYMBOLS.get(name)
        return None if sym is None else f"({{0}} {sym} {{1}})"

    differentiable = False

    def forward(self, a, b, name):
        try:
            return getattr(B.array_module(a), name)(a, b)
        except ValueError:
            raise broadcast_error(name, a, b) from None

    def backward(self, g):
        return None, None


def _compare(name):
    def compare(a, b):
        a, b = tensor_operands(a, b)
        with no_grad():  # a bool result never takes part in a gradient
            return Compare.apply(a, b, name=name)

    compare.__name__ = name
    compare.__doc__ = f"Elementwise `{name}` as a bool tensor (no gradient)."
    return compare


less, less_equal = _compare("less"), _compare("less_equal")
greater, greater_equal = _compare("greater"), _compare("greater_equal")
equal, not_equal = _compare("equal"), _compare("not_equal")


class Rounding(Function):
    """sign, floor, round (`name`: the NumPy function). The gradient is zero almost everywhere
    (and undefined at the jumps), so, as `Compare`, the output never links into a graph:
    PyTorch's zero gradient is what a missing gradient sums to."""

    @classmethod
    def elementwise(cls, dtype, name, decimals=0):
        return None if decimals else f"np.{name}({{0}})"

    differentiable = False

    def forward(self, a, name, decimals=0):
        xp = B.array_module(a)
        return xp.round(a, decimals) if name == "rint" else getattr(xp, name)(a)

    def backward(self, g):
        return None


def sign(a):
    """-1, 0 or 1 by the sign of `a` (zero gradient).

    >>> import neurona as nr
    >>> nr.sign(nr.tensor([-2.0, 0.0, 3.0])).tolist()
    [-1.0, 0.0, 1.0]
    """
    return Rounding.apply(as_tensor(a), name="sign")


def floor(a):
    """The largest integer <= a, same dtype (zero gradient)."""
    return Rounding.apply(as_tensor(a), name="floor")


def round(a, decimals=0):  # noqa: A001 - NumPy's name
    """Round half to even (NumPy's and PyTorch's rule) to `decimals` places (zero gradient).

    >>> import neurona as nr
    >>> nr.round(nr.tensor([0.5, 1.5, 2.6])).tolist()
    [0.0, 2.0, 3.0]
    """
    return Rounding.apply(as_tensor(a), name="rint", decimals=decimals)
