"""Losses (values and gradients against torch.nn.functional) and metrics (against
scikit-learn and formulas, streamed over batches)."""
import numpy as np
import pytest
import torch
import torch.nn.functional as TF
from sklearn import metrics as skm

import neurona as nr
from neurona import losses, metrics

rng = np.random.default_rng(0)
N, C = 16, 5
LOGITS = rng.standard_normal((N, C)).astype(np.float32) * 2
LABELS = rng.integers(0, C, N)
ONEHOT = np.eye(C, dtype=np.float32)[LABELS]
PROBS = torch.softmax(torch.tensor(LOGITS), -1).numpy()
BIN_TRUE = rng.integers(0, 2, (N, 1)).astype(np.float32)
BIN_LOGITS = rng.standard_normal((N, 1)).astype(np.float32) * 2
BIN_PROBS = torch.sigmoid(torch.tensor(BIN_LOGITS)).numpy()
REG_TRUE = rng.standard_normal((N, 3)).astype(np.float32)
REG_PRED = rng.standard_normal((N, 3)).astype(np.float32) * 2


def _compare(ours, theirs, pred, target):
    p, tp = nr.tensor(pred, requires_grad=True), torch.tensor(pred, requires_grad=True)
    value, t_value = ours(target, p), theirs(tp, torch.tensor(target))
    assert value.shape == () and value.item() == pytest.approx(t_value.item(), rel=1e-5, abs=1e-6)
    value.backward()
    t_value.backward()
    np.testing.assert_allclose(p.grad.numpy(), tp.grad.numpy(), rtol=1e-4, atol=1e-6)


def _renormalized_log(p):
    # Keras divides the probabilities by their sum first (a no-op on the value of a softmax
    # output, but it adds a term to the gradient).
    return (p / p.sum(-1, keepdim=True)).log()


CASES = [
    ("mse", REG_PRED, REG_TRUE, TF.mse_loss),
    ("mean_squared_error", REG_PRED, REG_TRUE, TF.mse_loss),
    ("mae", REG_PRED, REG_TRUE, TF.l1_loss),
    ("huber", REG_PRED, REG_TRUE, TF.huber_loss),
    ("binary_crossentropy", BIN_PROBS, BIN_TRUE, TF.binary_cross_entropy),
    ("categorical_crossentropy", PROBS, ONEHOT, lambda p, t: TF.nll_loss(_renormalized_log(p), t.argmax(-1))),
    ("sparse_categorical_crossentropy", PROBS, LABELS, lambda p, t: TF.nll_loss(_renormalized_log(p), t)),
]


@pytest.mark.parametrize("name,pred,target,theirs", CASES, ids=[c[0] for c in CASES])
def test_loss_by_name_matches_torch(name, pred, target, theirs):
    _compare(losses.get(name), theirs, pred, target)


def test_from_logits_match_torch():
    _compare(losses.CategoricalCrossentropy(from_logits=True), lambda z, t: TF.cross_entropy(z, t), LOGITS, ONEHOT)
    _compare(losses.SparseCategoricalCrossentropy(from_logits=True), TF.cross_entropy, LOGITS, LABELS)
    _compare(losses.BinaryCrossentropy(from_logits=True), TF.binary_cross_entropy_with_logits, BIN_LOGITS, BIN_TRUE)
    _compare(lambda t, p: losses.huber(t, p, delta=0.5), lambda p, t: TF.huber_loss(p, t, delta=0.5),
             REG_PRED, REG_TRUE)


def test_soft_targets_and_sparse_column_labels():
    soft = torch.softmax(torch.tensor(LOGITS[::-1].copy()), -1).numpy()
    _compare(losses.categorical_crossentropy, lambda p, t: -(t * _renormalized_log(p)).sum(-1).mean(),
             PROBS, soft)
    a = losses.sparse_categorical_crossentropy(LABELS[:, None], nr.tensor(PROBS)).item()
    b = losses.sparse_categorical_crossentropy(LABELS.astype(np.float32), nr.tensor(PROBS)).item()
    assert a == pytest.approx(b)


def test_probabilities_are_clipped_for_the_log():
    saturated = np.array([[0.0, 1.0]], dtype=np.float32)
    value = losses.categorical_crossentropy([[1.0, 0.0]], saturated).item()
    assert np.isfinite(value) and value == pytest.approx(-np.log(1e-7), rel=1e-3)
    value = losses.binary_crossentropy([[1.0]], [[0.0]]).item()
    assert np.isfinite(value) and value == pytest.approx(-np.log(1e-7), rel=1e-3)


def test_loss_errors_name_the_shapes():
    with pytest.raises(nr.ShapeError, match=r"categorical_crossentropy.*\(16, 5\)"):
        losses.categorical_crossentropy(ONEHOT[:, :3], PROBS)
    with pytest.raises(ValueError, match="labels must lie"):
        losses.sparse_categorical_crossentropy(np.full(N, 9), PROBS)


@pytest.mark.parametrize("loss", [losses.MeanSquaredError(), losses.CategoricalCrossentropy(from_logits=True),
                                  losses.SparseCategoricalCrossentropy(), losses.BinaryCrossentropy(),
                                  losses.Huber(delta=2.0)])
