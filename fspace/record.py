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
suite that do not fit fail at once. ``close()`` waits for the rest and raises
:class:`~fspace.errors.RecorderError`, naming the checkpoint, if any failed.
"""

from __future__ import annotations

import contextlib
import copy
import json
import math
import numbers
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

from fspace.errors import (
    ConfigError,
    FspaceError,
    ModelOutputError,
    ProbeMismatchError,
    RecorderError,
)
from fspace.outputs import OutputSpec, as_spec, as_stored
from fspace.outputs.apply import Accumulator, Vectors, model_vectors
from fspace.outputs.base import extract_output
from fspace.probes import ProbeSuite
from fspace.store import CheckpointInfo, Experiment, RunInfo, layout

ModelFactory = Callable[..., nn.Module]

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


def _cpu_copy(tensor: torch.Tensor) -> torch.Tensor:
    """A CPU copy of ``tensor``, made by the calling thread alone.

    torch copies a large tensor with its OpenMP team, which on a busy machine waits for
    its other threads to be scheduled (tens of ms at a load of 10 on 2 cores): a plain
    ``memcpy`` through numpy takes the training thread a fraction of a millisecond.
    """
    t = tensor.detach()
    if t.device.type != "cpu" or t.layout != torch.strided or not t.is_contiguous():
        return t.to("cpu", copy=True)
    if t.numel() == 0 or t.is_quantized or t.is_conj() or t.is_neg():
        return t.to("cpu", copy=True)
    raw = t.reshape(-1).view(torch.uint8).numpy().copy()
    return torch.from_numpy(raw).view(t.dtype).view(t.shape)


def _as_suite(probes: Any) -> ProbeSuite | None:
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


def _factory_name(factory: str | ModelFactory | None) -> str | None:
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


def _whole(value: Any, what: str) -> int:
    """``value`` as an int >= 0; numpy integers count, bools and floats do not."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < 0:
        raise ConfigError(f"{what} must be a non-negative int, got {value!r}")
    return int(value)


def _json_dict(value: Any, what: str) -> dict[str, Any]:
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


def _run_info(run, group, seed, config, model_factory, model_kwargs) -> RunInfo:
    return RunInfo(
        id=layout.check_name(run, "run id"),
        group=layout.check_name(group, "group"),
        seed=None if seed is None else _whole(seed, "seed"),
        config=_json_dict(config, "config"),
        model_factory=_factory_name(model_factory),
        model_kwargs=_json_dict(model_kwargs, "model_kwargs"),
        created=time.time(),
    )


def _metrics(metrics: Mapping[str, Any] | None) -> dict[str, float]:
    if metrics is not None and not isinstance(metrics, Mapping):
        raise ConfigError(f"metrics must be a dict of numbers, got {type(metrics).__name__}")
    out = {}
    for k, v in (metrics or {}).items():
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


_DTYPE_HINTS = ("scalar type", "dtype", "Long, Int", "Double", "expected scalar")


