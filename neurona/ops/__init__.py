"""The differentiable op library. Each op is a Function subclass plus a lowercase function;
this package gathers the functions (`neurona.functional` re-exports them as `F`).
May import: neurona.backend, neurona.autograd, neurona.tensor.
"""
from ._base import ShapeError, as_tensor, unbroadcast
from .activation import elu, leaky_relu, log_softmax, maxout, prelu, relu, sigmoid, softmax, softplus, tanh
from .conv import conv2d, output_size
from .elementwise import (abs, add, cast, clip, div, equal, exp, greater, greater_equal, less, less_equal,
                          floor, log, log1p, maximum, minimum, mul, neg, not_equal, pow, round, sign, sqrt, sub, to_device,
                          where)
from .linalg import dot, einsum, matmul
from .movement import (broadcast_to, concatenate, expand_dims, flatten, gather, index, pad, raw_key, reshape,
                       split, squeeze, stack, swapaxes, transpose, unsqueeze)
from .nn import (binary_cross_entropy, binary_cross_entropy_with_logits, cross_entropy, dropout, embedding,
                 huber_loss, mse_loss, nll_loss, one_hot, quadratic_cost)
from .normalization import batch_norm
from .pool import avg_pool2d, max_pool2d
from .reduce import argmax, argmin, cumsum, logsumexp, max, mean, min, norm, prod, std, sum, var

# What `from neurona.ops import *` (hence `nr.<op>` and `F.<op>`) exports: the ops and the shape
# error, never the submodules (`nr.nn` is the layers package, not `neurona.ops.nn`) nor the
# helpers that other ops use (`unbroadcast`, `raw_key`), which stay importable from here.
__all__ = [
    "ShapeError", "abs", "add", "argmax", "argmin", "as_tensor", "avg_pool2d", "batch_norm",
    "binary_cross_entropy", "binary_cross_entropy_with_logits", "broadcast_to", "cast", "clip", "concatenate",
    "conv2d", "cross_entropy", "cumsum", "div", "dot", "dropout", "einsum", "elu", "embedding", "equal", "exp",
    "expand_dims", "flatten", "floor", "gather", "greater", "greater_equal", "huber_loss", "index",
    "leaky_relu", "less", "less_equal", "log", "log1p", "log_softmax", "logsumexp", "matmul", "max",
    "max_pool2d", "maximum", "maxout", "mean", "min", "minimum", "mse_loss", "mul", "neg", "nll_loss", "norm",
    "not_equal", "one_hot", "output_size", "pad", "pow", "prelu", "prod", "quadratic_cost", "relu", "reshape",
    "round", "sigmoid", "sign", "softmax", "softplus", "split", "sqrt", "squeeze", "stack", "std", "sub", "sum",
    "swapaxes", "tanh", "to_device", "transpose", "unsqueeze", "var", "where",
]
