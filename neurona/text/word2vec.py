"""word2vec with gensim's names: `Word2Vec` (skip-gram and CBOW; full softmax, negative sampling
and hierarchical softmax; frequent-word subsampling; linear learning-rate decay; `workers`
threads) and `KeyedVectors` (`most_similar`, `similarity`, `doesnt_match`,
`evaluate_word_analogies`, `evaluate_word_pairs`, the word2vec text and binary formats).

>>> from neurona.text import Word2Vec
>>> sentences = [["king", "queen", "man", "woman"]] * 50
>>> model = Word2Vec(sentences, vector_size=8, min_count=1, epochs=2, workers=1, seed=0)
>>> model.wv["king"].shape, len(model.wv)
((8,), 4)

Differences from gensim, on purpose: `hs=0, negative=0` trains the full softmax of the course
(gensim refuses it); CBOW with `cbow_mean=1` scales the input-side update by 1/|window| (the true
gradient of the mean; gensim applies the undivided update); models save as safetensors + JSON,
never pickle (`save`/`load`); the word2vec formats are the interchange with gensim.
May import: numpy, numba (through neurona.text._w2v_kernels), safetensors, neurona.saving.safetensors_io, scipy (lazily, for
evaluate_word_pairs), tqdm (lazily, progress bar).
"""
from __future__ import annotations

import heapq
import json
import os
import queue
import threading
import time
from collections import Counter
from itertools import chain, repeat

import numpy as np


def _unit_rows(vectors):
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    return vectors / np.where(norms == 0, 1, norms)


