"""word2vec: the losses' gradients (gradcheck), the fast kernels against autograd, the fast trainer
against the teaching model, planted structure, gensim interchange (formats and evaluations), errors."""
import numpy as np
import pytest

import neurona as nr
from neurona.text import KeyedVectors, Word2Vec
from neurona.text import _w2v_kernels as K
from neurona.text.word2vec import cum_table, huffman_codes, sample_ints
from neurona.text.word2vec_teaching import (TeachingWord2Vec, cbow_pairs, hierarchical_softmax_loss,
                                            negative_sampling_loss, skipgram_pairs, softmax_loss)

gensim = pytest.importorskip("gensim")  # installed by the `text` extra; skipped only where it cannot install


def test_losses_gradcheck():
    rng = np.random.default_rng(0)
    v = nr.tensor(rng.standard_normal((3, 4)), requires_grad=True)
    U = nr.tensor(rng.standard_normal((6, 4)), requires_grad=True)
    assert nr.gradcheck(lambda v, U: softmax_loss(v, U, np.array([1, 5, 0])), [v, U])
    u = nr.tensor(rng.standard_normal((3, 5, 4)), requires_grad=True)
    labels = np.array([[1, 0, 0, 0, 0]] * 3)
    assert nr.gradcheck(lambda v, u: negative_sampling_loss(v, u, labels), [v, u])
    codes = rng.integers(0, 2, (3, 5))
    valid = np.array([[1, 1, 1, 0, 0], [1, 1, 1, 1, 1], [1, 1, 0, 0, 0]])
    assert nr.gradcheck(lambda v, u: hierarchical_softmax_loss(v, u, codes, valid), [v, u])


def _autograd_step(loss_fn, l1, out):
    v = nr.tensor(l1.astype(np.float64)[None], requires_grad=True)
    u = nr.tensor(out.astype(np.float64), requires_grad=True)
    loss = loss_fn(v, u)
    loss.backward()
    return loss.item(), v.grad.numpy()[0], u.grad.numpy()


@pytest.mark.parametrize("objective", ["negative", "hs", "softmax"])
def test_fast_kernel_updates_equal_minus_alpha_times_autograd(objective):
    rng = np.random.default_rng(1)
    d, v, alpha = 6, 7, 0.1
    l1 = rng.standard_normal(d).astype(np.float32)
    out = rng.standard_normal((v, d)).astype(np.float32)
    before = out.copy()
    neu1e = np.zeros(d, np.float32)
    if objective == "negative":
        targets, labels = np.array([2, 5, 0, 3]), np.array([1.0, 0, 0, 0])
        loss = K.targets_update(l1, targets, labels, neu1e, out, alpha)
        ref_loss, gv, gu = _autograd_step(lambda a, b: negative_sampling_loss(a, b[targets][None], labels[None]),
                                          l1, before)
    elif objective == "hs":
        codes, points = np.array([0.0, 1, 1]), np.array([4, 1, 6])
        loss = K.hs_update(l1, points, codes, 3, neu1e, out, alpha)
        ref_loss, gv, gu = _autograd_step(lambda a, b: hierarchical_softmax_loss(a, b[points][None], codes[None],
                                                                                 np.ones((1, 3))), l1, before)
    else:
        loss = K.softmax_update(l1, 3, neu1e, out, alpha, np.zeros(v))
        ref_loss, gv, gu = _autograd_step(lambda a, b: softmax_loss(a, b, np.array([3])), l1, before)
    assert loss == pytest.approx(ref_loss, rel=1e-5)
    np.testing.assert_allclose(neu1e, -alpha * gv, rtol=1e-4, atol=1e-6)
    np.testing.assert_allclose(out - before, -alpha * gu, rtol=1e-4, atol=1e-6)


