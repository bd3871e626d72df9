"""The course's gridworld: a grid of cells, terminal cells, walls, reward −1 per move and an
optional slip (the action goes sideways with probability `slip`).

The default is the 4×4 world of Sutton & Barto's example 4.1 (terminal corners, γ = 1): the
random policy's values are −14, −20, −22 ... and the optimal value of a cell is minus its
distance to the nearest corner. `GridWorld(...).to_mdp()` gives the `MDP` for dynamic
programming; `neurona.rl.envs.GridWorldEnv` the same world as a gymnasium environment.

Actions follow gymnasium's FrozenLake: 0 left, 1 down, 2 right, 3 up.
May import: numpy, neurona.rl.mdp.
"""
from __future__ import annotations

import numpy as np

from .mdp import MDP

ACTIONS = ("left", "down", "right", "up")
ARROWS = ("←", "↓", "→", "↑")
_MOVES = ((0, -1), (1, 0), (0, 1), (-1, 0))  # (drow, dcol) of each action
_SIDEWAYS = ((1, 3), (0, 2), (1, 3), (0, 2))  # the two perpendicular actions


def _cells(name, cells, shape):
    out = []
    for c in cells:
        r, col = (int(v) for v in c)
        if not (0 <= r < shape[0] and 0 <= col < shape[1]):
            raise ValueError(f"GridWorld: {name} cell {(r, col)} lies outside the {shape[0]}×{shape[1]} grid")
        out.append((r, col))
    return tuple(out)


