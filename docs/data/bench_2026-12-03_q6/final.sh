#!/bin/bash
# final figures of the 2026-12-03 night session (Intel Xeon, 2 vCPUs)
cd /work/main
D=/work/runs/q7
P=.venv/bin/python
export PYTHONPATH=$PWD
date -u +%T > $D/f_start
$P -m benchmarks.run --only W1,W2,W3,W4,W7 --threads 1,all --reps 7 > $D/final_auto.jsonl 2> $D/final_auto.err
NEURONA_BLAS=numpy $P -m benchmarks.run --only W1,W2,W3,W4,W7 --threads 1,all --reps 7 > $D/final_numpy.jsonl 2> $D/final_numpy.err
date -u +%T > $D/f_mid
$P -m benchmarks.conv_sweep --quick --reps 5 --threads 1,all > $D/final_conv.jsonl 2> $D/final_conv.err
date -u +%T > $D/f_end
