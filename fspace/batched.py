"""Function vectors of many checkpoints of one architecture at once.

Evaluating checkpoints one at a time reads, checks and loads each checkpoint before its
forward can start, and writes its vector (with an fsync) before the next one. Here the
weights of up to :data:`MAX_BATCH` checkpoints are stacked, so each layer is one batched
matrix product: a plain MLP runs as a chain of ``baddbmm`` calls with in-place
activations (:mod:`fspace.stacked`), any other model by mapping its own forward with
``torch.func.vmap``. The next batch of checkpoints is read straight into its stack on
background threads (one copy from the page cache, each piece hashed for the checksum as
it arrives), and the vectors are written on background threads too. Input
features that are zero on every probe input (a third of MNIST's pixels) are left out of
the first layer's products when the model is an :class:`~fspace.models.mlp.MLP` or a
plain ``nn.Sequential`` (:mod:`fspace.live_inputs`): found once per architecture, the
live columns copied by the read threads. The next batch is read while the current one
computes (:func:`reads_overlap`). Everything runs on the GPU when there is one, where
batching also turns many small products into a few large ones.

Models whose state is not only parameters (batch-norm statistics and other buffers),
and forwards ``vmap`` cannot map, are evaluated one at a time (:func:`batch_problem`
says why), with the same results.

Example::

    vectors = function_vectors(model, [state_a, state_b], suite, OutputSpec())
    vectors.matrix  # (2, len(suite) * classes)
"""

from __future__ import annotations

import functools
import json
from collections import deque
from collections.abc import Callable, Iterator, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

import torch
from torch import nn

from fspace.errors import CheckpointError, ConfigError, ModelOutputError
from fspace.live_inputs import (
    INPUT_LAYER_ATTRIBUTE as INPUT_LAYER_ATTRIBUTE,  # where models read it from
)
from fspace.live_inputs import (
    Narrowed,
    column_runs,
    narrowed,
    skip_dead_inputs,
    take_columns,
)
from fspace.outputs import OutputSpec, as_spec, extract_output
from fspace.outputs.apply import (
    MAX_BATCH as MAX_PROBES,
)
from fspace.outputs.apply import (
    OUTPUT_BUDGET,
    Accumulator,
    EvalMode,
    Vectors,
    batch_size_for,
    model_vectors,
)
from fspace.probes import ProbeSuite
from fspace.stacked import plan_for
from fspace.store import CheckpointInfo, Experiment, RunInfo
from fspace.store.reading import read_into, read_mapped

BATCH_BYTES = 128 * 2**20
"""Stacked weights per batch; with the activations this bounds a batch's memory."""
MAX_BATCH = 16
"""Checkpoints per batch at most: on a CPU wider batches only add cache misses
(``benchmarks/bench_evaluate.py --sweep``); a GPU would take more."""
READ_BETWEEN_PRODUCTS = False
"""On the CPU, read the next batch between the products rather than during them. Off:
on two cores it used as much CPU and finished no sooner (``benchmarks/bench_evaluate.py
--profile``); the reads' CPU seconds count however they are scheduled, and during the
products they also fill the moments the products leave a core idle."""
INIT_ONLY_KWARGS = ("seed", "random_state")
"""Model factory arguments assumed to change only the initial weights, not the forward."""

Vector = Vectors | None  # None: the model's outputs were not all finite
Builder = Callable[[RunInfo], nn.Module]


def default_device() -> torch.device:
    """The GPU when torch sees one, else the CPU."""
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def batch_problem(model: nn.Module) -> str | None:
    """Why ``model``'s checkpoints cannot be evaluated in batches, or None if they can."""
    if next(model.parameters(), None) is None:
        return "it has no parameters"
    buffers = [name for name, _ in model.named_buffers()]
    if buffers:
        return f"its state includes buffers ({', '.join(buffers[:3])}), e.g. batch-norm statistics"
    return None