def test_loss_config_round_trip(loss):
    again = losses.get(losses.serialize(loss))
    assert type(again) is type(loss) and again.get_config() == loss.get_config()


# -- metrics ---------------------------------------------------------------------------------
def _batches(*arrays, size=5):
    for i in range(0, len(arrays[0]), size):
        yield tuple(a[i:i + size] for a in arrays)


def _streamed(metric, y_true, y_pred):
    for t, p in _batches(y_true, y_pred):
        metric.update_state(t, nr.tensor(p))
    return metric.result()


def test_accuracy_picks_the_kind_from_shapes():
    want = skm.accuracy_score(LABELS, PROBS.argmax(-1))
    assert _streamed(metrics.get("accuracy"), ONEHOT, PROBS) == pytest.approx(want)
    assert _streamed(metrics.get("accuracy"), LABELS, PROBS) == pytest.approx(want)
    assert _streamed(metrics.get("acc"), LABELS[:, None], PROBS) == pytest.approx(want)
    want_bin = skm.accuracy_score(BIN_TRUE[:, 0], BIN_PROBS[:, 0] > 0.5)
    assert _streamed(metrics.get("accuracy"), BIN_TRUE, BIN_PROBS) == pytest.approx(want_bin)
    assert metrics.get("acc").name == "acc" and metrics.get("accuracy").name == "accuracy"


@pytest.mark.parametrize("k", [1, 2, 3])
def test_top_k_matches_sklearn(k):
    want = skm.top_k_accuracy_score(LABELS, PROBS, k=k, labels=np.arange(C))
    assert _streamed(metrics.TopKCategoricalAccuracy(k=k), ONEHOT, PROBS) == pytest.approx(want)
    assert _streamed(metrics.SparseTopKCategoricalAccuracy(k=k), LABELS, PROBS) == pytest.approx(want)


def test_top_k_default_is_5():
    m = metrics.get("top_k")
    assert m.get_config()["k"] == 5
    assert m(ONEHOT, PROBS) == 1.0


def test_precision_recall_match_sklearn():
    true, scores = rng.integers(0, 2, 200), rng.random(200)
    for threshold in (0.5, 0.3):
        pred = scores > threshold
        assert _streamed(metrics.Precision(threshold=threshold), true, scores) == pytest.approx(
            skm.precision_score(true, pred))
        assert _streamed(metrics.Recall(threshold=threshold), true, scores) == pytest.approx(
            skm.recall_score(true, pred))


def test_auc_matches_sklearn():
    true = rng.integers(0, 2, 300)
    scores = np.clip(true * 0.3 + rng.random(300) * 0.7, 0, 1)
    roc = _streamed(metrics.AUC(num_thresholds=2000), true, scores)
    assert roc == pytest.approx(skm.roc_auc_score(true, scores), abs=2e-3)
    assert _streamed(metrics.get("auc"), true, scores) == pytest.approx(skm.roc_auc_score(true, scores), abs=1e-2)
    precision, recall, _ = skm.precision_recall_curve(true, scores)
    pr = _streamed(metrics.AUC(num_thresholds=2000, curve="PR"), true, scores)
    assert pr == pytest.approx(skm.auc(recall, precision), abs=1e-2)


def test_auc_from_logits_and_exact_ranking():
    true, scores = np.array([0, 0, 1, 1]), np.array([0.1, 0.4, 0.35, 0.8])
    logits = np.log(scores / (1 - scores))
    assert metrics.AUC(from_logits=True)(true, logits) == pytest.approx(0.75)


def test_sample_weights_and_reset():
    m = metrics.Accuracy()
    m.update_state(LABELS, PROBS, sample_weight=np.arange(N))
    want = skm.accuracy_score(LABELS, PROBS.argmax(-1), sample_weight=np.arange(N))
    assert m.result() == pytest.approx(want)
    m.reset_state()
    assert m.result() == 0.0
    p = metrics.Precision()
    p.update_state([1, 0, 1], [0.9, 0.9, 0.1], sample_weight=[3.0, 1.0, 1.0])
    assert p.result() == pytest.approx(0.75)


def test_custom_metric_function():
    def mean_error(y_true, y_pred):
        return np.abs(np.asarray(y_true) - np.asarray(y_pred)).mean(axis=-1)

    m = metrics.get(mean_error)
    assert m.name == "mean_error" and m(REG_TRUE, REG_PRED) == pytest.approx(np.abs(REG_TRUE - REG_PRED).mean())


@pytest.mark.parametrize("name", ["accuracy", "top_k", "precision", "recall", "auc", "sparse_categorical_accuracy"])
def test_metric_config_round_trip(name):
    m = metrics.get(name)
    again = metrics.get(metrics.serialize(m))
    assert type(again) is type(m) and again.get_config() == m.get_config()


def test_flat_targets_for_one_output_column():
    flat = losses.binary_crossentropy(BIN_TRUE[:, 0], BIN_PROBS).item()
    assert flat == pytest.approx(losses.binary_crossentropy(BIN_TRUE, BIN_PROBS).item())
    assert losses.mse(np.zeros(N, np.float32), BIN_PROBS).item() == pytest.approx(float((BIN_PROBS ** 2).mean()))
