"""The course's TensorFlow-1 listings (topic 3) run as written with `import neurona.compat.v1 as tf`."""
import numpy as np
import pytest

import neurona.compat.v1 as tf


@pytest.fixture(autouse=True)
def _fresh_graph():
    tf.reset_default_graph()
    yield


def test_listing_one_constants_and_operations():
    a = tf.constant(2)
    b = tf.constant(3)
    x = tf.add(a, b)
    y = tf.multiply(a, b)
    useless = tf.multiply(a, x)
    z = tf.pow(y, x)
    assert repr(x) == "<tf.Tensor 'Add:0' shape=() dtype=int32>"
    assert repr(tf.add(a, b)) == "<tf.Tensor 'Add_1:0' shape=() dtype=int32>"
    with tf.Session() as sess:
        z_value, not_useless = sess.run([z, useless])
    assert z_value == 7776 and not_useless == 10
    assert np.asarray(z_value).dtype == np.int32


def test_operators_and_square():
    a = tf.constant(3.0)
    c = tf.square(a) * 2 + 1
    assert repr(c).endswith("dtype=float32>")
    with tf.Session() as sess:
        assert sess.run(c) == pytest.approx(19.0)


def _birth_life_data(n=40, seed=0):
    """Synthetic stand-in for the course's birth-rate / life-expectancy table (the real one is not
    to be had offline): life expectancy falls by about 6 years per birth per woman."""
    rng = np.random.default_rng(seed)
    birth = rng.uniform(1.0, 7.0, size=n).astype(np.float32)
    life = (84.9 - 6.07 * birth + rng.normal(0, 2.0, size=n)).astype(np.float32)
    return birth, life


def test_listing_two_linear_regression_matches_plain_sgd():
    data = list(zip(*_birth_life_data()))
    X = tf.placeholder(tf.float32, name="X")
    Y = tf.placeholder(tf.float32, name="Y")
    w = tf.get_variable("weights", initializer=tf.constant(0.0))
    b = tf.get_variable("bias", initializer=tf.constant(0.0))
    Y_predicted = w * X + b
    loss = tf.square(Y - Y_predicted, name="loss")
    optimizer = tf.train.GradientDescentOptimizer(learning_rate=0.01).minimize(loss)
    with tf.Session() as sess:
        sess.run(tf.global_variables_initializer())
        first = None
        for _ in range(15):
            total = 0.0
            for x, y in data:
                _, l = sess.run([optimizer, loss], feed_dict={X: x, Y: y})
                total += l
            first = total if first is None else first
        w_out, b_out = sess.run([w, b])
    # the same per-sample SGD written out in float32
    wr = br = np.float32(0.0)
    for _ in range(15):
        for x, y in data:
            err = np.float32(y) - (wr * np.float32(x) + br)
            wr, br = wr + np.float32(0.01) * 2 * err * x, br + np.float32(0.01) * 2 * err
    assert w_out == pytest.approx(wr, rel=1e-4) and b_out == pytest.approx(br, rel=1e-4)
    assert total < first


def test_unknown_sizes_batches_of_any_length_and_adam():
    X = tf.placeholder(tf.float32, shape=[None, 3], name="X")
    Y = tf.placeholder(tf.float32, shape=[None, 1])
    W = tf.get_variable("W", shape=(3, 1), initializer=tf.zeros_initializer())
    loss = tf.reduce_mean(tf.square(tf.matmul(X, W) - Y))
    step = tf.train.AdamOptimizer(0.1).minimize(loss)
    rng = np.random.default_rng(1)
    true_w = np.array([[1.0], [-2.0], [0.5]], np.float32)
    with tf.Session() as sess:
        sess.run(tf.global_variables_initializer())
        for i in range(150):
            xb = rng.normal(size=(8 + i % 3, 3)).astype(np.float32)  # three batch sizes
            sess.run(step, feed_dict={X: xb, Y: xb @ true_w})
        np.testing.assert_allclose(sess.run(W), true_w, atol=0.05)


def test_tf1_errors():
    x = tf.placeholder(tf.float32, shape=[None, 2], name="x")
    v = tf.Variable(1.0, name="v")
    y = x * v
    with tf.Session() as sess:
        with pytest.raises(tf.FailedPreconditionError, match="uninitialized value v"):
            sess.run(y, feed_dict={x: np.ones((1, 2))})
        sess.run(tf.global_variables_initializer())
        with pytest.raises(tf.InvalidArgumentError, match="must feed a value for placeholder x:0"):
            sess.run(y)
        with pytest.raises(tf.InvalidArgumentError, match=r"shape \(2, 3\), which does not fit"):
            sess.run(y, feed_dict={x: np.ones((2, 3))})
        np.testing.assert_array_equal(sess.run(y, feed_dict={x: np.ones((4, 2))}), np.ones((4, 2)))
    with pytest.raises(TypeError, match="one dtype"):
        tf.add(tf.constant(1), tf.constant(1.0))


def test_graphs_as_default_keep_their_own_names():
    g = tf.Graph()
    with g.as_default():
        c = tf.constant(1.0, name="c")
        assert c.graph is g and c.name == "c:0"
    assert tf.constant(1.0, name="c").name == "c:0"  # the default graph has its own names
