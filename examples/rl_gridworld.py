"""Course topic 8, first half: the gridworld solved by dynamic programming and learnt by
tabular Q-learning and SARSA, and FrozenLake.

Saves under out/rl/ (or the folder given): the random policy and its values, the optimal policy
and V*, the slippery 4×3 world of the CS229 notes, and Q-learning vs SARSA on FrozenLake.

    python examples/rl_gridworld.py [out_dir]
"""
import sys
from pathlib import Path

import numpy as np

from neurona.rl import GridWorld, course_gridworld_4x3, policy_evaluation, policy_iteration, value_iteration
from neurona.rl.plots import plot_curves, plot_policy, plot_values


def main(out="out/rl"):
    out = Path(out)
    world = GridWorld()  # 4×4, terminal corners, −1 per move, γ = 1 (Sutton & Barto, example 4.1)
    mdp = world.to_mdp()
    random_pi = mdp.uniform_policy()
    v_random = policy_evaluation(mdp, random_pi)
    vi = value_iteration(mdp)
    pi = policy_iteration(mdp)
    print("V of the random policy (%d sweeps):\n%s" % (v_random.sweeps, world.grid(v_random.V).round(1)))
    print("V* by value iteration (%d sweeps):\n%s" % (vi.sweeps, world.grid(vi.V)))
    print("policy iteration: %d improvements, %d evaluation sweeps, same V*: %s"
          % (pi.iterations, pi.sweeps, np.allclose(pi.V, vi.V)))
    print(world.render_policy(vi.policy))
    saved = [plot_policy(world, random_pi, out / "gridworld_policy_random.png", "random policy"),
             plot_values(world, v_random.V, out / "gridworld_values_random.png", "V of the random policy"),
             plot_policy(world, vi.policy, out / "gridworld_policy_optimal.png", "optimal policy"),
             plot_values(world, vi.V, out / "gridworld_values_optimal.png", "V* (value iteration)")]

    slippery = course_gridworld_4x3()  # wall, +1/−1 exits, the move works with probability 0.8
    sol = value_iteration(slippery.to_mdp())
    print("4×3 world, slip 0.2:\n%s\n%s" % (slippery.grid(sol.V).round(3), slippery.render_policy(sol.policy)))
    plot_policy(slippery, sol.policy, out / "gridworld4x3_policy.png", "4×3 world, slip 0.2: optimal policy")
    plot_values(slippery, sol.V, out / "gridworld4x3_values.png", "4×3 world: V*")

    import gymnasium as gym

    from neurona.rl.envs import GridWorldEnv, mdp_from_toy_text
    from neurona.rl.tabular import evaluate_tabular, q_learning, sarsa

    learnt = q_learning(GridWorldEnv(world), n_episodes=300, learning_rate=0.5, gamma=1.0, seed=0)
    print("Q-learning on the gridworld, max_a Q:\n%s" % world.grid(learnt.Q.max(axis=1)).round(2))

    lake = gym.make("FrozenLake-v1")  # 4×4, slippery
    best = value_iteration(mdp_from_toy_text(lake, gamma=0.99))
    mean, _ = evaluate_tabular(lake, best.policy, n_episodes=1000, seed=1)
    print(f"FrozenLake value iteration (the optimum): success rate over 1000 episodes {mean:.3f}")
    curves = {}
    for algo in (q_learning, sarsa):
        result = algo(lake, n_episodes=5000, learning_rate=0.1, gamma=0.99, seed=0)
        mean, _ = evaluate_tabular(lake, result.policy, n_episodes=1000, seed=1)
        print(f"FrozenLake {algo.__name__}: success rate of the greedy policy over 1000 episodes {mean:.3f}")
        curves[algo.__name__] = (np.arange(1, 5001), result.episode_returns)
    plot_curves(curves, out / "frozenlake_tabular.png", "FrozenLake-v1 (slippery)", xlabel="episode",
                ylabel="success (running mean of 200)", smooth=200)
    print("saved pictures in", out)
    return saved


if __name__ == "__main__":
    main(*sys.argv[1:])
