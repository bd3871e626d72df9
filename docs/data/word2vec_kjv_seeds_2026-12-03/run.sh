#!/bin/bash
# usage (from the repository root): docs/data/word2vec_kjv_seeds_2026-12-03/run.sh WORKERS SEED...
# writes out/w2v_seeds/w{WORKERS}_s{SEED}/ (results.json, vectors, PCA map) and a log beside it
w=$1; shift
mkdir -p out/w2v_seeds
for s in "$@"; do
  python examples/word2vec_shakespeare.py --kjv --epochs 5 --workers $w --seed $s --no-tsne \
     --out out/w2v_seeds/w${w}_s$s > out/w2v_seeds/w${w}_s$s.log 2>&1
done
