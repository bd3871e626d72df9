"""neurona.generative: the GAN losses against hand computations, Algorithm 1's k-step schedule
(which network each step changes), label smoothing, the shape checks, fit with callbacks
(sample grids, GIF, TensorBoard), interpolation and the classifier-based evaluation."""
import os

import numpy as np
import pytest

import neurona as nr
from neurona.callbacks import TensorBoard
from neurona.generative import (GAN, SampleGrid, class_shares, classifier_score, discriminator_loss,
                                evaluate_samples, frechet_distance, generator_loss, interpolate,
                                interpolation_grid, mlp_discriminator, mlp_generator, value_function)
from neurona.layers import Dense, Flatten
from neurona.models import Sequential
from neurona.ops import ShapeError


def _softplus(x):
    return np.logaddexp(0.0, x)


def test_losses_match_hand_computation():
    rng = np.random.default_rng(0)
    lr, lf = rng.standard_normal(7), rng.standard_normal(7)
    d_real, d_fake = 1 / (1 + np.exp(-lr)), 1 / (1 + np.exp(-lf))
    v = np.mean(np.log(d_real)) + np.mean(np.log(1 - d_fake))
    t_real, t_fake = nr.tensor(lr), nr.tensor(lf[:, None])  # (N,) and (N, 1) logits both accepted
    assert value_function(t_real, t_fake).item() == pytest.approx(v, rel=1e-10)
    assert discriminator_loss(t_real, t_fake).item() == pytest.approx(-v, rel=1e-10)
    smoothed = -np.mean(0.9 * np.log(d_real) + 0.1 * np.log(1 - d_real)) - np.mean(np.log(1 - d_fake))
    assert discriminator_loss(t_real, t_fake, label_smoothing=0.1).item() == pytest.approx(smoothed, rel=1e-10)
    assert generator_loss(t_fake).item() == pytest.approx(-np.mean(np.log(d_fake)), rel=1e-10)
    assert generator_loss(t_fake, "minimax").item() == pytest.approx(np.mean(np.log(1 - d_fake)), rel=1e-10)
    # the saturation that motivates the non-saturating loss: when D rejects a fake (logit −8),
    # log(1 − D) is flat while −log D still has a gradient of about 1
    z = nr.tensor([-8.0], requires_grad=True)
    (g_mm,) = nr.grad(generator_loss(z, "minimax"), [z])
    (g_ns,) = nr.grad(generator_loss(z), [z])
    assert abs(g_mm.item()) < 1e-3 and abs(g_ns.item()) > 0.99
    with pytest.raises(ShapeError, match="one logit per sample"):
        generator_loss(nr.zeros((3, 2)))
    with pytest.raises(ValueError, match="kind"):
        generator_loss(nr.zeros(3), "wasserstein")
    with pytest.raises(ValueError, match="label_smoothing"):
        discriminator_loss(nr.zeros(3), nr.zeros(3), 1.0)


def _tiny_gan(k=1, **kwargs):
    g = Sequential([Dense(8, input_dim=4, activation="relu"), Dense(2)], name="g")
    d = Sequential([Dense(8, input_dim=2, activation="relu"), Dense(1)], name="d")
    gan = GAN(g, d, latent_dim=4, k=k, seed=0, **kwargs)
    gan.compile(d_optimizer=nr.optim.SGD(learning_rate=0.05), g_optimizer=nr.optim.SGD(learning_rate=0.05))
    return gan


def _snapshot(model):
    return [w.copy() for w in model.get_weights()]


def _changed(before, model):
    return any(not np.array_equal(a, b) for a, b in zip(before, model.get_weights()))


def test_k_step_schedule_of_algorithm_1():
    gan = _tiny_gan(k=3)
    x = np.random.default_rng(1).standard_normal((16, 2)).astype(np.float32)
    pattern = []
    for _ in range(7):
        g0, d0 = _snapshot(gan.generator), _snapshot(gan.discriminator)
        logs = gan.train_step((x,))
        pattern.append((_changed(d0, gan.discriminator), _changed(g0, gan.generator)))
        assert {"d_loss", "d_real", "d_fake"} <= set(logs)
        assert ("g_loss" in logs) == (gan.g_optimizer.iterations > 0)
    # every step trains D; G trains after every third D step and only then
    assert pattern == [(True, False), (True, False), (True, True)] * 2 + [(True, False)]
    assert gan.d_optimizer.iterations == 7 and gan.g_optimizer.iterations == 2


def test_discriminator_step_lowers_its_loss_and_generator_step_fools_it_more():
    gan = _tiny_gan()
    x = np.random.default_rng(2).standard_normal((64, 2)).astype(np.float32) + 3.0
    gan.build_for((2,))
    real = nr.tensor(x)
    gan.rng = np.random.default_rng(5)
    first = gan.discriminator_step(real)["d_loss"]
    gan.rng = np.random.default_rng(5)
    second = gan.discriminator_step(real)["d_loss"]
    assert second < first
    gan.rng = np.random.default_rng(6)
    z = gan.noise_batch(64)
    before = generator_loss(gan.discriminator(gan.generator(z))).item()
    gan.rng = np.random.default_rng(6)
    gan.generator_step(64)
    after = generator_loss(gan.discriminator(gan.generator(z))).item()
    assert after < before


