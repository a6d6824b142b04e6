"""Model factories: the code that rebuilds a run's architecture, chosen by the user.

A run records the name of its model factory (``"package.module:function"``) and the
keyword arguments to call it with, so that stored weights can be evaluated later.
Those names come from a file, and anyone who can write into an experiment can write
any name there, so a name read from a file is only ever looked up in :data:`FACTORIES`;
nothing named only by a file is imported or called. A factory is usable when

- it is registered: fspace's own architectures, functions decorated with
  :func:`register_factory`, and functions a package declares in the entry-point group
  ``fspace.model_factories``::

      # pyproject.toml of your package
      [project.entry-points."fspace.model_factories"]
      make_net = "mypkg.models:make_net"

- or the user passes it: ``fspace evaluate EXP --model-factory mypkg.models:make_net``,
  or ``model_factory=`` (a function or such a string) in Python.

Every call site (evaluation, the dashboard, Ray workers, experiments) goes through
:func:`build_model` or :func:`resolve`, and what a factory returns is used only if it
is a ``torch.nn.Module``.
"""

from __future__ import annotations

import importlib
import inspect
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from fspace.errors import ConfigError, FspaceError, RunError
from fspace.registry import Entry, Registry

if TYPE_CHECKING:
    from torch import nn

    from fspace.store import RunInfo

ModelFactory = Callable[..., "nn.Module"]

FACTORIES: Registry[ModelFactory] = Registry("model factory", "fspace.model_factories")
"""Registered model factories, named ``"package.module:function"``."""

# fspace's own architectures: registered by name, imported only when one is built.
BUILTIN = (
    "fspace.models.mlp:make_mlp",
    "fspace.models.dbn:make_dbn",
    "fspace.models.conv:make_convnet",
)


class UntrustedFactoryError(RunError):
    """A file names a model factory that is neither registered nor passed by the user."""


def spec_of(fn: Callable[..., Any]) -> str:
    """The ``"package.module:function"`` name of ``fn``."""
    return f"{fn.__module__}:{fn.__qualname__}"


def register_factory(
    fn: ModelFactory | None = None, *, label: str | None = None, help: str = ""
) -> Any:
    """Register ``fn`` as a model factory under its ``"module:function"`` name, so that
    runs recorded with it can be evaluated anywhere ``fn``'s module is imported.

    Example::

        @register_factory
        def make_net(hidden: int = 64) -> nn.Module: ...
    """

    def decorate(f: ModelFactory) -> ModelFactory:
        if not callable(f) or "<" in spec_of(f):
            raise ConfigError(f"a model factory must be a module-level function, got {f!r}")
        return FACTORIES.register(spec_of(f), label=label, help=help)(f)

    return decorate(fn) if fn is not None else decorate


def registered(spec: str) -> ModelFactory | None:
    """The registered factory named ``spec`` (by entry name or ``module:function``)."""
    if spec in BUILTIN and spec not in FACTORIES.names():
        module, _, name = spec.partition(":")
        FACTORIES.add(Entry(spec, getattr(importlib.import_module(module), name), spec))
    names = FACTORIES.names()
    if spec in names:
        return FACTORIES.get(spec).obj
    for entry in FACTORIES.entries():  # an entry point registers under its own name
        if spec_of(entry.obj) == spec:
            return entry.obj
    return None


def resolve(spec: str | ModelFactory, trusted_by_user: bool, *, what: str = "") -> ModelFactory:
    """The factory ``spec`` names, if it may be called.

    ``trusted_by_user`` says the user passed ``spec`` (a command-line option or a
    Python argument); a name read from a file (``trusted_by_user=False``) must be
    registered. Raises :class:`UntrustedFactoryError` or ConfigError otherwise.
    """
    if callable(spec):
        if not trusted_by_user:
            raise ConfigError(f"model factory {spec!r} must be named, not given, by a file")
        return spec
    if not isinstance(spec, str) or spec.count(":") != 1 or not all(spec.split(":")):
        raise ConfigError(f"model factory {spec!r} must be 'package.module:function'")
    fn = registered(spec)
    if fn is not None:
        return fn
    if not trusted_by_user:
        where = f"{what} names" if what else "a file names"
        raise UntrustedFactoryError(
            f"{where} model factory {spec!r}, which is not registered, and a file may name "
            f"any function: register it (fspace.factories.register_factory or the "
            f"'fspace.model_factories' entry point) or pass it yourself (--model-factory {spec})"
        )
    module_name, attr = spec.split(":")
    try:
        module = importlib.import_module(module_name)
    except ImportError as e:
        raise ConfigError(f"model factory {spec!r}: cannot import {module_name!r} ({e})") from None
    fn = getattr(module, attr, None)
    if not callable(fn):
        raise ConfigError(f"model factory {spec!r}: {module_name} has no function {attr!r}")
    return fn


def check(factory: str | ModelFactory) -> ModelFactory:
    """The factory the user passed (a function or ``"package.module:function"``), checked
    before anything is read; ConfigError if it names nothing callable."""
    return resolve(factory, True)


def build_model(run: RunInfo, factory: str | ModelFactory | None = None) -> nn.Module:
    """A fresh model of ``run``'s architecture: its factory called with its recorded
    ``model_kwargs``.

    ``factory`` (passed by the user) takes precedence over the one the run recorded,
    which is used only if it is registered (see the module docstring).
    """
    spec = factory if factory is not None else run.model_factory
    if spec is None:
        raise RunError(
            f"run {run.id!r} recorded no model factory; pass one (model_factory='pkg.mod:fn' "
            f"to the Recorder, or --model-factory to fspace evaluate)"
        )
    fn = resolve(spec, factory is not None, what=f"run {run.id!r}")
    return call(fn, run.model_kwargs, f"model factory {spec!r} of run {run.id!r}")


def call(fn: ModelFactory, kwargs: dict[str, Any], what: str) -> nn.Module:
    """``fn(**kwargs)`` after checking that ``fn`` accepts ``kwargs``; ConfigError unless
    the result is a ``torch.nn.Module``."""
    from torch import nn

    try:
        inspect.signature(fn).bind(**kwargs)
    except TypeError as e:
        raise ConfigError(f"{what} does not accept the keyword arguments {kwargs}: {e}") from None
    except ValueError:  # no signature (a builtin): let the call itself decide
        pass
    try:
        model = fn(**kwargs)
    except FspaceError:
        raise
    except (TypeError, ValueError) as e:
        raise ConfigError(f"{what} failed with keyword arguments {kwargs}: {e}") from None
    if not isinstance(model, nn.Module):
        raise ConfigError(f"{what} returned {type(model).__name__}, not a torch.nn.Module")
    return model