@pytest.mark.parametrize("sg", [1, 0])
def test_fast_trainer_equals_teaching_model_step_by_step(sg):
    """Full softmax, no subsampling, fixed window, one worker, constant rate: the numba trainer
    and autograd + SGD (one pair at a time, in word2vec.c's order) end at the same vectors."""
    sentence = "the cat sat on the mat the dog sat on the log".split()
    kw = dict(vector_size=5, window=2, min_count=1, sample=0, sg=sg, hs=0, negative=0, shrink_windows=False,
              workers=1, epochs=1, alpha=0.2, min_alpha=0.2, seed=3)
    fast = Word2Vec(**kw).build_vocab([sentence])
    start = fast.wv.vectors.copy()
    fast.train([sentence], total_examples=1)
    teach = TeachingWord2Vec(len(fast.wv), 5, objective="softmax", sg=sg)
    teach.inputs.embeddings.data[...] = start
    enc = [[fast.wv.key_to_index[w] for w in sentence]]
    xs, ys = skipgram_pairs(enc, 2) if sg else cbow_pairs(enc, 2)
    opt = nr.optimizers.SGD(teach.trainable_weights, learning_rate=0.2)
    for x, y in zip(xs, ys):
        opt.zero_grad()
        teach.loss(x[None] if not sg else np.array([x]), np.array([y])).backward()
        opt.step()
    np.testing.assert_allclose(teach.inputs.embeddings.numpy(), fast.wv.vectors, rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(teach.outputs.embeddings.numpy(), fast.syn1softmax, rtol=1e-4, atol=1e-5)


def _planted_corpus(seed=0, n=400):
    rng = np.random.default_rng(seed)
    animals = ["cat", "dog", "horse", "cow", "sheep"]
    tools = ["hammer", "saw", "drill", "wrench", "pliers"]
    return [[str(w) for w in rng.choice(animals if rng.random() < 0.5 else tools, 8)] for _ in range(n)], animals, tools


@pytest.mark.parametrize("kw", [dict(sg=1, negative=5), dict(sg=0, negative=5), dict(sg=1, hs=1, negative=0),
                                dict(sg=1, hs=0, negative=0)])
def test_planted_structure_found_by_every_objective(kw):
    corpus, animals, tools = _planted_corpus()
    model = Word2Vec(corpus, vector_size=16, window=3, min_count=1, sample=0, epochs=5, workers=2, seed=1, **kw)
    top = [w for w, _ in model.wv.most_similar("cat", topn=4)]
    assert set(top) == set(animals) - {"cat"}, top
    assert model.wv.doesnt_match(["cat", "dog", "horse", "saw"]) == "saw"
    assert model.wv.similarity("cat", "dog") > model.wv.similarity("cat", "saw")


def test_teaching_model_fit_learns_the_planted_structure():
    corpus, animals, _ = _planted_corpus(n=60)
    words = sorted({w for s in corpus for w in s})
    idx = {w: i for i, w in enumerate(words)}
    teach = TeachingWord2Vec(len(words), 8, objective="negative", sg=1, seed=0)
    hist = teach.fit(skipgram_pairs([[idx[w] for w in s] for s in corpus], 2), epochs=10, batch_size=64,
                     learning_rate=1.0)
    assert hist[-1] < hist[0]
    kv = KeyedVectors(8)
    kv.add_vectors(words, teach.inputs.embeddings.numpy())
    assert set(w for w, _ in kv.most_similar("cat", topn=4)) == set(animals) - {"cat"}


def test_tables_subsampling_noise_and_huffman():
    counts = np.array([100, 10, 1])
    keep = sample_ints(counts, 1e-2) / 2**32
    assert keep[0] < keep[1] <= keep[2] == 1.0
    table = cum_table(counts, 0.75)
    p = np.diff(np.r_[0, table]) / table[-1]
    np.testing.assert_allclose(p, counts**0.75 / (counts**0.75).sum(), rtol=1e-6)
    codes, points, lens = huffman_codes([5, 3, 1, 1])
    assert lens.tolist() == [1, 2, 3, 3]  # the frequent word gets the shortest path
    assert len({tuple(c[:n]) for c, n in zip(codes, lens)}) == 4  # prefix codes are distinct


@pytest.mark.parametrize("binary", [False, True])
def test_word2vec_format_round_trip_through_gensim(tmp_path, binary):
    corpus, _, _ = _planted_corpus(n=50)
    model = Word2Vec(corpus, vector_size=10, min_count=1, epochs=1, workers=1)
    ours = tmp_path / "ours.vec"
    model.wv.save_word2vec_format(ours, binary=binary)
    g = gensim.models.KeyedVectors.load_word2vec_format(str(ours), binary=binary)
    assert g.index_to_key == model.wv.index_to_key
    np.testing.assert_array_equal(g.vectors, model.wv.vectors)
    theirs = tmp_path / "theirs.vec"
    g.vectors[0, 0] = 1.25
    g.save_word2vec_format(str(theirs), binary=binary)
    back = KeyedVectors.load_word2vec_format(theirs, binary=binary)
    assert back.index_to_key == g.index_to_key
    np.testing.assert_array_equal(back.vectors, g.vectors)


def _random_kv_for(words, dim=50, seed=0, pairs=()):
    rng = np.random.default_rng(seed)
    vecs = rng.standard_normal((len(words), dim)).astype(np.float32)
    vecs /= np.linalg.norm(vecs, axis=1, keepdims=True)
    offset = rng.standard_normal(dim).astype(np.float32)
    offset /= np.linalg.norm(offset)
    index = {w: i for i, w in enumerate(words)}
    for a, b in pairs:  # plant b = a + offset (+ noise): analogies between such pairs come out right
        if a in index and b in index:
            vecs[index[b]] = vecs[index[a]] + offset + 0.05 * rng.standard_normal(dim)
    ours = KeyedVectors(dim)
    ours.add_vectors(words, vecs)
    theirs = gensim.models.KeyedVectors(dim)
    theirs.add_vectors(words, vecs)
    return ours, theirs


def test_evaluations_match_gensim_on_the_same_vectors(tmp_path):
    from gensim.test.utils import datapath

    lines = open(datapath("questions-words.txt"), encoding="utf-8").read().splitlines()
    subset = []
    sections = {}
    current = None
    for ln in lines:
        if ln.startswith(":"):
            current = ln
            sections[current] = []
        elif len(sections[current]) < 40:
            sections[current].append(ln)
    path = tmp_path / "analogies.txt"
    for head, body in list(sections.items())[:4]:
        subset += [head, *body]
    path.write_text("\n".join(subset) + "\n", encoding="utf-8")
    words = sorted({w.lower() for ln in subset if not ln.startswith(":") for w in ln.split()})
    quads = [[w.lower() for w in ln.split()] for ln in sections[subset[0]]]
    capitals = {(q[0], q[1]) for q in quads} | {(q[2], q[3]) for q in quads}
    ours, theirs = _random_kv_for(words[:-5], pairs=capitals)
    score, secs = ours.evaluate_word_analogies(path)
    g_score, g_secs = theirs.evaluate_word_analogies(str(path))
    assert 0.1 < score == pytest.approx(g_score)
    assert [len(s["correct"]) for s in secs] == [len(s["correct"]) for s in g_secs]
    pairs = datapath("wordsim353.tsv")
    pw = sorted({w.lower() for ln in open(pairs, encoding="utf-8") if not ln.startswith("#")
                 for w in ln.split("\t")[:2]})
    ours, theirs = _random_kv_for(pw[::2], seed=1)
    p, s, oov = ours.evaluate_word_pairs(pairs)
    gp, gs, goov = theirs.evaluate_word_pairs(pairs)
    assert p[0] == pytest.approx(gp[0], abs=1e-6) and s[0] == pytest.approx(gs[0], abs=1e-6)
    assert oov == pytest.approx(goov)


def test_clear_errors(tmp_path):
    with pytest.raises(ValueError, match="corpus is empty"):
        Word2Vec([[], []], min_count=1)
    with pytest.raises(ValueError, match="min_count=5 removed every word"):
        Word2Vec([["a", "b"]], min_count=5)
    model = Word2Vec([["a", "b", "c"]] * 5, vector_size=4, min_count=1, epochs=1, workers=1)
    with pytest.raises(KeyError, match="'zebra' not present"):
        model.wv.most_similar("zebra")
    path = tmp_path / "v.txt"
    model.wv.save_word2vec_format(path)
    lines = path.read_text().splitlines()
    path.write_text("\n".join(lines[:2] + [lines[2][:12]] + lines[3:]) + "\n")
    with pytest.raises(ValueError, match="line 3 has"):
        KeyedVectors.load_word2vec_format(path)
    path.write_text("\n".join(lines[:3]) + "\n")
    with pytest.raises(ValueError, match="ends at line 4, after 2 of the 3"):
        KeyedVectors.load_word2vec_format(path)
    binp = tmp_path / "v.bin"
    model.wv.save_word2vec_format(binp, binary=True)
    binp.write_bytes(binp.read_bytes()[:-10])
    with pytest.raises(ValueError, match=r"entry 3 \('.'\) is truncated"):
        KeyedVectors.load_word2vec_format(binp, binary=True)


def test_save_load_continue_training_and_map(tmp_path):
    corpus, _, _ = _planted_corpus(n=80)
    model = Word2Vec(corpus, vector_size=8, min_count=1, epochs=1, workers=2, hs=1)
    model.save(tmp_path / "w2v.safetensors")
    back = Word2Vec.load(tmp_path / "w2v.safetensors")
    np.testing.assert_array_equal(back.wv.vectors, model.wv.vectors)
    np.testing.assert_array_equal(back.syn1, model.syn1)
    assert back.hs == 1 and back.wv.index_to_key == model.wv.index_to_key
    back.train(corpus, total_examples=len(corpus), epochs=1)
    model.wv.save(tmp_path / "kv.safetensors")
    assert KeyedVectors.load(tmp_path / "kv.safetensors").most_similar("cat") == model.wv.most_similar("cat")
    xy = model.wv.plot_map(tmp_path / "map.png", method="pca")
    assert xy.shape == (10, 2) and (tmp_path / "map.png").stat().st_size > 1000


def _jobs_word_by_word(model, sentences):
    """The trainer's job grouping written word by word (the earlier implementation): the oracle."""
    get, bw = model.wv.key_to_index.get, model.batch_words
    words, starts, raw = [], [0], 0
    for sent in sentences:
        ids = [i for i in map(get, sent) if i is not None]
        raw += len(sent)
        for k in range(0, len(ids), bw):
            words.extend(ids[k:k + bw])
            starts.append(len(words))
            if len(words) >= bw:
                yield np.array(words, dtype=np.int64), np.array(starts, dtype=np.int64), raw
                words, starts, raw = [], [0], 0
    if len(starts) > 1 or raw:
        yield np.array(words, dtype=np.int64), np.array(starts, dtype=np.int64), raw


@pytest.mark.parametrize("batch_words, group", [(10000, 4096), (7, 3), (5, 1), (1, 2)])
def test_jobs_encoded_by_groups_equal_the_word_by_word_grouping(batch_words, group, monkeypatch):
    rng = np.random.default_rng(0)
    vocab = [f"w{i}" for i in range(30)]
    corpus = [[vocab[j] for j in rng.integers(0, 30, rng.integers(0, 12))] for _ in range(200)]
    corpus += [[], ["unknown", "words", "only"], vocab * 3, [], ["w1", "nope", "w2"] * 9, []]
    model = Word2Vec(vector_size=4, min_count=1, batch_words=batch_words)
    model.build_vocab([vocab])
    monkeypatch.setattr(Word2Vec, "_ENCODE_GROUP", group)
    for sentences in (corpus, corpus[:1], [[]], [], [["unknown"]], [vocab * 2]):
        want, got = list(_jobs_word_by_word(model, sentences)), list(model._jobs(iter(sentences)))
        assert len(got) == len(want)
        for (w0, s0, r0), (w1, s1, r1) in zip(want, got):
            assert np.array_equal(w0, w1) and np.array_equal(s0, s1) and r0 == r1 and w1.dtype == np.int64
