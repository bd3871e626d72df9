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


def _init_parameters(cls):
    """The keyword arguments `cls(...)` takes, following `**kwargs` up the base classes, and the
    required ones of its own constructor."""
    import inspect

    accepted, required = [], None
    for klass in cls.__mro__:
        if "__init__" not in vars(klass) or klass is object:
            continue
        params = list(inspect.signature(klass.__init__).parameters.values())[1:]
        if required is None:
            required = [p.name for p in params if p.default is p.empty
                        and p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)]
        accepted += [p.name for p in params if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)]
        if not any(p.kind is p.VAR_KEYWORD for p in params):
            break
    return accepted, required or []


def rebuild(cls, config: dict, what: str):
    """`cls.from_config(config)`, where a hand-edited config with a key the class does not take,
    or without one it needs, fails with an error naming `what` (e.g. "Dense layer 'hidden'"), the
    key and what the class accepts, instead of a bare TypeError from its constructor."""
    try:
        return cls.from_config(config)
    except ValueError as e:  # a bad value, e.g. activation 'rellu': say which layer holds it
        raise type(e)(f"{what}: {e}") from e
    except TypeError as e:
        import difflib

        accepted, required = _init_parameters(cls)
        unknown = [k for k in config if k not in accepted]
        missing = [k for k in required if k not in config]
        if not (unknown or missing):
            raise
        parts = []
        for key in unknown:
            close = difflib.get_close_matches(key, accepted, n=1)
            parts.append(f"unknown config key {key!r}" + (f" (did you mean {close[0]!r}?)" if close else ""))
        if missing:
            parts.append(f"missing config key{'s' * (len(missing) > 1)} {', '.join(map(repr, missing))}")
        raise ValueError(f"{what}: {'; '.join(parts)}. {cls.__name__} takes: {', '.join(accepted)}") from e
