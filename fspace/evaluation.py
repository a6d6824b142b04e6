"""Function vectors of stored checkpoints: the one evaluation core.

:func:`collect` is the core every path goes through (:func:`evaluate`, the command
line, Ray workers and the dashboard): each checkpoint's cached vector is read back if
there is one, the missing ones are computed from the stored weights in batches of one
architecture (:mod:`fspace.batched`) and cached. The kind and form of the vectors are
those the experiment was recorded with (:func:`resolve_output`), unless asked for
otherwise. The pure computation for one model is
:func:`fspace.outputs.apply.function_vector`.
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from torch import nn

from fspace import factories
from fspace.batched import compute_vectors, signature
from fspace.device import resolve_device
from fspace.errors import ConfigError, EmptyExperimentError, ProbeMismatchError, RunError
from fspace.output_choice import recorded_output, resolve_output
from fspace.outputs import OutputSpec, as_stored
from fspace.outputs.apply import function_vector
from fspace.probes import ProbeSuite
from fspace.store import CheckpointInfo, Experiment, RunInfo, layout
from fspace.store import matrix as matrix_io
from fspace.vector_rows import Rows, points_frame
from fspace.vectors import FunctionVectors

__all__ = [
    "Collected",
    "collect",
    "evaluate",
    "function_vector",
    "points_frame",
    "recorded_output",
    "resolve_output",
]

ModelFactory = Callable[..., nn.Module]
Progress = Callable[[int], None]


@dataclass
class Collected:
    """What :func:`collect` gathered: the vectors of ``kept`` checkpoints in order, the
    keys of those left out (outputs not finite), the spec and one vector's layout."""

    matrix: np.ndarray | None
    kept: list[CheckpointInfo]
    failed: list[str]
    spec: OutputSpec
    layout: tuple[int, ...] | None
    computed: int = 0
    cached: list[str] = field(default_factory=list)


