"""`neurona pipeline ...`: the continuous-training pipeline's subcommand for the `neurona` command
(`run`, `lineage`, `promote`, `monitor`; the same as `python -m neurona.pipeline`).
May import: argparse, neurona.pipeline.
"""
from __future__ import annotations

import argparse

HELP = "continuous training pipeline: run pipeline.yaml, lineage, promote, monitor"


def add_arguments(parser):
    parser.add_argument("args", nargs=argparse.REMAINDER,
                        help="what `python -m neurona.pipeline` takes, e.g. run pipeline.yaml")


def run(args) -> int:
    from .__main__ import main

    return main(args.args)
