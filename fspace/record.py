"""The Recorder: saves checkpoints (and online function vectors) from a training loop.

Example::

    with fspace.Recorder("checkpoints/mnist", run="rand-s0", group="random", seed=0,
                         probes=suite, model_factory="mypkg.models:make_mlp",
                         model_kwargs={"hidden": [500, 500]}) as rec:
        for epoch in range(10):
            train_one_epoch(model)
            rec.record(model, epoch=epoch + 1, metrics={"test_error": err})

``record()`` copies the weights (to the CPU) and returns; the function vector is computed
on the recorder's background thread from that copy, with a shadow of the model built
once (or from outputs the loop already computed on the probe suite:
``record(..., probe_outputs=out)``), and the disk writes happen there too. Only the
first checkpoint's vector is computed inside ``record()``, so that a model or probe
suite that do not fit fail at once (:mod:`fspace.online_vectors`). ``close()`` waits for
the rest and raises :class:`~fspace.errors.RecorderError`, naming the checkpoint, if any
failed.
"""

from __future__ import annotations

import contextlib
import os
import threading
import time
import warnings
import weakref
from collections import deque
from collections.abc import Callable, Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

import torch
from torch import nn

from fspace import record_checks as checks
from fspace.errors import ConfigError, FspaceError, RecorderError
from fspace.online_vectors import OnlineVectors
from fspace.online_vectors import cpu_copy as _cpu_copy
from fspace.outputs import OutputSpec, as_spec, as_stored
from fspace.probes import ProbeSuite
from fspace.record_checks import ModelFactory
from fspace.store import CheckpointInfo, Experiment, layout

WORKER_THREADS: int | None = None
"""torch threads of the recorder's worker thread; None keeps torch's count (one per
core). 1 keeps its forward from starting an OpenMP team of its own beside the training
loop's; on the busy 2-core development machine that made ``record()`` slower, the
worker's longer jobs overlapping the next record (``benchmarks/bench_record.py``
compares both, docs/performance.md section 4)."""


def _tune_worker() -> None:
    """Give the calling (worker) thread :data:`WORKER_THREADS` torch threads, if set,
    leaving every other thread's count as it was."""
    if WORKER_THREADS is not None:
        default = torch.get_num_threads()
        torch.set_num_threads(WORKER_THREADS)
        # set_num_threads also sets the count that threads started later begin with:
        # giving it back from another thread leaves only this thread's count changed.
        restore = threading.Thread(target=torch.set_num_threads, args=(default,))
        restore.start()
        restore.join()


