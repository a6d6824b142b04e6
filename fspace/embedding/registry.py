"""The registry of embedding methods: :data:`METHODS`, :func:`register` and the checks
of the parameters each method declares.

The command line, the dashboard and :func:`fspace.embedding.embed` read every method,
its label, parameters and tags from :data:`METHODS`; packages outside fspace add methods
through the entry-point group ``fspace.embeddings``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from fspace.errors import ConfigError
from fspace.registry import Param, Registry

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable

# The registry holds EmbeddingMethod subclasses (fspace.embedding.base); it names them
# without importing that module, which imports this one.
EmbeddingMethod = Any
_METHOD_API = ("validate", "resolve", "fit", "transform")


class MethodRegistry(Registry["type[EmbeddingMethod]"]):
    """The registry of :class:`EmbeddingMethod` subclasses.

    Every entry has the tags ``metric`` (``True`` when map distances approximate the
    function-space distances, so explained stress applies), ``distances`` (``"any"``
    or the names of the distances the method can map; default ``("euclidean",)``) and
    ``dashboard`` (the parameters the dashboard lets a visitor set; default: all).
    A class named by an entry point is registered with the parameters it declares in
    its ``params`` attribute.
    """

    def register(
        self,
        name: str | None = None,
        *,
        label: str | None = None,
        help: str = "",
        params: Iterable[Param] | None = None,
        **tags: Any,
    ) -> Callable[[type[EmbeddingMethod]], type[EmbeddingMethod]]:
        def decorate(cls: type[EmbeddingMethod]) -> type[EmbeddingMethod]:
            if not (
                isinstance(cls, type) and all(callable(getattr(cls, m, None)) for m in _METHOD_API)
            ):
                raise ConfigError(
                    f"embedding method {name!r} must be an EmbeddingMethod subclass, got {cls!r}"
                )
            key = name or cls.name or cls.__name__
            declared = _declared_params(cls) if params is None else tuple(params)
            super(MethodRegistry, self).register(
                key, label=label, help=help, params=declared, **_method_tags(key, tags, declared)
            )(cls)
            cls.name = key
            cls.params = declared
            return cls

        return decorate


METHODS = MethodRegistry("embedding method", "fspace.embeddings")
"""Every embedding method by name; ``entry.obj`` is the :class:`EmbeddingMethod` subclass."""


def _declared_params(cls: type[EmbeddingMethod]) -> tuple[Param, ...]:
    # A class may declare ``params`` itself, or (the older spelling) a ``defaults`` dict.
    own = cls.__dict__.get("params")
    if own is not None:
        return tuple(own)
    defaults = cls.__dict__.get("defaults")
    if not isinstance(defaults, dict):
        return ()
    out = []
    for key, value in defaults.items():
        if isinstance(value, bool | int | float | str):
            out.append(Param(key, type(value), value))
        else:
            raise ConfigError(
                f"embedding method {cls.__name__}: cannot tell the type of parameter {key!r} "
                f"from its default {value!r}; declare params=[Param({key!r}, TYPE, ...)]"
            )
    return tuple(out)


def _method_tags(name: str, tags: dict[str, Any], params: tuple[Param, ...]) -> dict[str, Any]:
    names = tuple(p.name for p in params)
    out = {"metric": False, "distances": ("euclidean",), "dashboard": names, **tags}
    out["dashboard"] = tuple(out["dashboard"])
    unknown = sorted(set(out["dashboard"]) - set(names))
    if unknown:
        raise ConfigError(
            f"embedding method {name!r}: tag dashboard names unknown parameter(s) "
            f"{', '.join(unknown)}"
        )
    if not isinstance(out["metric"], bool):
        raise ConfigError(f"embedding method {name!r}: tag metric must be True or False")
    distances = out["distances"]
    if isinstance(distances, str) and distances != "any":
        distances = (distances,)
    if distances != "any":
        distances = tuple(distances)
        if not distances or not all(isinstance(d, str) for d in distances):
            raise ConfigError(
                f"embedding method {name!r}: tag distances must be 'any' or distance names"
            )
    out["distances"] = distances
    return out


def register(
    name: str,
    *,
    label: str | None = None,
    help: str = "",
    params: Iterable[Param] | None = None,
    **tags: Any,
) -> Callable[[type[EmbeddingMethod]], type[EmbeddingMethod]]:
    """Class decorator that makes an :class:`EmbeddingMethod` available as ``name``.

    ``label`` is shown in menus ("t-SNE"); ``help`` is one line (default: the first
    line of the class docstring); ``params`` declares every parameter; ``metric`` and
    ``distances`` are the tags described in :class:`MethodRegistry`.
    """
    return METHODS.register(name, label=label, help=help, params=params, **tags)


def methods() -> tuple[str, ...]:
    """Names of the registered embedding methods."""
    return METHODS.names()


def get_method(name: str) -> EmbeddingMethod:
    """An instance of the method registered as ``name``."""
    return METHODS.get(name).obj()


_PYTHON_TYPES: dict[type, tuple[type, ...]] = {
    int: (int, np.integer),
    float: (int, float, np.integer, np.floating),
    str: (str,),
    bool: (bool, np.bool_),
}


def check_value(param: Param, value: Any) -> Any:
    """``value`` of the Python API checked against ``param`` (type, range, choices).

    Unlike :meth:`Param.parse` (for text from a command line or URL) it does not turn
    text into numbers: ``perplexity="30"`` is refused. ``None`` is kept only where the
    default is ``None`` (decided from the data).
    """
    if value is None:
        if param.default is None:
            return None
        raise ConfigError(f"{param.name} needs a value (default: {param.default!r})")
    if getattr(param, "many", False):
        if isinstance(value, str) or not isinstance(value, list | tuple):
            raise ConfigError(f"{param.name} must be a list, got {value!r}")
        one = Param(
            param.name, param.type, None, low=param.low, high=param.high, choices=param.choices
        )
        return tuple(check_value(one, item) for item in value)
    wrong_bool = isinstance(value, bool | np.bool_) and param.type is not bool
    if wrong_bool or not isinstance(value, _PYTHON_TYPES[param.type]):
        raise ConfigError(f"{param.name} must be {param.type.__name__}, got {value!r}")
    return param.parse(value)
