"""Finite Markov decision processes and dynamic programming (course topic 8, first half).

`MDP(P, R, gamma, terminal)` holds the tables of the course's (S, A, P_sa, γ, R): `P[s, a, s']`
is the probability of landing in s' after action a in state s, `R[s, a]` (or `R[s, a, s']`) the
expected reward. `policy_evaluation`, `value_iteration` and `policy_iteration` solve it with the
Bellman equations and return a `Solution`: V, Q, the greedy policy, the number of sweeps.

May import: numpy.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass
class Solution:
    """What the dynamic-programming solvers return.

    V: (S,) state values; Q: (S, A) action values; policy: (S,) greedy action per state;
    sweeps: full passes over the states (for policy iteration: evaluation sweeps in total);
    iterations: policy-improvement steps (policy iteration only, else equal to sweeps);
    converged: whether the last change was below the tolerance.
    """

    V: np.ndarray
    Q: np.ndarray
    policy: np.ndarray
    sweeps: int
    iterations: int
    converged: bool


class MDP:
    """A finite MDP: P (S, A, S') transition probabilities, R (S, A) or (S, A, S') rewards,
    discount gamma in [0, 1], and terminal (absorbing, value 0) states.

    With gamma = 1 the problem must be episodic: every state should reach a terminal state.

    >>> import numpy as np
    >>> P = np.zeros((2, 1, 2)); P[0, 0, 1] = 1; P[1, 0, 1] = 1
    >>> mdp = MDP(P, R=-np.ones((2, 1)), gamma=1.0, terminal=[1])
    >>> value_iteration(mdp).V.tolist()
    [-1.0, 0.0]
    """

    def __init__(self, P, R, gamma=0.99, terminal=(), state_names=None, action_names=None, atol=1e-6):
        P = np.asarray(P, dtype=np.float64)
        R = np.asarray(R, dtype=np.float64)
        if P.ndim != 3 or P.shape[0] != P.shape[2]:
            raise ValueError(f"MDP: P must have shape (S, A, S), got {P.shape}")
        S, A, _ = P.shape
        if R.shape not in ((S, A), (S, A, S)):
            raise ValueError(f"MDP: R must have shape (S, A) = {(S, A)} or (S, A, S) = {(S, A, S)}, got {R.shape}")
        if not 0.0 <= float(gamma) <= 1.0:
            raise ValueError(f"MDP: gamma must be in [0, 1], got {gamma}")
        self.state_names = list(state_names) if state_names is not None else [str(s) for s in range(S)]
        self.action_names = list(action_names) if action_names is not None else [str(a) for a in range(A)]
        if len(self.state_names) != S or len(self.action_names) != A:
            raise ValueError(f"MDP: {len(self.state_names)} state names and {len(self.action_names)} action names "
                             f"for S={S}, A={A}")
        if (P < -atol).any():
            s, a, s2 = np.argwhere(P < -atol)[0]
            raise ValueError(f"MDP: P[{s}, {a}, {s2}] = {P[s, a, s2]} is negative "
                             f"(state {self.state_names[s]!r}, action {self.action_names[a]!r})")
        sums = P.sum(axis=2)
        bad = np.argwhere(np.abs(sums - 1.0) > atol)
        if len(bad):
            s, a = bad[0]
            raise ValueError(f"MDP: the transition probabilities P[{s}, {a}, :] of state {self.state_names[s]!r}, "
                             f"action {self.action_names[a]!r} sum to {sums[s, a]:.6g}, not 1 "
                             f"({len(bad)} such rows)")
        terminal = np.asarray(sorted(set(int(t) for t in terminal)), dtype=np.int64)
        if len(terminal) and (terminal.min() < 0 or terminal.max() >= S):
            raise ValueError(f"MDP: terminal states {terminal.tolist()} must lie in [0, {S})")
        self.P, self.R, self.gamma, self.terminal = P, R, float(gamma), terminal
        self.n_states, self.n_actions = S, A
        self.is_terminal = np.zeros(S, dtype=bool)
        self.is_terminal[terminal] = True
        # the expected immediate reward r(s, a) = Σ_s' P(s'|s,a) R(s,a,s')
        self.expected_reward = (P * R).sum(axis=2) if R.ndim == 3 else R.copy()

    def q_from_v(self, V):
        """Q(s, a) = r(s, a) + γ Σ_s' P(s'|s,a) V(s') — one Bellman backup; Q = 0 in terminal states."""
        V = np.where(self.is_terminal, 0.0, np.asarray(V, dtype=np.float64))
        Q = self.expected_reward + self.gamma * self.P @ V
        Q[self.is_terminal] = 0.0
        return Q

    def policy_matrix(self, policy):
        """π as an (S, A) matrix of probabilities from an (S,) array of actions or an (S, A) matrix."""
        policy = np.asarray(policy)
        S, A = self.n_states, self.n_actions
        if policy.shape == (S,):
            if policy.dtype.kind not in "iu" or policy.min() < 0 or policy.max() >= A:
                raise ValueError(f"MDP: a deterministic policy must hold actions in [0, {A}), got {policy}")
            pi = np.zeros((S, A))
            pi[np.arange(S), policy] = 1.0
            return pi
        if policy.shape == (S, A):
            pi = policy.astype(np.float64)
            if (np.abs(pi.sum(axis=1) - 1.0) > 1e-6).any() or (pi < 0).any():
                s = int(np.argmax(np.abs(pi.sum(axis=1) - 1.0)))
                raise ValueError(f"MDP: the policy's probabilities in state {self.state_names[s]!r} "
                                 f"sum to {pi[s].sum():.6g}, not 1")
            return pi
        raise ValueError(f"MDP: a policy must have shape (S,) = ({S},) or (S, A) = {(S, A)}, got {policy.shape}")

    def uniform_policy(self):
        """The random policy: every action with probability 1/A."""
        return np.full((self.n_states, self.n_actions), 1.0 / self.n_actions)

    def __repr__(self):
        return (f"MDP(n_states={self.n_states}, n_actions={self.n_actions}, gamma={self.gamma}, "
                f"terminal={self.terminal.tolist()})")


def greedy(Q, atol=1e-9):
    """The greedy action of each state (the first of tied actions).

    >>> greedy(np.array([[0.0, 1.0], [2.0, 2.0]])).tolist()
    [1, 0]
    """
    Q = np.asarray(Q)
    best = Q.max(axis=1, keepdims=True)
    return np.argmax(Q >= best - atol, axis=1)


def policy_evaluation(mdp: MDP, policy, tol=1e-8, max_sweeps=100_000, V0=None) -> Solution:
    """V^π by iterating the Bellman expectation equation V ← Σ_a π(a|s) [r(s,a) + γ Σ_s' P V(s')]
    (synchronous sweeps) until the largest change is below `tol`.

    `policy`: an (S,) array of actions or an (S, A) matrix of probabilities. The returned policy
    is the greedy one with respect to V^π (one step of policy improvement).
    """
    pi = mdp.policy_matrix(policy)
    V = np.zeros(mdp.n_states) if V0 is None else np.asarray(V0, dtype=np.float64).copy()
    converged = False
    sweeps = 0
    for sweeps in range(1, max_sweeps + 1):
        Q = mdp.q_from_v(V)
        new = (pi * Q).sum(axis=1)
        delta = np.abs(new - V).max()
        V = new
        if delta < tol:
            converged = True
            break
    Q = mdp.q_from_v(V)
    return Solution(V, Q, greedy(Q), sweeps, sweeps, converged)


def value_iteration(mdp: MDP, tol=1e-8, max_sweeps=100_000, V0=None) -> Solution:
    """V* by the Bellman optimality backup V ← max_a [r(s,a) + γ Σ_s' P V(s')] until the largest
    change is below `tol`; returns V*, Q* and the greedy (optimal) policy."""
    V = np.zeros(mdp.n_states) if V0 is None else np.asarray(V0, dtype=np.float64).copy()
    converged = False
    sweeps = 0
    for sweeps in range(1, max_sweeps + 1):
        new = mdp.q_from_v(V).max(axis=1)
        delta = np.abs(new - V).max()
        V = new
        if delta < tol:
            converged = True
            break
    Q = mdp.q_from_v(V)
    return Solution(V, Q, greedy(Q), sweeps, sweeps, converged)


def policy_iteration(mdp: MDP, policy=None, tol=1e-8, max_iterations=1000, max_sweeps=100_000) -> Solution:
    """Alternate policy evaluation and greedy improvement until the policy is stable.

    The start policy defaults to the uniform random one (with γ = 1 it must reach a terminal
    state from everywhere, or its evaluation does not converge). Ties keep the current action,
    so the loop cannot cycle between equally good policies.
    """
    pi = mdp.uniform_policy() if policy is None else policy
    total_sweeps, V, current = 0, None, None
    for iteration in range(1, max_iterations + 1):
        sol = policy_evaluation(mdp, pi, tol=tol, max_sweeps=max_sweeps, V0=V)
        total_sweeps += sol.sweeps
        if not sol.converged:
            raise RuntimeError(f"policy_iteration: evaluating the policy of iteration {iteration} did not converge "
                               f"in {max_sweeps} sweeps (with gamma=1, does every state reach a terminal state?)")
        V, Q = sol.V, sol.Q
        new = greedy(Q)
        if current is not None:  # keep the current action where it is as good as the best
            keep = Q[np.arange(mdp.n_states), current] >= Q.max(axis=1) - 1e-9
            new = np.where(keep, current, new)
            if np.array_equal(new, current):
                return Solution(V, Q, current, total_sweeps, iteration, True)
        current, pi = new, new
    return Solution(V, Q, current, total_sweeps, max_iterations, False)
