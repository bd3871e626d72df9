"""Other libraries' names over neurona: `neurona.compat.v1` speaks TensorFlow 1
(`import neurona.compat.v1 as tf`).
May import: neurona.compat.v1.
"""