@torch.no_grad()
def function_vectors(
    model: nn.Module,
    states: Sequence[Mapping[str, torch.Tensor]],
    probes: ProbeSuite | torch.Tensor,
    *,
    output: str | OutputSpec | None = None,
    batch_size: int | None = None,
    device: torch.device | str | None = None,
) -> torch.Tensor:
    """Function vectors ``(len(states), length)`` of ``model``'s architecture with each
    of ``states`` loaded, in the vector form ``output`` (default: probabilities).

    Row ``i`` equals ``function_vector(model_with_states[i], probes)`` up to float
    rounding (another summation order); rows whose outputs are not all finite are
    returned as they are, for the caller to drop. ``model`` itself is not modified.
    Raises RuntimeError when the forward cannot be mapped over stacked weights.
    """
    suite = probes if isinstance(probes, ProbeSuite) else ProbeSuite(probes)
    spec = as_spec(output)
    names = [name for name, _ in model.named_parameters()]
    stacked = {name: torch.stack([s[name] for s in states]) for name in names}
    return stacked_vectors(model, stacked, suite, spec, batch_size=batch_size, device=device).matrix


@torch.no_grad()
def stacked_vectors(
    model: nn.Module,
    stacked: Mapping[str, torch.Tensor],
    probes: ProbeSuite,
    spec: OutputSpec,
    *,
    batch_size: int | None = None,
    device: torch.device | str | None = None,
) -> Vectors:
    """Like :func:`function_vectors`, with each parameter already stacked along a
    first dimension of one entry per checkpoint."""
    problem = batch_problem(model)
    if problem is not None:
        raise RuntimeError(f"cannot evaluate {type(model).__name__} in batches: {problem}")
    params = {name: stacked[name] for name, _ in model.named_parameters()}
    model, params, suite = skip_dead_inputs(model, params, probes)
    return _forward_stack(model, params, suite, spec, batch_size=batch_size, device=device)


