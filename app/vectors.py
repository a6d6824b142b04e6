"""Function vectors of a chosen list of checkpoints, with progress reports.

:func:`fspace.evaluation.evaluate` evaluates a whole experiment; the dashboard needs
the vectors of just the checkpoints that appeared since the map was drawn, and a
progress count for its status line. This is the same computation from the same
pieces: cached vectors are read back, missing ones computed from the stored weights
in batches (:func:`fspace.batched.compute_vectors`) and cached, and the values
returned are the cached ones, so they equal what ``evaluate`` returns.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np

from fspace.errors import EmptyExperimentError, ModelOutputError
from fspace.evaluation import points_frame
from fspace.store import CheckpointInfo, Experiment
from fspace.vectors import FunctionVectors

Progress = Callable[[int, int], None]
REPORT_EVERY = 200


def checkpoint_vectors(
    exp: Experiment,
    ckpts: Sequence[CheckpointInfo],
    *,
    probes: str | None = None,
    output: str = "prob",
    progress: Progress | None = None,
) -> tuple[FunctionVectors, list[str]]:
    """Function vectors of ``ckpts`` (in their order) and the keys of those left out.

    A checkpoint whose model gives NaN or infinite outputs is left out and its key
    returned, as :func:`~fspace.evaluation.evaluate` does. ``progress(done, total)`` is
    called every few hundred checkpoints.
    """
    from fspace.batched import compute_vectors
    from fspace.store.vectors import as_stored

    suite = exp.probes(probes)
    total, done = len(ckpts), 0
    vectors: dict[str, np.ndarray] = {}
    missing = []
    for ckpt in ckpts:
        vector = exp.load_vector(ckpt, suite.fingerprint, output)
        if vector is None:
            missing.append(ckpt)
        else:
            vectors[ckpt.key] = vector.numpy()
            done += 1
            _report(progress, done, total)
    failed = []
    for ckpt, vector in compute_vectors(exp, suite, output, missing):
        done += 1
        _report(progress, done, total)
        if vector is None:
            failed.append(ckpt.key)
            continue
        exp.save_vector(ckpt, suite.fingerprint, output, vector)
        vectors[ckpt.key] = as_stored(vector, output).numpy()
    kept = [c for c in ckpts if c.key in vectors]
    if not kept:
        raise EmptyExperimentError(
            f"none of the {total} checkpoints of {exp.path} has a finite function vector"
        )
    if len({vectors[c.key].shape for c in kept}) > 1:
        raise ModelOutputError(
            f"function vectors in {exp.path} differ in length on probe suite "
            f"{suite.name!r}: the models' output sizes differ, so they cannot share a map"
        )
    matrix = np.stack([vectors[c.key] for c in kept]).astype(np.float32, copy=False)
    layout = (len(suite), matrix.shape[1] // len(suite))
    vectors = FunctionVectors(
        matrix, points_frame(exp, kept), suite.fingerprint, output, layout=layout
    )
    return vectors, failed


def _report(progress: Progress | None, done: int, total: int) -> None:
    if progress is not None and (done % REPORT_EVERY == 0 or done == total):
        progress(done, total)
