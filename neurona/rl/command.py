"""`neurona rl ...`: the reinforcement-learning subcommand of the `neurona` command (`train`,
`evaluate`, `record`; the same as `python -m neurona.rl`).
May import: argparse, neurona.rl.
"""
from __future__ import annotations

import argparse

HELP = "deep reinforcement learning: train, evaluate, record (DQN on gymnasium environments)"


def add_arguments(parser):
    parser.add_argument("args", nargs=argparse.REMAINDER,
                        help="what `python -m neurona.rl` takes, e.g. train CartPole-v1 --seed 0")


def run(args) -> int:
    from .__main__ import main

    return main(args.args) or 0
