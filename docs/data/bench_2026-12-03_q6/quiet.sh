#!/bin/bash
# quiet baseline on the session's machine (2026-12-03 night: Intel Xeon, 2 cores)
cd /work/main
D=/work/runs/q6
P=.venv/bin/python
export PYTHONPATH=$PWD
date -u +%T > $D/start
$P -m benchmarks.run --only W1,W2,W3,W7 --threads 1,all --reps 7 > $D/w1237.jsonl 2> $D/w1237.err
date -u +%T > $D/run_end
$P -m benchmarks.conv_sweep --quick --reps 5 --threads 1,all > $D/conv.jsonl 2> $D/conv.err
date -u +%T > $D/end
