"""The layers, grouped by kind, one module each (core, activation, conv, pooling, merge,
normalization, regularization, recurrent); `neurona.layers` re-exports them. New kinds join as modules here
on the same contract.
May import: neurona, neurona.nn.
"""
from .activation import ELU, LeakyReLU, Maxout, PReLU, Softmax
from .core import Activation, Dense, Embedding, Flatten, Reshape
from .conv import Conv2D, Conv2DTranspose, set_default_rounding
from .merge import Add, Average, Concatenate, Maximum, Minimum, Multiply, Subtract
from .normalization import BatchNormalization
from .normalization_lrn import LocalResponseNormalization
from .recurrent import (GRU, LSTM, RNN, Bidirectional, GRUCell, LSTMCell, Masking, SimpleRNN, SimpleRNNCell,
                        TimeDistributed)
from .pooling import AveragePooling2D, GlobalAveragePooling2D, GlobalMaxPooling2D, MaxPooling2D
from .regularization import Dropout

__all__ = ["Activation", "Add", "Average", "AveragePooling2D", "BatchNormalization", "Bidirectional",
           "Concatenate", "Conv2D", "Conv2DTranspose", "Dense", "Dropout", "ELU", "Embedding", "Flatten",
           "GlobalAveragePooling2D", "GlobalMaxPooling2D", "GRU", "GRUCell", "LeakyReLU",
           "LocalResponseNormalization", "LSTM", "LSTMCell", "Masking", "Maximum", "Maxout", "MaxPooling2D",
           "Minimum", "Multiply", "PReLU", "Reshape", "RNN", "set_default_rounding", "SimpleRNN", "SimpleRNNCell",
           "Softmax", "Subtract", "TimeDistributed"]
