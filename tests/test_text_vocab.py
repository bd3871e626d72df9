"""neurona.text basics: tokenizers, Vocabulary (JSON), one-hot, bag-of-words, the course's example."""
import json

import numpy as np
import pytest

from neurona.text import Vocabulary, bag_of_words, char_tokenize, one_hot, term_frequency, tokenize

COURSE_VOCAB = ["perro", "gato", "mi", "tu", "simpático", "ladrador", "es", "era"]


def test_course_bag_of_words_example():
    vocab = Vocabulary(COURSE_VOCAB, specials=())
    assert vocab.tokens == COURSE_VOCAB
    assert bag_of_words(["mi perro es ladrador"], vocab).tolist() == [[1, 0, 1, 0, 0, 1, 1, 0]]
    # the same from token lists, and "tu gato era simpático"
    assert bag_of_words([["tu", "gato", "era", "simpático"]], vocab).tolist() == [[0, 1, 0, 1, 1, 0, 0, 1]]


def test_tokenizers_options():
    assert tokenize("¡Hola, Mundo!") == ["hola", "mundo"]
    assert tokenize("¡Hola, Mundo!", lower=False, punctuation="keep") == ["¡", "Hola", ",", "Mundo", "!"]
    assert char_tokenize("Ab c", lower=True) == ["a", "b", " ", "c"]
    with pytest.raises(ValueError, match="punctuation"):
        tokenize("x", punctuation="maybe")


def test_vocabulary_build_min_count_max_size_and_unk():
    corpus = [tokenize("the cat sat on the mat"), tokenize("the dog sat")]
    v = Vocabulary.build(corpus, min_count=2)
    assert v.tokens == ["<pad>", "<unk>", "the", "sat"]
    assert v.encode(["the", "cat"]) == [2, 1]
    assert Vocabulary.build(corpus, max_size=1).tokens == ["<pad>", "<unk>", "the"]
    assert v.pad([[2, 3], [3]]).tolist() == [[2, 3], [3, 0]]
    with pytest.raises(KeyError, match="'cat'"):
        Vocabulary(["the"], specials=()).encode(["cat"])


def test_vocabulary_errors():
    with pytest.raises(ValueError, match="empty"):
        Vocabulary.build([[], []])
    with pytest.raises(ValueError, match="min_count=5 removed every token"):
        Vocabulary.build([["a", "b"]], min_count=5)
    with pytest.raises(TypeError, match="tokenize it first"):
        Vocabulary.build(["a string, not tokens"])


def test_vocabulary_json_round_trip(tmp_path):
    v = Vocabulary.build([char_tokenize("hello")])
    path = tmp_path / "vocab.json"
    v.save(path)
    data = json.loads(path.read_text(encoding="utf-8"))
    assert data["tokens"] == ["<pad>", "<unk>", "l", "h", "e", "o"]
    w = Vocabulary.load(path)
    assert w.tokens == v.tokens and w.counts == v.counts and w.unk_token == "<unk>"
    assert w.decode(w.encode("hello")) == list("hello")
    path.write_text("{broken", encoding="utf-8")
    with pytest.raises(ValueError, match="not valid JSON"):
        Vocabulary.load(path)


def test_one_hot_and_term_frequency():
    assert one_hot(np.array([[1, 0]]), 2).shape == (1, 2, 2)
    with pytest.raises(IndexError, match=r"\[0, 3\)"):
        one_hot([3], 3)
    vocab = Vocabulary(["a", "b"], specials=())
    tf = term_frequency(["a a b c"], vocab)
    assert tf.tolist() == [[2.0, 1.0]]
    assert term_frequency(["a a b c"], vocab, normalize=True).tolist() == [[0.5, 0.25]]
    assert bag_of_words(["a a b"], vocab, binary=False).tolist() == [[2, 1]]
