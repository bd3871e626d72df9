"""Discrete text representations (course topic 6): tokenizers, `Vocabulary`, one-hot vectors and
bag-of-words / term-frequency vectors.

The course's example, exactly:

>>> from neurona.text import Vocabulary, bag_of_words
>>> vocab = Vocabulary(["perro", "gato", "mi", "tu", "simpático", "ladrador", "es", "era"], specials=())
>>> bag_of_words(["mi perro es ladrador"], vocab).tolist()
[[1, 0, 1, 0, 0, 1, 1, 0]]

May import: numpy.
"""
from __future__ import annotations

import json
import os
import re
from collections import Counter

import numpy as np

_WORD = re.compile(r"\w+(?:['’]\w+)*", re.UNICODE)
_WORD_OR_PUNCT = re.compile(r"\w+(?:['’]\w+)*|[^\w\s]", re.UNICODE)


def tokenize(text: str, lower: bool = True, punctuation: str = "drop") -> list[str]:
    """Split `text` into word tokens. `punctuation='drop'` removes punctuation marks,
    `'keep'` makes each mark a token of its own. Apostrophes inside a word stay in it.

    >>> tokenize("Mi perro es ladrador, ¿y el tuyo?")
    ['mi', 'perro', 'es', 'ladrador', 'y', 'el', 'tuyo']
    >>> tokenize("Don't stop!", lower=False, punctuation="keep")
    ["Don't", 'stop', '!']
    """
    if punctuation not in ("drop", "keep"):
        raise ValueError(f"tokenize: punctuation must be 'drop' or 'keep', not {punctuation!r}")
    if not isinstance(text, str):
        raise TypeError(f"tokenize: expected a str, got {type(text).__name__}")
    if lower:
        text = text.lower()
    return (_WORD if punctuation == "drop" else _WORD_OR_PUNCT).findall(text)


def char_tokenize(text: str, lower: bool = False) -> list[str]:
    """Split `text` into characters (a character-level language model's tokens).

    >>> char_tokenize("hello")
    ['h', 'e', 'l', 'l', 'o']
    """
    if not isinstance(text, str):
        raise TypeError(f"char_tokenize: expected a str, got {type(text).__name__}")
    return list(text.lower() if lower else text)


