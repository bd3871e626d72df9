"""The Atari pipeline: the DQN paper's preprocessing on ALE/Breakout-v5 (ale-py carries the ROM)
and a CnnPolicy DQN that collects, stores frames once and takes a learner step."""
import numpy as np

from neurona.rl.dqn import DQN
from neurona.rl.envs import make_atari_env


def test_breakout_preprocessing_episodic_life_and_clipping():
    env = make_atari_env("ALE/Breakout-v5", n_envs=1)
    obs, _ = env.reset(seed=0)
    assert obs.shape == (1, 4, 84, 84) and obs.dtype == np.uint8
    ale = env.envs[0].unwrapped.ale
    lives = ale.lives()
    rng = np.random.default_rng(0)
    for _ in range(3000):
        obs, reward, terminated, truncated, infos = env.step(rng.integers(0, 4, 1))
        assert reward[0] in (-1.0, 0.0, 1.0)
        if terminated[0]:
            break
    assert terminated[0], "no life was lost in 3000 random steps"
    # the learning episode ended with the life, the game goes on (one life fewer, not a new game)
    assert ale.lives() == lives - 1
    assert "game_episode" not in infos["final_info"]
    # the stack after the automatic reset starts a new learning episode: 4 copies of one frame
    assert all(np.array_equal(obs[0, 0], obs[0, k]) for k in range(1, 4))


def test_cnn_dqn_runs_on_breakout_with_frames_stored_once():
    env = make_atari_env("ALE/Breakout-v5", n_envs=1)
    model = DQN("CnnPolicy", env, buffer_size=200, learning_starts=40, batch_size=4, train_freq=20, seed=0)
    assert model.frame_stack == 4 and model.replay_buffer.frames.shape == (200, 1, 84, 84)
    model.learn(60)
    assert model._n_updates == 1 and np.isfinite(model.losses[-1])
    action, _ = model.predict(env.reset(seed=1)[0][0], deterministic=True)
    assert 0 <= int(action) < 4
