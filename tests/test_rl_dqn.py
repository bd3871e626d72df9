"""neurona.rl DQN: replay buffer (ring, sampling, frames stored once), Bellman targets against a
hand computation, target sync every C steps, the ε schedule, Double DQN targets, save/load,
error messages, and a short seeded CartPole run that improves the return."""
import gymnasium as gym
import numpy as np
import pytest

import neurona as nr
from neurona.rl.buffers import ReplayBuffer
from neurona.rl.dqn import DQN, LinearSchedule, bellman_targets
from neurona.rl.evaluation import evaluate_policy


def small_dqn(**kwargs):
    params = dict(learning_rate=1e-3, buffer_size=1000, learning_starts=50, batch_size=8, train_freq=4,
                  target_update_interval=25, policy_kwargs=dict(net_arch=[16]), seed=0)
    params.update(kwargs)
    return DQN("MlpPolicy", "CartPole-v1", **params)


def test_replay_buffer_wraps_around_and_samples_uniformly():
    buf = ReplayBuffer(5, obs_shape=(1,), n_envs=1)
    for t in range(8):
        buf.add(np.array([[t]]), np.array([[t + 100]]), np.array([t % 2]), np.array([float(t)]), np.array([t == 7]))
    assert len(buf) == 5 and buf.full and buf.pos == 3
    assert sorted(buf.observations[:, 0, 0].tolist()) == [3, 4, 5, 6, 7]  # 0, 1, 2 overwritten
    batch = buf.sample(2000, np.random.default_rng(0))
    assert set(batch.observations[:, 0].tolist()) == {3, 4, 5, 6, 7}
    np.testing.assert_array_equal(batch.next_observations[:, 0], batch.observations[:, 0] + 100)
    np.testing.assert_array_equal(batch.rewards, batch.observations[:, 0])
    np.testing.assert_array_equal(batch.dones, batch.observations[:, 0] == 7)
    counts = np.bincount(batch.observations[:, 0].astype(int), minlength=8)[3:]
    assert counts.min() > 300  # uniform: 400 each expected
    with pytest.raises(ValueError, match=r"observations of shape \(1, 2\), expected \(1, 1\)"):
        buf.add(np.zeros((1, 2)), np.zeros((1, 2)), [0], [0.0], [False])


def test_frame_stack_buffer_rebuilds_the_stacks_of_frame_stack_observation():
    """Play a fake 'game' whose frames are numbered through gymnasium's FrameStackObservation and
    check that every sampled (obs, next obs) equals what the env produced, across episode ends
    and the ring's wrap-around, while each frame is stored once."""

    class Counter(gym.Env):
        observation_space = gym.spaces.Box(0, 255, (2, 2), np.uint8)
        action_space = gym.spaces.Discrete(2)

        def __init__(self):
            self.t, self.frame = 0, 0

        def reset(self, *, seed=None, options=None):
            self.t = 0
            self.frame = (self.frame + 1) % 256
            return np.full((2, 2), self.frame, np.uint8), {}

        def step(self, action):
            self.t += 1
            self.frame = (self.frame + 1) % 256
            return np.full((2, 2), self.frame, np.uint8), 0.0, self.t >= 6, False, {}

    env = gym.wrappers.FrameStackObservation(Counter(), 4)
    buf = ReplayBuffer(40, obs_shape=(4, 2, 2), obs_dtype=np.uint8, n_envs=1, frame_stack=4)
    seen = {}
    obs, _ = env.reset()
    for step in range(100):
        nxt, _, term, trunc, _ = env.step(0)
        buf.add(obs[None], nxt[None], [0], [step], [term], [trunc])
        seen[step] = (obs.copy(), nxt.copy(), term)
        obs = env.reset()[0] if term else nxt
    assert buf.frames.nbytes == 40 * 4  # one 2×2 frame per step, not four
    batch = buf.sample(500, np.random.default_rng(1))
    for o, n, d, r in zip(batch.observations, batch.next_observations, batch.dones, batch.rewards):
        want_o, want_n, term = seen[int(r)]
        np.testing.assert_array_equal(o, want_o)
        assert d == term
        if not term:  # a terminal transition's next observation is never used
            np.testing.assert_array_equal(n, want_n)
    assert batch.rewards.min() >= 100 - 40 + 3  # the 3 oldest rows cannot start a stack


def test_bellman_targets_match_hand_computation_with_terminals():
    rewards = np.array([1.0, 0.0, -1.0])
    dones = np.array([0.0, 1.0, 0.0])
    next_q = np.array([[0.5, 2.0], [10.0, 20.0], [-3.0, -4.0]])
    # by hand: 1 + 0.9·2 = 2.8; terminal: 0 (no future); −1 + 0.9·(−3) = −3.7
    np.testing.assert_allclose(bellman_targets(rewards, dones, 0.9, next_q), [2.8, 0.0, -3.7])
    # Double DQN: the online net picks a' (columns 0, 1, 1), the target net values it
    online = np.array([[5.0, 1.0], [0.0, 1.0], [0.0, 9.0]])
    np.testing.assert_allclose(bellman_targets(rewards, dones, 0.9, next_q, online), [1.45, 0.0, -4.6])


