#!/bin/bash
# usage: bench_summary.sh "<workloads>" "<threads>" reps  (env passes through)
python -m benchmarks.run --only $1 --threads $2 --reps $3 2>&1 | python3 -c "
import sys,json
for l in sys.stdin:
    try: d=json.loads(l)
    except: continue
    if 'workload' not in d: continue
    print(d['workload'], d.get('metric','')[:8], d['threads'], round(d['neurona_s']*1e3,2), round(d['peer_s']*1e3,2), d['ratio'], 'load', d.get('loadavg_1m'))"