def test_shape_mismatch_errors_name_both_networks():
    g = Sequential([Dense(3, input_dim=4)], name="gen3")
    d = Sequential([Dense(1, input_dim=2)], name="disc2")
    gan = GAN(g, d, latent_dim=4)
    gan.compile()
    with pytest.raises(ShapeError, match=r"gen3 makes samples of shape \(3,\).*data samples have shape \(2,\)"):
        gan.fit(np.zeros((8, 2)), verbose=0)
    with pytest.raises(ShapeError, match=r"gen3 makes samples of shape \(3,\) but the discriminator disc2 takes"):
        gan.build_for((3,))
    wide = GAN(Sequential([Dense(2, input_dim=4)]), Sequential([Dense(2, input_dim=2)], name="two"), latent_dim=4)
    with pytest.raises(ShapeError, match="one logit per sample"):
        wide.build_for((2,))
    with pytest.raises(ValueError, match="k"):
        GAN(g, d, latent_dim=4, k=0)
    with pytest.raises(RuntimeError, match="compile"):
        GAN(g, d, latent_dim=4).train_step((np.zeros((2, 2)),))


def test_fit_learns_a_shifted_gaussian_and_writes_pictures(tmp_path):
    nr.manual_seed(0)
    gen = mlp_generator(8, (1, 2, 2), hidden=(32,))
    disc = mlp_discriminator((1, 2, 2), hidden=(32,), dropout=0.0)
    gan = GAN(gen, disc, latent_dim=8, seed=0, label_smoothing=0.1)
    gan.compile(d_optimizer=nr.optim.Adam(learning_rate=2e-3, beta_1=0.5),
                g_optimizer=nr.optim.Adam(learning_rate=2e-3, beta_1=0.5))
    x = (np.random.default_rng(3).standard_normal((512, 1, 2, 2)) * 0.1 + 0.5).astype(np.float32)
    start = abs(gan.generate(256).mean() - 0.5)
    grid = SampleGrid(tmp_path / "grids", n=16, seed=1)
    history = gan.fit(x, epochs=4, batch_size=64, seed=0, verbose=0,
                      callbacks=[grid, TensorBoard(tmp_path / "tb")])
    assert set(history.history) == {"d_loss", "g_loss", "d_real", "d_fake"} and len(history.epoch) == 4
    assert abs(gan.generate(256).mean() - 0.5) < start  # the samples moved towards the data
    assert sorted(os.listdir(tmp_path / "grids")) == ["epoch_001.png", "epoch_002.png", "epoch_003.png",
                                                      "epoch_004.png", "epochs.gif"]
    assert any(f.startswith("events") for f in os.listdir(tmp_path / "tb" / "train"))
    from PIL import Image

    with Image.open(tmp_path / "grids" / "epochs.gif") as gif:
        assert gif.n_frames == 4


def test_interpolation():
    z = interpolate(np.ones(5), -np.ones(5), steps=5, method="linear")
    np.testing.assert_allclose(z[2], 0.0)
    s = interpolate(np.array([3.0, 0.0]), np.array([0.0, 3.0]), steps=9)
    np.testing.assert_allclose(np.linalg.norm(s, axis=1), 3.0)  # slerp keeps the norm
    gan = GAN(mlp_generator(4, (1, 3, 3), (8,)), mlp_discriminator((1, 3, 3), (8,)), latent_dim=4)
    assert interpolation_grid(gan, rows=2, steps=5).shape == (10, 1, 3, 3)


def test_evaluation_figures():
    rng = np.random.default_rng(0)
    a, b = rng.standard_normal((4000, 2)), rng.standard_normal((4000, 2)) * 2.0
    # two Gaussians N(0, I), N(0, 4I): Tr(I + 4I − 2·2I) = 2·(1 + 4 − 4) = 2
    assert frechet_distance(a, b) == pytest.approx(2.0, abs=0.15)
    assert frechet_distance(a, a) == pytest.approx(0.0, abs=1e-6)
    assert classifier_score(np.eye(3)[[0, 0, 0, 0]]) == pytest.approx(1.0)  # one mode only
    assert class_shares(np.eye(3)[[0, 0, 2, 2]]).tolist() == [0.5, 0.0, 0.5]
    clf = Sequential([Flatten(input_shape=(1, 2, 2)), Dense(6, activation="relu"), Dense(3, activation="softmax")])
    real = rng.standard_normal((50, 1, 2, 2)).astype(np.float32)
    out = evaluate_samples(clf, real, real)
    assert out["frechet_classifier_distance"] == pytest.approx(0.0, abs=1e-5)
    assert sum(out["class_shares"]) == pytest.approx(1.0) and out["classifier_score"] >= 1.0
