"""Tuned DQN settings per environment (as rl-baselines3-zoo's hyperparameter files) and the
training recipe the CLI runs: learn with periodic greedy evaluations, keep the best weights,
evaluate the kept agent on 100 episodes, save it with its learning curve.

CartPole-v1 starts from rl-zoo's DQN settings (lr 2.3e-3, batch 64, 256-256 MLP, 128 gradient
steps every 256 steps, ε to 0.04 over 16 % of training) and adds what made it stable here:
Double DQN targets, the Huber loss with global gradient clipping at 10, the learning rate decayed
linearly to 0 (late updates cannot undo a good policy), and keeping the best evaluated weights
(an evaluation of 20 greedy episodes every 2,500 steps; training stops once one scores 500, the
maximum). docs/rl.md has the runs.
May import: numpy, json, time, os, neurona.rl.dqn, neurona.rl.envs, neurona.rl.callbacks,
neurona.rl.evaluation, neurona.rl.plots, gymnasium.
"""
from __future__ import annotations

import json
import os
import time
from pathlib import Path

import numpy as np


def linear(start, end=0.0):
    """A schedule of progress_remaining (1 → 0): start → end linearly."""
    def schedule(progress_remaining):
        return end + (start - end) * progress_remaining
    schedule.start, schedule.end = start, end
    return schedule


HYPERPARAMS = {
    "CartPole-v1": dict(
        policy="MlpPolicy", n_timesteps=50_000, n_envs=1,
        learning_rate=("linear", 2.3e-3), batch_size=64, buffer_size=100_000, learning_starts=1000, gamma=0.99,
        target_update_interval=10, train_freq=256, gradient_steps=128, exploration_fraction=0.16,
        exploration_final_eps=0.04, policy_kwargs=dict(net_arch=[256, 256]), double_q=True, loss="huber",
        max_grad_norm=10.0,
        eval_freq=2500, n_eval_episodes=20, stop_reward=500.0),
    # The DQN paper's settings scaled to what the hardware allows; the buffer holds frames once
    # (84·84 bytes per step), so 100k steps take 0.7 GB.
    "ALE/Breakout-v5": dict(
        policy="CnnPolicy", n_timesteps=10_000_000, n_envs=4,
        learning_rate=1e-4, batch_size=32, buffer_size=100_000, learning_starts=100_000, gamma=0.99,
        target_update_interval=1000, train_freq=4, gradient_steps=1, exploration_fraction=0.1,
        exploration_final_eps=0.01, double_q=True, loss="huber", max_grad_norm=10.0,
        eval_freq=250_000, n_eval_episodes=5, stop_reward=None),
}

_RECIPE = ("n_timesteps", "n_envs", "eval_freq", "n_eval_episodes", "stop_reward", "policy")


def settings(env_id, **overrides):
    """(DQN keyword arguments, recipe) for `env_id` with `overrides` applied (None values ignored)."""
    if env_id not in HYPERPARAMS:
        raise ValueError(f"neurona.rl: no tuned settings for {env_id!r}; known: {sorted(HYPERPARAMS)}")
    params = {**HYPERPARAMS[env_id], **{k: v for k, v in overrides.items() if v is not None}}
    recipe = {k: params.pop(k) for k in _RECIPE}
    lr = params["learning_rate"]
    if isinstance(lr, tuple) and lr[0] == "linear":
        params["learning_rate"] = linear(lr[1])
    return params, recipe


def make_env(env_id, n_envs=1, **kwargs):
    """A vector env for `env_id` (Atari ids get the DQN preprocessing)."""
    from .envs import make_atari_env, make_vec_env

    if env_id.startswith("ALE/"):
        return make_atari_env(env_id, n_envs=n_envs, **kwargs)
    return make_vec_env(env_id, n_envs=n_envs)


def make_eval_env(env_id, n_envs=10):
    """The environment for evaluations: whole games, unclipped rewards for Atari."""
    from .envs import make_atari_env, make_vec_env

    if env_id.startswith("ALE/"):
        return make_atari_env(env_id, n_envs=n_envs, terminal_on_life_loss=False, clip_reward=False)
    return make_vec_env(env_id, n_envs=n_envs)


