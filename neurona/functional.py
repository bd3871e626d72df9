"""`neurona.functional` (imported as `F`): every op as a function.

>>> import neurona as nr
>>> from neurona import functional as F
>>> F.relu(nr.tensor([-1.0, 2.0])).tolist()
[0.0, 2.0]

May import: neurona.ops.
"""
from .ops import *  # noqa: F401,F403
