"""word2vec on Shakespeare's works (course topic 6): neurona's Word2Vec and gensim's side by side
with the same settings on the same sentences — training speed (words/s), analogy accuracy on
gensim's questions-words.txt restricted to the vocabulary, word-pair correlation (WordSim-353),
nearest neighbours — and 2-D maps of the vectors (PCA and t-SNE) saved as PNG.

    python examples/word2vec_shakespeare.py                      # skip-gram, negative 5, window 5, dim 100
    python examples/word2vec_shakespeare.py --epochs 1 --no-gensim   # a quick look
    python examples/word2vec_shakespeare.py --kjv                # Shakespeare + the King James Bible

`--kjv` adds the King James Bible (Debian's bible-kjv: `apt-get install -y bible-kjv`), one verse per
sentence with the verse reference ("Ge1:1") removed; `--kjv-file kjv.txt` reads a saved copy instead.
"""
from __future__ import annotations

import argparse
import json
import os
import re
import time
from pathlib import Path

from neurona.text import Word2Vec, tokenize
from neurona.text.corpora import kjv_text, shakespeare_text

PROBES = ["king", "love", "death", "sword", "night", "father"]


def sentences_of(text):
    """One sentence per non-empty line, lower-cased words without punctuation."""
    return [toks for toks in (tokenize(line) for line in text.splitlines()) if toks]


_VERSE_REF = re.compile(r"^\s*[1-3]?[A-Za-z]+\d+:\d+\s+")


def kjv_sentences(path=None):
    """One sentence per verse of the King James Bible, without its reference ("Ge1:1 ", "1Co13:4 ")."""
    return sentences_of("\n".join(_VERSE_REF.sub("", line) for line in kjv_text(path).splitlines()))


def evaluate(wv):
    from gensim.test.utils import datapath

    score, sections = wv.evaluate_word_analogies(datapath("questions-words.txt"))
    n = len(sections[-1]["correct"]) + len(sections[-1]["incorrect"])
    (pearson, _), spearman, oov = wv.evaluate_word_pairs(datapath("wordsim353.tsv"))
    return {"analogy_accuracy": score, "analogy_questions": n, "wordsim_spearman": float(spearman[0]),
            "wordsim_oov_percent": oov}


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--epochs", type=int, default=5)
    p.add_argument("--workers", type=int, default=os.cpu_count())
    p.add_argument("--sg", type=int, default=1)
    p.add_argument("--negative", type=int, default=5)
    p.add_argument("--hs", type=int, default=0)
    p.add_argument("--vector-size", type=int, default=100)
    p.add_argument("--window", type=int, default=5)
    p.add_argument("--min-count", type=int, default=5)
    p.add_argument("--seed", type=int, default=1, help="the seed of both libraries")
    p.add_argument("--no-gensim", action="store_true")
    p.add_argument("--no-tsne", action="store_true")
    p.add_argument("--kjv", action="store_true", help="add the King James Bible to the corpus (bible-kjv)")
    p.add_argument("--kjv-file", default=None, help="a saved `bible \"Gen1:1-Rev22:21\"` output (implies --kjv)")
    p.add_argument("--out", default="out/word2vec")
    args = p.parse_args(argv)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    sents = sentences_of(shakespeare_text())
    corpus = "Shakespeare"
    if args.kjv or args.kjv_file:
        sents += kjv_sentences(args.kjv_file)
        corpus = "Shakespeare + KJV"
    n_words = sum(map(len, sents))
    print(f"{corpus}: {len(sents):,} sentences, {n_words:,} words")
    settings = dict(vector_size=args.vector_size, window=args.window, min_count=args.min_count, sg=args.sg,
                    hs=args.hs, negative=args.negative, sample=1e-3, epochs=args.epochs, workers=args.workers, seed=args.seed)
    results = {"corpus": corpus, "settings": settings, "words": n_words, "sentences": len(sents), "loadavg_before": os.getloadavg()}

    t = time.perf_counter()
    model = Word2Vec(sents, **settings)
    secs = time.perf_counter() - t
    results["neurona"] = {"seconds": secs, "train_words_per_second": model.train_stats["words_per_second"],
                          "vocab": len(model.wv), **evaluate(model.wv)}
    print(f"neurona: {len(model.wv)} words, {model.train_stats['words_per_second']:,.0f} words/s "
          f"(training), {secs:.1f}s in all; analogies {results['neurona']['analogy_accuracy']:.3f} on "
          f"{results['neurona']['analogy_questions']} questions; WordSim-353 Spearman "
          f"{results['neurona']['wordsim_spearman']:.3f}")
    for w in PROBES:
        if w in model.wv:
            print(f"  {w}: {', '.join(x for x, _ in model.wv.most_similar(w, topn=6))}")

    if not args.no_gensim:
        from gensim.models import Word2Vec as GensimWord2Vec

        g = GensimWord2Vec(vector_size=args.vector_size, window=args.window, min_count=args.min_count, sg=args.sg,
                           hs=args.hs, negative=args.negative, sample=1e-3, workers=args.workers, seed=args.seed)
        g.build_vocab(sents)
        t = time.perf_counter()
        g.train(sents, total_examples=g.corpus_count, epochs=args.epochs)
        gsecs = time.perf_counter() - t
        results["gensim"] = {"train_seconds": gsecs, "train_words_per_second": n_words * args.epochs / gsecs,
                             "vocab": len(g.wv), **evaluate(g.wv)}
        print(f"gensim:  {len(g.wv)} words, {results['gensim']['train_words_per_second']:,.0f} words/s; analogies "
              f"{results['gensim']['analogy_accuracy']:.3f}; WordSim-353 Spearman {results['gensim']['wordsim_spearman']:.3f}")
    results["loadavg_after"] = os.getloadavg()

    model.wv.save_word2vec_format(out / "shakespeare_vectors.bin", binary=True)
    words = [w for w in model.wv.index_to_key[40:240]]  # skip the most frequent function words
    model.wv.plot_map(out / "map_pca.png", words=words, method="pca", title=f"{corpus} word2vec, PCA")
    print(f"saved {out / 'map_pca.png'}")
    if not args.no_tsne:
        model.wv.plot_map(out / "map_tsne.png", words=words, method="tsne", title=f"{corpus} word2vec, t-SNE")
        print(f"saved {out / 'map_tsne.png'}")
    (out / "results.json").write_text(json.dumps(results, indent=1))
    print(f"saved {out / 'results.json'}, {out / 'shakespeare_vectors.bin'}")
    return results


if __name__ == "__main__":
    main()