class GridWorld:
    """A rectangular gridworld.

    shape: (rows, cols); terminals: cells that end the episode; walls: cells that cannot be
    entered (moving into one, or off the grid, leaves the agent where it is);
    step_reward: the reward of every move (−1: the agent wants the shortest path);
    terminal_rewards: {cell: extra reward received on entering that terminal};
    slip: probability that the move goes to one of the two perpendicular directions
    (half each), as in the course's stochastic gridworld; gamma: the discount.
    start: the start cell of the gymnasium environment (None: a random non-terminal cell).

    >>> world = GridWorld()
    >>> from neurona.rl import value_iteration
    >>> world.grid(value_iteration(world.to_mdp()).V)[0].tolist()
    [0.0, -1.0, -2.0, -3.0]
    """

    def __init__(self, shape=(4, 4), terminals=((0, 0), (3, 3)), walls=(), step_reward=-1.0,
                 terminal_rewards=None, slip=0.0, gamma=1.0, start=None):
        self.shape = (int(shape[0]), int(shape[1]))
        if min(self.shape) < 1:
            raise ValueError(f"GridWorld: shape must be positive, got {shape}")
        self.terminals = _cells("terminal", terminals, self.shape)
        self.walls = _cells("wall", walls, self.shape)
        if set(self.terminals) & set(self.walls):
            raise ValueError(f"GridWorld: cells {sorted(set(self.terminals) & set(self.walls))} are both walls and terminals")
        if not 0.0 <= float(slip) <= 1.0:
            raise ValueError(f"GridWorld: slip must be in [0, 1], got {slip}")
        self.step_reward, self.slip, self.gamma = float(step_reward), float(slip), float(gamma)
        self.terminal_rewards = {tuple(int(v) for v in k): float(v) for k, v in (terminal_rewards or {}).items()}
        for cell in self.terminal_rewards:
            if cell not in self.terminals:
                raise ValueError(f"GridWorld: terminal_rewards names {cell}, which is not a terminal cell")
        # states are the cells that are not walls, in row-major order
        self.cells = [(r, c) for r in range(self.shape[0]) for c in range(self.shape[1]) if (r, c) not in self.walls]
        self._index = {cell: i for i, cell in enumerate(self.cells)}
        self.start = None if start is None else _cells("start", [start], self.shape)[0]
        if self.start is not None and (self.start in self.walls or self.start in self.terminals):
            raise ValueError(f"GridWorld: the start cell {self.start} must be neither a wall nor a terminal")

    @property
    def n_states(self):
        return len(self.cells)

    def state(self, cell) -> int:
        """The state index of a (row, col) cell."""
        try:
            return self._index[tuple(cell)]
        except KeyError:
            raise ValueError(f"GridWorld: {tuple(cell)} is a wall or outside the grid") from None

    def cell(self, state: int):
        return self.cells[int(state)]

    def _move(self, cell, action):
        r, c = cell[0] + _MOVES[action][0], cell[1] + _MOVES[action][1]
        if not (0 <= r < self.shape[0] and 0 <= c < self.shape[1]) or (r, c) in self.walls:
            return cell
        return (r, c)

    def to_mdp(self) -> MDP:
        """The world as an `MDP` (R has shape (S, A, S): entering a terminal may pay extra)."""
        S, A = self.n_states, len(ACTIONS)
        P = np.zeros((S, A, S))
        R = np.zeros((S, A, S))
        terminal = [self.state(t) for t in self.terminals]
        for s, cell in enumerate(self.cells):
            for a in range(A):
                if cell in self.terminals:  # absorbing, no reward
                    P[s, a, s] = 1.0
                    continue
                outcomes = [(a, 1.0 - self.slip)] + [(b, self.slip / 2) for b in _SIDEWAYS[a]]
                for b, p in outcomes:
                    if p > 0:
                        P[s, a, self.state(self._move(cell, b))] += p
                for s2, nxt in enumerate(self.cells):
                    R[s, a, s2] = self.step_reward + self.terminal_rewards.get(nxt, 0.0)
        names = [f"({r},{c})" for r, c in self.cells]
        return MDP(P, R, gamma=self.gamma, terminal=terminal, state_names=names, action_names=ACTIONS)

    def grid(self, values, fill=np.nan):
        """Per-state values as a (rows, cols) array, `fill` on walls."""
        values = np.asarray(values)
        out = np.full(self.shape, fill, dtype=np.float64 if values.dtype.kind == "f" else values.dtype)
        for s, (r, c) in enumerate(self.cells):
            out[r, c] = values[s]
        return out

    def render_policy(self, policy) -> str:
        """A policy as text arrows ('■' walls, 'T' terminals).

        >>> print(GridWorld(shape=(1, 3), terminals=[(0, 0)]).render_policy([0, 0, 0]))
        T ← ←
        """
        rows = []
        for r in range(self.shape[0]):
            row = []
            for c in range(self.shape[1]):
                if (r, c) in self.walls:
                    row.append("■")
                elif (r, c) in self.terminals:
                    row.append("T")
                else:
                    row.append(ARROWS[int(policy[self.state((r, c))])])
            rows.append(" ".join(row))
        return "\n".join(rows)

    def get_config(self) -> dict:
        return {"shape": list(self.shape), "terminals": [list(t) for t in self.terminals],
                "walls": [list(w) for w in self.walls], "step_reward": self.step_reward,
                "terminal_rewards": [[list(k), v] for k, v in self.terminal_rewards.items()],
                "slip": self.slip, "gamma": self.gamma, "start": None if self.start is None else list(self.start)}

    def __repr__(self):
        return (f"GridWorld(shape={self.shape}, terminals={list(self.terminals)}, walls={list(self.walls)}, "
                f"slip={self.slip}, gamma={self.gamma})")


def course_gridworld_4x3(slip=0.2, step_reward=-0.04, gamma=1.0) -> GridWorld:
    """Russell & Norvig's 4×3 world of the CS229 notes: a wall at (1, 1), +1 at (0, 3), −1 at
    (1, 3), slip 0.2 (the action works with probability 0.8), a small cost per move."""
    return GridWorld(shape=(3, 4), terminals=[(0, 3), (1, 3)], walls=[(1, 1)], step_reward=step_reward,
                     terminal_rewards={(0, 3): 1.0, (1, 3): -1.0}, slip=slip, gamma=gamma, start=(2, 0))
