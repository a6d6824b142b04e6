"""Function vectors: a model's outputs on every probe input, concatenated.

:func:`function_vector` is the pure computation; the :class:`~fspace.Recorder` calls it
online and :func:`evaluate` calls it offline on stored weights, caching each result in
the experiment so nothing is evaluated twice.
"""

from __future__ import annotations

import importlib
import inspect
import os
import warnings
from collections.abc import Callable, Sequence

import numpy as np
import torch
from torch import nn

from fspace.errors import (
    CheckpointError,
    ConfigError,
    EmptyExperimentError,
    ModelOutputError,
    ProbeMismatchError,
    RunError,
)
from fspace.probes import ProbeSuite
from fspace.store import CheckpointInfo, Experiment, RunInfo
from fspace.vectors import OUTPUTS, FunctionVectors

ModelFactory = Callable[..., nn.Module]


def _check_output(output: str) -> None:
    if output not in OUTPUTS:
        raise ConfigError(f"output {output!r} is not one of {', '.join(OUTPUTS)}")


class _EvalMode:
    """Put every submodule in eval mode, and restore each one's own mode afterwards."""

    def __init__(self, model: nn.Module) -> None:
        self.model = model

    def __enter__(self) -> None:
        self.modes = [(m, m.training) for m in self.model.modules()]
        self.model.eval()

    def __exit__(self, *exc) -> None:
        for m, mode in self.modes:
            m.training = mode


def _transform(logits: torch.Tensor, output: str) -> torch.Tensor:
    if output == "prob":
        return torch.softmax(logits, dim=-1)
    if output == "logprob":
        return torch.log_softmax(logits, dim=-1)
    return logits


@torch.no_grad()
def function_vector(
    model: nn.Module,
    probes: ProbeSuite | torch.Tensor,
    *,
    output: str = "prob",
    batch_size: int = 4096,
    what: str = "model",
) -> torch.Tensor:
    """Outputs of ``model`` on every probe input, concatenated into one float32 vector.

    The model runs in eval mode under ``no_grad``; each submodule's own train/eval mode
    is restored afterwards. ``output`` picks softmax probabilities (``"prob"``, the
    default), log-probabilities or raw logits of the model's ``(n, classes)`` output.

    Example::

        v = function_vector(model, suite)   # shape (len(suite) * n_classes,)
    """
    _check_output(output)
    if not isinstance(probes, (ProbeSuite, torch.Tensor)):
        raise ConfigError(
            f"probes must be a ProbeSuite or a tensor of inputs, got {type(probes).__name__}"
        )
    inputs = probes.inputs if isinstance(probes, ProbeSuite) else probes
    if not isinstance(model, nn.Module):
        raise ConfigError(f"expected a torch.nn.Module, got {type(model).__name__}")
    device = next((p.device for p in model.parameters()), torch.device("cpu"))
    chunks = []
    with _EvalMode(model):
        for start in range(0, inputs.shape[0], batch_size):
            out = model(inputs[start : start + batch_size].to(device))
            if not isinstance(out, torch.Tensor):
                raise ModelOutputError(
                    f"{what} returned {type(out).__name__}, not a tensor; a function "
                    f"vector needs an (n, classes) tensor of logits"
                )
            if out.ndim != 2 or out.shape[0] != min(batch_size, inputs.shape[0] - start):
                raise ModelOutputError(
                    f"{what} returned shape {tuple(out.shape)} for "
                    f"{min(batch_size, inputs.shape[0] - start)} probe inputs; expected "
                    f"(n, classes) logits"
                )
            chunks.append(_transform(out.float(), output).to("cpu"))
    v = torch.cat(chunks).reshape(-1)
    if not torch.isfinite(v).all():
        bad = int((~torch.isfinite(v)).sum())
        raise ModelOutputError(f"{what} produced {bad} NaN or infinite outputs on the probes")
    return v


def resolve_factory(spec: str | ModelFactory) -> ModelFactory:
    """Turn ``"package.module:function"`` into the callable it names."""
    if callable(spec):
        return spec
    if not isinstance(spec, str) or spec.count(":") != 1:
        raise ConfigError(f"model factory {spec!r} must be 'package.module:function'")
    module_name, attr = spec.split(":")
    try:
        module = importlib.import_module(module_name)
    except ImportError as e:
        raise ConfigError(f"model factory {spec!r}: cannot import {module_name!r} ({e})") from None
    factory = getattr(module, attr, None)
    if not callable(factory):
        raise ConfigError(f"model factory {spec!r}: {module_name} has no function {attr!r}")
    return factory


TRUSTED_ENV = "FSPACE_TRUSTED_FACTORIES"


