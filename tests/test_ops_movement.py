"""Movement ops against PyTorch: reshape, transpose, broadcast_to, squeeze/expand_dims, flatten,
concatenate/stack/split, pad, indexing (basic, integer-array, bool; the gradient adds up at
repeated indices) and gather. All are linear, so gradgradcheck runs on each."""
import numpy as np
import pytest
import torch
import torch.nn.functional as TF
from hypothesis import given, strategies as st

import neurona as nr
from oracle import check_op

UNARY = {
    "reshape": (lambda x: x.reshape(4, 6), lambda x: x.reshape(4, 6)),
    "reshape_-1": (lambda x: nr.reshape(x, (-1, 3)), lambda x: x.reshape(-1, 3)),
    "transpose": (lambda x: nr.transpose(x), lambda x: x.permute(2, 1, 0)),
    "transpose_axes": (lambda x: x.transpose(1, 2, 0), lambda x: x.permute(1, 2, 0)),
    "transpose_neg_axes": (lambda x: nr.transpose(x, (-1, 0, 1)), lambda x: x.permute(2, 0, 1)),
    "T": (lambda x: x.reshape(6, 4).T, lambda x: x.reshape(6, 4).T),
    "swapaxes": (lambda x: x.swapaxes(0, 2), lambda x: x.transpose(0, 2)),
    "broadcast_to": (lambda x: nr.broadcast_to(x[:, :1], (5, 2, 3, 4)), lambda x: x[:, :1].expand(5, 2, 3, 4)),
    "flatten": (lambda x: nr.flatten(x), lambda x: x.flatten()),
    "flatten_1": (lambda x: x.flatten(1), lambda x: x.flatten(1)),
    "expand_dims_0": (lambda x: nr.expand_dims(x, 0), lambda x: x.unsqueeze(0)),
    "expand_dims_-1": (lambda x: x.expand_dims(-1), lambda x: x.unsqueeze(-1)),
    "squeeze_all": (lambda x: x[:, :1, None].squeeze(), lambda x: x[:, :1, None].squeeze()),
    "squeeze_axis": (lambda x: nr.squeeze(x[:, :1], 1), lambda x: x[:, :1].squeeze(1)),
    "pad_int": (lambda x: nr.pad(x, 1), lambda x: TF.pad(x, (1, 1) * 3)),
    "pad_pairs": (lambda x: nr.pad(x, ((0, 0), (2, 1), (0, 3)), value=-1.5),
                  lambda x: TF.pad(x, (0, 3, 2, 1), value=-1.5)),
}


@pytest.mark.parametrize("name", UNARY)
def test_unary_movement(name):
    nr_fn, torch_fn = UNARY[name]
    check_op([(2, 3, 4)], nr_fn, torch_fn, gradgrad=True)


INDEX_KEYS = {
    "int": lambda: 1,
    "neg_int": lambda: -1,
    "slice": lambda: slice(1, None),
    "step_slice": lambda: (slice(None), slice(None, None, 2)),
    "ellipsis_none": lambda: (Ellipsis, None, 0),
    "int_array_repeats": lambda: np.array([0, 2, 0, 0]),
    "int_list": lambda: [1, 1, 0],
    "two_arrays": lambda: (np.array([0, 2, 2]), np.array([1, 1, 3])),
    "array_and_slice": lambda: (slice(None), np.array([3, 0, 3])),
    "bool_mask": lambda: np.array([True, False, True]),
    "bool_mask_2d": lambda: np.arange(12).reshape(3, 4) % 3 == 0,
}


@pytest.mark.parametrize("name", INDEX_KEYS)
@pytest.mark.parametrize("as_tensor", [False, True])
def test_index(name, as_tensor):
    key = INDEX_KEYS[name]()
    torch_key = tuple(torch.tensor(k) if isinstance(k, np.ndarray) else k for k in key) if isinstance(key, tuple) else (
        torch.tensor(key) if isinstance(key, (np.ndarray, list)) else key)
    nr_key = key
    if as_tensor:
        if isinstance(key, np.ndarray):
            nr_key = nr.tensor(key)
        elif isinstance(key, tuple):
            nr_key = tuple(nr.tensor(k) if isinstance(k, np.ndarray) else k for k in key)
    check_op([(3, 4)], lambda x: x[nr_key], lambda x: x[torch_key], gradgrad=True)


def test_index_gradient_adds_up_at_repeated_indices():
    x = nr.tensor([1.0, 2.0, 3.0], requires_grad=True)
    x[[0, 0, 2, 0]].sum().backward()
    assert x.grad.tolist() == [3.0, 0.0, 1.0]


def test_index_out_of_range_names_the_shape():
    with pytest.raises(IndexError, match=r"index: .*\(tensor shape \(2, 3\)\)"):
        nr.zeros((2, 3))[5]


