#!/bin/bash
# quiet figures, 2026-12-03 evening session (issue 13 action row, issue 11 new default, issue 12 twin)
cd /work/main
D=/work/runs/q5
P=.venv/bin/python
export PYTHONPATH=$PWD
date -u +%T > $D/start
$P -m benchmarks.w5_dqn --threads 1 --reps 200 --loop-steps 5000 > $D/w5_1.jsonl 2> $D/w5_1.err
$P -m benchmarks.w5_dqn --threads all --reps 20 > $D/w5_all.jsonl 2> $D/w5_all.err
date -u +%T > $D/w5_end
$P -m benchmarks.run --only W1,W2,W3,W4,W7 --threads 1,all --reps 7 > $D/w12347.jsonl 2> $D/w12347.err
NEURONA_NUM_THREADS=1 $P -m benchmarks.run --only W1,W2,W3 --threads all --reps 7 > $D/w123_k1.jsonl 2> $D/w123_k1.err
date -u +%T > $D/run_end
$P -m benchmarks.conv_sweep --quick --reps 5 --threads 1,all > $D/conv.jsonl 2> $D/conv.err
date -u +%T > $D/bench_end
$P -m benchmarks.char_lstm_peer --minutes 12 --lr-schedule cosine --windows random > $D/char_peer.jsonl 2> $D/char_peer.err
date -u +%T > $D/end
