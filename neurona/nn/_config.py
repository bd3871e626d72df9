"""Turning configurable objects (initialisers, regularisers, constraints, losses, metrics,
optimisers) into JSON-ready configs and back, by name, dict or object.
May import: nothing from neurona.
"""
from __future__ import annotations


class Configurable:
    """Base of the small configurable objects: `get_config` returns the constructor's keyword
    arguments, `from_config` calls the constructor with them, `repr` shows them."""

    def get_config(self) -> dict:
        return {}

    @classmethod
    def from_config(cls, config: dict):
        return cls(**config)

    def __repr__(self):
        args = ", ".join(f"{k}={v!r}" for k, v in self.get_config().items())
        return f"{type(self).__name__}({args})"


def serialize(obj):
    """`{"class_name": ..., "config": ...}` for an object with `get_config`, None for None, and
    the registered name of a plain function (e.g. an activation)."""
    if obj is None:
        return None
    if hasattr(obj, "get_config"):
        return {"class_name": type(obj).__name__, "config": obj.get_config()}
    name = getattr(obj, "__name__", None)
    if name is None or name == "<lambda>":
        raise ValueError(f"cannot serialise {obj!r}: give an object with get_config or a named function")
    return name


def deserialize(identifier, kind: str, names: dict, classes: dict, base: type | None = None):
    """Resolve `identifier` to an object of `kind`.

    A string is looked up in `names` (a name maps to a class, instantiated with no arguments, or
    to a function, returned as is); a `{"class_name", "config"}` dict rebuilds `classes[class_name]`
    with `from_config`; an instance of `base` or any other callable is returned unchanged.
    """
    if identifier is None:
        return None
    if isinstance(identifier, str):
        key = identifier.lower()
        if key not in names:
            raise ValueError(f"unknown {kind} {identifier!r}; known: {sorted(names)}")
        found = names[key]
        return found() if isinstance(found, type) else found
    if isinstance(identifier, dict):
        cls_name = identifier.get("class_name")
        if cls_name not in classes:
            raise ValueError(f"unknown {kind} class {cls_name!r}; known: {sorted(classes)}")
        return classes[cls_name].from_config(dict(identifier.get("config") or {}))
    if (base is not None and isinstance(identifier, base)) or callable(identifier):
        return identifier
    raise ValueError(f"cannot interpret {identifier!r} as a {kind}")
