"""Architecture search: the REINFORCE gradient's sign on a toy reward, the controller always
emitting valid architectures (also for tight input sizes), the error for a search space with no
valid architecture, and a child network trained on digits."""
import numpy as np
import pytest

import neurona as nr
from neurona.meta.nas import Controller, SearchSpace, random_architecture, reinforce_loss, search


def test_reinforce_gradient_sign_on_a_toy_reward():
    space = SearchSpace(input_size=8, n_layers=1, filters=(4, 8), kernels=(3,), pools=(0,))
    ctrl = Controller(space, hidden=8, seed=0)
    rng = np.random.default_rng(0)

    def p_first():  # probability of 4 filters
        arch, logp, _ = ctrl.sample(rng, greedy=True)
        return float(np.exp(logp.item())) if arch[0] == 4 else 1 - float(np.exp(logp.item()))

    for reward, direction in ((1.0, +1), (0.0, -1)):
        before = p_first()
        arch, logp, _ = ctrl.sample(np.random.default_rng(1))
        while arch[0] != 4:
            arch, logp, _ = ctrl.sample(rng)
        head = ctrl.heads[0]
        (g,) = nr.grad(reinforce_loss(logp, reward, 0.5), [head])
        # gradient descent on −(R − b)·log π raises π(a) when R > b and lowers it when R < b
        with nr.no_grad():
            head.data[...] -= 0.5 * g.numpy()
        assert np.sign(p_first() - before) == direction


@pytest.mark.parametrize("size,layers", [(8, 2), (5, 2), (4, 3), (28, 3)])
def test_controller_always_emits_valid_architectures(size, layers):
    space = SearchSpace(input_size=size, n_layers=layers)
    ctrl = Controller(space, seed=size)
    rng = np.random.default_rng(size)
    for _ in range(25):
        arch, _, _ = ctrl.sample(rng)
        assert space.is_valid(arch), space.describe(arch)
        assert space.is_valid(random_architecture(space, rng))
    model = space.build(arch)
    assert model.predict(np.zeros((2, 1, size, size), "float32")).shape == (2, 10)


def test_impossible_search_space_is_refused():
    with pytest.raises(ValueError, match="no valid architecture for inputs of 4×4"):
        SearchSpace(input_size=4, n_layers=3, kernels=(3, 5), pools=(0,))
    with pytest.raises(ValueError, match="does not fit"):
        SearchSpace(input_size=8).build([8, 5, 1, 8, 5, 1])


@pytest.mark.slow
def test_tiny_search_on_digits_runs():
    from neurona.datasets import digits

    (x, y), (xt, yt) = digits()
    data = ((x[:300, None] / 16.0, y[:300]), (xt[:100, None] / 16.0, yt[:100]))
    space = SearchSpace(input_size=8, n_layers=1, filters=(4,), kernels=(3, 5), pools=(0, 1))
    history = search(space, data, budget=3, child_epochs=1)
    assert len(history) == 3 and all(0.0 <= r <= 1.0 for _, r in history)
