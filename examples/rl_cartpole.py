"""Course topic 8: DQN on CartPole-v1, three seeds, with the tuned settings of neurona.rl.zoo
(Double DQN, Huber loss, gradient clipping, the learning rate decayed to 0, the best evaluated
weights kept). Each seed's agent, curve and results.json go to out/rl/cartpole/CartPole-v1_seed<s>/;
the curves of all seeds to out/rl/cartpole/cartpole_curves.png.

    python examples/rl_cartpole.py                 # train seeds 0, 1, 2 (minutes each on a CPU)
    python examples/rl_cartpole.py --plot-only     # only redraw the curves from the results files
"""
import argparse
import json
from pathlib import Path

import numpy as np

from neurona.rl.plots import _finish, _pyplot
from neurona.rl.zoo import train


def plot(results, path):
    plt = _pyplot()
    fig, (ax_train, ax_eval) = plt.subplots(1, 2, figsize=(11, 4))
    for r in results:
        ep = np.array(r["episodes"], dtype=float)
        k = 20
        smooth = np.convolve(ep[:, 1], np.ones(k) / k, mode="valid") if len(ep) >= k else ep[:, 1]
        ax_train.plot(ep[len(ep) - len(smooth):, 0], smooth, label=f"seed {r['seed']}")
        ev = np.array(r["evaluations"], dtype=float)
        ax_eval.plot(ev[:, 0], ev[:, 1], "o-", label=f"seed {r['seed']}: final {r['final_mean_return']:.1f} "
                                                    f"({r['final_episodes']} episodes)")
    ax_train.set_title("training episodes (running mean of 20, ε-greedy)")
    ax_eval.set_title("greedy evaluations (20 episodes each)")
    for ax in (ax_train, ax_eval):
        ax.axhline(475, color="0.5", ls="--", lw=1)
        ax.set_xlabel("environment steps")
        ax.set_ylabel("episode return")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    fig.suptitle("DQN on CartPole-v1 (neurona.rl)")
    _finish(fig, path)
    print("saved", path)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    ap.add_argument("--out", default="out/rl/cartpole")
    ap.add_argument("--plot-only", action="store_true")
    args = ap.parse_args()
    results = []
    for seed in args.seeds:
        file = Path(args.out) / f"CartPole-v1_seed{seed}" / "results.json"
        if not args.plot_only:
            train("CartPole-v1", seed=seed, out=args.out)
        results.append(json.loads(file.read_text()))
    for r in results:
        print(f"seed {r['seed']}: {r['env_steps']} env steps, {r['train_seconds']} s, final mean return "
              f"{r['final_mean_return']:.1f} ± {r['final_std_return']:.1f} over {r['final_episodes']} episodes")
    plot(results, Path(args.out) / "cartpole_curves.png")


if __name__ == "__main__":
    main()
