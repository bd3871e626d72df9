"""Command line: `python -m neurona.rl train|evaluate|record ENV_ID ...`.

    python -m neurona.rl train CartPole-v1 --seed 0            # out/rl/CartPole-v1_seed0/
    python -m neurona.rl evaluate out/rl/CartPole-v1_seed0/model --env CartPole-v1 --episodes 100
    python -m neurona.rl record out/rl/CartPole-v1_seed0/model --env CartPole-v1 --out cartpole.gif
    python -m neurona.rl train ALE/Breakout-v5 --timesteps 10000000 --device cuda

May import: argparse, numpy, neurona.rl.zoo, neurona.rl.dqn, neurona.rl.evaluation, gymnasium,
imageio (lazily).
"""
from __future__ import annotations

import argparse
import sys

import numpy as np


def _record(model_path, env_id, out, seed, max_steps, fps):
    """Play one greedy episode and write it as a GIF (the env's RGB frames)."""
    import gymnasium as gym
    import imageio.v2 as imageio

    from .dqn import DQN

    if env_id.startswith("ALE/"):
        import ale_py

        from .envs import atari_wrappers

        gym.register_envs(ale_py)
        env = atari_wrappers(gym.make(env_id, frameskip=1, repeat_action_probability=0.0, render_mode="rgb_array"),
                             terminal_on_life_loss=False, clip_reward=False)
    else:
        env = gym.make(env_id, render_mode="rgb_array")
    model = DQN.load(model_path, env=env)
    obs, _ = env.reset(seed=seed)
    frames, total = [env.render()], 0.0
    for _ in range(max_steps):
        action, _ = model.predict(obs, deterministic=True)
        obs, reward, terminated, truncated, info = env.step(int(action))
        total += float(reward)
        frames.append(env.render())
        if terminated or truncated:
            break
    if "game_episode" in info:
        total = info["game_episode"]["r"]
    imageio.mimsave(out, frames[::max(1, len(frames) // 400)], duration=1000 / fps, loop=0)
    print(f"recorded {len(frames)} frames, return {total:.1f}: {out}")
    return out


def _overrides(pairs):
    """{'key': value} from ['key=value', ...] (values parsed as JSON when they parse: numbers, true, null)."""
    import json

    out = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep:
            raise SystemExit(f"--hp expects KEY=VALUE, got {pair!r}")
        try:
            out[key.replace("-", "_")] = json.loads(value)
        except json.JSONDecodeError:
            out[key.replace("-", "_")] = value
    return out


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m neurona.rl", description=__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    tr = sub.add_parser("train", help="train a DQN with the tuned settings of neurona.rl.zoo")
    tr.add_argument("env_id")
    tr.add_argument("--seed", type=int, default=0)
    tr.add_argument("--timesteps", type=int, default=None)
    tr.add_argument("--out", default="out/rl")
    tr.add_argument("--device", default=None, help="cpu (default) or cuda")
    tr.add_argument("--jit", action="store_true", help="run the learner step as an nr.jit graph")
    tr.add_argument("--learning-starts", type=int, default=None)
    tr.add_argument("--buffer-size", type=int, default=None)
    tr.add_argument("--n-envs", type=int, default=None)
    tr.add_argument("--eval-freq", type=int, default=None)
    tr.add_argument("--final-episodes", type=int, default=100)
    tr.add_argument("--hp", action="append", default=[], metavar="KEY=VALUE",
                    help="override a DQN setting, e.g. --hp train_freq=8 --hp exploration_fraction=0.5")
    tr.add_argument("--progress-bar", action="store_true")
    tr.add_argument("--no-tensorboard", action="store_true")
    ev = sub.add_parser("evaluate", help="mean return of a saved agent")
    ev.add_argument("model")
    ev.add_argument("--env", required=True)
    ev.add_argument("--episodes", type=int, default=100)
    ev.add_argument("--seed", type=int, default=0)
    rec = sub.add_parser("record", help="a GIF of one greedy episode of a saved agent")
    rec.add_argument("model")
    rec.add_argument("--env", required=True)
    rec.add_argument("--out", default="out/rl/episode.gif")
    rec.add_argument("--seed", type=int, default=0)
    rec.add_argument("--max-steps", type=int, default=2000)
    rec.add_argument("--fps", type=float, default=30)
    args = parser.parse_args(argv)

    if args.command == "train":
        from .zoo import train

        train(args.env_id, seed=args.seed, out=args.out, n_timesteps=args.timesteps, progress_bar=args.progress_bar,
              tensorboard=not args.no_tensorboard, final_episodes=args.final_episodes, device=args.device,
              jit=args.jit or None, learning_starts=args.learning_starts, buffer_size=args.buffer_size,
              n_envs=args.n_envs, eval_freq=args.eval_freq, **_overrides(args.hp))
    elif args.command == "evaluate":
        from .dqn import DQN
        from .evaluation import evaluate_policy
        from .zoo import make_eval_env

        env = make_eval_env(args.env, n_envs=10)
        model = DQN.load(args.model, env=env)
        returns, lengths = evaluate_policy(model, env, n_eval_episodes=args.episodes, return_episode_rewards=True,
                                           seed=args.seed)
        print(f"{args.env}: mean return {np.mean(returns):.2f} ± {np.std(returns):.2f} over {len(returns)} episodes "
              f"(mean length {np.mean(lengths):.1f})")
    else:
        _record(args.model, args.env, args.out, args.seed, args.max_steps, args.fps)
    return 0


if __name__ == "__main__":
    sys.exit(main())
