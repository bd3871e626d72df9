"""gymnasium environments and wrappers: any finite `MDP` as an environment (`MDPEnv`), the
course's gridworld (`GridWorldEnv`, with an RGB rendering for GIFs), vectorised environments
(`make_vec_env`) and the Atari preprocessing of the DQN paper (`make_atari_env`).

This module imports gymnasium (the `rl` extra): `import neurona.rl` does not load it.
May import: numpy, gymnasium, ale_py (lazily), neurona.rl.mdp, neurona.rl.gridworld.
"""
from __future__ import annotations

import gymnasium as gym
import numpy as np
from gymnasium import spaces

from .gridworld import ARROWS, GridWorld
from .mdp import MDP


class MDPEnv(gym.Env):
    """A finite `MDP` as a gymnasium environment: Discrete states and actions, the next state
    drawn from P[s, a, :], the reward R[s, a] (or R[s, a, s']), termination on entering a
    terminal state. `start_states`: the states an episode may start in (uniformly; default all
    non-terminal ones)."""

    metadata = {"render_modes": ["ansi"]}

    def __init__(self, mdp: MDP, start_states=None, render_mode=None):
        self.mdp = mdp
        self.observation_space = spaces.Discrete(mdp.n_states)
        self.action_space = spaces.Discrete(mdp.n_actions)
        starts = np.flatnonzero(~mdp.is_terminal) if start_states is None else np.asarray(start_states)
        if len(starts) == 0:
            raise ValueError("MDPEnv: every state is terminal; there is nowhere to start")
        self.start_states = starts
        self.render_mode = render_mode
        self.s = int(starts[0])

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        self.s = int(self.np_random.choice(self.start_states))
        return self.s, {}

    def step(self, action):
        if not self.action_space.contains(action):
            raise ValueError(f"MDPEnv.step: action {action!r} is not in {self.action_space}")
        a = int(action)
        s2 = int(self.np_random.choice(self.mdp.n_states, p=self.mdp.P[self.s, a]))
        R = self.mdp.R
        reward = float(R[self.s, a, s2] if R.ndim == 3 else R[self.s, a])
        self.s = s2
        return s2, reward, bool(self.mdp.is_terminal[s2]), False, {}

    def render(self):
        if self.render_mode == "ansi":
            return f"state {self.mdp.state_names[self.s]}"
        return None


class GridWorldEnv(MDPEnv):
    """The course's gridworld as a gymnasium environment (observation: the state index of the
    cell, see `GridWorld.state`). render_mode 'rgb_array' draws the grid (walls dark, terminals
    green, the agent red) for GIFs; 'ansi' gives text.

    >>> env = GridWorldEnv(GridWorld(), max_steps=50)
    >>> obs, info = env.reset(seed=0)
    >>> env.observation_space, env.action_space
    (Discrete(16), Discrete(4))
    """

    metadata = {"render_modes": ["ansi", "rgb_array"], "render_fps": 4}

    def __init__(self, world: GridWorld | None = None, render_mode=None, max_steps=100, cell_pixels=48):
        self.world = world if world is not None else GridWorld()
        start = None if self.world.start is None else [self.world.state(self.world.start)]
        super().__init__(self.world.to_mdp(), start_states=start, render_mode=render_mode)
        self.max_steps, self.cell_pixels, self._t = int(max_steps), int(cell_pixels), 0

    def reset(self, *, seed=None, options=None):
        self._t = 0
        return super().reset(seed=seed, options=options)

    def step(self, action):
        s2, reward, terminated, _, info = super().step(action)
        self._t += 1
        return s2, reward, terminated, self._t >= self.max_steps and not terminated, info

    def render(self):
        w = self.world
        if self.render_mode == "ansi":
            agent = w.cell(self.s)
            return "\n".join(" ".join("■" if (r, c) in w.walls else "A" if (r, c) == agent else
                                      "T" if (r, c) in w.terminals else "." for c in range(w.shape[1]))
                             for r in range(w.shape[0]))
        if self.render_mode == "rgb_array":
            k = self.cell_pixels
            img = np.full((w.shape[0] * k, w.shape[1] * k, 3), 235, dtype=np.uint8)
            paint = [(cell, (60, 60, 60)) for cell in w.walls] + [(cell, (120, 200, 120)) for cell in w.terminals]
            for (r, c), colour in paint:
                img[r * k:(r + 1) * k, c * k:(c + 1) * k] = colour
            r, c = w.cell(self.s)
            m = k // 4
            img[r * k + m:(r + 1) * k - m, c * k + m:(c + 1) * k - m] = (220, 50, 50)
            img[::k, :] = 150
            img[:, ::k] = 150
            return img
        return None