def _forward_stack(model, params, suite, spec, *, batch_size=None, device=None) -> Vectors:
    """The vectors of the stacked ``params`` (first layer already narrowed to ``suite``'s
    features): a plain MLP as a few wide products (:mod:`fspace.stacked`), any other
    model by mapping its own forward with ``vmap``."""
    device = torch.device(device) if device is not None else default_device()
    params = {name: t.to(device) for name, t in params.items()}
    count = next(iter(params.values())).shape[0]
    what = f"{type(model).__name__} ({count} checkpoints)"
    plan = plan_for(model)
    if plan is not None and isinstance(suite.inputs, torch.Tensor) and plan.takes(suite.inputs):
        # The widest layer's output bounds the memory, as batch_size_for does for vmap.
        run = functools.partial(plan.forward, params)
        size = batch_size or max(1, min(MAX_PROBES, OUTPUT_BUDGET // (count * plan.widest(model))))
    else:

        def forward(p, x):
            if isinstance(x, Mapping):
                out = torch.func.functional_call(model, p, (), dict(x))
            else:
                out = torch.func.functional_call(model, p, x if isinstance(x, tuple) else (x,))
            return extract_output(out, spec.key, what)

        mapped = torch.func.vmap(forward, in_dims=(0, None))
        run = functools.partial(mapped, params)
        size = batch_size
    acc = Accumulator(suite, spec, what)
    with EvalMode(model):
        size = size or batch_size_for(run, suite, device)
        for _, _, x in suite.batches(size, device):
            acc.add(run(x), x)
    return acc.finish(finite=False)  # rows not all finite: the caller drops them


def signature(run: RunInfo, factory: Any = None) -> str:
    """Runs with equal signatures share an architecture and are batched together:
    the same model factory, called with the same arguments up to ``INIT_ONLY_KWARGS``."""
    spec = factory if factory is not None else run.model_factory
    name = spec if isinstance(spec, str) or spec is None else f"callable-{id(spec)}"
    kwargs = {k: v for k, v in run.model_kwargs.items() if k not in INIT_ONLY_KWARGS}
    return json.dumps([name, kwargs], sort_keys=True, default=str)


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


def compute_vectors(
    exp: Experiment,
    suite: ProbeSuite,
    spec: OutputSpec,
    ckpts: Sequence[CheckpointInfo],
    build: Builder,
    *,
    group_key: Callable[[RunInfo], str] = signature,
    device: torch.device | str | None = None,
    extract: Callable | None = None,
    forward: Callable | None = None,
    on_done: Callable[[int], None] | None = None,
) -> Iterator[tuple[CheckpointInfo, Vector]]:
    """Yield ``(checkpoint, vectors)`` for every checkpoint of ``ckpts``, computed from
    its stored weights in batches of one architecture (runs with equal ``group_key``,
    built by ``build(run)``); ``vectors`` (one row) is None where the outputs are not
    all finite. ``on_done(n)`` reports progress."""
    device = torch.device(device) if device is not None else default_device()
    groups: dict[str, list[CheckpointInfo]] = {}
    runs = {r: exp.run(r) for r in dict.fromkeys(c.run for c in ckpts)}
    for c in ckpts:
        groups.setdefault(group_key(runs[c.run]), []).append(c)
    calls = {"extract": extract, "forward": forward}
    workers = read_threads(device)
    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="fspace-read") as pool:
        for group in groups.values():
            model = build(runs[group[0].run]).to(device)
            for ckpt, vector in _evaluate_group(model, group, suite, spec, device, pool, calls):
                if on_done is not None:
                    on_done(1)
                yield ckpt, vector


def reads_overlap(device: torch.device) -> bool:
    """Whether the next batch is read while the current one computes: always on a GPU,
    where the CPU is free meanwhile; on the CPU unless :data:`READ_BETWEEN_PRODUCTS`."""
    return device.type != "cpu" or not READ_BETWEEN_PRODUCTS


def read_threads(device: torch.device) -> int:
    """Threads that read checkpoints: 2, or on the CPU with the reads between the
    products as many as torch computes with, so that they use every core then."""
    if device.type == "cpu" and READ_BETWEEN_PRODUCTS:
        return max(2, torch.get_num_threads())
    return 2


def _batch_length(model: nn.Module) -> int:
    nbytes = sum(p.numel() * p.element_size() for p in model.parameters())
    return max(1, min(MAX_BATCH, BATCH_BYTES // max(nbytes, 1)))


def _evaluate_group(model, ckpts, suite, spec, device, pool, calls):
    """(checkpoint, vectors) of checkpoints sharing ``model``'s architecture, in order."""
    if batch_problem(model) is not None or any(calls.values()):
        for ckpt, future in _read_ahead(pool, ckpts, 2):
            yield ckpt, _one_by_one(model, [(ckpt, future.result())], suite, spec, calls)[0]
        return
    size = _batch_length(model)
    # Found once for the group: the read threads gather each checkpoint's live columns.
    narrow = narrowed(model, suite)
    # Two stacks: one is read into on the pool while the other is computed on.
    stacks = [_Stack(model, size, narrow), _Stack(model, size, narrow)]
    batches = [ckpts[i : i + size] for i in range(0, len(ckpts), size)]
    overlap = reads_overlap(device)
    reads = stacks[0].read(pool, batches[0])
    batchable = True
    for k, batch in enumerate(batches):
        fits = [r.result() for r in reads]
        following = batches[k + 1] if k + 1 < len(batches) else None
        if overlap and following:
            reads = stacks[(k + 1) % 2].read(pool, following)
        stack = stacks[k % 2]
        for i, (ckpt, fit) in enumerate(zip(batch, fits, strict=True)):
            if not fit:  # other names, shapes or dtypes: load_state_dict decides
                weights = read_mapped(ckpt.path)[0]
                load_into(model, weights, ckpt)  # raises, naming it, if they do not fit
                stack.put(i, weights)
        rows: list[Vector] | None = None
        if batchable:
            try:
                rows = _split(stack.vectors(model, len(batch), suite, spec, device))
            except (RuntimeError, ValueError, TypeError, ModelOutputError, ConfigError):
                # The forward cannot be mapped (data-dependent control flow, .item(),
                # outputs that are not one tensor): one at a time gives the same
                # vectors, or the error that names the checkpoint.
                batchable = False
        if rows is None:
            states = [stack.state(i) for i in range(len(batch))]
            rows = _one_by_one(model, list(zip(batch, states, strict=True)), suite, spec, calls)
        if not overlap and following:
            # Between the products: the caller's writes of these rows share the cores
            # with the reads, not with the next products.
            reads = stacks[(k + 1) % 2].read(pool, following)
        yield from zip(batch, rows, strict=True)


class _Stack:
    """Room for the weights of up to ``size`` checkpoints of ``model``, each parameter
    stacked along a first dimension; with ``narrow``, also the first layer's live
    columns, gathered as each checkpoint is read."""

    def __init__(self, model: nn.Module, size: int, narrow: Narrowed | None) -> None:
        self.full = {
            name: torch.empty((size, *p.shape), dtype=p.dtype)
            for name, p in model.named_parameters()
        }
        self.narrow = narrow
        if narrow is not None:
            weight = self.full[narrow.weight]
            self.live = torch.empty((*weight.shape[:-1], len(narrow.alive)), dtype=weight.dtype)
            self.alive = narrow.alive.numpy()
            self.runs = column_runs(self.alive)

    def read(self, pool, batch) -> list[Future]:
        """Read each checkpoint of ``batch`` into its slot; each future says whether the
        stored tensors fit (False: nothing was read)."""
        return [pool.submit(self._read_slot, i, ckpt) for i, ckpt in enumerate(batch)]

    def _read_slot(self, i: int, ckpt: CheckpointInfo) -> bool:
        if not _read_slot(ckpt, self.state(i)):
            return False
        self._gather(i)
        return True

    def _gather(self, i: int) -> None:
        if self.narrow is not None:
            take_columns(self.full[self.narrow.weight][i], self.alive, self.live[i], self.runs)

    def put(self, i: int, weights: Mapping[str, torch.Tensor]) -> None:
        """Copy ``weights`` into slot ``i`` (cast as ``load_state_dict`` does)."""
        for name, t in self.full.items():
            t[i].copy_(weights[name])
        self._gather(i)

    def state(self, i: int) -> dict[str, torch.Tensor]:
        """Slot ``i``: one checkpoint's parameters (views)."""
        return {name: t[i] for name, t in self.full.items()}

    def vectors(self, model, count, suite, spec, device) -> Vectors:
        """The vectors of the first ``count`` checkpoints."""
        params = {name: t[:count] for name, t in self.full.items()}
        if self.narrow is None:
            return _forward_stack(model, params, suite, spec, device=device)
        params[self.narrow.weight] = self.live[:count]
        narrow = self.narrow
        return _forward_stack(narrow.model, params, narrow.suite, spec, device=device)


def _split(vectors: Vectors) -> list[Vector]:
    # One .tolist(), not a tensor index per row: few Python-level torch calls, each of
    # which may wait for the GIL that the read and write threads take in turn.
    finite = torch.isfinite(vectors.matrix).all(1).tolist()
    return [
        Vectors(vectors.matrix[i : i + 1], vectors.spec, vectors.layout) if ok else None
        for i, ok in enumerate(finite)
    ]


def _read_slot(ckpt: CheckpointInfo, slot: dict[str, torch.Tensor]) -> bool:
    return read_into(ckpt.path, slot) is not None


def _read_ahead(pool, ckpts, window: int) -> Iterator[tuple[CheckpointInfo, Future]]:
    """Checkpoints in order, each with a future of its verified weights."""
    pending: deque[tuple[CheckpointInfo, Future]] = deque()
    for ckpt in ckpts:
        pending.append((ckpt, pool.submit(lambda c: read_mapped(c.path)[0], ckpt)))
        if len(pending) > window:
            yield pending.popleft()
    yield from pending


def _one_by_one(model, items, suite, spec, calls) -> list[Vector]:
    out = []
    for ckpt, weights in items:
        load_into(model, weights, ckpt)
        try:
            out.append(model_vectors(model, suite, spec, what=f"checkpoint {ckpt.key}", **calls))
        except ModelOutputError as e:
            if "NaN" not in str(e):
                raise
            out.append(None)
    return out
