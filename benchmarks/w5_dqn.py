"""W5: the DQN learner of `neurona.rl` on CartPole sizes — Q-network 4-128-128-2, a target
network, Huber loss, Adam, batch 32 — one learner step (eager, and traced with `nr.jit`) against
the same step in PyTorch eager; and single-state action selection (`DQN.predict(obs,
deterministic=True)` against a PyTorch forward + argmax). Both sides start from the same weights
and see the same batch. `learner_with_sampling_s` adds drawing the batch from the replay buffer
and moving it into tensors (`DQN.train(1, 32)`).

`python -m benchmarks.w5_dqn [--threads 1,all] [--reps N] [--block K] [--loop-steps 5000]` prints JSON
lines (--loop-steps: environment steps/s of the whole training loop against Stable-Baselines3's DQN;
--block K: each turn of a side is K calls in a row, timed together, instead of one: the sides
still alternate, but each runs with its own data and code in cache, as a training loop's
gradient steps run back to back; the default 1 has every call follow another side's);
`python -m benchmarks.run --only W5` runs it with the other workloads.
May import: numpy, torch, gymnasium, neurona, neurona.rl, benchmarks.harness, benchmarks.w8_graph.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time

from ._blasenv import rerun_unpinned

if __name__ == "__main__":
    rerun_unpinned("benchmarks.w5_dqn")

import numpy as np  # noqa: E402
import torch  # noqa: E402

import neurona as nr  # noqa: E402

from .harness import blas_info, cpu_model, set_threads  # noqa: E402
from .w8_graph import report, time_sides  # noqa: E402

TORCH = f"torch {torch.__version__.split('+')[0]} eager"
GAMMA = 0.99


def _agent(jit):
    from neurona.rl.dqn import DQN

    # max_grad_norm=None: the PyTorch step below does not clip either
    return DQN("MlpPolicy", "CartPole-v1", learning_rate=1e-3, batch_size=32, buffer_size=10_000,
               policy_kwargs=dict(net_arch=[128, 128]), max_grad_norm=None, loss="huber", seed=0, jit=jit,
               n_threads=None)


def _torch_copy(model):
    """A torch.nn.Sequential with the weights of a neurona Q-network (Dense kernels are (in, out))."""
    weights = model.get_weights()
    layers = []
    for i in range(0, len(weights), 2):
        kernel, bias = weights[i], weights[i + 1]
        lin = torch.nn.Linear(*kernel.shape)
        with torch.no_grad():
            lin.weight.copy_(torch.from_numpy(kernel.T.copy()))
            lin.bias.copy_(torch.from_numpy(bias))
        layers += [lin, torch.nn.ReLU()]
    return torch.nn.Sequential(*layers[:-1])


def _fill(agent, n=2000, seed=0):
    rng = np.random.default_rng(seed)
    for _ in range(n):
        agent.replay_buffer.add(rng.normal(size=(1, 4)).astype(np.float32), rng.normal(size=(1, 4)).astype(np.float32),
                                rng.integers(0, 2, 1), rng.normal(size=1), rng.random(1) < 0.05)


def sides():
    eager, traced = _agent(False), _agent(True)
    traced.q_net.set_weights(eager.q_net.get_weights())
    traced.q_net_target.set_weights(eager.q_net.get_weights())
    for agent in (eager, traced):
        _fill(agent)
    batch = eager.replay_buffer.sample(32, np.random.default_rng(1))
    mask = np.zeros((32, 2), np.float32)
    mask[np.arange(32), batch.actions] = 1.0

    def tensors():
        return (nr.tensor(batch.observations), nr.tensor(mask), nr.tensor(batch.rewards.astype(np.float32)),
                nr.tensor(batch.next_observations), nr.tensor((1.0 - batch.dones).astype(np.float32)))

    eager_step, traced_step = eager._make_train_step(), traced._make_train_step()

    net, tgt = _torch_copy(eager.q_net), _torch_copy(eager.q_net)
    opt = torch.optim.Adam(net.parameters(), lr=1e-3)
    s, s2 = torch.from_numpy(batch.observations), torch.from_numpy(batch.next_observations)
    a = torch.from_numpy(batch.actions)
    r = torch.from_numpy(batch.rewards.astype(np.float32))
    not_done = torch.from_numpy((1.0 - batch.dones).astype(np.float32))

    def torch_step():
        q = net(s).gather(1, a[:, None]).squeeze(1)
        with torch.no_grad():
            target = r + GAMMA * tgt(s2).max(1).values * not_done
        loss = torch.nn.functional.huber_loss(q, target)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()

    return eager, torch_step, (lambda: eager_step(*tensors())), (lambda: traced_step(*tensors())), net


def _blocks(fns: dict, k: int) -> dict:
    """Each side as k calls in a row (its time is then divided by k)."""
    if k == 1:
        return fns

    def block(fn):
        def run():
            for _ in range(k):
                fn()
        return run

    return {n: block(f) for n, f in fns.items()}


def run(threads, reps, block=1):
    eager_agent, torch_step, eager, traced, net = sides()
    t0 = time.perf_counter()
    traced()  # trace + compile once, outside the timing
    trace_s = time.perf_counter() - t0
    t = time_sides(_blocks({"jit": traced, "eager": eager, "torch": torch_step}, block), max(reps // block, 5))
    t = {n: v / block for n, v in t.items()}
    with_sampling = time_sides({"train": lambda: eager_agent.train(1, 32)}, max(reps // 4, 5))["train"]
    blk = {"block": block} if block > 1 else {}
    rows = [report("W5-learner-eager", t["eager"], t["torch"], "s/step", TORCH, threads,
                   learner_with_sampling_s=round(with_sampling, 7), **blk),
            report("W5-learner-jit", t["jit"], t["torch"], "s/step", TORCH, threads,
                   trace_and_compile_s=round(trace_s, 2), jit_speedup_vs_eager=round(t["eager"] / t["jit"], 2),
                   **blk)]
    obs = np.random.default_rng(2).normal(size=4).astype(np.float32)

    def torch_act():
        with torch.no_grad():
            return int(net(torch.from_numpy(obs)[None]).argmax(1).item())

    def ours_act():
        return int(eager_agent.predict(obs, deterministic=True)[0])

    a = time_sides(_blocks({"ours": ours_act, "torch": torch_act}, block), max(reps * 20 // block, 5))
    a = {n: v / block for n, v in a.items()}
    rows.append(report("W5-act", a["ours"], a["torch"], "s/action", TORCH, threads, **blk))
    return rows


ZOO = dict(learning_rate=2.3e-3, batch_size=64, buffer_size=100_000, learning_starts=1000, gamma=0.99,
           target_update_interval=10, train_freq=256, gradient_steps=128, exploration_fraction=0.16,
           exploration_final_eps=0.04, max_grad_norm=10.0, seed=0)


def loop(threads, steps):
    """Environment steps per second of the whole training loop (collection, replay, learner) with
    rl-zoo's CartPole settings, neurona.rl's DQN against Stable-Baselines3's when it is installed."""
    from neurona.rl.dqn import DQN

    def ours():
        DQN("MlpPolicy", "CartPole-v1", policy_kwargs=dict(net_arch=[256, 256]), n_threads=None, **ZOO).learn(steps)

    sides = {"ours": ours}
    try:
        import stable_baselines3 as sb3

        def theirs():
            sb3.DQN("MlpPolicy", "CartPole-v1", policy_kwargs=dict(net_arch=[256, 256]), device="cpu",
                    **ZOO).learn(steps)
        sides["sb3"] = theirs
        peer = f"stable-baselines3 {sb3.__version__}"
    except ImportError:
        peer = "stable-baselines3 not installed"
    t = time_sides(sides, reps=2, warmup=0)
    row = {"workload": "W5-loop", "steps": steps, "neurona_steps_per_s": round(steps / t["ours"], 1),
           "threads": threads, "peer": peer, "loadavg_1m": round(os.getloadavg()[0], 2)}
    if "sb3" in t:
        row.update(peer_steps_per_s=round(steps / t["sb3"], 1), ratio_time=round(t["ours"] / t["sb3"], 3))
    print(json.dumps(row), flush=True)
    return row


def w5(threads, reps):
    """The W5 rows at the thread count already set (the signature `benchmarks.run` calls)."""
    return run(threads, reps * 40)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--threads", default="1,all")
    ap.add_argument("--reps", type=int, default=200)
    ap.add_argument("--block", type=int, default=1,
                    help="calls in a row per turn of a side (1: every call follows another side's)")
    ap.add_argument("--loop-steps", type=int, default=0,
                    help="also time this many steps of the whole training loop against SB3 (e.g. 5000)")
    ap.add_argument("--keep-blas-env", action="store_true", help="keep OPENBLAS_CORETYPE/L2_SIZE as set")
    args = ap.parse_args(argv)
    print(json.dumps({"machine": cpu_model(), "cores": os.cpu_count(), "blas": blas_info(),
                      "torch": torch.__version__, "numpy": np.__version__,
                      "loadavg": [round(x, 2) for x in os.getloadavg()]}), flush=True)
    for n in [os.cpu_count() if t == "all" else int(t) for t in args.threads.split(",")]:
        set_threads(n)
        run(n, args.reps, args.block)
        if args.loop_steps:
            loop(n, args.loop_steps)
    return 0


if __name__ == "__main__":
    sys.exit(main())
