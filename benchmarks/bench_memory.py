"""Memory of 2,000 function vectors of length 100,000: peak while embedding, and float16.

    python benchmarks/bench_memory.py                 # both parts
    python benchmarks/bench_memory.py --part peak     # or --part float16

``peak``: an experiment with 2,000 checkpoints whose function vectors are cached (the
realistic vectors of ``_vectors.py``) is read with ``fspace.evaluate`` and embedded
with ``fspace.embed(..., "tsne")``, each in a fresh process that reports its peak
resident memory (``VmHWM``) above what it held after its imports; for comparison,
the same matrix stacked from a list of per-checkpoint tensors (the earlier
``evaluate``) and embedded by openTSNE with exact neighbours. The data's size is the
float32 matrix, 800 MB.

``float16``: the same vectors embedded as float32 and as float16-rounded values;
printed are the largest rounding error, the trustworthiness of both maps, and the
Procrustes disparity between them next to the disparity between two float32 maps that
differ only in their random seed (the variation the map shows anyway).
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).parent
N_RUNS, PER_RUN = 20, 100


def rss_mb(field: str = "VmRSS") -> float:
    """Resident memory now (VmRSS) or at its highest so far (VmHWM), in MB."""
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # not Linux


def build(path: Path) -> None:
    """2,000 tiny checkpoints whose cached function vectors are the benchmark's."""
    import torch
    from _vectors import cached_vectors

    from fspace import Experiment, ProbeSuite
    from fspace.store import CheckpointInfo, files, layout

    vectors = cached_vectors(n_runs=N_RUNS + 2)
    exp = Experiment.create(path)
    suite = ProbeSuite.from_array(np.zeros((1, 1), np.float32), name="probe")
    exp.add_probes(suite)
    weights = {"w": torch.zeros(1)}
    for i, row in enumerate(vectors.points.itertuples()):
        if i == N_RUNS * PER_RUN:
            break
        run = row.run
        if i % PER_RUN == 0:
            (layout.run_dir(path, run)).mkdir(parents=True, exist_ok=True)
            body = {"id": run, "group": row.group, "seed": int(row.seed), "config": {}}
            (layout.run_dir(path, run) / "run.json").write_text(json.dumps(body))
        meta = {"kind": "checkpoint", "run": run, "epoch": int(row.epoch), "step": int(row.step)}
        ckpt_path = layout.checkpoint_path(path, run, layout.checkpoint_name(row.epoch, row.step))
        files.write(ckpt_path, weights, {**meta, "metrics": {}})
        ckpt = CheckpointInfo(run, int(row.epoch), int(row.step), {}, ckpt_path)
        exp.save_vector(ckpt, suite.fingerprint, "prob", torch.from_numpy(vectors.matrix[i]))


def child(kind: str, path: Path) -> dict:
    """Run one measurement in this (fresh) process; return its numbers."""
    import importlib

    from fspace import Experiment, embed, evaluate

    # Libraries count in the baseline, not in the peak.
    for name in ("openTSNE", "sklearn.neighbors", "fspace.embedding.neighbors", "numba"):
        importlib.import_module(name)

    base = rss_mb()
    start = time.perf_counter()
    if kind == "fspace":
        vectors = evaluate(path, progress=False)
        loaded = rss_mb()
        embed(vectors, "tsne", random_state=0)
    else:  # the earlier evaluate (a list of tensors, stacked) and openTSNE exact
        from openTSNE import TSNE

        exp = Experiment(path)
        suite = exp.probes()
        rows = [exp.load_vector(c, suite.fingerprint, "prob") for c in exp.checkpoints()]
        matrix = np.stack([r.numpy() for r in rows]).astype(np.float32, copy=False)
        loaded = rss_mb()
        TSNE(neighbors="exact", n_jobs=2, random_state=0).fit(matrix)
    return {
        "base": base,
        "loaded": loaded,
        "peak": rss_mb("VmHWM"),
        "s": time.perf_counter() - start,
    }


def peak_part() -> None:
    data_mb = N_RUNS * PER_RUN * 100_000 * 4 / 2**20
    with tempfile.TemporaryDirectory(prefix="fspace-bench-memory-") as root:
        path = Path(root) / "exp"
        start = time.perf_counter()
        build(path)
        print(f"experiment with 2000 cached vectors written in {time.perf_counter() - start:.0f} s")
        for kind in ("fspace", "before"):
            out = subprocess.run(
                [sys.executable, __file__, "--child", kind, str(path)],
                capture_output=True,
                text=True,
                check=True,
                cwd=HERE,
            )
            r = json.loads(out.stdout.strip().splitlines()[-1])
            label = "fspace evaluate + embed" if kind == "fspace" else "list + np.stack + openTSNE"
            print(
                f"{label:27s}: after loading +{r['loaded'] - r['base']:.0f} MB, peak "
                f"+{r['peak'] - r['base']:.0f} MB = {(r['peak'] - r['base']) / data_mb:.2f}x the "
                f"{data_mb:.0f} MB of data ({r['s']:.0f} s)"
            )
            if kind == "fspace":
                ratio = (r["peak"] - r["base"]) / data_mb
                print(
                    f"RESULT peak memory while evaluating and embedding: {ratio:.2f}x (target 2x)"
                )


