#!/bin/bash
# A/B at all threads: A = /work/runs/q7/wtA (HEAD 2180ed4), B = /work/main working tree
source /work/main/.venv/bin/activate
for r in 1 2; do
  for side in A B; do
    if [ $side = A ]; then cd /work/runs/q7/wtA; else cd /work/main; fi
    echo "== $side round $r $(date +%H:%M:%S)"
    /work/runs/q7/bench_summary.sh ${1:-W1,W2,W3,W4} ${2:-all} ${3:-5}
  done
done
