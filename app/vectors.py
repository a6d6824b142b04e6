"""Function vectors of a chosen list of checkpoints, with progress reports.

:func:`fspace.evaluation.evaluate` evaluates a whole experiment; the dashboard needs
the vectors of just the checkpoints that appeared since the map was drawn, and a
progress count for its status line. Both go through the one evaluation core,
:func:`fspace.evaluation.collect`, so they return the same values, in the output kind
and form the experiment was recorded with.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from fspace.errors import EmptyExperimentError
from fspace.store import CheckpointInfo, Experiment
from fspace.vectors import FunctionVectors

Progress = Callable[[int, int], None]
REPORT_EVERY = 200


def checkpoint_vectors(
    exp: Experiment,
    ckpts: Sequence[CheckpointInfo],
    *,
    probes: str | None = None,
    output: str | None = None,
    progress: Progress | None = None,
) -> tuple[FunctionVectors, list[str]]:
    """Function vectors of ``ckpts`` (in their order) and the keys of those left out.

    A checkpoint whose model gives NaN or infinite outputs is left out and its key
    returned, as :func:`~fspace.evaluation.evaluate` does. ``progress(done, total)`` is
    called every few hundred checkpoints.
    """
    from fspace.evaluation import collect, resolve_output, vectors_of

    suite = exp.probes(probes)
    spec, meta = resolve_output(exp, suite, output)
    total, done = len(ckpts), [0]

    def on_done(n: int) -> None:
        done[0] += n
        if progress is not None and (done[0] % REPORT_EVERY == 0 or done[0] == total):
            progress(done[0], total)

    got = collect(exp, suite, spec, ckpts, meta=meta, on_done=on_done)
    if not got.kept:
        raise EmptyExperimentError(
            f"none of the {total} checkpoints of {exp.path} has a finite function vector"
        )
    return vectors_of(exp, suite, got), got.failed
