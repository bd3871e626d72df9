"""Summarise the seed runs in this folder: `python docs/data/word2vec_kjv_seeds_2026-12-03/agg.py`.

Each w{W}_s{S}.json is the results.json of `python examples/word2vec_shakespeare.py --kjv --epochs 5
--workers W --seed S --no-tsne` (run.sh here), neurona and gensim 4.4.0 in one process.
"""
import glob
import json
import os
import re
import statistics as st


def summary(folder):
    rows = {}
    for f in sorted(glob.glob(os.path.join(folder, "w*_s*.json"))):
        m = re.search(r"w(\d+)_s(\d+)\.json$", f)
        d = json.load(open(f))
        if "gensim" not in d:
            continue
        rows.setdefault(int(m[1]), []).append(
            (int(m[2]), d["neurona"]["analogy_accuracy"], d["gensim"]["analogy_accuracy"],
             d["neurona"]["wordsim_spearman"], d["gensim"]["wordsim_spearman"],
             d["neurona"]["train_words_per_second"], d["gensim"]["train_words_per_second"]))
    lines = []
    for w, r in sorted(rows.items()):
        a = [x[1] for x in r]
        g = [x[2] for x in r]
        diff = [x[1] - x[2] for x in r]

        def se(v):
            return st.stdev(v) / len(v) ** 0.5

        lines += [f"workers {w}: {len(r)} seeds ({min(x[0] for x in r)}-{max(x[0] for x in r)})",
                  f"  analogies neurona {st.mean(a):.4f} ± {st.stdev(a):.4f} (se {se(a):.4f}); "
                  f"gensim {st.mean(g):.4f} ± {st.stdev(g):.4f} (se {se(g):.4f})",
                  f"  paired difference {st.mean(diff):+.4f}, se {se(diff):.4f}; neurona ahead on "
                  f"{sum(x > 0 for x in diff)}, level on {sum(x == 0 for x in diff)}",
                  f"  WordSim-353 neurona {st.mean(x[3] for x in r):.3f}, gensim {st.mean(x[4] for x in r):.3f}; "
                  f"training words/s (median) neurona {st.median(x[5] for x in r):,.0f}, "
                  f"gensim {st.median(x[6] for x in r):,.0f}"]
    return "\n".join(lines)


if __name__ == "__main__":
    print(summary(os.path.dirname(os.path.abspath(__file__))))
