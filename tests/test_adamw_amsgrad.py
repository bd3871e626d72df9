"""AdamW (decoupled weight decay) and Adam(amsgrad=True) against torch.optim, step by step."""
import numpy as np
import pytest
import torch

import neurona as nr
from neurona.optimizers import Adam, AdamW


@pytest.mark.parametrize("make, make_torch", [
    (lambda p: AdamW(p, learning_rate=0.05, weight_decay=0.1),
     lambda p: torch.optim.AdamW(p, lr=0.05, weight_decay=0.1, eps=1e-8)),
    (lambda p: Adam(p, learning_rate=0.05, amsgrad=True),
     lambda p: torch.optim.Adam(p, lr=0.05, amsgrad=True, eps=1e-8)),
    (lambda p: AdamW(p, learning_rate=0.05, weight_decay=0.1, amsgrad=True),
     lambda p: torch.optim.AdamW(p, lr=0.05, weight_decay=0.1, amsgrad=True, eps=1e-8)),
])
def test_matches_torch_over_steps(make, make_torch):
    rng = np.random.default_rng(0)
    w0 = rng.normal(size=(4, 3))
    xs = [rng.normal(size=(5, 4)) for _ in range(8)]
    w = nr.tensor(w0.copy(), requires_grad=True)
    tw = torch.tensor(w0.copy(), requires_grad=True)
    opt, topt = make([w]), make_torch([tw])
    for i, x in enumerate(xs):
        scale = 1.0 if i < 4 else 0.1  # shrinking gradients: where amsgrad's max differs from Adam
        opt.zero_grad(); (((nr.tensor(x) @ w) ** 2).mean() * scale).backward(); opt.step()
        topt.zero_grad(); (((torch.tensor(x) @ tw) ** 2).mean() * scale).backward(); topt.step()
        np.testing.assert_allclose(w.numpy(), tw.detach().numpy(), rtol=1e-9, atol=1e-12)


def test_by_name_config_round_trip_and_fit():
    opt = nr.optim.get("adamw")
    assert isinstance(opt, AdamW) and opt.weight_decay == 0.004
    again = nr.optim.get(nr.optim.serialize(Adam(amsgrad=True, weight_decay=0.01)))
    assert again.amsgrad and again.weight_decay == 0.01
    from neurona.layers import Dense
    from neurona.models import Sequential
    model = Sequential([Dense(1, input_dim=3)])
    model.compile(AdamW(0.01, amsgrad=True), "mse")
    x = np.random.default_rng(1).normal(size=(32, 3)).astype(np.float32)
    history = model.fit(x, x.sum(axis=1, keepdims=True), epochs=3, verbose=0)
    assert history.history["loss"][-1] < history.history["loss"][0]
    with pytest.raises(ValueError, match="weight_decay must be >= 0"):
        Adam(weight_decay=-1)