def mdp_from_toy_text(env, gamma=0.99) -> MDP:
    """The `MDP` of a gymnasium toy-text env (FrozenLake, Taxi, CliffWalking) from its transition
    table `env.unwrapped.P[s][a] = [(p, s', r, terminated), ...]`, so that value iteration gives
    the optimum that Q-learning should approach.

    >>> lake = mdp_from_toy_text(gym.make("FrozenLake-v1"), gamma=0.99)
    >>> lake.n_states, lake.n_actions, len(lake.terminal)
    (16, 4, 5)
    """
    table = env.unwrapped.P
    S, A = len(table), len(table[0])
    P, R = np.zeros((S, A, S)), np.zeros((S, A, S))
    terminal = set()
    for s in range(S):
        for a in range(A):
            for p, s2, r, done in table[s][a]:
                P[s, a, s2] += p
                R[s, a, s2] = r
                if done:
                    terminal.add(s2)
    # a terminal state's own row is absorbing in the MDP (gymnasium never steps from it)
    for t in terminal:
        P[t] = 0.0
        P[t, :, t] = 1.0
        R[t] = 0.0
    return MDP(P, R, gamma=gamma, terminal=sorted(terminal))


def make_vec_env(env_id, n_envs=1, vectorization="sync", env_kwargs=None, wrapper=None):
    """`n_envs` copies of `env_id` (a registered id or a callable returning an env) in one gymnasium
    vector environment (SyncVectorEnv, or AsyncVectorEnv with vectorization='async'), each
    recording its episode statistics (`RecordEpisodeStatistics`). Seed it with `reset(seed=...)`
    (`DQN` does, with its own seed).

    >>> vec = make_vec_env("CartPole-v1", n_envs=2)
    >>> vec.reset(seed=0)[0].shape
    (2, 4)
    """
    env_kwargs = dict(env_kwargs or {})

    def factory(rank):
        def make():
            env = env_id(**env_kwargs) if callable(env_id) else gym.make(env_id, **env_kwargs)
            if wrapper is not None:
                env = wrapper(env)
            return gym.wrappers.RecordEpisodeStatistics(env)
        return make

    cls = gym.vector.AsyncVectorEnv if vectorization == "async" else gym.vector.SyncVectorEnv
    # same-step autoreset: the observation returned with `done` is already the next episode's
    # first one, and the finished episode's last observation is in infos["final_obs"], as in SB3
    vec = cls([factory(i) for i in range(n_envs)], autoreset_mode=gym.vector.AutoresetMode.SAME_STEP)
    vec.neurona_episode_key = "episode"  # where evaluate_policy and DQN.learn find finished episodes
    return vec


class _EpisodicLifeStats(gym.Wrapper):
    """Keeps the *game's* episode return and length in `info['episode']` when the episode is cut
    at each lost life: what a learning curve should show (the clipped, per-life reward is what
    the agent learns from)."""

    def __init__(self, env):
        super().__init__(env)
        self._ret, self._len = 0.0, 0

    def reset(self, **kwargs):
        self._ret, self._len = 0.0, 0
        return self.env.reset(**kwargs)

    def step(self, action):
        obs, reward, terminated, truncated, info = self.env.step(action)
        self._ret += float(reward)
        self._len += 1
        if terminated or truncated:
            info = dict(info)
            info["game_episode"] = {"r": self._ret, "l": self._len}
        return obs, reward, terminated, truncated, info


