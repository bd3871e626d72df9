"""The differentiable op library. Each op is a Function subclass plus a lowercase function;
this package gathers the functions (`neurona.functional` re-exports them as `F`).
May import: neurona.backend, neurona.autograd, neurona.tensor.
"""
from ._base import ShapeError, as_tensor, unbroadcast
from .activation import elu, leaky_relu, log_softmax, maxout, prelu, relu, sigmoid, softmax, softplus, tanh
from .conv import conv2d, output_size
from .elementwise import (abs, add, cast, clip, div, equal, exp, greater, greater_equal, less, less_equal,
                          log, log1p, maximum, minimum, mul, neg, not_equal, pow, sqrt, sub, to_device, where)
from .linalg import dot, matmul
from .movement import (broadcast_to, concatenate, expand_dims, flatten, gather, index, pad, raw_key, reshape,
                       split, squeeze, stack, swapaxes, transpose)
from .nn import (binary_cross_entropy, binary_cross_entropy_with_logits, cross_entropy, dropout, embedding,
                 huber_loss, mse_loss, nll_loss, quadratic_cost)
from .normalization import batch_norm
from .pool import avg_pool2d, max_pool2d
from .reduce import argmax, argmin, logsumexp, max, mean, min, sum, var