class KeyedVectors:
    """Word vectors looked up by word: `kv["king"]`, `kv.most_similar(...)`, gensim's names.

    >>> import numpy as np
    >>> kv = KeyedVectors(2)
    >>> kv.add_vectors(["a", "b", "c"], np.array([[1, 0], [0.9, 0.1], [0, 1]], dtype=np.float32))
    >>> kv.most_similar("a", topn=1)[0][0], round(kv.similarity("a", "c"), 3)
    ('b', 0.0)
    """

    def __init__(self, vector_size: int, count: int = 0, dtype=np.float32):
        self.vector_size = int(vector_size)
        self.vectors = np.zeros((count, self.vector_size), dtype=dtype)
        self.index_to_key: list[str] = []
        self.key_to_index: dict[str, int] = {}
        self.counts: dict[str, int] = {}
        self._normed = None

    # -- lookup -------------------------------------------------------------------------------
    def __len__(self):
        return len(self.index_to_key)

    def __contains__(self, key):
        return key in self.key_to_index

    def has_index_for(self, key):
        return key in self.key_to_index

    def get_index(self, key, default=None):
        i = self.key_to_index.get(key)
        if i is not None:
            return i
        if isinstance(key, (int, np.integer)) and 0 <= key < len(self.index_to_key):
            return int(key)
        if default is not None:
            return default
        raise KeyError(f"Key {key!r} not present in vocabulary ({len(self)} words)")

    def __getitem__(self, key):
        if isinstance(key, (list, tuple)):
            return np.stack([self.get_vector(k) for k in key])
        return self.get_vector(key)

    def get_vector(self, key, norm=False):
        i = self.get_index(key)
        return self.get_normed_vectors()[i] if norm else self.vectors[i]

    def add_vectors(self, keys, weights):
        weights = np.asarray(weights, dtype=self.vectors.dtype)
        if weights.shape != (len(keys), self.vector_size):
            raise ValueError(f"add_vectors: weights shape {weights.shape} must be ({len(keys)}, {self.vector_size})")
        start = len(self.index_to_key)
        for k in keys:
            if k in self.key_to_index:
                raise ValueError(f"add_vectors: key {k!r} is already present")
            self.key_to_index[k] = len(self.index_to_key)
            self.index_to_key.append(k)
        self.vectors = np.concatenate([self.vectors[:start], weights]) if start else weights.copy()
        self._normed = None

    def fill_norms(self, force=False):
        if self._normed is None or force:
            self._normed = _unit_rows(self.vectors.astype(np.float32))

    def get_normed_vectors(self):
        self.fill_norms()
        return self._normed

    # -- similarity -----------------------------------------------------------------------------
    def _query(self, positive, negative, key_to_index):
        positive = [positive] if isinstance(positive, (str, np.ndarray)) else list(positive or [])
        negative = [negative] if isinstance(negative, (str, np.ndarray)) else list(negative or [])
        if not positive and not negative:
            raise ValueError("most_similar: give at least one word in positive= or negative=")
        normed = self.get_normed_vectors()
        parts, used = [], set()
        for words, weight in ((positive, 1.0), (negative, -1.0)):
            for w in words:
                if isinstance(w, np.ndarray):
                    parts.append(weight * w / (np.linalg.norm(w) or 1))
                    continue
                if w not in key_to_index:
                    raise KeyError(f"Key {w!r} not present in vocabulary ({len(self)} words)")
                used.add(key_to_index[w])
                parts.append(weight * normed[key_to_index[w]])
        mean = np.mean(parts, axis=0)
        return mean / (np.linalg.norm(mean) or 1), used

    def most_similar(self, positive=None, negative=None, topn=10, restrict_vocab=None):
        """The `topn` words closest (cosine) to the mean of the unit vectors of `positive` minus
        those of `negative`, input words excluded: [(word, cosine), ...]. king − man + woman:
        `most_similar(positive=["king", "woman"], negative=["man"])`."""
        query, used = self._query(positive, negative, self.key_to_index)
        normed = self.get_normed_vectors()
        limit = len(self) if restrict_vocab is None else min(int(restrict_vocab), len(self))
        sims = normed[:limit] @ query
        if topn is None:
            return sims
        order = np.argsort(-sims, kind="stable")
        out = []
        for i in order:
            if int(i) in used:
                continue
            out.append((self.index_to_key[i], float(sims[i])))
            if len(out) == topn:
                break
        return out

    def similar_by_vector(self, vector, topn=10):
        return self.most_similar(positive=[np.asarray(vector, dtype=np.float32)], topn=topn)

    def similarity(self, w1, w2) -> float:
        """Cosine similarity of two words."""
        n = self.get_normed_vectors()
        return float(n[self.get_index(w1)] @ n[self.get_index(w2)])

    def n_similarity(self, ws1, ws2) -> float:
        a = _unit_rows(np.mean(self[list(ws1)], axis=0, keepdims=True))[0]
        b = _unit_rows(np.mean(self[list(ws2)], axis=0, keepdims=True))[0]
        return float(a @ b)

    def distance(self, w1, w2) -> float:
        return 1.0 - self.similarity(w1, w2)

    def doesnt_match(self, words):
        """The word furthest from the mean of the (unit) vectors of `words`."""
        words = [w for w in words if w in self.key_to_index]
        if not words:
            raise ValueError("doesnt_match: none of the words is in the vocabulary")
        vecs = self.get_normed_vectors()[[self.key_to_index[w] for w in words]]
        mean = _unit_rows(vecs.mean(axis=0, keepdims=True))[0]
        return words[int(np.argmin(vecs @ mean))]

    # -- evaluation (gensim's protocol and return values) ---------------------------------------
    def _ok_vocab(self, restrict_vocab, case_insensitive):
        keys = self.index_to_key[:restrict_vocab]
        if case_insensitive:  # the first (most frequent) case variant wins, as in gensim
            return {k.upper(): self.key_to_index[k] for k in reversed(keys)}
        return {k: self.key_to_index[k] for k in keys}

    def evaluate_word_analogies(self, analogies, restrict_vocab=300000, case_insensitive=True, dummy4unknown=False):
        """Accuracy on "a b c d" analogy lines grouped in ": section" blocks (questions-words.txt):
        the answer is the nearest word to b − a + c among the first `restrict_vocab` words,
        a, b, c excluded. Returns (score, sections) as gensim does; OOV questions are skipped."""
        ok_vocab = self._ok_vocab(restrict_vocab, case_insensitive)
        normed = self.get_normed_vectors()[:restrict_vocab]
        sections, section, questions = [], None, []

        def flush():
            if section is None:
                return
            if questions:
                ids = np.array([[ok_vocab[w] for w in q] for q in questions])
                query = normed[ids[:, 1]] - normed[ids[:, 0]] + normed[ids[:, 2]]
                query = _unit_rows(query)
                for start in range(0, len(ids), 512):
                    sims = query[start:start + 512] @ normed.T
                    block = ids[start:start + 512]
                    rows = np.arange(len(block))
                    for k in range(3):
                        sims[rows, block[:, k]] = -np.inf
                    best = sims.argmax(axis=1)
                    for q, b, exp in zip(questions[start:start + 512], best, block[:, 3]):
                        (section["correct"] if b == exp else section["incorrect"]).append(tuple(q))
            sections.append(section)

        with open(analogies, encoding="utf-8") as f:
            for line_no, line in enumerate(f):
                if line.startswith(": "):
                    flush()
                    section, questions = {"section": line.lstrip(": ").strip(), "correct": [], "incorrect": []}, []
                    continue
                if section is None:
                    raise ValueError(f"Missing section header before line #{line_no} in {analogies}")
                words = [w.upper() if case_insensitive else w for w in line.split()]
                if len(words) != 4:
                    continue
                if all(w in ok_vocab for w in words):
                    questions.append(words)
                elif dummy4unknown:
                    section["incorrect"].append(tuple(words))
        flush()
        total = {"section": "Total accuracy", "correct": [q for s in sections for q in s["correct"]],
                 "incorrect": [q for s in sections for q in s["incorrect"]]}
        n = len(total["correct"]) + len(total["incorrect"])
        sections.append(total)
        return (len(total["correct"]) / n if n else 0.0), sections

    def evaluate_word_pairs(self, pairs, delimiter="\t", encoding="utf8", restrict_vocab=300000,
                            case_insensitive=True, dummy4unknown=False):
        """Correlation of cosine similarities with human judgements (wordsim353.tsv, simlex):
        returns (pearson, spearman, oov_ratio) as gensim does (scipy.stats results)."""
        from scipy import stats

        ok_vocab = self._ok_vocab(restrict_vocab, case_insensitive)
        gold, model, oov = [], [], 0
        normed = self.get_normed_vectors()
        with open(pairs, encoding=encoding) as f:
            for line in f:
                if not line or line.startswith("#"):
                    continue
                try:
                    a, b, sim = [w.upper() if case_insensitive else w for w in line.split(delimiter)]
                    sim = float(sim)
                except (ValueError, TypeError):
                    continue
                if a not in ok_vocab or b not in ok_vocab:
                    oov += 1
                    if dummy4unknown:
                        gold.append(sim)
                        model.append(0.0)
                    continue
                gold.append(sim)
                model.append(float(normed[ok_vocab[a]] @ normed[ok_vocab[b]]))
        if not gold:
            raise ValueError(f"No valid similarity judgements found in {pairs}: invalid format or all out of vocabulary")
        oov_ratio = 100.0 * oov / (len(gold) if dummy4unknown else len(gold) + oov)
        return stats.pearsonr(gold, model), stats.spearmanr(gold, model), oov_ratio

    # -- the word2vec formats ---------------------------------------------------------------------
    def save_word2vec_format(self, fname, binary=False, write_header=True):
        """Write the original word2vec format (text or binary, float32), which gensim and
        word2vec.c read: a header "count dim", then one word and its vector per entry."""
        tmp = f"{fname}.tmp"
        vectors = self.vectors.astype(np.float32)
        with open(tmp, "wb") as f:
            if write_header:
                f.write(f"{len(self)} {self.vector_size}\n".encode())
            for key, vec in zip(self.index_to_key, vectors):
                if binary:
                    f.write(key.encode("utf-8") + b" " + vec.astype("<f4").tobytes() + b"\n")
                else:
                    f.write((key + " " + " ".join(f"{v:.9g}" for v in vec) + "\n").encode("utf-8"))
        os.replace(tmp, fname)

    @classmethod
    def load_word2vec_format(cls, fname, binary=False, limit=None, encoding="utf8", unicode_errors="strict"):
        """Read a word2vec text or binary file (from gensim, word2vec.c or `save_word2vec_format`).
        A truncated or malformed file is an error that names the line (text) or entry (binary)."""
        with open(fname, "rb") as f:
            header = f.readline()
            try:
                count, size = (int(x) for x in header.decode(encoding).split())
            except ValueError:
                raise ValueError(f"{fname}: line 1 must be the header 'count dimension', got {header[:60]!r}") from None
            if limit is not None:
                count = min(count, int(limit))
            kv = cls(size, count)
            keys = []
            if binary:
                nbytes = 4 * size
                for i in range(count):
                    word = bytearray()
                    while True:
                        ch = f.read(1)
                        if ch == b"":
                            raise ValueError(f"{fname}: the file ends in entry {i + 1} of {count} declared in the header")
                        if ch == b" ":
                            break
                        if ch != b"\n":  # word2vec.c ends each vector with a newline, gensim does not
                            word += ch
                    raw = f.read(nbytes)
                    if len(raw) != nbytes:
                        raise ValueError(f"{fname}: entry {i + 1} ({bytes(word).decode(encoding, unicode_errors)!r}) is "
                                         f"truncated: {len(raw)} of {nbytes} bytes of its vector")
                    keys.append(bytes(word).decode(encoding, unicode_errors))
                    kv.vectors[i] = np.frombuffer(raw, dtype="<f4")
            else:
                for i in range(count):
                    line = f.readline()
                    line_no = i + 2
                    if not line:
                        raise ValueError(f"{fname}: the file ends at line {line_no}, after {i} of the {count} vectors "
                                         "declared in the header")
                    parts = line.decode(encoding, unicode_errors).rstrip("\n").rstrip().split(" ")
                    if len(parts) != size + 1:
                        raise ValueError(f"{fname}: line {line_no} has {len(parts)} fields, expected {size + 1} "
                                         f"(a word and {size} numbers)")
                    try:
                        kv.vectors[i] = np.array(parts[1:], dtype=np.float32)
                    except ValueError:
                        raise ValueError(f"{fname}: line {line_no} holds a value that is not a number") from None
                    keys.append(parts[0])
        for k in keys:
            if k in kv.key_to_index:
                raise ValueError(f"{fname}: the word {k!r} appears twice")
            kv.key_to_index[k] = len(kv.index_to_key)
            kv.index_to_key.append(k)
        return kv

    # -- neurona's own file: safetensors + JSON ---------------------------------------------------
    def save(self, path):
        """Save as `path` (safetensors: the vectors, with the words in the JSON metadata)."""
        from ..saving.safetensors_io import save_file  # the same bytes in every process

        meta = {"format": "neurona.keyedvectors", "keys": json.dumps(self.index_to_key, ensure_ascii=False),
                "counts": json.dumps(self.counts, ensure_ascii=False)}
        tmp = f"{path}.tmp"
        save_file({"vectors": np.ascontiguousarray(self.vectors)}, tmp, metadata=meta)
        os.replace(tmp, path)

    @classmethod
    def load(cls, path):
        from safetensors import safe_open

        with safe_open(str(path), framework="numpy") as f:
            meta = f.metadata() or {}
            if meta.get("format") != "neurona.keyedvectors":
                raise ValueError(f"{path}: not a neurona KeyedVectors file (format {meta.get('format')!r})")
            vectors = f.get_tensor("vectors")
        kv = cls(vectors.shape[1])
        kv.add_vectors(json.loads(meta["keys"]), vectors)
        kv.counts = json.loads(meta.get("counts", "{}"))
        return kv

    def plot_map(self, path, words=None, method="pca", topn=200, seed=0, title=None):
        """Save a 2-D map of the vectors (PCA or t-SNE from scikit-learn) as a PNG at `path`:
        `words`, or the `topn` most frequent. Returns the 2-D coordinates."""
        from .maps import plot_embedding_map

        return plot_embedding_map(self, path, words=words, method=method, topn=topn, seed=seed, title=title)

    def __repr__(self):
        return f"<KeyedVectors {len(self)} words × {self.vector_size}>"