class Vocabulary:
    """A bijection between tokens and integer ids.

    `Vocabulary(tokens)` keeps the given order; `Vocabulary.build(corpus, min_count, max_size)`
    counts tokens and orders them by decreasing frequency (ties: first seen first). The
    `specials` come first: by default `<pad>` = 0 (so `Embedding(mask_zero=True)` masks
    padding) and `<unk>` = 1, which `encode` gives to unknown tokens.

    >>> v = Vocabulary.build([["a", "b", "a"], ["c", "a"]], min_count=1)
    >>> v.tokens, v.encode(["a", "z"]), v.decode([2, 3])
    (['<pad>', '<unk>', 'a', 'b', 'c'], [2, 1], ['a', 'b'])
    """

    def __init__(self, tokens=(), specials=("<pad>", "<unk>"), unk_token="<unk>", pad_token="<pad>", counts=None):
        specials = list(specials)
        self.tokens: list[str] = []
        self.index: dict[str, int] = {}
        for tok in specials + list(tokens):
            if not isinstance(tok, str):
                raise TypeError(f"Vocabulary: tokens must be str, got {type(tok).__name__} ({tok!r})")
            if tok not in self.index:
                self.index[tok] = len(self.tokens)
                self.tokens.append(tok)
        self.specials = specials
        self.unk_token = unk_token if unk_token in self.index else None
        self.pad_token = pad_token if pad_token in self.index else None
        self.counts = dict(counts or {})

    @classmethod
    def build(cls, corpus, min_count=1, max_size=None, specials=("<pad>", "<unk>"), **kwargs):
        """Count the tokens of `corpus` (an iterable of token lists) and keep those seen at least
        `min_count` times, the `max_size` most frequent at most (specials not counted)."""
        counter = Counter()
        n_docs = 0
        for doc in corpus:
            if isinstance(doc, str):
                raise TypeError("Vocabulary.build: corpus must hold token lists, got a str; "
                                "tokenize it first (e.g. [tokenize(line) for line in lines])")
            counter.update(doc)
            n_docs += 1
        if not counter:
            raise ValueError(f"Vocabulary.build: the corpus is empty ({n_docs} documents, no tokens)")
        kept = [(tok, n) for tok, n in counter.most_common() if n >= min_count]  # stable: ties keep first-seen order
        if not kept:
            raise ValueError(f"Vocabulary.build: min_count={min_count} removed every token "
                             f"(the most frequent, {counter.most_common(1)[0][0]!r}, occurs "
                             f"{counter.most_common(1)[0][1]} times)")
        if max_size is not None:
            kept = kept[:int(max_size)]
        return cls([t for t, _ in kept], specials=specials, counts=dict(kept), **kwargs)

    def __len__(self):
        return len(self.tokens)

    def __contains__(self, token):
        return token in self.index

    def __getitem__(self, token) -> int:
        return self.lookup(token)

    def lookup(self, token) -> int:
        i = self.index.get(token)
        if i is not None:
            return i
        if self.unk_token is not None:
            return self.index[self.unk_token]
        raise KeyError(f"Vocabulary: unknown token {token!r} and no <unk> token to map it to")

    def encode(self, tokens) -> list[int]:
        return [self.lookup(t) for t in tokens]

    def decode(self, ids) -> list[str]:
        out = []
        for i in ids:
            i = int(i)
            if not 0 <= i < len(self.tokens):
                raise IndexError(f"Vocabulary.decode: id {i} is out of range [0, {len(self.tokens)})")
            out.append(self.tokens[i])
        return out

    def pad(self, sequences, length=None, value=None):
        """Encoded sequences as one int64 array (N, length), padded at the end with `<pad>`'s id
        (or `value`); longer sequences are cut. Ragged sequences need this before a layer."""
        if value is None:
            if self.pad_token is None:
                raise ValueError("Vocabulary.pad: this vocabulary has no <pad> token; pass value=")
            value = self.index[self.pad_token]
        seqs = [list(s) for s in sequences]
        length = max((len(s) for s in seqs), default=0) if length is None else int(length)
        out = np.full((len(seqs), length), value, dtype=np.int64)
        for i, s in enumerate(seqs):
            s = s[:length]
            out[i, :len(s)] = s
        return out

    # -- JSON ---------------------------------------------------------------------------------
    def to_json(self) -> dict:
        return {"tokens": self.tokens, "specials": self.specials, "unk_token": self.unk_token,
                "pad_token": self.pad_token, "counts": self.counts}

    @classmethod
    def from_json(cls, data: dict):
        specials = list(data.get("specials", []))
        tokens = [t for t in data["tokens"] if t not in specials]
        return cls(tokens, specials=specials, unk_token=data.get("unk_token"), pad_token=data.get("pad_token"),
                   counts=data.get("counts"))

    def save(self, path):
        """Write the vocabulary as JSON (atomically: a temporary file renamed into place)."""
        tmp = f"{path}.tmp"
        with open(tmp, "w", encoding="utf-8") as f:
            json.dump(self.to_json(), f, ensure_ascii=False)
        os.replace(tmp, path)

    @classmethod
    def load(cls, path):
        with open(path, encoding="utf-8") as f:
            try:
                data = json.load(f)
            except json.JSONDecodeError as e:
                raise ValueError(f"Vocabulary.load: {path} is not valid JSON ({e})") from None
        if "tokens" not in data:
            raise ValueError(f"Vocabulary.load: {path} has no 'tokens' field")
        return cls.from_json(data)

    def __repr__(self):
        head = ", ".join(self.tokens[:8])
        return f"Vocabulary({len(self)} tokens: {head}{', ...' if len(self) > 8 else ''})"


def _docs_as_tokens(docs, tokenizer):
    for d in docs:
        yield tokenizer(d) if isinstance(d, str) else list(d)


def one_hot(ids, num_classes: int, dtype=np.float32):
    """One-hot rows: `ids` of any shape gives shape ids.shape + (num_classes,).

    >>> one_hot([0, 2], 3).tolist()
    [[1.0, 0.0, 0.0], [0.0, 0.0, 1.0]]
    """
    ids = np.asarray(ids)
    if ids.dtype.kind not in "iu":
        raise TypeError(f"one_hot: ids must be integers, not {ids.dtype}")
    if ids.size and (ids.min() < 0 or ids.max() >= num_classes):
        raise IndexError(f"one_hot: ids must lie in [0, {num_classes}), got {ids.min()}..{ids.max()}")
    return np.eye(num_classes, dtype=dtype)[ids]


def term_frequency(docs, vocab: Vocabulary, tokenizer=tokenize, normalize=False, dtype=np.float32):
    """Counts of each vocabulary token in each document: (len(docs), len(vocab)). Documents are
    strings (tokenized with `tokenizer`) or token lists; tokens outside the vocabulary are
    ignored (or counted as `<unk>` if the vocabulary has one). `normalize=True` divides each row
    by the document's length (term frequency as a proportion)."""
    rows = []
    for toks in _docs_as_tokens(docs, tokenizer):
        row = np.zeros(len(vocab), dtype=dtype)
        for t in toks:
            i = vocab.index.get(t)
            if i is None and vocab.unk_token is not None:
                i = vocab.index[vocab.unk_token]
            if i is not None:
                row[i] += 1
        if normalize and len(toks):
            row /= len(toks)
        rows.append(row)
    return np.stack(rows) if rows else np.zeros((0, len(vocab)), dtype=dtype)


def bag_of_words(docs, vocab: Vocabulary, tokenizer=tokenize, binary=True):
    """Bag-of-words vectors: 1 where a vocabulary token occurs in the document (binary=True, the
    course's definition), else the counts; int64 (len(docs), len(vocab))."""
    tf = term_frequency(docs, vocab, tokenizer, dtype=np.int64)
    return (tf > 0).astype(np.int64) if binary else tf