def collect(
    exp: Experiment,
    suite: ProbeSuite,
    spec: OutputSpec,
    ckpts: Sequence[CheckpointInfo],
    *,
    meta: dict[str, Any] | None = None,
    model_factory: str | ModelFactory | None = None,
    extract: Callable | None = None,
    forward: Callable | None = None,
    device: torch.device | str | None = None,
    on_done: Progress | None = None,
    dtype: str = "float32",
    memmap: bool | str | os.PathLike = False,
) -> Collected:
    """Read the cached vector of every checkpoint of ``ckpts``, compute and cache the
    missing ones.

    The values returned are the cached ones (in the form's storage dtype), so a second
    call returns the same matrix. ``dtype`` and ``memmap`` are :func:`evaluate`'s.
    """
    rows = Rows(ckpts, dtype=dtype, memmap=memmap)
    layout = tuple(meta["layout"]) if meta and "layout" in meta else None
    missing = rows.read_cached(exp, suite.fingerprint, spec.name, on_done)
    if missing:
        _check_calls(spec, extract, forward)
        spec, computed_layout = _compute(
            exp, suite, spec, rows, missing, model_factory, extract, forward, device, on_done
        )
        layout = computed_layout or layout
    matrix, kept = rows.finish()
    if layout is None and matrix is not None:
        layout = (len(suite), matrix.shape[1] // len(suite))
    return Collected(matrix, kept, rows.failed, spec, layout, computed=len(missing))


def _check_calls(spec: OutputSpec, extract, forward) -> None:
    for name, recorded, given in (
        ("extract", spec.extract, extract),
        ("forward", spec.forward, forward),
    ):
        if recorded is not None and given is None:
            raise ConfigError(
                f"these function vectors were recorded with {name}={recorded}; pass "
                f"{name}= the same function to compute the missing ones"
            )


def _compute(exp, suite, spec, rows, missing, factory, extract, forward, device, on_done):
    ckpts = [rows.ckpts[i] for i in missing]
    index = {c.key: i for c, i in zip(ckpts, missing, strict=True)}
    layout = None
    build = _builder(factory)
    # Writes (each with an fsync) overlap the computation on their own threads.
    with ThreadPoolExecutor(max_workers=2, thread_name_prefix="fspace-vectors") as pool:
        writes = []
        for ckpt, vectors in compute_vectors(
            exp,
            suite,
            spec,
            ckpts,
            build,
            group_key=lambda run: signature(run, factory),
            device=device,
            extract=extract,
            forward=forward,
            on_done=on_done,
        ):
            if vectors is None:
                rows.failed.append(ckpt.key)
                continue
            spec, layout = vectors.spec, vectors.layout
            stored = as_stored(vectors.matrix[0], spec)
            meta = {"spec": spec.to_json(), "layout": list(layout)}
            writes.append(
                pool.submit(exp.save_vector, ckpt, suite.fingerprint, spec.name, stored, meta=meta)
            )
            rows.put(index[ckpt.key], stored)
        for w in writes:
            w.result()
    return spec, layout


def _builder(factory: str | ModelFactory | None) -> Callable[[RunInfo], nn.Module]:
    if factory is not None:
        factories.resolve(factory, True)  # a bad spec: ConfigError before anything is read
    return lambda run: factories.build_model(run, factory)


def evaluate(
    experiment: Experiment | str | Sequence[Experiment | str],
    *,
    probes: str | ProbeSuite | None = None,
    output: str | OutputSpec | None = None,
    kind: str | None = None,
    output_params: dict[str, Any] | None = None,
    output_key: str = "logits",
    extract: Callable | None = None,
    forward: Callable | None = None,
    model_factory: str | ModelFactory | None = None,
    runs: Sequence[str] | None = None,
    progress: bool = True,
    device: torch.device | str | None = None,
    dtype: str = "float32",
    memmap: bool | str | os.PathLike = False,
) -> FunctionVectors:
    """Function vectors of every checkpoint in ``experiment``, computing only missing ones.

    Vectors already cached (recorded online, or by an earlier call) are read back; the
    others are computed from stored weights with the run's model factory (or
    ``model_factory``), many checkpoints of one architecture at a time
    (:mod:`fspace.batched`; on ``device``: ``"auto"``, the default, is the GPU if torch
    sees one; ``"cpu"``, ``"cuda"``, ``"cuda:1"``, see :mod:`fspace.device`), and
    cached. The output kind and vector form are those the experiment was recorded with,
    unless ``output`` (and ``kind``, ``output_params``, ``output_key``, ``extract``,
    ``forward``, as for the :class:`~fspace.Recorder`) say otherwise. Checkpoints whose
    model produces NaN or infinite outputs are left out with a warning naming them.

    A list of experiments on one probe suite gives one matrix, with an ``experiment``
    column in the points; suites that differ raise ProbeMismatchError.

    The matrix is float32, or with ``dtype="stored"`` the dtype the vectors are cached in
    (float16 for probabilities: half the memory). It is allocated once and every cached
    vector is read straight into its row, on a few threads; ``memmap=True`` (or a
    directory) maps it on an unlinked temporary file there, so that the kernel may write
    its pages out rather than hold them all. Many checkpoints are mapped this way::

        vectors = evaluate(path, dtype="stored", memmap=True)
        emb = embed(vectors, "tsne")   # row blocks of the matrix, never a float32 copy
    """
    options = dict(
        probes=probes,
        output=output,
        kind=kind,
        output_params=output_params,
        output_key=output_key,
        extract=extract,
        forward=forward,
        model_factory=model_factory,
        runs=runs,
        progress=progress,
        device=resolve_device(device),  # "auto" (or None): the GPU if torch sees one
        dtype=dtype,
        memmap=memmap,
    )
    if isinstance(experiment, (list, tuple)):
        return _evaluate_many(list(experiment), options)
    return _evaluate_one(experiment, **options)


def _evaluate_one(
    experiment,
    *,
    probes,
    output,
    kind,
    output_params,
    output_key,
    extract,
    forward,
    model_factory,
    runs,
    progress,
    device,
    dtype,
    memmap,
) -> FunctionVectors:
    from tqdm.auto import tqdm

    exp = experiment if isinstance(experiment, Experiment) else Experiment(experiment)
    ckpts = of_readable_runs(exp, exp.require_checkpoints())
    suite = probes if isinstance(probes, ProbeSuite) else exp.probes(probes)
    spec, meta = resolve_output(
        exp,
        suite,
        output,
        kind=kind,
        params=output_params,
        key=output_key,
        extract=extract,
        forward=forward,
    )
    if runs is not None:
        wanted = {layout.check_name(r, "run id") for r in runs}
        for r in wanted - {c.run for c in ckpts}:
            exp.run(r)  # unknown run -> RunError naming it
        ckpts = [c for c in ckpts if c.run in wanted]
    bar = tqdm(total=len(ckpts), desc="function vectors", unit="ckpt", disable=not progress)
    try:
        got = collect(
            exp,
            suite,
            spec,
            ckpts,
            meta=meta,
            model_factory=model_factory,
            extract=extract,
            forward=forward,
            device=device,
            on_done=bar.update,
            dtype=dtype,
            memmap=memmap,
        )
    finally:
        bar.close()
    if got.failed:
        warnings.warn(
            f"left out {len(got.failed)} checkpoints with NaN or infinite outputs: "
            + ", ".join(got.failed[:5])
            + (" ..." if len(got.failed) > 5 else ""),
            stacklevel=3,
        )
    if not got.kept:
        raise EmptyExperimentError(f"no checkpoint in {exp.path} has a finite function vector")
    return vectors_of(exp, suite, got)


def of_readable_runs(exp: Experiment, ckpts: Sequence[CheckpointInfo]) -> list[CheckpointInfo]:
    """The checkpoints of ``ckpts`` whose run's run.json can be read; each other run is
    left out with a warning naming its file (one damaged run does not stop the rest)."""
    broken = {}
    for run in dict.fromkeys(c.run for c in ckpts):
        try:
            exp.run(run)
        except RunError as e:
            broken[run] = e
    for run, error in broken.items():
        warnings.warn(f"left out run {run!r}: {error}", stacklevel=4)
    kept = [c for c in ckpts if c.run not in broken]
    if ckpts and not kept:
        raise EmptyExperimentError(f"no run of {exp.path} has a readable run.json")
    return kept


def vectors_of(exp: Experiment, suite: ProbeSuite, got: Collected) -> FunctionVectors:
    """The :class:`FunctionVectors` of what :func:`collect` gathered."""
    return FunctionVectors(
        got.matrix,
        points_frame(exp, got.kept),
        suite.fingerprint,
        got.spec.name,
        kind=got.spec.kind or "classification",
        layout=got.layout,
    )


def _evaluate_many(experiments: list, options: dict[str, Any]) -> FunctionVectors:
    import pandas as pd

    if not experiments:
        raise ConfigError("evaluate() got an empty list of experiments")
    parts = []
    for e in experiments:
        exp = e if isinstance(e, Experiment) else Experiment(e)
        vectors = _evaluate_one(exp, **options)
        if parts and vectors.fingerprint != parts[0][1].fingerprint:
            raise ProbeMismatchError(
                f"experiments {parts[0][0].path} and {exp.path} were evaluated on different "
                f"probe suites ({parts[0][1].fingerprint} vs {vectors.fingerprint}); evaluate "
                f"them together only on the same suite (probes=NAME)"
            )
        if parts:
            parts[0][1].check_compatible(vectors)
        parts.append((exp, vectors))
    points = []
    for exp, vectors in parts:
        frame = vectors.points.copy()
        frame.insert(0, "experiment", str(exp.path))
        points.append(frame)
    first = parts[0][1]
    matrices = [v.matrix for _, v in parts]
    matrix = matrix_io.allocate(
        sum(len(m) for m in matrices),
        first.matrix.shape[1],
        np.result_type(*matrices),
        options["memmap"],
    )
    np.concatenate(matrices, out=matrix)
    return FunctionVectors(
        matrix,
        pd.concat(points, ignore_index=True),
        first.fingerprint,
        first.output,
        kind=first.kind,
        layout=first.layout,
    )