def float16_part(n_probe: int = 10_000) -> None:
    from _vectors import cached_vectors
    from bench_tsne import distances, trust
    from scipy.spatial import procrustes

    from fspace import embed
    from fspace.vectors import FunctionVectors

    all_vectors = cached_vectors(n_runs=N_RUNS + 2, n_probe=n_probe)
    n = N_RUNS * PER_RUN
    x32 = np.ascontiguousarray(all_vectors.matrix[:n])
    x16 = x32.astype(np.float16).astype(np.float32)
    points = all_vectors.points.iloc[:n]
    stored_bytes(x32[0])
    path_lengths(x32, x16, points)
    error = np.abs(x16 - x32)
    dist = distances(x32)
    off = ~np.eye(n, dtype=bool)
    moved = np.linalg.norm(x16 - x32, axis=1)
    print(
        f"float16 rounding: max |error| {error.max():.2e}, mean {error.mean():.2e}; it moves a "
        f"vector by {moved.mean():.3f} on average, against a median distance of "
        f"{np.median(dist[off]):.1f} and a median nearest-neighbour distance of "
        f"{np.median(np.where(off, dist, np.inf).min(1)):.2f}"
    )
    maps = {}
    for name, matrix, seed in (("f32", x32, 0), ("f16", x16, 0), ("f32-seed1", x32, 1)):
        maps[name] = embed(FunctionVectors(matrix, points, "b"), "tsne", random_state=seed).coords
    tw32, tw16 = trust(dist, maps["f32"]), trust(dist, maps["f16"])
    print(f"trustworthiness (k=10, float32 distances): float32 map {tw32:.4f}, float16 {tw16:.4f}")
    d16 = procrustes(maps["f32"], maps["f16"])[2]
    dseed = procrustes(maps["f32"], maps["f32-seed1"])[2]
    print(
        f"RESULT Procrustes disparity float32 vs float16 map {d16:.4f}; float32 maps of seeds 0 "
        f"and 1 {dseed:.4f}"
    )


def stored_bytes(row: np.ndarray) -> None:
    """Bytes per checkpoint of one cached vector file, float32 and float16."""
    import torch

    from fspace.store import files

    sizes = {}
    with tempfile.TemporaryDirectory() as root:
        for dtype in (torch.float32, torch.float16):
            path = Path(root) / f"{dtype}.safetensors"
            files.write(path, {"vector": torch.from_numpy(row).to(dtype)}, {"kind": "vector"})
            sizes[dtype] = path.stat().st_size
    print(
        f"RESULT bytes per checkpoint ({row.size} values): float32 {sizes[torch.float32]}, "
        f"float16 {sizes[torch.float16]} ({sizes[torch.float16] / sizes[torch.float32]:.2f}x)"
    )


def path_lengths(x32: np.ndarray, x16: np.ndarray, points) -> None:
    """A trajectory statistic (each run's path length in function space): its change
    from float16 storage against how much it differs between seeds of a group."""
    runs = points["run"].to_numpy()

    def lengths(matrix: np.ndarray) -> dict[str, float]:
        out = {}
        for run in dict.fromkeys(runs):
            m = matrix[runs == run]
            out[run] = float(np.linalg.norm(np.diff(m, axis=0), axis=1).sum())
        return out

    l32, l16 = lengths(x32), lengths(x16)
    by_dtype = max(abs(l16[r] - l32[r]) / l32[r] for r in l32)
    groups = points.drop_duplicates("run").set_index("run")["group"]
    by_seed = []
    for group in set(groups):
        values = np.array([l32[r] for r in groups.index[groups == group]])
        by_seed.append(
            np.abs(values[:, None] - values[None]).sum() / (len(values) ** 2 - len(values))
        )
    seed_change = float(np.mean(by_seed)) / float(np.mean(list(l32.values())))
    print(
        f"RESULT path length per run: float16 changes it by at most {by_dtype:.2e} "
        f"(relative); runs of another seed differ by {seed_change:.2e} on average"
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--part", choices=("peak", "float16", "both"), default="both")
    parser.add_argument("--probes", type=int, default=10_000, help="float16 part: probes")
    parser.add_argument("--child", nargs=2, metavar=("KIND", "EXP"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        print(json.dumps(child(args.child[0], Path(args.child[1]))))
        return 0
    if args.part in ("peak", "both"):
        peak_part()
    if args.part in ("float16", "both"):
        float16_part(args.probes)
    return 0


if __name__ == "__main__":
    sys.exit(main())
