"""Deep Q-learning (course topic 8; Mnih et al., 2015) with Stable-Baselines3's names.

A network approximates Q(s, ·). The agent acts ε-greedily (ε decays linearly), stores every
transition in a replay buffer, and every `train_freq` steps takes `gradient_steps` steps on
uniform minibatches towards the Bellman target

    y = r + γ (1 − done) max_a' Q_target(s', a')                      (DQN)
    y = r + γ (1 − done) Q_target(s', argmax_a' Q(s', a'))              (Double DQN, van Hasselt 2016)

with a Huber (or squared) loss on Q(s, a) − y. The target network is a copy of the online one,
refreshed every `target_update_interval` environment steps (or softly, θ' ← τθ + (1 − τ)θ',
with tau < 1). The learner step (forward, backward, clipping, Adam) can run as one `nr.jit`
graph. The Q-networks are ordinary `neurona.models.Sequential` models.

    model = DQN("MlpPolicy", "CartPole-v1", learning_rate=1e-3, seed=0)
    model.learn(50_000, progress_bar=True)
    mean, std = evaluate_policy(model, gymnasium.make("CartPole-v1"), n_eval_episodes=100)
    model.save("out/rl/dqn_cartpole"); model = DQN.load("out/rl/dqn_cartpole")

Saved agents are a folder: `config.json` (hyperparameters, the spaces, the network's config)
and `weights.safetensors` (online and target networks): no pickle.
May import: numpy, json, safetensors, neurona, neurona.models, neurona.optim, neurona.graph (lazily), neurona.rl.*,
gymnasium, tqdm, tensorboardX, threadpoolctl (lazily).
"""
from __future__ import annotations

import contextlib
import json
import os
import tempfile
import time
from pathlib import Path

import numpy as np

from .. import backend as B
from .. import ops
from ..autograd.grad_mode import no_grad
from ..models import Sequential
from ..optim import Adam
from ..tensor import Tensor
from .buffers import ReplayBuffer
from .callbacks import convert_callback
from .evaluation import evaluate_policy
from .policies import build_q_network, describe_space, same_space

FORMAT = "neurona.rl.dqn"
_INDEX = tuple(np.int64(i) for i in range(256))  # greedy actions as argmax returns them, made once
_F32 = np.dtype(np.float32)


def _argmax_list(row):
    """np.argmax of a list of floats: the first maximum, or the first NaN if there is one.

    >>> _argmax_list([0.5, 2.0, 2.0]), _argmax_list([1.0, float("nan"), 3.0])
    (1, 1)
    """
    best, top, i = 0, row[0], 0
    for v in row:
        if v != v:
            return i
        if v > top:
            best, top = i, v
        i += 1
    return best


class LinearSchedule:
    """SB3's `get_linear_fn`: `start` → `end` over the first `fraction` of training, then `end`;
    called with progress_remaining (1 at the start, 0 at the end).

    >>> eps = LinearSchedule(1.0, 0.05, 0.1)
    >>> [round(eps(p), 3) for p in (1.0, 0.95, 0.9, 0.5)]
    [1.0, 0.525, 0.05, 0.05]
    """

    def __init__(self, start, end, end_fraction):
        self.start, self.end, self.end_fraction = float(start), float(end), float(end_fraction)

    def __call__(self, progress_remaining):
        done = 1.0 - float(progress_remaining)
        if self.end_fraction <= 0 or done >= self.end_fraction:
            return self.end
        return self.start + done * (self.end - self.start) / self.end_fraction


def bellman_targets(rewards, dones, gamma, next_q_target, next_q_online=None):
    """The DQN targets of a batch as NumPy arrays: r + γ(1 − done)·max_a' Q_target(s', a'), or with
    `next_q_online` (Double DQN) the target network's value of the online network's argmax.

    >>> bellman_targets(np.array([1.0, 1.0]), np.array([0.0, 1.0]), 0.9, np.array([[2.0, 3.0], [5.0, 7.0]]))
    array([3.7, 1. ])
    """
    next_q_target = np.asarray(next_q_target)
    if next_q_online is None:
        future = next_q_target.max(axis=1)
    else:
        future = next_q_target[np.arange(len(next_q_target)), np.asarray(next_q_online).argmax(axis=1)]
    return np.asarray(rewards) + gamma * (1.0 - np.asarray(dones)) * future