@pytest.mark.parametrize("double_q", [False, True])
def test_learner_step_regresses_towards_the_bellman_target(double_q):
    """One learner step with SGD: its loss equals the Huber loss against targets computed by hand
    from the target and online networks."""
    model = small_dqn(double_q=double_q, learning_starts=0)
    rng = np.random.default_rng(0)
    obs, next_obs = rng.normal(size=(8, 4)).astype(np.float32), rng.normal(size=(8, 4)).astype(np.float32)
    actions = rng.integers(0, 2, 8)
    rewards = rng.normal(size=8).astype(np.float32)
    dones = (rng.random(8) < 0.3).astype(np.float32)
    for o, n, a, r, d in zip(obs, next_obs, actions, rewards, dones):
        model.replay_buffer.add(o[None], n[None], [a], [r], [d])
    # perturb the online net so that it differs from the target net
    model.q_net.set_weights([w + 0.1 * rng.normal(size=w.shape).astype(np.float32) for w in model.q_net.get_weights()])
    with nr.no_grad():
        q_target = model.q_net_target(nr.tensor(next_obs)).numpy()
        q_online_next = model.q_net(nr.tensor(next_obs)).numpy()
        q = model.q_net(nr.tensor(obs)).numpy()[np.arange(8), actions]
    y = bellman_targets(rewards, dones, model.gamma, q_target, q_online_next if double_q else None)
    d = q - y
    expected = np.where(np.abs(d) <= 1, 0.5 * d * d, np.abs(d) - 0.5).mean()
    model.replay_buffer.sample = lambda n, rng=None: _ordered(model.replay_buffer)  # the 8 stored, in order
    loss = model.train(1, 8)
    np.testing.assert_allclose(loss, expected, rtol=1e-5)


def _ordered(buf):
    from neurona.rl.buffers import ReplayBufferSamples

    return ReplayBufferSamples(buf.observations[:8, 0], buf.actions[:8, 0], buf.next_observations[:8, 0],
                               buf.dones[:8, 0], buf.rewards[:8, 0])


def test_target_network_synced_every_c_steps():
    model = small_dqn(target_update_interval=25, learning_starts=10)
    syncs = []
    orig = model._update_target

    def spy():
        syncs.append(model.num_timesteps)
        orig()
    model._update_target = spy
    model.learn(110)
    assert syncs == [25, 50, 75, 100]
    # right after a sync the two networks are equal; after more learning they differ
    for t, o in zip(model.q_net_target.get_weights(), model.q_net.get_weights()):
        assert not np.array_equal(t, o)
    model._update_target()
    for t, o in zip(model.q_net_target.get_weights(), model.q_net.get_weights()):
        np.testing.assert_array_equal(t, o)


def test_soft_target_update():
    model = small_dqn(tau=0.1)
    before = model.q_net_target.get_weights()
    model.q_net.set_weights([w + 1.0 for w in model.q_net.get_weights()])
    model._update_target()
    for b, a in zip(before, model.q_net_target.get_weights()):
        np.testing.assert_allclose(a, b + 0.1, rtol=1e-5, atol=1e-6)


def test_epsilon_schedule_during_learning():
    schedule = LinearSchedule(1.0, 0.1, 0.5)
    assert schedule(1.0) == 1.0 and abs(schedule(0.75) - 0.55) < 1e-12 and schedule(0.5) == 0.1 and schedule(0.0) == 0.1
    model = small_dqn(exploration_fraction=0.5, exploration_initial_eps=1.0, exploration_final_eps=0.1,
                      learning_starts=1000)
    seen = {}
    model.learn(200, callback=lambda lc, gl: seen.__setitem__(lc["self"].num_timesteps, lc["self"].exploration_rate))
    assert abs(seen[1] - 1.0) < 1e-12
    assert abs(seen[51] - 0.55) < 1e-12  # ε was computed before step 51 from 50 steps done
    assert seen[150] == 0.1


def test_save_load_gives_identical_actions(tmp_path):
    model = small_dqn(learning_starts=20)
    model.learn(200)
    obs = np.random.default_rng(0).normal(size=(64, 4)).astype(np.float32)
    model.save(tmp_path / "agent")
    assert sorted(p.name for p in (tmp_path / "agent").iterdir()) == ["config.json", "weights.safetensors"]
    loaded = DQN.load(tmp_path / "agent")
    np.testing.assert_array_equal(loaded.predict(obs, deterministic=True)[0], model.predict(obs, deterministic=True)[0])
    np.testing.assert_array_equal(loaded.q_values(obs), model.q_values(obs))
    assert loaded.predict(obs[0], deterministic=True)[0] == model.predict(obs[0], deterministic=True)[0]
    with pytest.raises(ValueError, match=r"trained for observation space .*Box.*this env has observation space "
                                         r"Box\(0.0, 1.0, \(8,\)"):
        DQN.load(tmp_path / "agent", env=_other_env())


