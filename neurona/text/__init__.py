"""`neurona.text`: text for deep learning (course topics 6 and 7).

- discrete representations: `tokenize`, `char_tokenize`, `Vocabulary`, `one_hot`,
  `bag_of_words`, `term_frequency` (vocab.py);
- distributed representations: `Word2Vec` and `KeyedVectors` with gensim's names (word2vec.py,
  loaded on first use), the teaching models written with neurona layers (word2vec_teaching.py);
- language models: `NGramLM` (ngram.py) and the character/word data helpers used by the
  examples. The recurrent layers themselves live in `neurona.layers` (LSTM, GRU, SimpleRNN).

May import: neurona, neurona.nn, neurona.models, neurona.optim, numpy, numba, scikit-learn and
matplotlib (lazily, for maps).
"""
from .vocab import Vocabulary, bag_of_words, char_tokenize, one_hot, term_frequency, tokenize

__all__ = ["KeyedVectors", "NGramLM", "Vocabulary", "Word2Vec", "bag_of_words", "char_tokenize", "one_hot",
           "term_frequency", "tokenize"]


def __getattr__(name):
    if name in ("Word2Vec", "KeyedVectors"):
        from . import word2vec

        return getattr(word2vec, name)
    if name == "NGramLM":
        from .ngram import NGramLM

        return NGramLM
    raise AttributeError(f"module 'neurona.text' has no attribute {name!r}")