def _space_of(env, vector_attr, attr):
    return getattr(env, vector_attr, None) or getattr(env, attr)


def _as_vec_env(env):
    """A gymnasium vector env from an id, an env or a vector env (SB3 accepts all three)."""
    from .envs import make_vec_env

    if isinstance(env, str):
        return make_vec_env(env, n_envs=1)
    if hasattr(env, "num_envs") and hasattr(env, "single_observation_space"):
        return env
    return make_vec_env(lambda: env, n_envs=1)


def _atomic_write(path: Path, write):
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    try:
        write(tmp)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


class DQN:
    """Deep Q-Network agent (the names and defaults of Stable-Baselines3's `DQN`).

    policy: 'MlpPolicy' (vector observations) or 'CnnPolicy' (uint8 frames (C, H, W));
    env: a gymnasium env, a vector env, or an id; learning_rate: a number or a function of
    progress_remaining (1 → 0); buffer_size: replay capacity (transitions); learning_starts:
    random steps before learning; batch_size; tau: 1 for hard target copies, < 1 for soft
    updates at every target update; gamma; train_freq: vector steps between learner updates;
    gradient_steps: learner steps per update (−1: as many as environment steps);
    target_update_interval: environment steps between target updates (C);
    exploration_fraction/initial_eps/final_eps: the linear ε schedule; max_grad_norm: global
    gradient clipping (None: none).

    Beyond SB3: double_q (Double DQN targets), loss ('huber' or 'mse'), frame_stack (store
    stacked frames once; default: the policy's channel count for CnnPolicy), jit (the learner
    step as one `nr.jit` graph; a dict passes options to `nr.jit`, e.g. {"fuse": False}, which
    skips compiling fused kernels), n_threads (BLAS threads while learning; 1 suits small MLPs on
    a shared machine, None leaves the setting alone), device ('cpu' or 'cuda').
    """

    def __init__(self, policy, env, learning_rate=1e-4, buffer_size=1_000_000, learning_starts=100, batch_size=32,
                 tau=1.0, gamma=0.99, train_freq=4, gradient_steps=1, target_update_interval=10_000,
                 exploration_fraction=0.1, exploration_initial_eps=1.0, exploration_final_eps=0.05,
                 max_grad_norm=10.0, policy_kwargs=None, tensorboard_log=None, seed=None, device="cpu", verbose=0,
                 double_q=False, loss="huber", frame_stack=None, jit=False, n_threads=1, _init_setup_model=True):
        if not 0.0 <= gamma <= 1.0:
            raise ValueError(f"DQN: gamma must be in [0, 1], got {gamma}")
        if not 0.0 < tau <= 1.0:
            raise ValueError(f"DQN: tau must be in (0, 1], got {tau}")
        if loss not in ("huber", "mse"):
            raise ValueError(f"DQN: loss must be 'huber' or 'mse', got {loss!r}")
        for name, value in (("batch_size", batch_size), ("buffer_size", buffer_size), ("train_freq", train_freq),
                            ("target_update_interval", target_update_interval)):
            if int(value) < 1:
                raise ValueError(f"DQN: {name} must be >= 1, got {value}")
        self.policy, self.policy_kwargs = policy, dict(policy_kwargs or {})
        self.learning_rate, self.buffer_size, self.learning_starts = learning_rate, int(buffer_size), int(learning_starts)
        self.batch_size, self.tau, self.gamma = int(batch_size), float(tau), float(gamma)
        self.train_freq, self.gradient_steps = int(train_freq), int(gradient_steps)
        self.target_update_interval = int(target_update_interval)
        self.exploration_fraction = float(exploration_fraction)
        self.exploration_initial_eps, self.exploration_final_eps = float(exploration_initial_eps), float(exploration_final_eps)
        self.max_grad_norm = None if max_grad_norm is None else float(max_grad_norm)
        self.tensorboard_log, self.seed, self.device, self.verbose = tensorboard_log, seed, device, verbose
        self.double_q, self.loss, self.n_threads = bool(double_q), loss, n_threads
        self.jit = dict(jit) if isinstance(jit, dict) else bool(jit)
        self._observation_space, self._obs_shape, self._one_shape = None, None, None
        self.exploration_schedule = LinearSchedule(self.exploration_initial_eps, self.exploration_final_eps,
                                                   self.exploration_fraction)
        self.exploration_rate = self.exploration_initial_eps
        self.num_timesteps, self._n_calls, self._n_updates, self.n_target_updates = 0, 0, 0, 0
        self._total_timesteps = 1
        self.rng = np.random.default_rng(seed)
        self.env = None
        self.ep_info_buffer: list = []  # {"r": return, "l": length, "t": num_timesteps} of each finished episode
        self.losses: list = []
        self._last_obs = None
        self._logger = None
        self._train_step_fn = None
        self._q_fn = None  # Q(s, ·) as an `nr.jit` graph (CPU), traced on the first call per batch shape
        self._q_fns: dict = {}  # batch shape -> its array function of `_q_fn`
        self._q_one = None  # the array function of `_q_fn` for one state (CPU, not images), see `predict`
        if env is not None:
            self.env = _as_vec_env(env)
            self.observation_space = self.env.single_observation_space
            self.action_space = self.env.single_action_space
        if _init_setup_model:
            self._setup_model(frame_stack)

    @property
    def observation_space(self):
        """The space of one observation (gymnasium's); its shape is kept as a tuple for `predict`."""
        return self._observation_space

    @observation_space.setter
    def observation_space(self, space):
        self._observation_space = space
        self._obs_shape = None if space is None or space.shape is None else tuple(space.shape)
        self._one_shape = None if self._obs_shape is None else (1, *self._obs_shape)
        self._q_one = None  # traced for the previous space's shape, if any

    # -- construction ---------------------------------------------------------------------------
    def _setup_model(self, frame_stack=None):
        if self.seed is not None:
            B.manual_seed(int(self.seed))
            self.action_space.seed(int(self.seed))
        self.q_net = build_q_network(self.policy, self.observation_space, self.action_space, self.policy_kwargs)
        self.q_net_target = Sequential.from_config(self.q_net.get_config())
        if self.device != "cpu":
            self.q_net.to(self.device)
            self.q_net_target.to(self.device)
        self.q_net_target.set_weights(self.q_net.get_weights())
        self.q_net_target.trainable = False
        self.optimizer = Adam(self.q_net.trainable_weights, learning_rate=self._lr_now(1.0),
                              global_clipnorm=self.max_grad_norm)
        self.is_image = self.policy == "CnnPolicy"
        if frame_stack is None and self.is_image:
            frame_stack = int(self.observation_space.shape[0])
        self.frame_stack = frame_stack
        n_envs = self.env.num_envs if self.env is not None else 1
        self.replay_buffer = ReplayBuffer(self.buffer_size, self.observation_space.shape,
                                          obs_dtype=self.observation_space.dtype, n_envs=n_envs,
                                          frame_stack=frame_stack)

    def _lr_now(self, progress_remaining):
        lr = self.learning_rate
        return float(lr(progress_remaining) if callable(lr) else lr)

    # -- tensors ----------------------------------------------------------------------------------
    def _obs_tensor(self, obs):
        """Observations as a float32 Tensor on the device (images scaled to [0, 1] there, so the
        uint8 frames are what crosses to the GPU)."""
        if self.device == "cpu":
            if self.is_image:  # uint8 frames to scaled float32 in one pass
                arr = np.multiply(obs, np.float32(1.0 / 255.0), dtype=np.float32)
            elif type(obs) is np.ndarray and obs.dtype is _F32 and obs.flags.c_contiguous:
                arr = obs  # already what the network reads (checked without NumPy's conversion machinery)
            else:
                arr = np.ascontiguousarray(obs, dtype=np.float32)
            return Tensor._make(arr, False, None)
        xp = B.module_for(self.device)
        arr = xp.asarray(B.to_device(np.ascontiguousarray(obs), self.device)).astype(np.float32)
        if self.is_image:
            arr *= np.float32(1.0 / 255.0)
        return Tensor(arr)

    def q_values(self, obs) -> np.ndarray:
        """Q(s, ·) of a batch of observations, as a NumPy array."""
        if self.device != "cpu":
            with no_grad():
                q = self.q_net(self._obs_tensor(obs)).data
            return np.asarray(q.get())
        x = self._obs_tensor(obs)
        # the forward pass as an `nr.jit` graph traced under no_grad, one array function per
        # batch shape: arrays in and out, no signature key, grad-mode switch or autograd
        # bookkeeping per call; the weights are read live, so training shows at once
        fn = self._q_fns.get(x._data.shape)
        if fn is None:
            fn = self._q_fns[x._data.shape] = self._q_array_function(x)
            if x._data.shape == self._one_shape and not self.is_image:
                self._q_one = fn  # one state of float32 features: `predict` calls it directly
        return fn(x._data)

    def _q_array_function(self, x):
        from ..graph import jit

        if self._q_fn is None:
            q_net = self.q_net

            def q_forward(x):
                return q_net(x)

            self._q_fn = jit(q_forward)
        with no_grad():
            return self._q_fn.array_function(x)

    # -- acting -----------------------------------------------------------------------------------
    def predict(self, observation, state=None, episode_start=None, deterministic=False):
        """(actions, None) for an observation or a batch of them (SB3's signature; the greedy
        action with `deterministic=True`, else ε-greedy with the current exploration rate)."""
        obs = observation if type(observation) is np.ndarray else np.asarray(observation)
        shape = self._obs_shape
        if obs.shape == shape:  # one observation
            act = self._q_one
            # the hot path of acting: the array straight into the graph (a non-contiguous one is
            # read as such: the kernels' dispatch checks the layout)
            q = act(obs[None]) if act is not None and obs.dtype is _F32 else self.q_values(obs[None])
            if deterministic:
                # argmax from a Python list: NumPy's reduction machinery (and even sum/max/index)
                # costs more than the network on one state when its code is not in cache
                row = q.tolist()[0]
                if len(row) > len(_INDEX):
                    return q.argmax(), state
                return _INDEX[_argmax_list(row)], state
            actions = q.argmax(axis=1)
        elif obs.shape[1:] != shape:
            raise ValueError(f"DQN.predict: observation of shape {obs.shape} does not match the observation space "
                             f"{self.observation_space} (expected {shape} or (batch, *{shape}))")
        else:
            actions = self.q_values(obs).argmax(axis=1)
        if not deterministic:
            explore = self.rng.random(len(actions)) < self.exploration_rate
            if explore.any():
                actions[explore] = self.rng.integers(0, self.action_space.n, size=int(explore.sum()))
        return (actions[0] if obs.shape == shape else actions), state

    # -- learning ---------------------------------------------------------------------------------
    def _make_train_step(self):
        """The learner step on Tensors: Bellman targets from the target network, TD loss on the
        taken actions (a one-hot mask, so every index is a tensor input and `nr.jit` can replay
        it), backward, clipping and Adam inside `optimizer.step`."""
        q_net, target, optimizer, gamma, double_q = self.q_net, self.q_net_target, self.optimizer, self.gamma, self.double_q
        loss_fn = ops.huber_loss if self.loss == "huber" else ops.mse_loss

        def step(obs, action_mask, rewards, next_obs, not_done):
            with no_grad():
                next_q = target(next_obs)
                if double_q:
                    online = q_net(next_obs)
                    best = (online >= online.max(axis=1, keepdims=True)).astype(next_q.dtype)
                    # tied maxima (rare with float Q-values) share the weight: the mean of their targets
                    best = best / best.sum(axis=1, keepdims=True)
                    future = (next_q * best).sum(axis=1)
                else:
                    future = next_q.max(axis=1)
                y = rewards + gamma * not_done * future
            q = (q_net(obs) * action_mask).sum(axis=1)
            loss = loss_fn(q, y)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            return loss

        if self.jit:
            from ..graph import jit

            return jit(step, **(self.jit if isinstance(self.jit, dict) else {}))
        return step

    def train(self, gradient_steps, batch_size):
        """`gradient_steps` learner steps on minibatches from the replay buffer; returns the mean loss."""
        if self._train_step_fn is None:
            self._train_step_fn = self._make_train_step()
        self.optimizer.learning_rate = self._lr_now(self._progress_remaining())
        xp = B.module_for(self.device)
        n_actions = int(self.action_space.n)
        losses = []
        for _ in range(gradient_steps):
            batch = self.replay_buffer.sample(batch_size, self.rng)
            mask = np.zeros((batch_size, n_actions), dtype=np.float32)
            mask[np.arange(batch_size), batch.actions] = 1.0

            def dev(a):
                return Tensor(xp.asarray(B.to_device(np.ascontiguousarray(a, dtype=np.float32), self.device)))

            loss = self._train_step_fn(self._obs_tensor(batch.observations), dev(mask), dev(batch.rewards),
                                       self._obs_tensor(batch.next_observations), dev(1.0 - batch.dones))
            losses.append(loss)
            self._n_updates += 1
        mean = float(np.mean([float(ls.item()) for ls in losses]))
        self.losses.append(mean)
        return mean

    def _progress_remaining(self):
        return max(0.0, 1.0 - self.num_timesteps / max(1, self._total_timesteps))

    def _update_target(self):
        with no_grad():
            for t, o in zip(self.q_net_target.weights, self.q_net.weights):
                if self.tau >= 1.0:
                    t.data[...] = o.data
                else:
                    t.data *= (1.0 - self.tau)
                    t.data += self.tau * o.data
        self.n_target_updates += 1

    def _sample_actions(self, obs):
        n_envs = obs.shape[0]
        if self.num_timesteps < self.learning_starts:
            return np.array([self.action_space.sample() for _ in range(n_envs)])
        actions, _ = self.predict(obs, deterministic=False)
        return np.asarray(actions).reshape(n_envs)

    def learn(self, total_timesteps, callback=None, log_interval=4, tb_log_name="DQN", reset_num_timesteps=True,
              progress_bar=False):
        """Collect `total_timesteps` environment steps (over all copies of a vector env) and learn
        from them. `callback`: an SB3-style callback, a list of them or f(locals, globals);
        returning False stops. Returns self."""
        if self.env is None:
            raise ValueError("DQN.learn: this agent has no environment; pass env= to DQN.load or set model.env")
        env, n_envs = self.env, self.env.num_envs
        if reset_num_timesteps or self._last_obs is None:
            self.num_timesteps = 0 if reset_num_timesteps else self.num_timesteps
            self._last_obs, _ = env.reset(seed=None if self.seed is None else int(self.seed))
        self._total_timesteps = int(total_timesteps) + (0 if reset_num_timesteps else self.num_timesteps)
        callback = convert_callback(callback)
        callback.init_callback(self)
        key = getattr(env, "neurona_episode_key", "episode")
        self._open_logger(tb_log_name)
        bar = None
        if progress_bar:
            from tqdm.auto import tqdm

            bar = tqdm(total=int(total_timesteps), unit="step", desc="DQN")
        start_time, start_steps = time.perf_counter(), self.num_timesteps
        gradient_steps = self.gradient_steps if self.gradient_steps >= 0 else self.train_freq * n_envs
        last_loss = float("nan")
        limits = contextlib.nullcontext()
        if self.n_threads is not None:
            from threadpoolctl import threadpool_limits

            limits = threadpool_limits(int(self.n_threads))
        callback.on_training_start(locals(), globals())
        with limits:
            while self.num_timesteps < self._total_timesteps:
                self.exploration_rate = self.exploration_schedule(self._progress_remaining())
                obs = self._last_obs
                actions = self._sample_actions(obs)
                next_obs, rewards, terminated, truncated, infos = env.step(actions)
                real_next = next_obs
                if "_final_obs" in infos and infos["_final_obs"].any():
                    real_next = next_obs.copy()
                    for i in np.flatnonzero(infos["_final_obs"]):
                        real_next[i] = infos["final_obs"][i]
                self.replay_buffer.add(obs, real_next, actions, rewards, terminated, truncated)
                self._last_obs = next_obs
                self.num_timesteps += n_envs
                self._n_calls += 1
                if bar is not None:
                    bar.update(n_envs)
                final = infos.get("final_info", {})
                if key in final:
                    for i in np.flatnonzero(final[f"_{key}"]):
                        info = {"r": float(final[key]["r"][i]), "l": int(final[key]["l"][i]), "t": self.num_timesteps}
                        self.ep_info_buffer.append(info)
                        self._log_episode(info, last_loss, start_time, start_steps)
                        if bar is not None:
                            recent = [e["r"] for e in self.ep_info_buffer[-100:]]
                            bar.set_postfix(ep_rew_mean=f"{np.mean(recent):.1f}", eps=f"{self.exploration_rate:.3f}")
                # target update every C environment steps (counted in vector steps, as SB3)
                if self._n_calls % max(self.target_update_interval // n_envs, 1) == 0:
                    self._update_target()
                if self._n_calls % self.train_freq == 0 and self.num_timesteps > self.learning_starts \
                        and gradient_steps > 0:
                    last_loss = self.train(gradient_steps, self.batch_size)
                callback.update_locals(locals())
                if not callback.on_step():
                    break
        callback.on_training_end()
        if bar is not None:
            bar.close()
        if self._logger is not None:
            self._logger.flush()
        return self

    # -- logging ----------------------------------------------------------------------------------
    def _open_logger(self, name):
        if self.tensorboard_log is None or self._logger is not None:
            return
        from tensorboardX import SummaryWriter

        run = 1
        while (Path(self.tensorboard_log) / f"{name}_{run}").exists():
            run += 1
        self._logger = SummaryWriter(str(Path(self.tensorboard_log) / f"{name}_{run}"))

    def logger_record(self, key, value):
        """Write one TensorBoard scalar at the current step (when tensorboard_log is set)."""
        if self._logger is not None:
            self._logger.add_scalar(key, value, self.num_timesteps)

    def _log_episode(self, info, loss, start_time, start_steps):
        elapsed = max(time.perf_counter() - start_time, 1e-9)
        fps = (self.num_timesteps - start_steps) / elapsed
        if self._logger is not None:
            for k, v in (("rollout/ep_rew", info["r"]), ("rollout/ep_len", info["l"]),
                         ("rollout/ep_rew_mean", np.mean([e["r"] for e in self.ep_info_buffer[-100:]])),
                         ("rollout/exploration_rate", self.exploration_rate), ("time/fps", fps),
                         ("train/learning_rate", self.optimizer.learning_rate)):
                self._logger.add_scalar(k, v, self.num_timesteps)
            if np.isfinite(loss):
                self._logger.add_scalar("train/loss", loss, self.num_timesteps)
        if self.verbose >= 1 and len(self.ep_info_buffer) % 20 == 0:
            recent = [e["r"] for e in self.ep_info_buffer[-100:]]
            print(f"steps {self.num_timesteps:>8d}  episodes {len(self.ep_info_buffer):>5d}  "
                  f"ep_rew_mean {np.mean(recent):8.2f}  eps {self.exploration_rate:.3f}  loss {loss:.4f}  "
                  f"fps {fps:.0f}", flush=True)

    # -- saving -----------------------------------------------------------------------------------
    _HYPER = ("learning_rate", "buffer_size", "learning_starts", "batch_size", "tau", "gamma", "train_freq",
              "gradient_steps", "target_update_interval", "exploration_fraction", "exploration_initial_eps",
              "exploration_final_eps", "max_grad_norm", "seed", "double_q", "loss", "jit")

    def get_parameters(self) -> dict:
        hyper = {k: getattr(self, k) for k in self._HYPER}
        if callable(hyper["learning_rate"]):
            hyper["learning_rate"] = self._lr_now(self._progress_remaining())
        return hyper

    def save(self, path):
        """Save to folder `path`: config.json + weights.safetensors (written atomically, the config last)."""
        from safetensors.numpy import save_file

        path = Path(path)
        arrays = {}
        for prefix, net in (("q_net", self.q_net), ("q_net_target", self.q_net_target)):
            for i, w in enumerate(net.get_weights()):
                arrays[f"{prefix}.{i}"] = np.ascontiguousarray(w)
        config = {"format": FORMAT, "format_version": 1, "policy": self.policy, "policy_kwargs": self.policy_kwargs,
                  "hyperparameters": self.get_parameters(), "frame_stack": self.frame_stack,
                  "observation_space": describe_space(self.observation_space),
                  "action_space": describe_space(self.action_space),
                  "network": {"class_name": "Sequential", "config": self.q_net.get_config()},
                  "num_timesteps": self.num_timesteps, "exploration_rate": self.exploration_rate}
        _atomic_write(path / "weights.safetensors", lambda tmp: save_file(arrays, tmp))
        _atomic_write(path / "config.json", lambda tmp: Path(tmp).write_text(json.dumps(config, indent=1)))
        return path

    @classmethod
    def load(cls, path, env=None, device="cpu", **kwargs):
        """Load an agent saved by `save`. With `env`, its spaces must be those the agent was
        trained for (a ValueError names both otherwise). `kwargs` override hyperparameters."""
        from safetensors.numpy import load_file

        path = Path(path)
        config_file = path / "config.json"
        if not config_file.exists():
            raise FileNotFoundError(f"DQN.load: no config.json in {path} (save with DQN.save)")
        config = json.loads(config_file.read_text())
        if config.get("format") != FORMAT:
            raise ValueError(f"DQN.load: {config_file} is not a saved DQN agent (format {config.get('format')!r})")
        hyper = {**config["hyperparameters"], **kwargs}
        model = cls(config["policy"], None, policy_kwargs=config["policy_kwargs"], device=device,
                    _init_setup_model=False, **hyper)
        if env is not None:
            model.env = _as_vec_env(env)
            obs_space, act_space = model.env.single_observation_space, model.env.single_action_space
            saved_obs, saved_act = config["observation_space"], config["action_space"]
            if not (same_space(describe_space(obs_space), saved_obs) and
                    same_space(describe_space(act_space), saved_act)):
                raise ValueError(f"DQN.load: the agent in {path} was trained for observation space {saved_obs} and "
                                 f"action space {saved_act}; this env has observation space {obs_space} and "
                                 f"action space {act_space}")
            model.observation_space, model.action_space = obs_space, act_space
        else:
            model.observation_space, model.action_space = _spaces_from(config)
        model._setup_model(config["frame_stack"])
        arrays = load_file(str(path / "weights.safetensors"))
        for prefix, net in (("q_net", model.q_net), ("q_net_target", model.q_net_target)):
            n = len(net.weights)
            missing = [f"{prefix}.{i}" for i in range(n) if f"{prefix}.{i}" not in arrays]
            if missing:
                raise ValueError(f"DQN.load: weights.safetensors in {path} lacks {missing}")
            net.set_weights([arrays[f"{prefix}.{i}"] for i in range(n)])
        model.num_timesteps = int(config.get("num_timesteps", 0))
        model.exploration_rate = float(config.get("exploration_rate", model.exploration_final_eps))
        return model

    def __repr__(self):
        return (f"DQN({self.policy!r}, observation_space={self.observation_space}, action_space={self.action_space}, "
                f"double_q={self.double_q}, num_timesteps={self.num_timesteps})")


def _spaces_from(config):
    """gymnasium spaces rebuilt from a saved description (only what acting needs)."""
    from gymnasium import spaces

    obs, act = config["observation_space"], config["action_space"]
    if obs["class"] != "Box" or act["class"] != "Discrete":
        raise ValueError(f"DQN.load: cannot rebuild observation space {obs} / action space {act}")
    observation_space = spaces.Box(low=obs["low"], high=obs["high"], shape=tuple(obs["shape"]), dtype=obs["dtype"])
    return observation_space, spaces.Discrete(act["n"])


__all__ = ["DQN", "LinearSchedule", "bellman_targets", "evaluate_policy"]
