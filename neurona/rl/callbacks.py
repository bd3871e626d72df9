"""Callbacks for `DQN.learn`, with Stable-Baselines3's names: `BaseCallback` (`_on_step`
returning False stops training), `CallbackList`, `EvalCallback` (evaluates every `eval_freq`
steps and keeps the best model), `StopTrainingOnRewardThreshold`. A plain function
`f(locals_, globals_) -> bool` works too, as in SB3.
May import: numpy, neurona.rl.evaluation.
"""
from __future__ import annotations

import numpy as np


class BaseCallback:
    """Override `_on_step` (return False to stop), and optionally `_on_training_start`/`_end`.
    `self.model` is the agent, `self.num_timesteps` its environment steps, `self.locals` the
    learning loop's variables at this step."""

    def __init__(self, verbose=0):
        self.verbose = verbose
        self.model = None
        self.n_calls = 0
        self.num_timesteps = 0
        self.locals: dict = {}
        self.globals: dict = {}
        self.parent = None

    def init_callback(self, model):
        self.model = model
        self._init_callback()

    def _init_callback(self):
        pass

    def on_training_start(self, locals_, globals_):
        self.locals, self.globals = locals_, globals_
        self.num_timesteps = self.model.num_timesteps
        self._on_training_start()

    def _on_training_start(self):
        pass

    def on_step(self) -> bool:
        self.n_calls += 1
        self.num_timesteps = self.model.num_timesteps
        return bool(self._on_step())

    def _on_step(self) -> bool:
        return True

    def on_training_end(self):
        self._on_training_end()

    def _on_training_end(self):
        pass

    def update_locals(self, locals_):
        self.locals.update(locals_)


class CallbackList(BaseCallback):
    """Several callbacks; training stops when any of them returns False."""

    def __init__(self, callbacks):
        super().__init__()
        self.callbacks = [convert_callback(c) for c in callbacks]

    def _init_callback(self):
        for c in self.callbacks:
            c.init_callback(self.model)

    def _on_training_start(self):
        for c in self.callbacks:
            c.on_training_start(self.locals, self.globals)

    def _on_step(self):
        go = True
        for c in self.callbacks:
            go = c.on_step() and go
        return go

    def _on_training_end(self):
        for c in self.callbacks:
            c.on_training_end()

    def update_locals(self, locals_):
        for c in self.callbacks:
            c.update_locals(locals_)


class ConvertCallback(BaseCallback):
    """A function `f(locals_, globals_) -> bool` as a callback (None means continue)."""

    def __init__(self, fn, verbose=0):
        super().__init__(verbose)
        self.fn = fn

    def _on_step(self):
        result = self.fn(self.locals, self.globals)
        return True if result is None else bool(result)


def convert_callback(callback):
    if callback is None:
        return CallbackList([])
    if isinstance(callback, list):
        return CallbackList(callback)
    if isinstance(callback, BaseCallback):
        return callback
    if callable(callback):
        return ConvertCallback(callback)
    raise TypeError(f"DQN.learn: callback must be a BaseCallback, a list of them or a function, "
                    f"got {type(callback).__name__}")


class StopTrainingOnRewardThreshold(BaseCallback):
    """Give to `EvalCallback(callback_on_new_best=...)`: stop when the best mean return reaches
    `reward_threshold`."""

    def __init__(self, reward_threshold, verbose=0):
        super().__init__(verbose)
        self.reward_threshold = float(reward_threshold)

    def _on_step(self):
        best = self.parent.best_mean_reward
        if self.verbose and best >= self.reward_threshold:
            print(f"Stopping training: the best mean return {best:.2f} reached {self.reward_threshold}")
        return best < self.reward_threshold


class EvalCallback(BaseCallback):
    """Every `eval_freq` calls (vector steps), run `n_eval_episodes` on `eval_env` with the
    greedy policy; keep the evaluations (`timesteps`, `results`), save the best model to
    `best_model_save_path` (when given) and keep its weights in memory (`best_weights`, which
    `restore_best()` puts back). `callback_on_new_best` is called when a new best is found."""

    def __init__(self, eval_env, callback_on_new_best=None, n_eval_episodes=5, eval_freq=10000,
                 best_model_save_path=None, deterministic=True, verbose=1):
        super().__init__(verbose)
        self.eval_env = eval_env
        self.callback_on_new_best = callback_on_new_best
        if callback_on_new_best is not None:
            callback_on_new_best.parent = self
        self.n_eval_episodes, self.eval_freq = int(n_eval_episodes), int(eval_freq)
        self.best_model_save_path, self.deterministic = best_model_save_path, deterministic
        self.best_mean_reward = -np.inf
        self.best_weights = None
        self.best_timestep = None
        self.last_mean_reward = -np.inf
        self.timesteps: list = []
        self.results: list = []

    def _init_callback(self):
        if self.callback_on_new_best is not None:
            self.callback_on_new_best.init_callback(self.model)

    def _on_step(self):
        if self.eval_freq <= 0 or self.n_calls % self.eval_freq:
            return True
        from .evaluation import evaluate_policy

        rewards, _ = evaluate_policy(self.model, self.eval_env, n_eval_episodes=self.n_eval_episodes,
                                     deterministic=self.deterministic, return_episode_rewards=True)
        mean = float(np.mean(rewards))
        self.timesteps.append(self.num_timesteps)
        self.results.append(rewards)
        self.last_mean_reward = mean
        if self.verbose:
            print(f"Eval num_timesteps={self.num_timesteps}, episode_reward={mean:.2f} +/- {np.std(rewards):.2f}")
        self.model.logger_record("eval/mean_reward", mean)
        if mean > self.best_mean_reward:
            self.best_mean_reward, self.best_timestep = mean, self.num_timesteps
            self.best_weights = self.model.q_net.get_weights()
            if self.best_model_save_path is not None:
                self.model.save(f"{self.best_model_save_path}/best_model")
            if self.callback_on_new_best is not None:
                return self.callback_on_new_best.on_step()
        return True

    def restore_best(self):
        """Put the best evaluated weights back into the agent (online and target networks)."""
        if self.best_weights is not None:
            self.model.q_net.set_weights(self.best_weights)
            self.model.q_net_target.set_weights(self.best_weights)