class EpisodicLife(gym.Wrapper):
    """End the episode (for learning) when a life is lost, but reset the game only when it is
    over (the DQN paper's 'episodic life'). The next `reset` after a lost life takes a no-op step
    instead of restarting the game."""

    def __init__(self, env):
        super().__init__(env)
        self.lives, self.game_over = 0, True

    def step(self, action):
        obs, reward, terminated, truncated, info = self.env.step(action)
        self.game_over = terminated or truncated
        lives = self.env.unwrapped.ale.lives()
        if 0 < lives < self.lives:
            terminated = True
        self.lives = lives
        return obs, reward, terminated, truncated, info

    def reset(self, **kwargs):
        if self.game_over:
            obs, info = self.env.reset(**kwargs)
        else:
            obs, _, terminated, truncated, info = self.env.step(0)
            if terminated or truncated:
                obs, info = self.env.reset(**kwargs)
        self.lives = self.env.unwrapped.ale.lives()
        return obs, info


class FireReset(gym.Wrapper):
    """Press FIRE after a reset and after each lost life (Breakout waits for it to launch the
    ball; a greedy agent that never fires would stall the game until the time limit)."""

    def __init__(self, env):
        super().__init__(env)
        self.lives = 0

    def reset(self, **kwargs):
        obs, info = self.env.reset(**kwargs)
        obs, _, terminated, truncated, info = self.env.step(1)
        if terminated or truncated:
            obs, info = self.env.reset(**kwargs)
        self.lives = self.env.unwrapped.ale.lives()
        return obs, info

    def step(self, action):
        obs, reward, terminated, truncated, info = self.env.step(action)
        lives = self.env.unwrapped.ale.lives()
        if lives < self.lives and not (terminated or truncated):
            obs, fire_reward, terminated, truncated, info = self.env.step(1)
            reward += fire_reward
        self.lives = lives
        return obs, reward, terminated, truncated, info


class ClipReward(gym.RewardWrapper):
    """The sign of the reward (−1, 0, +1): one scale of error for every game."""

    def reward(self, reward):
        return float(np.sign(reward))


def atari_wrappers(env, noop_max=30, frame_skip=4, screen_size=84, frame_stack=4, terminal_on_life_loss=True,
                   clip_reward=True):
    """The DQN paper's preprocessing of an ALE env made with frameskip=1: no-op starts (up to
    `noop_max` random no-ops), frame skip 4 with the max over the last two frames, grey 84×84
    (gymnasium's `AtariPreprocessing`), episodic life, FIRE on reset where the game needs it,
    reward clipping, 4 stacked frames (`FrameStackObservation`): observations (4, 84, 84) uint8."""
    env = gym.wrappers.AtariPreprocessing(env, noop_max=noop_max, frame_skip=frame_skip, screen_size=screen_size,
                                          terminal_on_life_loss=False, grayscale_obs=True, scale_obs=False)
    env = _EpisodicLifeStats(env)
    if terminal_on_life_loss:
        env = EpisodicLife(env)
    if "FIRE" in env.unwrapped.get_action_meanings():
        env = FireReset(env)
    if clip_reward:
        env = ClipReward(env)
    return gym.wrappers.FrameStackObservation(env, frame_stack)


def make_atari_env(env_id="ALE/Breakout-v5", n_envs=1, vectorization="sync", **wrapper_kwargs):
    """A vector of preprocessed Atari environments (see `atari_wrappers`). ALE's own frame skip
    and sticky actions are turned off (frameskip=1, repeat_action_probability=0): the wrappers
    skip frames themselves, as in the DQN paper."""
    import ale_py  # noqa: PLC0415 - registers the ALE/ ids; optional

    gym.register_envs(ale_py)
    vec = make_vec_env(env_id, n_envs=n_envs, vectorization=vectorization,
                       env_kwargs={"frameskip": 1, "repeat_action_probability": 0.0},
                       wrapper=lambda env: atari_wrappers(env, **wrapper_kwargs))
    vec.neurona_episode_key = "game_episode"  # whole games (all lives, unclipped score), not lives
    return vec


__all__ = ["ARROWS", "ClipReward", "EpisodicLife", "FireReset", "GridWorldEnv", "MDPEnv", "atari_wrappers",
           "make_atari_env", "make_vec_env", "mdp_from_toy_text"]