def _forward_error(e: Exception, what: str, suite: ProbeSuite, model: nn.Module) -> FspaceError:
    """The error to raise when the model's own forward fails on the probe inputs."""
    first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
    if any(hint in str(e) for hint in _DTYPE_HINTS):
        params = {str(p.dtype).removeprefix("torch.") for p in model.parameters()}
        return ConfigError(
            f"{what}: the model cannot take probe suite {suite.name!r} as it is "
            f"({suite.describe()}; model parameters {', '.join(sorted(params)) or 'none'}): "
            f"{first}. fspace never casts probe inputs: build the suite with the dtypes the "
            f"model takes (token ids as int64, features as the parameters' float dtype)"
        )
    return ProbeMismatchError(
        f"{what}: the model raised {type(e).__name__} on probe suite {suite.name!r} "
        f"({len(suite)} probes: {suite.describe()}): {first}; the probe inputs must be what "
        f"the model's forward takes (or pass forward=)"
    )


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
        if _whole(max_pending, "max_pending") < 1:
            raise ConfigError(f"max_pending must be at least 1, got {max_pending}")
        if _whole(every, "every") < 1:
            raise ConfigError(f"every must be at least 1, got {every}")
        info = _run_info(run, group, seed, config, model_factory, model_kwargs)
        probes = _as_suite(probes)
        if probes is not None:
            layout.check_name(probes.name, "probe suite name")
        # Everything above is checked before the first file is written.
        self.spec = spec
        self._extract, self._forward = extract, forward
        self.max_pending = max_pending
        self.every, self.background = int(every), bool(background)
        self._shadow: tuple[weakref.ref, nn.Module] | None = None  # (its model, the copy)
        self._notes: list[str] = []  # warnings of the background thread, shown by record()
        self._tried = False  # whether a vector was computed in record() (the first is)
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
        self._vector_size = (
            None
            if self.probes is None
            else self.experiment.vector_size(self.probes.fingerprint, spec.name)
        )
        self._pool = ThreadPoolExecutor(
            max_workers=1, thread_name_prefix="fspace-writer", initializer=_tune_worker
        )
        self._pending: deque[tuple[tuple[int, int], str, Future]] = deque()
        self._failures: list[str] = []
        self._lock = threading.Lock()
        self._closed = False

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
        epoch = _whole(epoch, "epoch")
        step = epoch if step is None else _whole(step, "step")
        if (epoch, step) in self._recorded or step % self.every:
            return False
        name = layout.checkpoint_name(epoch, step)  # ConfigError when out of range
        values = _metrics(metrics)
        weights = {k: _cpu_copy(v) for k, v in model.state_dict().items()}
        vector = self._vector_job(model, weights, probe_outputs, epoch, step)
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

    def _vector_job(
        self, model: nn.Module, weights: dict, probe_outputs: Any, epoch: int, step: int
    ) -> Vectors | Callable[[], Vectors | None] | None:
        """The function vector now (the first one, or without ``background``), or a
        function that computes it on the background thread."""
        what = f"run {self.run.id!r} at epoch {epoch}, step {step}"
        if self.probes is None:
            if probe_outputs is not None:
                raise ConfigError("probe_outputs= needs a probe suite: pass Recorder(probes=...)")
            return None
        if probe_outputs is not None:
            out = self._output_copy(probe_outputs, what)
            compute = lambda: _outputs_vectors(out, self.probes, self.spec, what)  # noqa: E731
        else:
            shadow = self._shadow_of(model) if self.background else None
            if shadow is None or not self._tried:
                compute = lambda: self._forward_vectors(model, what)  # noqa: E731
            else:  # the weights are the CPU copy record() made
                compute = lambda: self._shadow_vectors(shadow, weights, what)  # noqa: E731
        if not self._tried or not self.background:
            vector = self._checked(compute, model, what, background=False)
            self._tried = True
            return vector
        return lambda: self._checked(compute, model, what, background=True)

    def _output_copy(self, raw: Any, what: str) -> torch.Tensor:
        out = self._extract(raw) if self._extract is not None else None
        if self._extract is None:
            out = extract_output(raw, self.spec.key, what)
        if not isinstance(out, torch.Tensor):
            raise ConfigError(
                f"probe_outputs of {what} must hold a tensor, got {type(out).__name__}"
            )
        if out.shape[:1] != (len(self.probes),):
            raise ProbeMismatchError(
                f"probe_outputs of {what} has shape {tuple(out.shape)}, but probe suite "
                f"{self.probes.name!r} has {len(self.probes)} probes: pass the model's "
                f"output on the whole suite, in order"
            )
        return _cpu_copy(out)

    def _shadow_of(self, model: nn.Module) -> nn.Module | None:
        """The background thread's copy of ``model``, made at its first record (None if it
        cannot be copied: its vectors are then computed inside ``record()``)."""
        if self._shadow is not None and self._shadow[0]() is model:
            return self._shadow[1]
        try:
            shadow = copy.deepcopy(model)
        except Exception as e:  # any model that cannot be copied
            warnings.warn(
                f"run {self.run.id!r}: the model cannot be copied ({type(e).__name__}: {e}); "
                f"its function vectors are computed inside record()",
                stacklevel=4,
            )
            self.background = False
            return None
        for p in shadow.parameters():
            p.grad = None
            p.requires_grad_(False)
        self._shadow = (weakref.ref(model), shadow)
        return shadow

    def _forward_vectors(self, model: nn.Module, what: str) -> Vectors:
        return model_vectors(
            model, self.probes, self.spec, extract=self._extract, forward=self._forward, what=what
        )

    def _shadow_vectors(self, shadow: nn.Module, weights: dict, what: str) -> Vectors:
        shadow.load_state_dict(weights)
        return self._forward_vectors(shadow, what)

    def _checked(
        self, compute: Callable[[], Vectors], model: nn.Module, what: str, *, background: bool
    ) -> Vectors | None:
        try:
            v = compute()
        except ModelOutputError as e:
            if "NaN" not in str(e):
                raise
            note = f"{e}; the weights are saved without a function vector"
            if background:  # shown by the next record(), flush() or close()
                self._notes.append(note)
            else:
                warnings.warn(note, stacklevel=4)
            return None
        except FspaceError:
            raise
        except Exception as e:  # the model's own forward failed on the probe inputs
            raise _forward_error(e, what, self.probes, model) from e
        self.spec = v.spec  # the kind, once known, holds for every later checkpoint
        size = v.matrix.shape[1]
        if self._vector_size is None:
            self._vector_size = size
        elif size != self._vector_size:
            raise ModelOutputError(
                f"{what}: function vector has {size} values on probe suite "
                f"{self.probes.name!r}, but the experiment's checkpoints have "
                f"{self._vector_size}; the model's output size differs from the experiment's"
            )
        return v

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
        while self._notes:
            warnings.warn(self._notes.pop(0), stacklevel=3)
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


def _outputs_vectors(out: torch.Tensor, suite: ProbeSuite, spec: OutputSpec, what: str) -> Vectors:
    """The function vector of outputs a training loop computed on the whole ``suite``."""
    acc = Accumulator(suite, spec, what)
    acc.add(out.unsqueeze(0), suite.batch(0, len(suite)))
    return acc.finish()
