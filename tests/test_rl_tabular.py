"""neurona.rl tabular part: MDP validation, policy evaluation, value and policy iteration on the
course gridworld (known values), tabular Q-learning/SARSA, the gridworld as a gymnasium env."""
import numpy as np
import pytest

from neurona.rl import MDP, GridWorld, course_gridworld_4x3, policy_evaluation, policy_iteration, value_iteration

# Sutton & Barto, figure 4.1: V of the equiprobable random policy on the 4×4 world
RANDOM_V = np.array([[0, -14, -20, -22], [-14, -18, -20, -20], [-20, -20, -18, -14], [-22, -20, -14, 0]])


def test_policy_evaluation_random_policy_known_values():
    world = GridWorld()
    mdp = world.to_mdp()
    sol = policy_evaluation(mdp, mdp.uniform_policy(), tol=1e-10)
    assert sol.converged
    np.testing.assert_allclose(world.grid(sol.V), RANDOM_V, atol=1e-6)


def test_value_and_policy_iteration_reach_optimum_and_agree():
    world = GridWorld()
    mdp = world.to_mdp()
    vi, pi = value_iteration(mdp), policy_iteration(mdp)
    rows, cols = np.indices(world.shape)
    distance = np.minimum(rows + cols, 6 - rows - cols)  # to the nearest terminal corner
    np.testing.assert_allclose(world.grid(vi.V), -distance)
    np.testing.assert_allclose(pi.V, vi.V, atol=1e-8)
    assert vi.converged and pi.converged and pi.iterations >= 2
    # both greedy policies are optimal: following either reaches a corner in `distance` moves
    for policy in (vi.policy, pi.policy):
        np.testing.assert_allclose(policy_evaluation(mdp, policy).V, vi.V, atol=1e-8)


def test_slippery_4x3_world_matches_the_textbook():
    world = course_gridworld_4x3()
    sol = value_iteration(world.to_mdp(), tol=1e-12)
    expected = [[0.812, 0.868, 0.918], [0.762, np.nan, 0.660], [0.705, 0.655, 0.611]]
    np.testing.assert_allclose(world.grid(sol.V)[:, :3], expected, atol=1e-3)
    assert world.render_policy(sol.policy).splitlines()[2] == "↑ ← ← ←"
    np.testing.assert_allclose(policy_iteration(world.to_mdp(), tol=1e-12).V, sol.V, atol=1e-6)


def test_walls_and_discount():
    world = GridWorld(shape=(3, 3), terminals=[(0, 2)], walls=[(0, 1), (1, 1)], gamma=0.9)
    sol = value_iteration(world.to_mdp())
    grid = world.grid(sol.V)
    assert np.isnan(grid[0, 1]) and np.isnan(grid[1, 1])
    # (0, 0) must go around the walls: 6 moves at −1, discounted
    np.testing.assert_allclose(grid[0, 0], -sum(0.9 ** k for k in range(6)))


def test_mdp_errors_name_state_action_and_gamma():
    P = np.zeros((2, 2, 2))
    P[:, :, 0] = 1.0
    P[1, 0] = [0.5, 0.4]
    with pytest.raises(ValueError, match=r"P\[1, 0, :\] of state '1', action 'a0' sum to 0.9"):
        MDP(P, np.zeros((2, 2)), action_names=["a0", "a1"])
    P[1, 0] = [0.5, 0.5]
    with pytest.raises(ValueError, match=r"gamma must be in \[0, 1\], got 1.5"):
        MDP(P, np.zeros((2, 2)), gamma=1.5)
    with pytest.raises(ValueError, match=r"R must have shape"):
        MDP(P, np.zeros((3,)))
    with pytest.raises(ValueError, match="terminal"):
        GridWorld(terminals=[(5, 5)])
    with pytest.raises(ValueError, match="policy"):
        MDP(P, np.zeros((2, 2))).policy_matrix(np.array([0, 7]))


def test_gridworld_env_and_q_learning_sarsa():
    import gymnasium as gym
    from gymnasium.utils.env_checker import check_env

    from neurona.rl.envs import GridWorldEnv
    from neurona.rl.tabular import q_learning, sarsa

    env = GridWorldEnv(GridWorld(), render_mode="rgb_array")
    check_env(env, skip_render_check=True)
    env.reset(seed=0)
    assert env.render().shape == (4 * 48, 4 * 48, 3)
    world = GridWorld()
    optimal = value_iteration(world.to_mdp()).V
    q = q_learning(GridWorldEnv(world), n_episodes=1000, learning_rate=0.5, gamma=1.0, seed=0)
    np.testing.assert_allclose(q.Q.max(axis=1), optimal, atol=0.01)
    s = sarsa(GridWorldEnv(world), n_episodes=300, learning_rate=0.5, gamma=1.0, epsilon=(0.5, 0.0, 0.8), seed=0)
    # SARSA learns the values of the ε-greedy policy it follows: close to, and at most, V*
    assert (s.Q.max(axis=1) <= optimal + 1e-9).all()
    assert np.abs(s.Q.max(axis=1) - optimal).max() < 1.5
    with pytest.raises(ValueError, match="Discrete observation and action spaces.*Box"):
        q_learning(gym.make("CartPole-v1"), n_episodes=1)


def test_frozenlake_q_learning_beats_random():
    import gymnasium as gym

    from neurona.rl.tabular import evaluate_tabular, q_learning

    lake = gym.make("FrozenLake-v1", map_name="4x4", is_slippery=False)
    result = q_learning(lake, n_episodes=400, learning_rate=0.5, gamma=0.95, seed=0)
    assert evaluate_tabular(lake, result.policy, n_episodes=10, seed=0)[0] == 1.0
