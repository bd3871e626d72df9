"""Small things a Keras or PyTorch user notices (issue 10, item 7): leaky ReLU's defaults and
Keras 3's name for its slope, PReLU's starting slope as in PyTorch, the neurona version in a
saved model's config."""
import json

import numpy as np
import torch

import neurona as nr
from neurona.layers import Activation, Dense, LeakyReLU, PReLU
from neurona.models import Sequential, load_model


def test_leaky_relu_defaults_are_keras_layer_and_course_function():
    x = nr.tensor([-10.0, 10.0])
    assert LeakyReLU()(x).tolist() == [-3.0, 10.0]                       # Keras' layer: 0.3
    assert np.allclose(Activation("leaky_relu")(x).numpy(), [-0.1, 10.0])  # the course, PyTorch: 0.01
    np.testing.assert_allclose(Activation("leaky_relu")(x).numpy(),
                               torch.nn.functional.leaky_relu(torch.tensor([-10.0, 10.0])).numpy())
    assert LeakyReLU(negative_slope=0.2)(x).tolist()[0] == -2.0        # Keras 3's name
    assert LeakyReLU.from_config(LeakyReLU(negative_slope=0.2).get_config()).alpha == 0.2


def test_prelu_can_start_where_pytorch_does(tmp_path):
    x = np.array([[-2.0, -0.5, 3.0]], np.float32)
    peer = torch.nn.PReLU()  # one slope, 0.25
    ours = PReLU(alpha_initializer=0.25, shared_axes=(1,))
    np.testing.assert_allclose(ours(nr.tensor(x)).numpy(), peer(torch.tensor(x)).detach().numpy())
    assert PReLU()(nr.tensor(x)).tolist() == [[0.0, 0.0, 3.0]]  # Keras' zeros: a ReLU at first
    model = Sequential([Dense(3, input_dim=3), PReLU(alpha_initializer=0.25)])
    model.save(tmp_path / "m")
    again = load_model(tmp_path / "m")
    np.testing.assert_allclose(again.predict(x), model.predict(x))


def test_config_records_the_neurona_version(tmp_path):
    model = Sequential([Dense(1, input_dim=2)])
    model.save(tmp_path / "m")
    config = json.loads((tmp_path / "m" / "config.json").read_text())
    assert config["neurona_version"] == nr.__version__
    load_model(tmp_path / "m")
