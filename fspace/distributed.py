"""Spreading training runs and checkpoint evaluation over a Ray cluster.

Every worker writes straight into one experiment directory, which must be on a
filesystem that all nodes mount at the same path (NFS, Lustre, a cloud file share).
That needs no coordination: the store has no shared index, each run is recorded by
one process only, and a cached function vector is written atomically by whoever
computed it. Ray is an optional dependency (``pip install 'fspace[ray]'``), imported
only here and only when asked for.

Example::

    vectors = evaluate_on_ray("/shared/exp", address="ray://head:10001")

or from the command line, ``fspace evaluate /shared/exp --ray ray://head:10001``. The
ready-made experiments run there too
(:mod:`fspace.experiments.pretraining.distributed`).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from fspace.errors import ConfigError

if TYPE_CHECKING:
    from fspace.vectors import FunctionVectors

CHECKPOINTS_PER_TASK = 64
"""Checkpoints one evaluation task computes (of one run, so of one architecture)."""


def connect(address: str | None = None, **init_kwargs: Any):
    """The ``ray`` module, connected to the cluster at ``address``.

    ``address`` is what ``ray.init`` takes: ``"auto"`` (the cluster this machine
    belongs to), ``"ray://HEAD:10001"`` (Ray Client), ``"HEAD:6379"``; None or ``""``
    connects to ``RAY_ADDRESS`` if set and otherwise starts Ray on this machine. An
    existing connection is reused.
    """
    try:
        import ray
    except ImportError:
        raise ConfigError(
            "--ray needs Ray, which is not installed; install it with "
            "`pip install 'fspace[ray]'` (or `pip install 'ray[default]'`)"
        ) from None
    if not ray.is_initialized():
        try:
            ray.init(address=address or None, **init_kwargs)
        except (ConnectionError, ValueError, RuntimeError) as e:
            raise ConfigError(f"cannot connect to a Ray cluster at {address!r}: {e}") from None
    return ray


def absolute_path(path: str | os.PathLike) -> str:
    """``path`` made absolute, as every worker must see it."""
    # Workers do not share the driver's working directory, only the filesystem.
    return str(Path(path).resolve())


def wait_all(ray, refs: list, progress: bool, what: str) -> list:
    """Results of ``refs`` in their order, with a progress bar over completions."""
    from tqdm.auto import tqdm

    pending = list(refs)
    with tqdm(total=len(refs), desc=what, unit="task", disable=not progress) as bar:
        while pending:
            done, pending = ray.wait(pending, num_returns=1)
            bar.update(len(done))
    return ray.get(refs)


# evaluation -------------------------------------------------------------------------


def evaluate_chunk(
    path: str, fingerprint: str, output: dict, keys: Sequence[str], factory: Any
) -> list[str]:
    """Compute and cache the function vectors of the checkpoints ``keys`` in the output
    spec ``output`` (its JSON form); returns the keys whose outputs were not all finite
    (left uncached)."""
    from fspace.evaluation import collect
    from fspace.outputs import OutputSpec
    from fspace.store import Experiment

    exp = Experiment(path)
    wanted = set(keys)
    ckpts = [c for c in exp.checkpoints() if c.key in wanted]
    suite = exp.probes(fingerprint)
    return collect(exp, suite, OutputSpec.from_json(output), ckpts, model_factory=factory).failed


def evaluate_on_ray(
    experiment: str | os.PathLike,
    *,
    address: str | None = None,
    probes: str | None = None,
    output: str | None = None,
    model_factory: Any = None,
    runs: Sequence[str] | None = None,
    cpus_per_task: int = 1,
    progress: bool = True,
) -> FunctionVectors:
    """:func:`fspace.evaluate` with the missing function vectors computed by Ray tasks.

    The cluster caches every missing vector in the experiment; then this process
    reads them all back with :func:`fspace.evaluate`, which also names any
    checkpoint whose outputs were not finite.
    """
    from fspace.evaluation import evaluate, resolve_output
    from fspace.store import Experiment

    exp = Experiment(absolute_path(experiment))
    suite = exp.probes(probes)
    spec, _ = resolve_output(exp, suite, output)
    ckpts = exp.require_checkpoints()
    if runs is not None:
        ckpts = [c for c in ckpts if c.run in set(runs)]
    missing = [c for c in ckpts if exp.load_vector(c, suite.fingerprint, spec.name) is None]
    if missing:
        ray = connect(address)
        task = ray.remote(num_cpus=cpus_per_task)(with_threads(evaluate_chunk, cpus_per_task))
        refs = [
            task.remote(str(exp.path), suite.fingerprint, spec.to_json(), keys, model_factory)
            for keys in _chunks(missing)
        ]
        wait_all(ray, refs, progress, "evaluation tasks")
    return evaluate(
        exp, probes=suite, output=spec, model_factory=model_factory, runs=runs, progress=False
    )


def _chunks(ckpts) -> list[list[str]]:
    """Keys of ``ckpts`` in pieces of one run and at most CHECKPOINTS_PER_TASK each."""
    by_run: dict[str, list[str]] = {}
    for c in ckpts:
        by_run.setdefault(c.run, []).append(c.key)
    return [
        keys[i : i + CHECKPOINTS_PER_TASK]
        for keys in by_run.values()
        for i in range(0, len(keys), CHECKPOINTS_PER_TASK)
    ]


def with_threads(fn: Callable, threads: int) -> Callable:
    """``fn`` run with torch limited to ``threads`` threads (a task's CPU share)."""

    def run(*args):
        import torch

        torch.set_num_threads(max(1, threads))
        return fn(*args)

    run.__name__ = run.__qualname__ = fn.__name__
    return run
