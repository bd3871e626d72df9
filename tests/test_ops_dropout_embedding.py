"""Dropout (inverted: kept units scaled by 1/(1 − p), identity in eval) and embedding lookup
(against torch; the gradient adds up for repeated indices)."""
import numpy as np
import pytest
import torch
import torch.nn.functional as TF

import neurona as nr
from neurona import functional as F
from oracle import check_op


@pytest.mark.parametrize("p", [0.1, 0.5, 0.8])
def test_dropout_statistics_and_scaling(p):
    x = nr.ones((200, 500))
    y = F.dropout(x, p).numpy()
    kept = y != 0
    assert y.dtype == np.float32
    np.testing.assert_allclose(y[kept], 1 / (1 - p), rtol=1e-6)
    # 100,000 Bernoulli draws: the kept fraction is within 5 standard deviations of 1 − p
    sd = np.sqrt(p * (1 - p) / kept.size)
    assert abs(kept.mean() - (1 - p)) < 5 * sd
    assert abs(y.mean() - 1.0) < 5 * sd / (1 - p)


def test_dropout_gradient_is_the_same_mask():
    x = nr.randn(50, 40, requires_grad=True)
    y = F.dropout(x, 0.3)
    y.sum().backward()
    mask = (y.numpy() != 0) / 0.7
    np.testing.assert_allclose(x.grad.numpy(), mask.astype(np.float32), rtol=1e-6)


def test_dropout_identity_in_eval_and_for_p0_zero_for_p1():
    x = nr.randn(3, 4, requires_grad=True)
    assert F.dropout(x, 0.5, training=False) is x
    assert F.dropout(x, 0.0) is x
    y = F.dropout(x, 1.0)
    assert not y.numpy().any()
    y.sum().backward()
    assert not x.grad.numpy().any()


def test_dropout_reproducible_with_manual_seed():
    nr.manual_seed(123)
    a = F.dropout(nr.ones((10, 10)), 0.5).numpy()
    nr.manual_seed(123)
    b = F.dropout(nr.ones((10, 10)), 0.5).numpy()
    c = F.dropout(nr.ones((10, 10)), 0.5).numpy()
    np.testing.assert_array_equal(a, b)
    assert (a != c).any()


def test_dropout_keeps_float64_and_rejects_bad_p():
    assert F.dropout(nr.ones(8, dtype="float64"), 0.5).dtype == np.float64
    with pytest.raises(ValueError, match=r"dropout: p must be in \[0, 1\], got 1.5"):
        F.dropout(nr.ones(3), 1.5)


@pytest.mark.parametrize("idx", [np.array([0, 3, 3, 1]), np.array([[1, 1], [4, 0]]), np.array(2)], ids=["1d", "2d", "0d"])
def test_embedding(idx):
    for key in (idx, nr.tensor(idx)):
        check_op([(5, 3)], lambda w: F.embedding(key, w), lambda w: TF.embedding(torch.tensor(idx), w), gradgrad=True)


def test_embedding_gradient_adds_up_for_repeated_indices():
    w = nr.zeros((4, 2), requires_grad=True)
    F.embedding([1, 1, 1, 3], w).sum().backward()
    assert w.grad.tolist() == [[0, 0], [3, 3], [0, 0], [1, 1]]


def test_embedding_errors():
    with pytest.raises(IndexError, match=r"embedding: indices must lie in \[0, 4\), got 0..4"):
        F.embedding([0, 4], nr.zeros((4, 2)))
    with pytest.raises(TypeError, match="embedding: indices must be integers"):
        F.embedding(np.array([0.0]), nr.zeros((4, 2)))
