"""Function vectors of many checkpoints of one architecture at once.

Evaluating checkpoints one at a time reads, checks and loads each checkpoint before its
forward can start, and writes its vector (with an fsync) before the next one. Here the
weights of up to :data:`MAX_BATCH` checkpoints are stacked and the model's forward is
mapped over them with ``torch.func.vmap``, so each layer is one batched matrix product.
The next batch of checkpoints is read straight into its stack (one copy from the page
cache) and its checksums verified on background threads while the current batch
computes, and the vectors are written on background threads too. Input features that
are zero on every probe input (a third of MNIST's pixels) are left out of the first
layer's products when the model is an :class:`~fspace.models.mlp.MLP` or a plain
``nn.Sequential``. Everything runs on the GPU when there is one, where batching also
turns many small products into a few large ones.

Models whose state is not only parameters (batch-norm statistics and other buffers),
and forwards ``vmap`` cannot map, are evaluated one at a time (:func:`batch_problem`
says why), with the same results.

Example::

    matrix = function_vectors(model, [state_a, state_b], suite)  # (2, len(suite) * classes)
"""

from __future__ import annotations

import copy
import json
from collections import deque
from collections.abc import Callable, Iterator, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor

import torch
from torch import nn

from fspace.errors import ModelOutputError
from fspace.evaluation import (
    ModelFactory,
    _check_output,
    _EvalMode,
    _transform,
    build_model,
    function_vector,
    load_into,
    resolve_factory,
)
from fspace.probes import ProbeSuite
from fspace.store import CheckpointInfo, Experiment
from fspace.store.reading import read_into, read_mapped

BATCH_BYTES = 128 * 2**20
"""Stacked weights per batch; with the activations this bounds a batch's memory."""
MAX_BATCH = 16
"""Checkpoints per batch at most: on a CPU wider batches only add cache misses
(``benchmarks/bench_evaluate.py --sweep``); a GPU would take more."""
DEAD_INPUT_SHARE = 0.1
"""Skip input features zero on every probe when they are at least this share."""
INIT_ONLY_KWARGS = ("seed", "random_state")
"""Model factory arguments assumed to change only the initial weights, not the forward."""

Vector = torch.Tensor | None  # None: the model's outputs were not all finite


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
    output: str = "prob",
    batch_size: int = 4096,
    device: torch.device | str | None = None,
) -> torch.Tensor:
    """Function vectors of ``model``'s architecture with each of ``states`` loaded.

    Row ``i`` equals ``function_vector(model_with_states[i], probes)`` up to float
    rounding (another summation order); rows whose outputs are not all finite are
    returned as they are, for the caller to drop. ``model`` itself is not modified.
    Raises RuntimeError when the forward cannot be mapped over stacked weights.
    """
    names = [name for name, _ in model.named_parameters()]
    stacked = {name: torch.stack([s[name] for s in states]) for name in names}
    return stacked_vectors(
        model, stacked, probes, output=output, batch_size=batch_size, device=device
    )


@torch.no_grad()
def stacked_vectors(
    model: nn.Module,
    stacked: Mapping[str, torch.Tensor],
    probes: ProbeSuite | torch.Tensor,
    *,
    output: str = "prob",
    batch_size: int = 4096,
    device: torch.device | str | None = None,
) -> torch.Tensor:
    """Like :func:`function_vectors`, with each parameter already stacked along a
    first dimension of one entry per checkpoint."""
    _check_output(output)
    problem = batch_problem(model)
    if problem is not None:
        raise RuntimeError(f"cannot evaluate {type(model).__name__} in batches: {problem}")
    device = torch.device(device) if device is not None else default_device()
    inputs = probes.inputs if isinstance(probes, ProbeSuite) else probes
    params = {name: stacked[name] for name, _ in model.named_parameters()}
    model, params, inputs = _skip_dead_inputs(model, params, inputs)
    params = {name: t.to(device) for name, t in params.items()}
    count = next(iter(params.values())).shape[0]

    def forward(p, x):
        return torch.func.functional_call(model, p, (x,))

    mapped = torch.func.vmap(forward, in_dims=(0, None))
    chunks = []
    with _EvalMode(model):
        for start in range(0, inputs.shape[0], batch_size):
            x = inputs[start : start + batch_size].to(device)
            out = mapped(params, x)
            if not isinstance(out, torch.Tensor) or out.ndim != 3 or out.shape[1] != len(x):
                shape = tuple(out.shape) if isinstance(out, torch.Tensor) else type(out).__name__
                raise ModelOutputError(
                    f"{type(model).__name__} returned {shape} for {count} checkpoints "
                    f"and {len(x)} probe inputs; expected (n, classes) logits per checkpoint"
                )
            chunks.append(_transform(out.float(), output).to("cpu"))
    return torch.cat(chunks, 1).reshape(count, -1)


