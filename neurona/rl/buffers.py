"""Experience replay (DQN): preallocated ring arrays, uniform sampling.

`ReplayBuffer` keeps one column per environment of a vector env (shape (capacity, n_envs, ...),
as Stable-Baselines3 does), so consecutive rows of a column are consecutive steps of one env.

For stacked image observations (Atari: (4, 84, 84) uint8) `frame_stack=4` stores each frame
once instead of four times (and not again as the next observation): row t keeps only the
newest frame of obs_t, and a sampled observation is rebuilt from rows t−3..t, repeating the
episode's first frame where the episode is younger than the stack (gymnasium's
`FrameStackObservation` pads with the reset frame the same way). The next observation of a
transition is the stack ending at row t+1; when the episode ended at t that row already belongs
to the next episode, which does not matter for a terminal transition (its target has no future
term) and is why, in this mode, a time-limit truncation is stored as terminal too.
May import: numpy.
"""
from __future__ import annotations

from typing import NamedTuple

import numpy as np


class ReplayBufferSamples(NamedTuple):
    """A sampled batch (Stable-Baselines3's field names); NumPy arrays, first axis the batch."""

    observations: np.ndarray
    actions: np.ndarray
    next_observations: np.ndarray
    dones: np.ndarray
    rewards: np.ndarray


class ReplayBuffer:
    """A ring buffer of `buffer_size` transitions in total (buffer_size // n_envs rows of n_envs).

    >>> import numpy as np
    >>> buf = ReplayBuffer(4, obs_shape=(2,), obs_dtype=np.float32)
    >>> for t in range(6):
    ...     buf.add(np.full((1, 2), t), np.full((1, 2), t + 1), np.array([0]), np.array([1.0]), np.array([False]))
    >>> len(buf), buf.full, sorted(buf.observations[:, 0, 0].tolist())
    (4, True, [2.0, 3.0, 4.0, 5.0])
    """

    def __init__(self, buffer_size, obs_shape, obs_dtype=np.float32, n_envs=1, frame_stack=None):
        self.n_envs = int(n_envs)
        self.capacity = max(int(buffer_size) // self.n_envs, 1)
        self.obs_shape = tuple(int(n) for n in obs_shape)
        self.frame_stack = None if frame_stack in (None, 1) else int(frame_stack)
        if self.frame_stack is not None:
            if len(self.obs_shape) < 2 or self.obs_shape[0] != self.frame_stack:
                raise ValueError(f"ReplayBuffer: frame_stack={self.frame_stack} needs observations of shape "
                                 f"({self.frame_stack}, ...), got {self.obs_shape}")
            if self.capacity <= self.frame_stack + 1:
                raise ValueError(f"ReplayBuffer: {self.capacity} rows per env is too few for a stack of "
                                 f"{self.frame_stack} frames")
            frame = self.obs_shape[1:]
            self.frames = np.zeros((self.capacity, self.n_envs, *frame), dtype=obs_dtype)
            # absolute step index of the first step of the episode each row belongs to
            self.episode_start = np.zeros((self.capacity, self.n_envs), dtype=np.int64)
            self._start = np.zeros(self.n_envs, dtype=np.int64)
        else:
            self.observations = np.zeros((self.capacity, self.n_envs, *self.obs_shape), dtype=obs_dtype)
            self.next_observations = np.zeros_like(self.observations)
        self.actions = np.zeros((self.capacity, self.n_envs), dtype=np.int64)
        self.rewards = np.zeros((self.capacity, self.n_envs), dtype=np.float32)
        self.dones = np.zeros((self.capacity, self.n_envs), dtype=np.float32)
        self.pos = 0  # the next row to write
        self.n_added = 0  # rows written since the start (absolute step index of the next row)
        self.full = False

    def __len__(self):
        return (self.capacity if self.full else self.pos) * self.n_envs

    def nbytes(self) -> int:
        """Memory held by the arrays."""
        arrays = [self.actions, self.rewards, self.dones]
        arrays += [self.frames, self.episode_start] if self.frame_stack else [self.observations, self.next_observations]
        return sum(a.nbytes for a in arrays)

    def add(self, obs, next_obs, actions, rewards, terminated, truncated=None):
        """Store one vector step: arrays with a first axis of n_envs. `next_obs` is the real next
        observation (for an env whose episode just ended: its final one, not the reset one);
        `terminated` marks transitions with no future (a time-limit `truncated` still bootstraps,
        except in frame-stack mode, see the module docstring)."""
        obs = np.asarray(obs)
        if obs.shape != (self.n_envs, *self.obs_shape):
            raise ValueError(f"ReplayBuffer.add: observations of shape {obs.shape}, expected "
                             f"{(self.n_envs, *self.obs_shape)} (n_envs, *observation shape)")
        terminated = np.asarray(terminated, dtype=bool)
        row = self.pos
        if self.frame_stack is not None:
            self.frames[row] = obs[:, -1]
            self.episode_start[row] = self._start
            ended = terminated | (np.asarray(truncated, dtype=bool) if truncated is not None else False)
            self.dones[row] = ended
            self._start = np.where(ended, self.n_added + 1, self._start)
        else:
            self.observations[row] = obs
            self.next_observations[row] = next_obs
            self.dones[row] = terminated
        self.actions[row] = np.asarray(actions).reshape(self.n_envs)
        self.rewards[row] = np.asarray(rewards).reshape(self.n_envs)
        self.pos = (self.pos + 1) % self.capacity
        self.n_added += 1
        self.full = self.full or self.pos == 0

    def _valid_steps(self):
        """(first, last) absolute step indices that may be sampled."""
        last = self.n_added - 1
        first = max(0, self.n_added - self.capacity)
        if self.frame_stack is not None:
            # a stack reaches frame_stack − 1 rows back (they must not be overwritten yet) and the
            # next observation needs row t + 1 (written after t)
            first = max(0, self.n_added - self.capacity + self.frame_stack - 1)
            last -= 1
        return first, last

    def sample(self, batch_size, rng=None) -> ReplayBufferSamples:
        """A uniform random batch of transitions (with replacement, as SB3)."""
        rng = np.random.default_rng() if rng is None else rng
        first, last = self._valid_steps()
        if last < first:
            raise ValueError(f"ReplayBuffer.sample: the buffer holds no transition yet ({self.n_added} steps added)")
        steps = rng.integers(first, last + 1, size=batch_size)
        envs = rng.integers(0, self.n_envs, size=batch_size)
        rows = steps % self.capacity
        if self.frame_stack is not None:
            obs = self._stack(steps, envs)
            nxt = self._stack(steps + 1, envs, start=self.episode_start[rows, envs])
        else:
            obs = self.observations[rows, envs]
            nxt = self.next_observations[rows, envs]
        return ReplayBufferSamples(obs, self.actions[rows, envs], nxt, self.dones[rows, envs], self.rewards[rows, envs])

    def _stack(self, steps, envs, start=None):
        """Observations (batch, k, ...) ending at absolute steps `steps`, clamped to their
        episode's first step (`start`, default: the episode of each step's own row)."""
        if start is None:
            start = self.episode_start[steps % self.capacity, envs]
        k = self.frame_stack
        wanted = np.maximum(steps[:, None] - np.arange(k - 1, -1, -1)[None, :], start[:, None])  # (batch, k)
        return self.frames[wanted % self.capacity, envs[:, None]]
