"""Graph passes, each a function Graph -> Graph in its own module, and the default pipeline.

`NEURONA_DEBUG=2` prints the IR after each pass.
May import: neurona.graph.ir, neurona.graph.executor, the pass modules.
"""
from __future__ import annotations

import sys

from ..debug import debug_level
from .constfold import constant_folding
from .cse import common_subexpression_elimination
from .dce import dead_code_elimination
from .fusion import elementwise_fusion
from .matmul import small_matmul_fusion
from .memory import MemoryPlan

PIPELINE = (("dce", dead_code_elimination), ("constant_folding", constant_folding),
            ("cse", common_subexpression_elimination), ("dce", dead_code_elimination),
            ("fusion", elementwise_fusion), ("small_matmul", small_matmul_fusion))


def optimize(graph, passes=None, fuse=True):
    """Run the passes (default `PIPELINE`; the two fusions only with `fuse`) and return the new graph."""
    passes = PIPELINE if passes is None else passes
    level = debug_level()
    if level >= 2:
        print(f"[neurona.graph] traced:\n{graph}", file=sys.stderr)
    for name, p in passes:
        if name in ("fusion", "small_matmul") and not fuse:
            continue
        graph = p(graph)
        if level >= 2:
            print(f"[neurona.graph] after {name}:\n{graph}", file=sys.stderr)
    return graph


__all__ = ["MemoryPlan", "PIPELINE", "common_subexpression_elimination", "constant_folding",
           "dead_code_elimination", "debug_level", "elementwise_fusion", "optimize",
           "small_matmul_fusion"]