def _first_linear(model: nn.Module, inputs: torch.Tensor) -> str | None:
    """Name of the Linear layer the flattened inputs go into first, if that is certain."""
    from fspace.models.mlp import MLP

    if type(model) is MLP:  # its forward flattens, then applies hidden_layers[0]
        return "hidden_layers.0"
    if type(model) is nn.Sequential:
        children = list(model.named_children())
        first = 0
        if children and isinstance(children[0][1], nn.Flatten):
            if (children[0][1].start_dim, children[0][1].end_dim) != (1, -1):
                return None
            first = 1
        elif inputs.ndim != 2:  # a Linear would act on the last dimension only
            return None
        if len(children) > first and isinstance(children[first][1], nn.Linear):
            return children[first][0]
    return None


def _skip_dead_inputs(model, params, inputs):
    """Leave out the input features that are zero on every probe input, with the
    first layer's weight columns that multiply them: what they add is exactly zero.
    (A third of MNIST's pixels are blank on every digit.)"""
    name = _first_linear(model, inputs)
    if name is None:
        return model, params, inputs
    flat = inputs.reshape(len(inputs), -1)
    alive = flat.ne(0).any(0).nonzero().squeeze(1)
    if len(alive) > (1 - DEAD_INPUT_SHARE) * flat.shape[1]:
        return model, params, inputs
    pruned = copy.deepcopy(model)
    parent, _, child = name.rpartition(".")
    old = pruned.get_submodule(name)
    new = nn.Linear(len(alive), old.out_features, bias=old.bias is not None, device="meta")
    setattr(pruned.get_submodule(parent) if parent else pruned, child, new)
    weight = f"{name}.weight"
    params = {**params, weight: params[weight].index_select(2, alive)}
    return pruned, params, flat.index_select(1, alive)


def signature(run, factory: str | ModelFactory | None) -> str:
    """Runs with equal signatures share an architecture and are batched together:
    the same model factory, called with the same arguments up to ``INIT_ONLY_KWARGS``."""
    spec = factory if factory is not None else run.model_factory
    name = spec if isinstance(spec, str) or spec is None else f"callable-{id(spec)}"
    kwargs = {k: v for k, v in run.model_kwargs.items() if k not in INIT_ONLY_KWARGS}
    return json.dumps([name, kwargs], sort_keys=True, default=str)


def compute_vectors(
    exp: Experiment,
    suite: ProbeSuite,
    output: str,
    ckpts: Sequence[CheckpointInfo],
    factory: str | ModelFactory | None = None,
    *,
    device: torch.device | str | None = None,
    on_done: Callable[[int], None] | None = None,
) -> Iterator[tuple[CheckpointInfo, Vector]]:
    """Yield ``(checkpoint, vector)`` for every checkpoint of ``ckpts``, computed from
    its stored weights in batches of one architecture; ``vector`` is None where the
    outputs are not all finite. ``on_done(n)`` reports progress."""
    device = torch.device(device) if device is not None else default_device()
    if factory is not None:
        resolve_factory(factory)  # a bad spec is a ConfigError before anything is read
    groups: dict[str, list[CheckpointInfo]] = {}
    runs = {r: exp.run(r) for r in dict.fromkeys(c.run for c in ckpts)}
    for c in ckpts:
        groups.setdefault(signature(runs[c.run], factory), []).append(c)
    with ThreadPoolExecutor(max_workers=2, thread_name_prefix="fspace-read") as pool:
        for group in groups.values():
            model = build_model(runs[group[0].run], factory).to(device)
            for ckpt, vector in _evaluate_group(model, group, suite, output, device, pool):
                if on_done is not None:
                    on_done(1)
                yield ckpt, vector