class Recorder:
    """Record a run's checkpoints into an experiment directory (created if needed).

    Args:
        path: experiment directory.
        run: id of this run, unique in the experiment (letters, digits, ``._=+-``).
        group: the run's group, e.g. ``"pretrained"`` or ``"random"``.
        seed: the run's seed, kept as a label.
        config: free-form JSON-serialisable settings of the run.
        probes: a :class:`ProbeSuite` (or array of inputs, or a dict or tuple of them)
            to compute function vectors on at every record; stored in the experiment.
        output: the vector form (:mod:`fspace.outputs`): ``"prob"`` (the default for
            classification and sequence outputs), ``"logprob"``, ``"logits"``,
            ``"raw"`` (regression), or a compact one (``"token_logprob"``, ``"topk"``,
            ``"sketch"``) with its settings in ``output_params``.
        kind: ``"classification"``, ``"sequence"`` or ``"regression"``; by default
            inferred from the output's shape (regression is never guessed).
        output_key: the entry of a dict or ``ModelOutput`` the model returns.
        extract: a function from the model's output to the tensor to use.
        forward: a function ``forward(model, inputs)`` calling the model another way.
        model_factory: ``"package.module:function"`` that rebuilds the architecture,
            called with ``model_kwargs``; needed to evaluate stored weights later.
        max_pending: checkpoints allowed to wait for the writer before ``record`` blocks.
        every: record only steps that are multiples of ``every`` (``record()`` returns
            False at once on the others), so a loop can call it at every step.
        background: compute function vectors on the background thread, on a shadow
            copy of the model (``copy.deepcopy`` at the first record, then loaded with
            each checkpoint's weights). The model's forward must then depend only on its
            parameters and buffers, and the copy holds the model's memory once more (on
            its device); False computes them inside ``record()``.
    """

    def __init__(
        self,
        path: str | os.PathLike,
        *,
        run: str,
        group: str = "default",
        seed: int | None = None,
        config: dict[str, Any] | None = None,
        probes: ProbeSuite | Any = None,
        output: str | OutputSpec | None = None,
        kind: str | None = None,
        output_params: dict[str, Any] | None = None,
        output_key: str = "logits",
        extract: Callable | None = None,
        forward: Callable | None = None,
        model_factory: str | ModelFactory | None = None,
        model_kwargs: dict[str, Any] | None = None,
        max_pending: int = 4,
        every: int = 1,
        background: bool = True,
    ) -> None:
        if not isinstance(path, (str, os.PathLike)):
            raise ConfigError(f"path must be a directory path, got {type(path).__name__}")
        spec = as_spec(
            output,
            kind=kind,
            params=output_params,
            key=output_key,
            extract=extract,
            forward=forward,
        )
        spec = spec.with_default_form()
        if checks.whole(max_pending, "max_pending") < 1:
            raise ConfigError(f"max_pending must be at least 1, got {max_pending}")
        if checks.whole(every, "every") < 1:
            raise ConfigError(f"every must be at least 1, got {every}")
        info = checks.run_info(run, group, seed, config, model_factory, model_kwargs)
        probes = checks.as_suite(probes)
        if probes is not None:
            layout.check_name(probes.name, "probe suite name")
        # Everything above is checked before the first file is written.
        self.max_pending = max_pending
        self.every = int(every)
        self.experiment = Experiment.create(path)
        self.run = self.experiment.create_run(info)
        self._created = self.run is info  # a new run, not one reopened to resume
        self._lease = self.experiment.writer(self.run.id)  # RunBusyError if another writes it
        # A recorder dropped without close() still gives the run back.
        self._release = weakref.finalize(self, self._lease.release)
        self.probes = probes
        if self.probes is not None:
            self.experiment.add_probes(self.probes)
        self._recorded = {(c.epoch, c.step) for c in self.experiment.checkpoints(run)}
        self._vectors = self._online_vectors(spec, extract, forward, bool(background))
        self._pool = ThreadPoolExecutor(
            max_workers=1, thread_name_prefix="fspace-writer", initializer=_tune_worker
        )
        self._pending: deque[tuple[tuple[int, int], str, Future]] = deque()
        self._failures: list[str] = []
        self._lock = threading.Lock()
        self._closed = False

    def _online_vectors(
        self, spec: OutputSpec, extract: Callable | None, forward: Callable | None, background: bool
    ) -> OnlineVectors:
        """The computer of this run's function vectors, checked against the length of the
        experiment's vectors on the same probe suite."""
        probes, exp = self.probes, self.experiment
        size = None if probes is None else exp.vector_size(probes.fingerprint, spec.name)
        return OnlineVectors(
            probes,
            spec,
            run=self.run.id,
            extract=extract,
            forward=forward,
            background=background,
            vector_size=size,
        )

    @property
    def recorded(self) -> set[tuple[int, int]]:
        """(epoch, step) pairs of this run already recorded, on disk or queued."""
        return set(self._recorded)

    def record(
        self,
        model: nn.Module,
        *,
        epoch: int,
        step: int | None = None,
        metrics: Mapping[str, Any] | None = None,
        probe_outputs: Any = None,
    ) -> bool:
        """Save ``model``'s weights as the checkpoint at ``epoch`` (and ``step``).

        ``probe_outputs``: the model's output on the whole probe suite, in order and in
        eval mode, if the loop computed it anyway; the function vector is then made from
        it instead of another forward pass.

        Returns False, writing nothing, if this run already holds that checkpoint (so a
        resumed loop can call it again safely) or ``step`` is not a multiple of
        ``every``. Raises RecorderError if an earlier write or vector failed.
        """
        self._check_open()
        self._raise_failures()
        if not isinstance(model, nn.Module):
            raise ConfigError(f"record() needs a torch.nn.Module, got {type(model).__name__}")
        epoch = checks.whole(epoch, "epoch")
        step = epoch if step is None else checks.whole(step, "step")
        if (epoch, step) in self._recorded or step % self.every:
            return False
        name = layout.checkpoint_name(epoch, step)  # ConfigError when out of range
        values = checks.metrics(metrics)
        weights = {k: _cpu_copy(v) for k, v in model.state_dict().items()}
        vector = self._vectors.job(model, weights, probe_outputs, epoch, step)
        meta = {
            "kind": "checkpoint",
            "run": self.run.id,
            "group": self.run.group,
            "epoch": epoch,
            "step": step,
            "metrics": values,
            "created": time.time(),
        }
        self._wait_for_room()
        future = self._pool.submit(self._write, name, weights, meta, vector)
        self._pending.append(((epoch, step), name, future))
        self._recorded.add((epoch, step))
        return True

    @property
    def output(self) -> str:
        """The name the function vectors are cached under (their form and settings)."""
        return self.spec.name

    @property
    def spec(self) -> OutputSpec:
        """The form of the function vectors; its kind is filled in by the first one."""
        return self._vectors.spec

    @property
    def background(self) -> bool:
        """Whether function vectors are computed on the background thread (False once a
        model cannot be copied)."""
        return self._vectors.background

    def _write(self, name: str, weights, meta, vector) -> None:
        ckpt = CheckpointInfo(
            run=self.run.id,
            epoch=meta["epoch"],
            step=meta["step"],
            metrics=meta["metrics"],
            path=layout.checkpoint_path(self.experiment.path, self.run.id, name),
        )
        self._lease.check()  # a writer that lost its lease writes nothing more
        if callable(vector):  # computed here, off the training thread
            vector = vector()
        # The vector goes first: a listed checkpoint always has its online vector.
        if vector is not None:
            how = {"spec": vector.spec.to_json(), "layout": list(vector.layout), "online": True}
            stored = as_stored(vector.matrix[0], vector.spec)
            self.experiment.save_vector(
                ckpt, self.probes.fingerprint, vector.spec.name, stored, meta=how
            )
        # The lease makes this the run's only writer, so a checkpoint that exists now was
        # written by someone else: RunError says this one was not saved.
        self.experiment.write_checkpoint(self.run.id, weights, meta, lease=self._lease)

    def _wait_for_room(self) -> None:
        while len(self._pending) >= self.max_pending:
            self._settle(self._pending.popleft())
        while self._pending and self._pending[0][2].done():
            self._settle(self._pending.popleft())

    def _settle(self, item: tuple[tuple[int, int], str, Future]) -> None:
        key, name, future = item
        try:
            future.result()
        except Exception as e:  # any failure of the writer is reported, none is lost
            self._recorded.discard(key)  # so that recording it again retries the write
            self._failures.append(f"{self.run.id}/{name}: {type(e).__name__}: {e}")

    def _raise_failures(self) -> None:
        notes = self._vectors.notes
        while notes:
            warnings.warn(notes.pop(0), stacklevel=3)
        if self._failures:
            lines = "\n  ".join(self._failures)
            self._failures = []
            raise RecorderError(
                f"failed to write checkpoints into {self.experiment.path}:\n  {lines}"
            )

    def _check_open(self) -> None:
        if self._closed:
            raise RecorderError(f"recorder of run {self.run.id!r} is closed")

    def flush(self) -> None:
        """Wait until every queued checkpoint is on disk; raise RecorderError on failure."""
        while self._pending:
            self._settle(self._pending.popleft())
        self._raise_failures()

    def close(self) -> None:
        """Finish all writes and release the writer thread. Safe to call twice."""
        if self._closed:
            return
        try:
            self.flush()
        finally:
            self._closed = True
            self._pool.shutdown(wait=True)
            if self._created:  # a run in which nothing was recorded is not left behind
                with contextlib.suppress(FspaceError, OSError):
                    self.experiment.discard_empty_run(self.run.id, self._lease)
            self._release()

    def __enter__(self) -> Recorder:
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is None:
            self.close()
            return
        try:
            self.close()
        except RecorderError as e:  # keep the training error primary, but report ours
            warnings.warn(str(e), stacklevel=2)

    def __repr__(self) -> str:
        return (
            f"Recorder({str(self.experiment.path)!r}, run={self.run.id!r}, "
            f"group={self.run.group!r}, recorded={len(self._recorded)})"
        )
