"""Reinforcement learning (course topic 8): finite MDPs and dynamic programming, the course's
gridworld, tabular Q-learning and SARSA, and deep Q-learning (DQN) with Stable-Baselines3's names.

gymnasium (the `rl` extra) is imported only by the parts that use an environment.
May import: neurona.rl.mdp, neurona.rl.gridworld, neurona.rl.tabular, neurona.rl.plots,
neurona.rl.dqn, neurona.rl.buffers, neurona.rl.policies, neurona.rl.callbacks, neurona.rl.envs (lazily).
"""
from .gridworld import ACTIONS, GridWorld, course_gridworld_4x3
from .mdp import MDP, Solution, greedy, policy_evaluation, policy_iteration, value_iteration

_LAZY = {"q_learning": "tabular", "sarsa": "tabular", "TabularResult": "tabular", "plot_policy": "plots",
         "plot_values": "plots", "GridWorldEnv": "envs", "MDPEnv": "envs", "make_atari_env": "envs",
         "make_vec_env": "envs", "DQN": "dqn", "evaluate_policy": "dqn", "ReplayBuffer": "buffers",
         "LinearSchedule": "dqn", "bellman_targets": "dqn", "nature_cnn": "policies", "mlp": "policies",
         "BaseCallback": "callbacks", "CallbackList": "callbacks", "EvalCallback": "callbacks",
         "StopTrainingOnRewardThreshold": "callbacks", "evaluate_tabular": "tabular", "plot_curves": "plots",
         "mdp_from_toy_text": "envs"}


def __getattr__(name):
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'neurona.rl' has no attribute {name!r}")
    import importlib

    return getattr(importlib.import_module(f".{module}", __name__), name)


__all__ = ["ACTIONS", "GridWorld", "MDP", "Solution", "course_gridworld_4x3", "greedy", "policy_evaluation",
           "policy_iteration", "value_iteration", *_LAZY]
