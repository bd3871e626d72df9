"""`evaluate_policy(model, env, n_eval_episodes)`: mean and standard deviation of the episode
return, as Stable-Baselines3's function of the same name.
May import: numpy, gymnasium (through the env given).
"""
from __future__ import annotations

import numpy as np


def _is_vector(env):
    return hasattr(env, "num_envs") and hasattr(env, "single_observation_space")


def evaluate_policy(model, env, n_eval_episodes=10, deterministic=True, return_episode_rewards=False, seed=None):
    """Play `n_eval_episodes` whole episodes with `model.predict` and return (mean, std) of the
    returns, or (returns, lengths) with `return_episode_rewards=True`.

    `env` is a gymnasium env (episodes one after the other) or a vector env (episodes spread
    over its copies, each counted when it ends). An env built by `make_atari_env` reports whole
    games (all lives, unclipped score) through its 'game_episode' info when present.
    """
    if n_eval_episodes < 1:
        raise ValueError(f"evaluate_policy: n_eval_episodes must be >= 1, got {n_eval_episodes}")
    n_threads = getattr(model, "n_threads", None)
    if n_threads is None:
        return _evaluate(model, env, n_eval_episodes, deterministic, return_episode_rewards, seed)
    from threadpoolctl import threadpool_limits

    # acting is many tiny matrix products: more BLAS threads than free cores only make them wait
    with threadpool_limits(int(n_threads)):
        return _evaluate(model, env, n_eval_episodes, deterministic, return_episode_rewards, seed)


def _evaluate(model, env, n_eval_episodes, deterministic, return_episode_rewards, seed):
    returns, lengths = [], []
    if not _is_vector(env):
        for episode in range(n_eval_episodes):
            obs, _ = env.reset(seed=None if seed is None else int(seed) + episode)
            total, steps, done = 0.0, 0, False
            while not done:
                action, _ = model.predict(obs, deterministic=deterministic)
                obs, reward, terminated, truncated, info = env.step(int(np.asarray(action).reshape(())))
                total += float(reward)
                steps += 1
                done = terminated or truncated
                if done and "game_episode" in info:
                    total, steps = info["game_episode"]["r"], info["game_episode"]["l"]
            returns.append(total)
            lengths.append(steps)
    else:
        n = env.num_envs
        # as SB3: each copy plays its share of the episodes, so short episodes do not crowd out long ones
        targets = np.array([(n_eval_episodes + i) // n for i in range(n)])
        counts = np.zeros(n, dtype=int)
        key = getattr(env, "neurona_episode_key", "episode")
        obs, _ = env.reset(seed=seed)
        while (counts < targets).any():
            actions, _ = model.predict(obs, deterministic=deterministic)
            obs, _, terminated, truncated, infos = env.step(actions)
            done = np.logical_or(terminated, truncated)
            if not done.any():
                continue
            final = infos.get("final_info", infos)
            if key not in final:
                if "episode" not in final:
                    raise ValueError("evaluate_policy: the vector env reports no episode statistics; build it "
                                     "with neurona.rl.envs.make_vec_env (it adds RecordEpisodeStatistics)")
                continue  # an Atari life lost, not a game over
            mask = final[f"_{key}"]
            for i in np.flatnonzero(mask):
                if counts[i] < targets[i]:
                    returns.append(float(final[key]["r"][i]))
                    lengths.append(int(final[key]["l"][i]))
                    counts[i] += 1
    if return_episode_rewards:
        return returns, lengths
    return float(np.mean(returns)), float(np.std(returns))
