"""Tabular Q-learning and SARSA on any gymnasium environment with Discrete observations and
actions (the course's gridworld, FrozenLake, Taxi, CliffWalking).

Q-learning (off-policy):  Q(s,a) ← Q(s,a) + α [r + γ max_a' Q(s',a') − Q(s,a)]
SARSA (on-policy):        Q(s,a) ← Q(s,a) + α [r + γ Q(s',a') − Q(s,a)],  a' the action taken next
A terminal s' contributes no future value; a truncated episode (time limit) still bootstraps.
May import: numpy, gymnasium (through the env given).
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np


@dataclass
class TabularResult:
    """Q (S, A), the greedy policy (S,), and the return and length of each training episode."""

    Q: np.ndarray
    policy: np.ndarray
    episode_returns: list = field(default_factory=list)
    episode_lengths: list = field(default_factory=list)


def _discrete_sizes(env, who):
    obs, act = env.observation_space, env.action_space
    if not (hasattr(obs, "n") and hasattr(act, "n") and obs.shape == () and act.shape == ()):
        raise ValueError(f"{who}: needs Discrete observation and action spaces, got observation space {obs} "
                         f"and action space {act}")
    return int(obs.n), int(act.n)


def _epsilon(epsilon, episode, n_episodes):
    """ε for this episode: a number, or (start, end, fraction) decayed linearly over that
    fraction of the episodes."""
    if isinstance(epsilon, (tuple, list)):
        start, end, fraction = epsilon
        progress = min(1.0, episode / max(1.0, fraction * n_episodes))
        return start + progress * (end - start)
    return float(epsilon)


def _run(env, n_episodes, learning_rate, gamma, epsilon, seed, on_policy, who, Q=None):
    S, A = _discrete_sizes(env, who)
    if not 0.0 <= gamma <= 1.0:
        raise ValueError(f"{who}: gamma must be in [0, 1], got {gamma}")
    rng = np.random.default_rng(seed)
    Q = np.zeros((S, A)) if Q is None else np.asarray(Q, dtype=np.float64).copy()
    returns, lengths = [], []

    def act(s, eps):
        if rng.random() < eps:
            return int(rng.integers(A))
        row = Q[s]
        return int(rng.choice(np.flatnonzero(row == row.max())))  # random among ties: no bias to action 0

    for episode in range(n_episodes):
        eps = _epsilon(epsilon, episode, n_episodes)
        s, _ = env.reset(seed=None if seed is None or episode else int(seed))
        a = act(s, eps)
        total, steps, done = 0.0, 0, False
        while not done:
            s2, r, terminated, truncated, _ = env.step(a)
            total += r
            steps += 1
            a2 = act(s2, eps)
            future = 0.0 if terminated else (Q[s2, a2] if on_policy else Q[s2].max())
            Q[s, a] += learning_rate * (r + gamma * future - Q[s, a])
            s, a, done = s2, a2, terminated or truncated
        returns.append(total)
        lengths.append(steps)
    return TabularResult(Q, Q.argmax(axis=1), returns, lengths)


def q_learning(env, n_episodes=500, learning_rate=0.1, gamma=0.99, epsilon=(1.0, 0.05, 0.5), seed=None, Q=None):
    """Tabular Q-learning with ε-greedy exploration; `epsilon` is a number or (start, end,
    fraction of the episodes over which it decays linearly).

    >>> from neurona.rl import GridWorld
    >>> from neurona.rl.envs import GridWorldEnv
    >>> result = q_learning(GridWorldEnv(GridWorld()), n_episodes=300, learning_rate=0.5, gamma=1.0, seed=0)
    >>> GridWorld().grid(result.Q.max(axis=1))[0].round(1).tolist()
    [0.0, -1.0, -2.0, -3.0]
    """
    return _run(env, n_episodes, learning_rate, gamma, epsilon, seed, on_policy=False, who="q_learning", Q=Q)


def sarsa(env, n_episodes=500, learning_rate=0.1, gamma=0.99, epsilon=(1.0, 0.05, 0.5), seed=None, Q=None):
    """Tabular SARSA (on-policy TD control): the same arguments as `q_learning`."""
    return _run(env, n_episodes, learning_rate, gamma, epsilon, seed, on_policy=True, who="sarsa", Q=Q)


def evaluate_tabular(env, policy, n_episodes=100, seed=None):
    """Mean and standard deviation of the return of a greedy table policy over `n_episodes`."""
    returns = []
    for episode in range(n_episodes):
        s, _ = env.reset(seed=None if seed is None or episode else int(seed))
        total, done = 0.0, False
        while not done:
            s, r, terminated, truncated, _ = env.step(int(policy[s]))
            total += r
            done = terminated or truncated
        returns.append(total)
    return float(np.mean(returns)), float(np.std(returns))