def trusted_factory(spec: str) -> bool:
    """Whether a factory named in a run.json may be imported and called.

    A run.json could name any importable function (``os:system``) with any arguments, so
    only fspace's own factories and the packages listed (comma-separated) in the
    ``FSPACE_TRUSTED_FACTORIES`` environment variable are called without being asked.
    """
    package = spec.split(":", 1)[0].split(".", 1)[0]
    allowed = {"fspace", *filter(None, os.environ.get(TRUSTED_ENV, "").split(","))}
    return package in {a.strip() for a in allowed}


def build_model(run: RunInfo, factory: str | ModelFactory | None = None) -> nn.Module:
    """Instantiate the architecture of ``run`` with its recorded ``model_kwargs``.

    ``factory`` (given by the caller) takes precedence over the one the run recorded; a
    recorded one is only used if :func:`trusted_factory` allows it.
    """
    spec = factory or run.model_factory
    if spec is None:
        raise RunError(
            f"run {run.id!r} recorded no model factory; pass one (model_factory='pkg.mod:fn' "
            f"to the Recorder, or --model-factory to fspace evaluate)"
        )
    if factory is None and not trusted_factory(spec):
        raise RunError(
            f"run {run.id!r} names model factory {spec!r}, which is not trusted: a run.json "
            f"can name any function. Pass it yourself (--model-factory {spec}) or add its "
            f"package to the {TRUSTED_ENV} environment variable"
        )
    fn = resolve_factory(spec)
    try:
        inspect.signature(fn).bind(**run.model_kwargs)
    except TypeError as e:
        raise ConfigError(
            f"model factory {spec!r} does not accept run {run.id!r}'s model_kwargs "
            f"{run.model_kwargs}: {e}"
        ) from None
    model = fn(**run.model_kwargs)
    if not isinstance(model, nn.Module):
        raise ConfigError(f"model factory {spec!r} returned {type(model).__name__}, not a Module")
    return model


def load_into(model: nn.Module, weights: dict[str, torch.Tensor], ckpt: CheckpointInfo) -> None:
    """Load stored weights into ``model``, naming the checkpoint if they do not fit."""
    expected = model.state_dict()
    for name, value in weights.items():
        want = expected.get(name)
        if want is not None and want.is_floating_point() != value.is_floating_point():
            raise CheckpointError(
                f"checkpoint {ckpt.key} ({ckpt.path}): tensor {name!r} is {value.dtype}, "
                f"the model's is {want.dtype}"
            )
    try:
        model.load_state_dict(weights, strict=True)
    except RuntimeError as e:
        first = str(e).strip().splitlines()[0:3]
        raise CheckpointError(
            f"checkpoint {ckpt.key} ({ckpt.path}) does not fit the model factory's "
            f"architecture: {' '.join(first)}"
        ) from None