def train(env_id, seed=0, out="out/rl", n_timesteps=None, tensorboard=True, progress_bar=False, verbose=1,
          final_episodes=100, **overrides):
    """Train a DQN on `env_id` with the tuned settings, keep the best evaluated weights, evaluate
    them on `final_episodes` episodes and save the agent, its curve (PNG) and a results JSON under
    `out/<env>_seed<seed>/`. Returns the results dict."""
    from .callbacks import EvalCallback, StopTrainingOnRewardThreshold
    from .dqn import DQN
    from .evaluation import evaluate_policy
    from .plots import plot_curves

    params, recipe = settings(env_id, n_timesteps=n_timesteps, **overrides)
    run_dir = Path(out) / f"{env_id.replace('/', '_')}_seed{seed}"
    env = make_env(env_id, n_envs=recipe["n_envs"])
    eval_env = make_eval_env(env_id, n_envs=min(recipe["n_eval_episodes"], 10))
    model = DQN(recipe["policy"], env, seed=seed, verbose=verbose,
                tensorboard_log=str(run_dir / "tb") if tensorboard else None, **params)
    stop = StopTrainingOnRewardThreshold(recipe["stop_reward"]) if recipe["stop_reward"] is not None else None
    evaluator = EvalCallback(eval_env, callback_on_new_best=stop, n_eval_episodes=recipe["n_eval_episodes"],
                             eval_freq=max(recipe["eval_freq"] // recipe["n_envs"], 1), verbose=verbose)
    load_before = os.getloadavg()
    t0 = time.perf_counter()
    model.learn(recipe["n_timesteps"], callback=evaluator, progress_bar=progress_bar)
    train_seconds = time.perf_counter() - t0
    last_weights = model.q_net.get_weights()
    evaluator.restore_best()
    t1 = time.perf_counter()
    final_env = make_eval_env(env_id, n_envs=10)
    returns, lengths = evaluate_policy(model, final_env, n_eval_episodes=final_episodes, return_episode_rewards=True,
                                       seed=10_000 + seed)
    eval_seconds = time.perf_counter() - t1
    model.save(run_dir / "model")
    result = {"env_id": env_id, "seed": seed, "env_steps": model.num_timesteps, "train_seconds": round(train_seconds, 1),
              "final_eval_seconds": round(eval_seconds, 1), "final_mean_return": float(np.mean(returns)),
              "final_std_return": float(np.std(returns)), "final_episodes": len(returns),
              "best_eval_step": evaluator.best_timestep, "best_eval_mean": float(evaluator.best_mean_reward),
              "gradient_steps": model._n_updates, "loadavg_before": load_before, "loadavg_after": os.getloadavg(),
              "cpu_count": os.cpu_count(),
              "episodes": [[e["t"], e["r"], e["l"]] for e in model.ep_info_buffer],
              "evaluations": [[t, float(np.mean(r))] for t, r in zip(evaluator.timesteps, evaluator.results)]}
    model.q_net.set_weights(last_weights)
    run_dir.mkdir(parents=True, exist_ok=True)
    (run_dir / "results.json").write_text(json.dumps(result, indent=1))
    steps = [e["t"] for e in model.ep_info_buffer]
    plot_curves({"training episodes": (steps, [e["r"] for e in model.ep_info_buffer]),
                 "greedy evaluation": (evaluator.timesteps, [np.mean(r) for r in evaluator.results])},
                run_dir / "curve.png", f"DQN on {env_id}, seed {seed}")
    if verbose:
        print(f"{env_id} seed {seed}: {model.num_timesteps} env steps in {train_seconds:.1f} s; best weights from "
              f"step {evaluator.best_timestep}; mean return over {len(returns)} episodes "
              f"{np.mean(returns):.1f} ± {np.std(returns):.1f}; saved in {run_dir}")
    return result