# -- vocabulary tables -----------------------------------------------------------------------
def huffman_codes(counts):
    """Huffman codes and paths for word counts (as word2vec.c): word i gets `codes[i]` (0/1 per
    level) and `points[i]` (inner-node indices, root first); frequent words get short paths."""
    v = len(counts)
    heap = [(int(c), i) for i, c in enumerate(counts)]
    heapq.heapify(heap)
    parent, branch = {}, {}
    next_id = v
    while len(heap) > 1:
        c1, a = heapq.heappop(heap)
        c2, b = heapq.heappop(heap)
        parent[a], branch[a] = next_id, 0
        parent[b], branch[b] = next_id, 1
        heapq.heappush(heap, (c1 + c2, next_id))
        next_id += 1
    root = next_id - 1
    paths_codes, paths_points = [], []
    for i in range(v):
        code, point, node = [], [], i
        while node != root and node in parent:
            code.append(branch[node])
            node = parent[node]
            point.append(node - v)
        paths_codes.append(code[::-1])
        paths_points.append(point[::-1])
    maxlen = max(1, max(len(c) for c in paths_codes))
    codes = np.zeros((v, maxlen), dtype=np.float64)
    points = np.zeros((v, maxlen), dtype=np.int64)
    lens = np.zeros(v, dtype=np.int64)
    for i in range(v):
        lens[i] = len(paths_codes[i])
        codes[i, :lens[i]] = paths_codes[i]
        points[i, :lens[i]] = paths_points[i]
    return codes, points, lens


