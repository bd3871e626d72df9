"""The learned optimiser (Andrychowicz et al. 2016): its unrolled meta-gradient against central
finite differences on a 2-parameter quadratic, the LSTM cell against torch.nn.LSTMCell, and a
short meta-training that helps on held-out quadratics."""
import numpy as np
import pytest
import torch

import neurona as nr
from neurona.meta.learned_optimizer import (LSTMOptimizer, QuadraticProblem, meta_train, run_learned, unroll)
from neurona.meta.lstm import LSTMCell


def test_unrolled_meta_gradient_matches_finite_differences():
    problem = QuadraticProblem(dim=2, seed=3, dtype="float64")
    opt = LSTMOptimizer(hidden=3, output_scale=0.3, seed=1, dtype="float64")

    def meta_loss():
        params = problem.init_params()
        loss, *_ = unroll(opt, problem, params, opt.init_state(2), steps=4, second_order=True)
        return loss

    analytic = [g.numpy() for g in nr.grad(meta_loss(), opt.weights)]
    eps = 1e-6
    rng = np.random.default_rng(0)
    for w, g in zip(opt.weights, analytic):
        flat = w.data.reshape(-1)
        for i in rng.choice(flat.size, size=min(flat.size, 6), replace=False):  # 6 coordinates of each
            old = flat[i]
            flat[i] = old + eps
            up = meta_loss().item()
            flat[i] = old - eps
            down = meta_loss().item()
            flat[i] = old
            assert (up - down) / (2 * eps) == pytest.approx(g.reshape(-1)[i], rel=1e-4, abs=1e-7)


def test_lstm_cell_matches_torch():
    cell = LSTMCell(3, 4, seed=0, dtype="float64")
    ref = torch.nn.LSTMCell(3, 4, dtype=torch.float64)
    w = cell.w.numpy()
    with torch.no_grad():  # torch keeps (4h, in) matrices in the same gate order i, f, g, o
        ref.weight_ih.copy_(torch.tensor(w[:3].T))
        ref.weight_hh.copy_(torch.tensor(w[3:].T))
        ref.bias_ih.copy_(torch.tensor(cell.b.numpy()))
        ref.bias_hh.zero_()
    x = np.random.default_rng(0).standard_normal((2, 3))
    h0, c0 = np.random.default_rng(1).standard_normal((2, 2, 4))
    h, c = cell(nr.tensor(x), (nr.tensor(h0), nr.tensor(c0)))
    th, tc = ref(torch.tensor(x), (torch.tensor(h0), torch.tensor(c0)))
    np.testing.assert_allclose(h.numpy(), th.detach().numpy(), rtol=1e-10)
    np.testing.assert_allclose(c.numpy(), tc.detach().numpy(), rtol=1e-10)


def test_short_meta_training_improves_held_out_quadratics():
    held_out = [QuadraticProblem(dim=4, seed=100 + i) for i in range(3)]
    opt = LSTMOptimizer(hidden=8, seed=0)
    before = np.mean([run_learned(opt, p, 20)[-1] for p in held_out])
    meta_train(opt, lambda s: QuadraticProblem(dim=4, seed=s), n_problems=4, steps=20, unroll_steps=10,
               learning_rate=3e-2)
    after = np.mean([run_learned(opt, p, 20)[-1] for p in held_out])
    assert after < before