@pytest.mark.parametrize("axis", [0, 1, -1])
def test_concatenate(axis):
    shapes = {0: [(2, 3), (1, 3), (3, 3)], 1: [(2, 1), (2, 3), (2, 2)], -1: [(2, 1), (2, 3), (2, 2)]}[axis]
    check_op(shapes, lambda *xs: nr.concatenate(xs, axis), lambda *xs: torch.cat(xs, axis), gradgrad=True)


def test_concatenate_with_a_constant():
    check_op([(2, 3)], lambda x: nr.concatenate([x, nr.ones((1, 3), dtype=x.dtype)]),
             lambda x: torch.cat([x, torch.ones(1, 3, dtype=x.dtype)]))


@pytest.mark.parametrize("axis", [0, 1, 2, -1])
def test_stack(axis):
    check_op([(2, 3)] * 3, lambda *xs: nr.stack(xs, axis), lambda *xs: torch.stack(xs, axis), gradgrad=True)


@pytest.mark.parametrize("sections, axis", [(3, 0), (2, 1), ([1, 3], 1), ([2], -1), ([0, 2], 0)])
def test_split(sections, axis):
    """NumPy's meaning: an int is a number of equal sections, a list the split points."""
    check_op([(6, 4)], lambda x: nr.split(x, sections, axis), lambda x: torch.tensor_split(x, sections, axis),
             gradgrad=True)


def test_split_unequal_sections_is_an_error():
    with pytest.raises(nr.ShapeError, match="split: axis 0 of length 5 does not split into 2 equal sections"):
        nr.split(nr.zeros(5), 2)


@pytest.mark.parametrize("shape, idx_shape, axis", [((3, 4), (3, 2), 1), ((3, 4), (5, 4), 0),
                                                    ((2, 3, 4), (2, 3, 6), -1), ((2, 3, 4), (2, 1, 4), 1)])
def test_gather(shape, idx_shape, axis):
    idx = np.random.default_rng(4).integers(0, shape[axis], idx_shape)
    check_op([shape], lambda x: nr.gather(x, nr.tensor(idx), axis), lambda x: torch.gather(x, axis, torch.tensor(idx)),
             gradgrad=True)


def test_squeeze_of_a_long_axis_is_an_error():
    with pytest.raises(nr.ShapeError, match=r"squeeze: axis 1 has length 3, not 1 \(shape \(2, 3\)\)"):
        nr.squeeze(nr.zeros((2, 3)), 1)


@pytest.mark.parametrize("call, message", [
    (lambda: nr.reshape(nr.zeros((2, 3)), (4, 2)), r"reshape: cannot reshape shape \(2, 3\) \(6 elements\) into \(4, 2\)"),
    (lambda: nr.broadcast_to(nr.zeros((2, 3)), (3, 3)), r"broadcast_to: shape \(2, 3\) cannot be broadcast to \(3, 3\)"),
    (lambda: nr.transpose(nr.zeros((2, 3)), (0, 0)), r"transpose: axes \(0, 0\) are not a permutation of 2 dims"),
    (lambda: nr.concatenate([nr.zeros((2, 3)), nr.zeros((2, 4))]), r"concatenate: shapes \(2, 3\), \(2, 4\) differ outside axis 0"),
    (lambda: nr.stack([nr.zeros((2, 3)), nr.zeros((3, 2))]), r"stack: all shapes must be equal, got \[\(2, 3\), \(3, 2\)\]"),
    (lambda: nr.pad(nr.zeros((2, 3)), ((1, 1),)), r"pad: pad_width has 1 entries for a tensor with 2 dims"),
    (lambda: nr.gather(nr.zeros((2, 3)), nr.tensor([0, 1]), 1), r"gather: indices shape \(2,\) must have as many dims as a \(2, 3\)"),
])
def test_shape_errors(call, message):
    with pytest.raises(nr.ShapeError, match=message):
        call()


def test_reshape_is_a_view_and_backward_works_after_transpose():
    x = nr.tensor(np.arange(6.0).reshape(2, 3), requires_grad=True)
    y = x.T.reshape(-1)
    assert y.tolist() == [0.0, 3.0, 1.0, 4.0, 2.0, 5.0]
    (y * nr.arange(6).astype("float32")).sum().backward()
    assert x.grad.tolist() == [[0.0, 2.0, 4.0], [1.0, 3.0, 5.0]]


@given(st.lists(st.integers(1, 3), min_size=1, max_size=4).flatmap(
    lambda s: st.tuples(st.just(tuple(s)), st.permutations(range(len(s))))))
def test_transpose_and_reshape_hypothesis(case):
    shape, perm = case
    check_op([shape], lambda x: x.transpose(perm).reshape(-1) * 2, lambda x: x.permute(*perm).reshape(-1) * 2,
             dtypes=("float64",), gradgrad=True)
