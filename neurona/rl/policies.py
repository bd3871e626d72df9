"""Q-networks for DQN, as ordinary neurona models: an MLP for vector observations ("MlpPolicy")
and the Nature DQN CNN for stacked 84×84 frames ("CnnPolicy").

The Nature CNN (Mnih et al., 2015): 32 filters 8×8 stride 4, 64 4×4 stride 2, 64 3×3 stride 1,
ReLU, a 512-unit dense layer and one output per action; images are scaled to [0, 1] first.
May import: numpy, neurona.models, neurona.layers.
"""
from __future__ import annotations

import numpy as np

from ..layers import Conv2D, Dense, Flatten
from ..models import Sequential

POLICIES = ("MlpPolicy", "CnnPolicy")


def mlp(obs_dim, n_actions, net_arch=(64, 64), activation="relu"):
    """obs_dim → net_arch hidden layers → n_actions Q-values (SB3's MlpPolicy default is 64-64).

    >>> mlp(4, 2, net_arch=(128, 128)).count_params()
    17410
    """
    layers = []
    for i, units in enumerate(net_arch):
        layers.append(Dense(units, activation=activation, **({"input_dim": obs_dim} if i == 0 else {})))
    layers.append(Dense(n_actions, **({} if net_arch else {"input_dim": obs_dim})))
    return Sequential(layers)


def nature_cnn(n_actions, input_shape=(4, 84, 84), features_dim=512):
    """The Nature DQN network on channels-first frames (inputs already scaled to [0, 1]).

    >>> nature_cnn(4).output_shape
    (None, 4)
    """
    return Sequential([Conv2D(32, 8, strides=4, activation="relu", input_shape=tuple(input_shape)),
                       Conv2D(64, 4, strides=2, activation="relu"),
                       Conv2D(64, 3, strides=1, activation="relu"),
                       Flatten(),
                       Dense(features_dim, activation="relu"),
                       Dense(n_actions)])


def describe_space(space) -> dict:
    """A JSON-able description of a gymnasium space (what `DQN.save` records and `load` checks)."""
    name = type(space).__name__
    out = {"class": name, "shape": list(space.shape or ()), "dtype": str(space.dtype)}
    if hasattr(space, "n"):
        out["n"] = int(space.n)
    if name == "Box":
        low, high = np.asarray(space.low), np.asarray(space.high)
        out["low"] = float(low.min()) if low.size else 0.0
        out["high"] = float(high.max()) if high.size else 0.0
    return out


def same_space(a: dict, b: dict) -> bool:
    keys = ("class", "shape", "dtype", "n")
    return all(a.get(k) == b.get(k) for k in keys)


def build_q_network(policy, observation_space, action_space, policy_kwargs=None):
    """The Q-network for `policy` ('MlpPolicy' / 'CnnPolicy') and the spaces, or a ValueError
    naming both spaces when the policy cannot handle them."""
    kwargs = dict(policy_kwargs or {})
    spaces = f"observation space {observation_space} and action space {action_space}"
    if policy not in POLICIES:
        raise ValueError(f"DQN: unknown policy {policy!r}; choose one of {POLICIES}")
    if type(action_space).__name__ != "Discrete":
        raise ValueError(f"DQN {policy}: cannot handle {spaces}: DQN needs a Discrete action space")
    if type(observation_space).__name__ != "Box":
        raise ValueError(f"DQN {policy}: cannot handle {spaces}: the observations must be a Box "
                         f"(one-hot encode Discrete observations, or use neurona.rl.tabular)")
    shape = tuple(observation_space.shape)
    n = int(action_space.n)
    if policy == "MlpPolicy":
        if len(shape) != 1:
            raise ValueError(f"DQN MlpPolicy: cannot handle {spaces}: it needs flat (1-d) observations; "
                             f"use CnnPolicy for images")
        return mlp(shape[0], n, net_arch=tuple(kwargs.get("net_arch", (64, 64))),
                   activation=kwargs.get("activation", "relu"))
    if len(shape) != 3 or np.dtype(observation_space.dtype) != np.uint8:
        raise ValueError(f"DQN CnnPolicy: cannot handle {spaces}: it needs uint8 images (C, H, W), "
                         f"e.g. 4 stacked 84×84 frames")
    return nature_cnn(n, input_shape=shape, features_dim=int(kwargs.get("features_dim", 512)))
