"""Registries: one per idea (embedding methods, distances, output kinds, experiments, ...).

Every edge of fspace (``--help``, argument choices, dashboard controls, URL parsing) is
built from a registry, never from a list of its own. An entry declares what those edges
need: its name, a label, a one-line help and its parameters with types, defaults and
ranges. Code outside fspace adds entries through the Python entry-point group of the
registry (``fspace.embeddings``, ``fspace.distances``, ...), which is loaded the first
time the registry is read::

    # a third-party package's pyproject.toml
    [project.entry-points."fspace.distances"]
    cosine = "my_pkg.distances"      # importing the module registers the entry

    # my_pkg/distances.py
    from fspace.distances import DISTANCES
    @DISTANCES.register("cosine", label="Cosine", help="1 - cosine similarity")
    def cosine(a, b): ...

An entry point may name a module (imported for its registrations) or an object, which
is then registered under the entry point's name.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

from fspace.errors import ConfigError

log = logging.getLogger(__name__)

T = TypeVar("T")

_TYPES: dict[str, type] = {"int": int, "float": float, "str": str, "bool": bool}


@dataclass(frozen=True)
class Param:
    """One parameter of a registry entry, as the command line and dashboard show it.

    ``type`` is ``int``, ``float``, ``str`` or ``bool``; ``low``/``high`` bound numbers
    (inclusive); ``choices`` limits strings. ``default=None`` means "chosen at fit
    time" (for example from the number of points). ``many=True`` takes a non-empty
    list of such values (``"1,2,3"`` on a command line or in a URL), parsed to a tuple.
    """

    name: str
    type: type = float
    default: Any = None
    help: str = ""
    low: float | None = None
    high: float | None = None
    choices: tuple[Any, ...] | None = None
    many: bool = False

    def __post_init__(self) -> None:
        if self.type not in _TYPES.values():
            raise ConfigError(f"parameter {self.name!r}: type must be int, float, str or bool")
        if not self.name.isidentifier():
            raise ConfigError(f"parameter name {self.name!r} is not an identifier")

    @property
    def flag(self) -> str:
        """The command-line flag: ``n_neighbors`` -> ``--n-neighbors``."""
        return "--" + self.name.replace("_", "-")

    def parse(self, value: Any) -> Any:
        """``value`` (a string from a URL or a command line, or a Python value) checked.

        Raises :class:`ConfigError` naming the parameter and the allowed range.
        """
        if value is None:
            return None
        if self.many:
            items = value.split(",") if isinstance(value, str) else list(value)
            items = [v.strip() if isinstance(v, str) else v for v in items]
            items = [v for v in items if v != ""]
            if not items:
                raise ConfigError(f"{self.name} needs at least one value, got {value!r}")
            return tuple(self._parse_one(v) for v in items)
        return self._parse_one(value)

    def _parse_one(self, value: Any) -> Any:
        try:
            if self.type is bool and isinstance(value, str):
                lowered = value.strip().lower()
                if lowered not in ("1", "0", "true", "false", "yes", "no", "on", "off"):
                    raise ValueError(value)
                out: Any = lowered in ("1", "true", "yes", "on")
            elif self.type is int and isinstance(value, float) and not value.is_integer():
                raise ValueError(value)
            else:
                out = self.type(value)
        except (TypeError, ValueError, OverflowError):
            raise ConfigError(f"{self.name} must be {self.type.__name__}, got {value!r}") from None
        if isinstance(out, float) and not math.isfinite(out):
            raise ConfigError(f"{self.name} must be finite, got {value!r}")
        if self.low is not None and out < self.low:
            raise ConfigError(f"{self.name} must be at least {self.low}, got {out!r}")
        if self.high is not None and out > self.high:
            raise ConfigError(f"{self.name} must be at most {self.high}, got {out!r}")
        if self.choices is not None and out not in self.choices:
            raise ConfigError(f"{self.name} must be one of {list(self.choices)}, got {out!r}")
        return out


@dataclass(frozen=True)
class Entry(Generic[T]):
    """One registered thing: ``obj`` (a class or function) and what the edges show of it.

    ``tags`` hold what the entry applies to, e.g. ``{"kinds": ("classification",)}``.
    """

    name: str
    obj: T
    label: str
    help: str = ""
    params: tuple[Param, ...] = ()
    tags: Mapping[str, Any] = field(default_factory=dict)

    def param(self, name: str) -> Param:
        for p in self.params:
            if p.name == name:
                return p
        known = ", ".join(p.name for p in self.params) or "none"
        raise ConfigError(f"{self.name} has no parameter {name!r} (it has: {known})")

    def defaults(self) -> dict[str, Any]:
        return {p.name: p.default for p in self.params}

    def parse(self, values: Mapping[str, Any]) -> dict[str, Any]:
        """Defaults overlaid with ``values``, each checked; unknown names are refused."""
        out = self.defaults()
        for key, value in values.items():
            out[key] = self.param(key).parse(value)
        return out


class Registry(Generic[T]):
    """Named entries of one idea, extended by the entry-point group ``group``.

    >>> WIDGETS = Registry("widget", "fspace.widgets")
    >>> @WIDGETS.register("blue", help="a blue widget")
    ... def blue(): ...
    >>> WIDGETS.names()
    ('blue',)
    """

    def __init__(self, idea: str, group: str) -> None:
        self.idea = idea
        self.group = group
        self._entries: dict[str, Entry[T]] = {}
        self._loaded = False
        self._loading = False

    def register(
        self,
        name: str | None = None,
        *,
        label: str | None = None,
        help: str = "",
        params: tuple[Param, ...] | list[Param] = (),
        **tags: Any,
    ) -> Callable[[T], T]:
        """Decorator that adds a class or function under ``name`` (default: its own name)."""

        def decorate(obj: T) -> T:
            key = name or getattr(obj, "__name__", None)
            if not key or not isinstance(key, str):
                raise ConfigError(f"a {self.idea} needs a name")
            doc = (getattr(obj, "__doc__", None) or "").strip().splitlines()
            self.add(
                Entry(
                    name=key,
                    obj=obj,
                    label=label or key,
                    help=help or (doc[0] if doc else ""),
                    params=tuple(params),
                    tags=dict(tags),
                )
            )
            return obj

        return decorate

    def add(self, entry: Entry[T]) -> None:
        old = self._entries.get(entry.name)
        if old is not None and old.obj is not entry.obj:
            raise ConfigError(f"{self.idea} {entry.name!r} is already registered")
        self._entries[entry.name] = entry

    def _load_plugins(self) -> None:
        if self._loaded or self._loading:
            return
        self._loading = True
        try:
            from importlib.metadata import entry_points

            for point in entry_points(group=self.group):
                try:
                    obj = point.load()
                except Exception as exc:  # a broken plug-in must not take fspace down
                    log.warning(
                        "skipping %s plug-in %r (%s): %s", self.idea, point.name, point.value, exc
                    )
                    continue
                if ":" in point.value and point.name not in self._entries:
                    self.register(point.name)(obj)
        finally:
            self._loading = False
            self._loaded = True

    def get(self, name: str) -> Entry[T]:
        """The entry called ``name``; :class:`ConfigError` listing the known names if none."""
        self._load_plugins()
        entry = self._entries.get(name)
        if entry is None:
            known = ", ".join(self.names()) or "none"
            raise ConfigError(f"unknown {self.idea} {name!r} (known: {known})")
        return entry

    def names(self) -> tuple[str, ...]:
        self._load_plugins()
        return tuple(sorted(self._entries))

    def entries(self) -> tuple[Entry[T], ...]:
        return tuple(self._entries[n] for n in self.names())

    def __contains__(self, name: object) -> bool:
        self._load_plugins()
        return name in self._entries

    def __iter__(self) -> Iterator[Entry[T]]:
        return iter(self.entries())

    def __len__(self) -> int:
        return len(self.names())

    def __repr__(self) -> str:
        return f"Registry({self.idea!r}, {self.group!r}, names={list(self._entries)})"
