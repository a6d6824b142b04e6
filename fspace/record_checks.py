"""Checks of what a training loop passes to the :class:`~fspace.Recorder`: the run's
description, its probe suite and model factory, and each checkpoint's epoch, step and
metrics. Each raises ConfigError naming the argument at fault, before anything is written.
"""

from __future__ import annotations

import json
import math
import numbers
import time
import warnings
from collections.abc import Callable, Mapping
from typing import Any

import torch
from torch import nn

from fspace.errors import ConfigError
from fspace.probes import ProbeSuite
from fspace.store import RunInfo, layout

ModelFactory = Callable[..., nn.Module]


def as_suite(probes: Any) -> ProbeSuite | None:
    """``probes`` as a :class:`ProbeSuite` (an array of inputs is wrapped), or None."""
    if probes is None or isinstance(probes, ProbeSuite):
        return probes
    try:
        return ProbeSuite.from_array(probes)
    except ConfigError as e:
        raise ConfigError(f"probes: {e}") from None
    except (TypeError, ValueError, RuntimeError) as e:
        raise ConfigError(
            f"probes must be a ProbeSuite or an array of numbers, got {type(probes).__name__} ({e})"
        ) from None


def factory_name(factory: str | ModelFactory | None) -> str | None:
    """The ``"package.module:function"`` name of a model factory, checked."""
    if factory is None:
        return None
    if isinstance(factory, str):
        if factory.count(":") != 1 or not all(factory.split(":")):
            raise ConfigError(f"model_factory {factory!r} must be 'package.module:function'")
        return factory
    if not callable(factory):
        raise ConfigError(
            f"model_factory must be a 'package.module:function' string or a function, "
            f"got {type(factory).__name__}"
        )
    name = f"{factory.__module__}:{factory.__qualname__}"
    if "<" in name or factory.__module__ == "__main__":
        raise ConfigError(
            f"model_factory {factory!r} cannot be found again from another process; "
            f"pass an importable 'package.module:function' string"
        )
    return name


def whole(value: Any, what: str) -> int:
    """``value`` as an int >= 0; numpy integers count, bools and floats do not."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < 0:
        raise ConfigError(f"{what} must be a non-negative int, got {value!r}")
    return int(value)


def json_dict(value: Any, what: str) -> dict[str, Any]:
    """A copy of ``value`` if it is a dict that JSON can store, else ConfigError."""
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise ConfigError(f"{what} must be a dict, got {type(value).__name__}")
    for k, v in value.items():
        if not isinstance(k, str):
            raise ConfigError(f"{what} keys must be strings, got {k!r}")
        try:
            json.dumps(v, allow_nan=False)
        except (TypeError, ValueError) as e:
            raise ConfigError(
                f"{what}[{k!r}] = {v!r} cannot be stored as JSON ({e}); use numbers, strings, "
                f"lists or dicts"
            ) from None
    return dict(value)


def run_info(run, group, seed, config, model_factory, model_kwargs) -> RunInfo:
    """The checked description of a new run, stamped with the time now."""
    return RunInfo(
        id=layout.check_name(run, "run id"),
        group=layout.check_name(group, "group"),
        seed=None if seed is None else whole(seed, "seed"),
        config=json_dict(config, "config"),
        model_factory=factory_name(model_factory),
        model_kwargs=json_dict(model_kwargs, "model_kwargs"),
        created=time.time(),
    )


def metrics(values: Mapping[str, Any] | None) -> dict[str, float]:
    """A checkpoint's metrics as floats; a non-finite one is left out with a warning."""
    if values is not None and not isinstance(values, Mapping):
        raise ConfigError(f"metrics must be a dict of numbers, got {type(values).__name__}")
    out = {}
    for k, v in (values or {}).items():
        try:
            out[str(k)] = float(v.item() if isinstance(v, torch.Tensor) else v)
        except (TypeError, ValueError, RuntimeError, OverflowError):
            raise ConfigError(f"metric {k!r} must be a number, got {v!r}") from None
        if not math.isfinite(out[str(k)]):
            # A diverging run must not stop its training loop or lose its weights: the
            # checkpoint is recorded without the value, which JSON cannot hold.
            warnings.warn(
                f"metric {k!r} is {out.pop(str(k))!r}; recorded the checkpoint without it "
                f"(only finite numbers are stored)",
                RuntimeWarning,
                stacklevel=3,  # the caller of record()
            )
    return out
