#!/bin/bash
# quiet figures, end of the 2026-12-03 afternoon session
cd /work/main
D=/work/runs/q4
P=.venv/bin/python
date -u +%T > $D/start
$P -m benchmarks.run --only W1,W2,W3,W7 --threads 1,all --reps 7 > $D/w1237.jsonl 2> $D/w1237.err
$P -m benchmarks.run --only W1,W2,W3,W4 --threads all --reps 7 --neurona-threads > $D/w1234_nt.jsonl 2> $D/w1234_nt.err
$P -m benchmarks.run --only W4 --threads 1,all --reps 15 > $D/w4.jsonl 2> $D/w4.err
$P -m benchmarks.w5_dqn --threads 1 --reps 200 --loop-steps 5000 > $D/w5_1.jsonl 2> $D/w5_1.err
$P -m benchmarks.w5_dqn --threads all --reps 20 > $D/w5_all.jsonl 2> $D/w5_all.err
$P -m benchmarks.conv_sweep --quick --reps 5 --threads 1,all > $D/conv.jsonl 2> $D/conv.err
date -u +%T > $D/end