def evaluate(
    experiment: Experiment | str,
    *,
    probes: str | ProbeSuite | None = None,
    output: str = "prob",
    model_factory: str | ModelFactory | None = None,
    runs: Sequence[str] | None = None,
    progress: bool = True,
    device: torch.device | str | None = None,
) -> FunctionVectors:
    """Function vectors of every checkpoint in ``experiment``, computing only missing ones.

    Vectors already cached (recorded online, or by an earlier call) are read back; the
    others are computed from stored weights with the run's model factory (or
    ``model_factory``), many checkpoints of one architecture at a time
    (:mod:`fspace.batched`; on ``device``, by default the GPU if there is one), and
    cached. The values returned are the cached ones (rounded to the storage dtype of
    :mod:`fspace.store.vectors`), so a second call returns the same matrix.
    Checkpoints whose model produces NaN or infinite outputs are left out with a
    warning that names them.
    """
    exp = experiment if isinstance(experiment, Experiment) else Experiment(experiment)
    _check_output(output)
    ckpts = exp.require_checkpoints()
    suite = probes if isinstance(probes, ProbeSuite) else exp.probes(probes)
    if runs is not None:
        wanted = set(runs)
        for r in wanted - {c.run for c in ckpts}:
            exp.run(r)  # unknown run -> RunError naming it
        ckpts = [c for c in ckpts if c.run in wanted]
    rows = _collect(exp, suite, output, ckpts, model_factory, progress, device)
    if rows.failed:
        warnings.warn(
            f"left out {len(rows.failed)} checkpoints with NaN or infinite outputs: "
            + ", ".join(rows.failed[:5])
            + (" ..." if len(rows.failed) > 5 else ""),
            stacklevel=2,
        )
    matrix, kept = rows.finish()
    if not kept:
        raise EmptyExperimentError(f"no checkpoint in {exp.path} has a finite function vector")
    layout = (len(suite), matrix.shape[1] // len(suite))
    return FunctionVectors(
        matrix, points_frame(exp, kept), suite.fingerprint, output, layout=layout
    )


class _Rows:
    """Function vectors gathered straight into one float32 matrix (allocated when the
    first vector gives the length), in checkpoint order."""

    def __init__(self, ckpts: Sequence[CheckpointInfo]) -> None:
        self.ckpts = list(ckpts)
        self.matrix: np.ndarray | None = None
        self.filled = np.zeros(len(self.ckpts), dtype=bool)
        self.failed: list[str] = []
        self._first: CheckpointInfo | None = None

    def load(self, i: int, exp: Experiment, fingerprint: str, output: str) -> bool:
        """Read the cached vector of checkpoint ``i`` into its row; False if none."""
        ckpt = self.ckpts[i]
        if self.matrix is None:
            v = exp.load_vector(ckpt, fingerprint, output)
            if v is not None:
                self.put(i, v)
            return v is not None
        try:
            row = torch.from_numpy(self.matrix[i])
            found = exp.load_vector(ckpt, fingerprint, output, out=row) is not None
        except ProbeMismatchError:  # another length, or another suite: raise either
            self.put(i, exp.load_vector(ckpt, fingerprint, output))
            found = True
        self.filled[i] = found
        return found

    def put(self, i: int, v: torch.Tensor) -> None:
        """Store ``v`` as the vector of checkpoint ``i``."""
        if self.matrix is None:
            self.matrix = np.empty((len(self.ckpts), v.numel()), dtype=np.float32)
            self._first = self.ckpts[i]
        if v.numel() != self.matrix.shape[1]:
            raise ModelOutputError(
                f"function vectors differ in length on the same probe suite "
                f"({self._first.key}: {self.matrix.shape[1]}; {self.ckpts[i].key}: "
                f"{v.numel()}): the models' output sizes differ, so they cannot be compared"
            )
        self.matrix[i] = v.reshape(-1).numpy()
        self.filled[i] = True

    def finish(self) -> tuple[np.ndarray, list[CheckpointInfo]]:
        """The matrix of the filled rows (in place, no copy) and their checkpoints."""
        keep = np.flatnonzero(self.filled)
        kept = [self.ckpts[i] for i in keep]
        if self.matrix is None or len(keep) == len(self.ckpts):
            return self.matrix, kept
        for j, i in enumerate(keep):  # move rows up over the left-out ones
            if i != j:
                self.matrix[j] = self.matrix[i]
        return self.matrix[: len(keep)], kept


def _collect(exp, suite, output, ckpts, factory, progress, device) -> _Rows:
    from concurrent.futures import ThreadPoolExecutor

    from tqdm.auto import tqdm

    from fspace.batched import compute_vectors
    from fspace.store.vectors import as_stored

    rows = _Rows(ckpts)
    bar = tqdm(total=len(ckpts), desc="function vectors", unit="ckpt", disable=not progress)
    missing = []
    for i in range(len(ckpts)):
        if rows.load(i, exp, suite.fingerprint, output):
            bar.update(1)
        else:
            missing.append(i)
    if missing:
        index = {ckpts[i].key: i for i in missing}
        todo = [ckpts[i] for i in missing]
        # Writes (each with an fsync) overlap the computation on their own threads.
        with ThreadPoolExecutor(max_workers=2, thread_name_prefix="fspace-vectors") as pool:
            writes = []
            for ckpt, v in compute_vectors(
                exp, suite, output, todo, factory, device=device, on_done=bar.update
            ):
                if v is None:
                    rows.failed.append(ckpt.key)
                    continue
                writes.append(pool.submit(exp.save_vector, ckpt, suite.fingerprint, output, v))
                rows.put(index[ckpt.key], as_stored(v, output))
            for w in writes:
                w.result()
    bar.close()
    return rows


def points_frame(exp: Experiment, ckpts: Sequence[CheckpointInfo]):
    """One row per checkpoint: run, group, seed, epoch, step, checkpoint, metrics, config."""
    import pandas as pd

    runs = {r: exp.run(r) for r in {c.run for c in ckpts}}
    rows = []
    for c in ckpts:
        run = runs[c.run]
        row = {
            "run": c.run,
            "group": run.group,
            "seed": -1 if run.seed is None else int(run.seed),
            "epoch": c.epoch,
            "step": c.step,
            "checkpoint": c.key,
        }
        for k, v in run.config.items():
            if isinstance(v, (str, int, float, bool)) and k not in row:
                row[k] = v
        for k, v in c.metrics.items():
            row[k if k not in row else f"metric.{k}"] = v
        rows.append(row)
    return pd.DataFrame(rows)