def cum_table(counts, ns_exponent=0.75, domain=2**31 - 1):
    """word2vec.c's table for drawing negatives from unigram^ns_exponent with one bisection."""
    p = np.asarray(counts, dtype=np.float64) ** ns_exponent
    return np.round(np.cumsum(p) / p.sum() * domain).astype(np.int64)


def sample_ints(counts, sample):
    """Keep-probability of each word as a 32-bit threshold (word2vec.c's subsampling formula:
    p_keep = (sqrt(f/(s·N)) + 1)·(s·N)/f), 2³² (always kept) when `sample` is 0."""
    counts = np.asarray(counts, dtype=np.float64)
    if not sample:
        return np.full(len(counts), 2**32, dtype=np.int64)
    threshold = sample * counts.sum() if sample < 1.0 else float(sample)
    keep = (np.sqrt(counts / threshold) + 1) * (threshold / counts)
    return np.round(np.minimum(keep, 1.0) * 2**32).astype(np.int64)


class Word2Vec:
    """word2vec (Mikolov et al. 2013) with gensim's signature; training starts at once when
    `sentences` (an iterable of token lists, re-iterable) is given.

    sg=1 skip-gram (predict each context word from the centre word), sg=0 CBOW (predict the
    centre from the mean of its context). Output layer: `negative=k` > 0 negative sampling with
    noise ∝ count^ns_exponent; `hs=1` hierarchical softmax; `hs=0, negative=0` the full softmax.
    `sample` subsamples frequent words; the learning rate falls linearly from `alpha` to
    `min_alpha` over all epochs; `workers` threads train in parallel (numba kernels without
    the GIL). Vectors are in `model.wv`.
    """

    def __init__(self, sentences=None, corpus_file=None, vector_size=100, alpha=0.025, window=5, min_count=5,
                 max_vocab_size=None, sample=1e-3, seed=1, workers=3, min_alpha=0.0001, sg=0, hs=0, negative=5,
                 ns_exponent=0.75, cbow_mean=1, epochs=5, max_final_vocab=None, shrink_windows=True,
                 batch_words=10000, progress=False, compute_loss=False):
        if int(vector_size) <= 0 or int(window) <= 0 or int(epochs) <= 0:
            raise ValueError(f"Word2Vec: vector_size ({vector_size}), window ({window}) and epochs ({epochs}) "
                             "must be positive")
        if negative < 0 or hs not in (0, 1) or sg not in (0, 1):
            raise ValueError(f"Word2Vec: need negative >= 0, hs and sg in (0, 1); got negative={negative}, hs={hs}, sg={sg}")
        self.vector_size, self.alpha, self.window, self.min_count = int(vector_size), float(alpha), int(window), int(min_count)
        self.max_vocab_size, self.max_final_vocab = max_vocab_size, max_final_vocab
        self.sample, self.seed, self.workers, self.min_alpha = float(sample), int(seed), max(1, int(workers)), float(min_alpha)
        self.sg, self.hs, self.negative, self.ns_exponent = int(sg), int(hs), int(negative), float(ns_exponent)
        self.cbow_mean, self.epochs, self.shrink_windows = int(cbow_mean), int(epochs), bool(shrink_windows)
        self.batch_words, self.progress, self.compute_loss = int(batch_words), bool(progress), compute_loss
        self.softmax = self.hs == 0 and self.negative == 0
        self.wv = KeyedVectors(self.vector_size)
        self.corpus_count = self.corpus_total_words = 0
        self.running_training_loss = 0.0
        self.train_stats: dict = {}
        if corpus_file is not None:
            sentences = LineSentence(corpus_file)
        if sentences is not None:
            if isinstance(sentences, str):
                raise TypeError("Word2Vec: sentences must be an iterable of token lists, not a str")
            self.build_vocab(sentences)
            self.train(sentences, total_examples=self.corpus_count, epochs=self.epochs)

    # -- vocabulary -------------------------------------------------------------------------------
    def build_vocab(self, corpus_iterable):
        counter, n_sent, n_words = Counter(), 0, 0
        for sent in corpus_iterable:
            if isinstance(sent, str):
                raise TypeError("Word2Vec: each sentence must be a list of tokens, got a str "
                                "(split it, e.g. with neurona.text.tokenize)")
            counter.update(sent)
            n_sent += 1
            n_words += len(sent)
        if n_words == 0:
            raise ValueError(f"Word2Vec: the corpus is empty ({n_sent} sentences, no words)")
        kept = [(w, c) for w, c in counter.most_common() if c >= self.min_count]
        if self.max_final_vocab is not None:
            kept = kept[:int(self.max_final_vocab)]
        if not kept:
            word, c = counter.most_common(1)[0]
            raise ValueError(f"Word2Vec: min_count={self.min_count} removed every word (the most frequent, {word!r}, "
                             f"occurs {c} times in {n_words} words); lower min_count or give more text")
        self.corpus_count, self.corpus_total_words = n_sent, n_words
        return self._init_vocab([w for w, _ in kept], [c for _, c in kept])

    def _init_vocab(self, words, counts):
        """The vocabulary, the trainer's tables and fresh weights for `words` with `counts`."""
        counts = np.asarray(counts, dtype=np.int64)
        self.wv = KeyedVectors(self.vector_size, len(words))
        self.wv.index_to_key = list(words)
        self.wv.key_to_index = {w: i for i, w in enumerate(words)}
        self.wv.counts = {w: int(c) for w, c in zip(words, counts)}
        self._counts = counts
        self._sample_int = sample_ints(counts, self.sample)
        self._cum_table = cum_table(counts, self.ns_exponent) if self.negative else np.zeros(1, dtype=np.int64)
        if self.hs:
            self._codes, self._points, self._codelens = huffman_codes(counts)
        else:
            self._codes, self._points, self._codelens = (np.zeros((1, 1)), np.zeros((1, 1), dtype=np.int64),
                                                         np.zeros(1, dtype=np.int64))
        v, d = len(words), self.vector_size
        rng = np.random.default_rng(self.seed)
        # gensim 4's start, U(-1/d, 1/d) (word2vec.c's is U(-0.5/d, 0.5/d)): 0.0685 against 0.0666
        # analogy accuracy on Shakespeare + KJV over seeds 11-18 (docs/results.md)
        self.wv.vectors = ((rng.random((v, d)) * 2.0 - 1.0) / d).astype(np.float32)
        self.syn1neg = np.zeros((v if self.negative else 1, d), dtype=np.float32)
        self.syn1 = np.zeros((max(v - 1, 1) if self.hs else 1, d), dtype=np.float32)
        self.syn1softmax = np.zeros((v if self.softmax else 1, d), dtype=np.float32)
        return self

    # -- training ---------------------------------------------------------------------------------
    # sentences encoded together by `_jobs`: one C-level pass over their tokens per group
    _ENCODE_GROUP = 4096

    def _jobs(self, sentences):
        """Encode sentences as index arrays, grouped into jobs of about `batch_words` words: a job
        ends after the sentence (or the `batch_words`-long piece of one) that brings it to
        `batch_words` kept words; `raw` counts every token of the sentences begun in it, unknown
        words included. Sentences are looked up a group at a time (`_ENCODE_GROUP`), their tokens
        in one `np.fromiter(map(dict.get, ...))` pass with −1 for unknown words, and a job's words
        are slices of that array, so the Python loop runs per sentence on integers, not per word
        (Shakespeare's 913,888 words: 0.14 → 0.10 s an epoch, time the training threads share
        the cores with: docs/performance.md)."""
        get, bw = self.wv.key_to_index.get, self.batch_words
        job = {"parts": [], "starts": [0], "n": 0, "raw": 0}  # the job being filled, across groups
        group = []
        for sent in sentences:
            group.append(sent)
            if len(group) == self._ENCODE_GROUP:
                yield from self._encode_group(group, get, bw, job)
                group = []
        if group:
            yield from self._encode_group(group, get, bw, job)
        if len(job["starts"]) > 1 or job["raw"]:
            parts = job["parts"]
            yield (np.concatenate(parts) if parts else np.zeros(0, dtype=np.int64),
                   np.array(job["starts"], dtype=np.int64), job["raw"])

    @staticmethod
    def _encode_group(group, get, bw, job):
        """`_jobs` for one group of sentences; `job` is the job being filled (its words so far as
        `parts`, arrays from earlier groups), updated in place."""
        lengths = np.fromiter(map(len, group), dtype=np.int64, count=len(group))
        total = int(lengths.sum())
        ids = np.fromiter(map(get, chain.from_iterable(group), repeat(-1, total)), dtype=np.int64, count=total)
        known = ids >= 0
        kept = ids[known]
        cum = np.concatenate(([0], np.cumsum(known)))
        bounds = np.concatenate(([0], np.cumsum(lengths)))
        kept_lengths = (cum[bounds[1:]] - cum[bounds[:-1]]).tolist()
        parts, starts = job["parts"], job["starts"]
        n, raw = job["n"], job["raw"]
        begin = pos = 0  # this group's part of the job: kept[begin:pos]
        for n_raw, n_kept in zip(lengths.tolist(), kept_lengths):
            raw += n_raw
            while n_kept:  # the sentence, in pieces of at most bw words
                step = bw if n_kept > bw else n_kept
                pos += step
                n += step
                n_kept -= step
                starts.append(n)
                if n >= bw:
                    parts.append(kept[begin:pos])
                    yield np.concatenate(parts), np.array(starts, dtype=np.int64), raw
                    parts.clear()
                    del starts[1:]
                    n = raw = 0
                    begin = pos
        if pos > begin:
            parts.append(kept[begin:pos])
        job["n"], job["raw"] = n, raw

    def train(self, corpus_iterable=None, total_examples=None, total_words=None, epochs=None, start_alpha=None,
              end_alpha=None, compute_loss=None, corpus_file=None, **_):
        """Train for `epochs` passes; returns (effective words, raw words) as gensim does."""
        from . import _w2v_kernels as K

        if corpus_file is not None:
            corpus_iterable = LineSentence(corpus_file)
        if not self.wv.index_to_key:
            raise ValueError("Word2Vec.train: build the vocabulary first (build_vocab)")
        epochs = int(epochs or self.epochs)
        start = self.alpha if start_alpha is None else float(start_alpha)
        end = self.min_alpha if end_alpha is None else float(end_alpha)
        total = (total_words or self.corpus_total_words) * epochs
        want_loss = bool(self.compute_loss if compute_loss is None else compute_loss)
        lock = threading.Lock()
        done = {"raw": 0, "effective": 0, "loss": 0.0, "preds": 0}
        jobs: queue.Queue = queue.Queue(maxsize=2 * self.workers)
        errors = []

        def worker():
            while True:
                job = jobs.get()
                if job is None:
                    return
                words, starts, raw, alpha, seed = job
                try:
                    eff, loss, preds = K.train_job(words, starts, self.wv.vectors, self.syn1neg, self.syn1,
                                                   self.syn1softmax, self.sg, self.hs, self.negative, self.softmax,
                                                   self.window, self.shrink_windows, self.cbow_mean, self._sample_int,
                                                   self._cum_table, self._points, self._codes, self._codelens,
                                                   alpha, seed, want_loss)
                except Exception as e:  # surfaced in the calling thread below
                    errors.append(e)
                    eff = loss = preds = 0
                with lock:
                    done["effective"] += eff
                    done["loss"] += loss
                    done["preds"] += preds

        threads = [threading.Thread(target=worker, daemon=True) for _ in range(self.workers)]
        for t in threads:
            t.start()
        bar = None
        if self.progress:
            from tqdm import tqdm

            bar = tqdm(total=total, unit="word", unit_scale=True, desc="word2vec")
        t0 = time.perf_counter()
        queued, job_no = 0, 0
        try:
            encoded = []  # ids once, for every epoch; the first epoch encodes while the workers train
            for epoch in range(epochs):
                for words, starts, raw in (self._jobs(corpus_iterable) if epoch == 0 else encoded):
                    if epoch == 0 and epochs > 1:
                        encoded.append((words, starts, raw))
                    alpha = max(end, start - (start - end) * queued / max(total, 1))  # linear decay
                    job_no += 1
                    jobs.put((words, starts, raw, alpha, self.seed * 1000003 + job_no))
                    queued += raw
                    if bar is not None:
                        bar.update(raw)
                        bar.set_postfix(alpha=f"{alpha:.5f}", words_s=f"{queued / (time.perf_counter() - t0):.0f}")
        finally:
            for _ in threads:
                jobs.put(None)
            for t in threads:
                t.join()
            if bar is not None:
                bar.close()
        if errors:
            raise errors[0]
        elapsed = time.perf_counter() - t0
        self.wv._normed = None
        self.running_training_loss = done["loss"]
        self.train_stats = {"raw_words": queued, "effective_words": done["effective"], "seconds": elapsed,
                            "words_per_second": queued / elapsed if elapsed else float("inf"),
                            "mean_loss": done["loss"] / max(done["preds"], 1) if want_loss else None}
        return done["effective"], queued

    def get_latest_training_loss(self):
        return self.running_training_loss

    # -- saving ---------------------------------------------------------------------------------------
    _CONFIG_KEYS = ("vector_size", "alpha", "window", "min_count", "max_vocab_size", "sample", "seed", "workers",
                    "min_alpha", "sg", "hs", "negative", "ns_exponent", "cbow_mean", "epochs", "max_final_vocab",
                    "shrink_windows", "batch_words")

    def save(self, path):
        """Save the whole model (vectors, output weights, counts, settings) to `path`
        (safetensors; settings and vocabulary as JSON metadata) so that training can continue."""
        from ..saving.safetensors_io import save_file  # the same bytes in every process

        meta = {"format": "neurona.word2vec", "config": json.dumps({k: getattr(self, k) for k in self._CONFIG_KEYS}),
                "keys": json.dumps(self.wv.index_to_key, ensure_ascii=False),
                "corpus": json.dumps([self.corpus_count, self.corpus_total_words])}
        arrays = {"vectors": self.wv.vectors, "syn1neg": self.syn1neg, "syn1": self.syn1,
                  "syn1softmax": self.syn1softmax, "counts": self._counts}
        tmp = f"{path}.tmp"
        save_file({k: np.ascontiguousarray(v) for k, v in arrays.items()}, tmp, metadata=meta)
        os.replace(tmp, path)

    @classmethod
    def load(cls, path):
        from safetensors import safe_open

        with safe_open(str(path), framework="numpy") as f:
            meta = f.metadata() or {}
            if meta.get("format") != "neurona.word2vec":
                raise ValueError(f"{path}: not a neurona Word2Vec file (format {meta.get('format')!r})")
            arrays = {k: f.get_tensor(k) for k in f.keys()}
        model = cls(**json.loads(meta["config"]))
        keys = json.loads(meta["keys"])
        counts = arrays["counts"]
        model._init_vocab(keys, counts)
        model.wv.vectors = arrays["vectors"]
        model.syn1neg, model.syn1, model.syn1softmax = arrays["syn1neg"], arrays["syn1"], arrays["syn1softmax"]
        model.corpus_count, model.corpus_total_words = json.loads(meta["corpus"])
        return model

    def __repr__(self):
        kind = "skip-gram" if self.sg else "CBOW"
        out = "hs" if self.hs else (f"negative={self.negative}" if self.negative else "softmax")
        return f"<Word2Vec {kind}, {out}, {len(self.wv)} words × {self.vector_size}>"


class LineSentence:
    """Sentences from a text file, one per line, words separated by whitespace (gensim's name)."""

    def __init__(self, source, max_sentence_length=10000, limit=None):
        self.source, self.max_sentence_length, self.limit = source, max_sentence_length, limit

    def __iter__(self):
        with open(self.source, encoding="utf-8") as f:
            for i, line in enumerate(f):
                if self.limit is not None and i >= self.limit:
                    return
                words = line.split()
                for k in range(0, len(words), self.max_sentence_length):
                    yield words[k:k + self.max_sentence_length]