def _batch_length(model: nn.Module) -> int:
    nbytes = sum(p.numel() * p.element_size() for p in model.parameters())
    return max(1, min(MAX_BATCH, BATCH_BYTES // max(nbytes, 1)))


def _evaluate_group(model, ckpts, suite, output, device, pool):
    """(checkpoint, vector) of checkpoints sharing ``model``'s architecture, in order."""
    if batch_problem(model) is not None:
        for ckpt, future in _read_ahead(pool, ckpts, 2):
            yield ckpt, _one_by_one(model, [(ckpt, future.result())], suite, output)[0]
        return
    size = _batch_length(model)
    # Two stacks: one is read into on the pool while the other is computed on.
    stacks = [_empty_stack(model, size), _empty_stack(model, size)]
    batches = [ckpts[i : i + size] for i in range(0, len(ckpts), size)]
    reads = _read_batch(pool, batches[0], stacks[0])
    batchable = True
    for k, batch in enumerate(batches):
        fits = [r.result() for r in reads]
        if k + 1 < len(batches):
            reads = _read_batch(pool, batches[k + 1], stacks[(k + 1) % 2])
        stack = {name: t[: len(batch)] for name, t in stacks[k % 2].items()}
        for i, (ckpt, fit) in enumerate(zip(batch, fits, strict=True)):
            if not fit:  # other names, shapes or dtypes: load_state_dict decides
                weights = read_mapped(ckpt.path)[0]
                load_into(model, weights, ckpt)  # raises, naming it, if they do not fit
                for name, t in stack.items():
                    t[i].copy_(weights[name])  # cast as load_state_dict does
        matrix = None
        if batchable:
            try:
                matrix = stacked_vectors(model, stack, suite, output=output, device=device)
            except (RuntimeError, ValueError, TypeError, ModelOutputError):
                # The forward cannot be mapped (data-dependent control flow, .item(),
                # outputs that are not one tensor): one at a time gives the same
                # vectors, or the error that names the checkpoint.
                batchable = False
        if matrix is None:
            states = [{name: t[i] for name, t in stack.items()} for i in range(len(batch))]
            matrix = _one_by_one(model, list(zip(batch, states, strict=True)), suite, output)
        for ckpt, v in zip(batch, matrix, strict=True):
            yield ckpt, (v if v is not None and bool(torch.isfinite(v).all()) else None)


def _empty_stack(model: nn.Module, size: int) -> dict[str, torch.Tensor]:
    return {
        name: torch.empty((size, *p.shape), dtype=p.dtype) for name, p in model.named_parameters()
    }


def _read_batch(pool, batch, stack) -> list[Future]:
    """Read each checkpoint of ``batch`` into its slot of ``stack``; each future says
    whether the stored tensors fit (False: nothing was read)."""
    return [
        pool.submit(_read_slot, ckpt, {name: t[i] for name, t in stack.items()})
        for i, ckpt in enumerate(batch)
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


def _one_by_one(model, items, suite, output) -> list[Vector]:
    out = []
    for ckpt, weights in items:
        load_into(model, weights, ckpt)
        try:
            out.append(function_vector(model, suite, output=output, what=f"checkpoint {ckpt.key}"))
        except ModelOutputError as e:
            if "NaN" not in str(e):
                raise
            out.append(None)
    return out