def _other_env():
    class Other(gym.Env):
        observation_space = gym.spaces.Box(0.0, 1.0, (8,), np.float32)
        action_space = gym.spaces.Discrete(2)
    return Other()


def test_policy_and_space_errors():
    with pytest.raises(ValueError, match=r"cannot handle observation space Box.*action space Box.*Discrete action space"):
        DQN("MlpPolicy", "Pendulum-v1")
    with pytest.raises(ValueError, match=r"cannot handle observation space Discrete\(16\)"):
        DQN("MlpPolicy", "FrozenLake-v1")
    with pytest.raises(ValueError, match=r"CnnPolicy: cannot handle observation space Box.*uint8 images"):
        DQN("CnnPolicy", "CartPole-v1")
    with pytest.raises(ValueError, match=r"gamma must be in \[0, 1\], got 1.2"):
        DQN("MlpPolicy", "CartPole-v1", gamma=1.2)
    model = small_dqn()
    with pytest.raises(ValueError, match=r"observation of shape \(3,\) does not match"):
        model.predict(np.zeros(3))


def test_predict_runs_the_traced_forward_and_sees_new_weights():
    model = small_dqn(learning_starts=20)
    obs = np.random.default_rng(3).normal(size=(5, 4)).astype(np.float32)
    with nr.no_grad():
        want = model.q_net(nr.tensor(obs)).numpy()
    np.testing.assert_allclose(model.q_values(obs), want, rtol=1e-5, atol=1e-6)
    assert model._q_fn.trace_count == 1
    model.learn(60)  # training changes the weights in place: the same graph reads them live
    with nr.no_grad():
        want = model.q_net(nr.tensor(obs)).numpy()
    np.testing.assert_allclose(model.q_values(obs), want, rtol=1e-5, atol=1e-6)
    assert model.predict(obs[0], deterministic=True)[0] == want[0].argmax()
    # one trace per batch shape, (5, 4) and (1, 4): the forward neither reads nor changes the
    # weights' .grad, so the grads that training leaves on them are not part of its signature
    assert model._q_fn.trace_count == 2
    model.learn(40)
    model.q_values(obs)
    assert model._q_fn.trace_count == 2  # every call replays


def test_one_state_predict_matches_the_batch_path_for_any_layout_and_dtype():
    """`predict` on one state runs the Q-network's array function (arrays in and out, no
    Tensors): the same actions as the batch path for C-contiguous, strided and float64
    observations, after training too, and argmax's tie and NaN rules."""
    from neurona.rl.dqn import _argmax_list

    model = small_dqn(learning_starts=20)
    obs = np.random.default_rng(4).normal(size=(6, 4)).astype(np.float32)
    wide = np.repeat(obs, 2, axis=1)  # wide[:, ::2] are strided views of obs' rows
    for round_ in range(2):
        want = model.q_values(obs).argmax(axis=1)
        for i in range(len(obs)):
            for o in (obs[i], wide[i, ::2], obs[i].astype(np.float64), obs[i].tolist()):
                assert model.predict(o, deterministic=True)[0] == want[i], (round_, i, o)
        assert model._q_one is not None
        model.learn(60)  # new weights: the array function reads them live
    with nr.no_grad():
        q = model.q_net(nr.tensor(obs[:1])).numpy()
    np.testing.assert_allclose(model._q_one(obs[:1]), q, rtol=1e-5, atol=1e-6)
    rows = np.random.default_rng(5).integers(0, 3, size=(200, 4)).astype(np.float64)
    rows[::7, 2] = np.nan
    for row in rows:
        assert _argmax_list(row.tolist()) == np.argmax(row), row


def test_jit_learner_step_matches_eager():
    # without fusion: compiling fused kernels with numba takes longer than this test may
    eager, traced = small_dqn(learning_starts=20), small_dqn(learning_starts=20, jit={"fuse": False})
    eager.learn(60)
    traced.learn(60)
    np.testing.assert_allclose(traced.losses, eager.losses, rtol=1e-4, atol=1e-6)
    assert traced._train_step_fn.trace_count == 1


def test_seeded_cartpole_run_improves_the_return():
    """A few thousand CartPole steps with the tuned recipe's shape lift the greedy return well
    above the random policy's (about 22)."""
    env = gym.make("CartPole-v1")
    model = DQN("MlpPolicy", "CartPole-v1", learning_rate=2.3e-3, batch_size=64, buffer_size=10_000,
                learning_starts=500, train_freq=64, gradient_steps=32, target_update_interval=10,
                exploration_fraction=0.5, exploration_final_eps=0.04, policy_kwargs=dict(net_arch=[64, 64]),
                double_q=True, seed=0)
    before, _ = evaluate_policy(model, env, n_eval_episodes=5, seed=0)
    model.learn(3000)
    after, _ = evaluate_policy(model, env, n_eval_episodes=5, seed=0)
    assert after > max(2 * before, 60), (before, after)
