"""Many checkpoints: evaluate from the cache and embed, against openTSNE and umap-learn.

    python benchmarks/bench_scale.py                       # 20,000 x 10,000
    python benchmarks/bench_scale.py --n 100000 --d 10000  # the target size
    python benchmarks/bench_scale.py --n 5000 10000 20000  # the scaling trend

For each size, the benchmark makes ``n`` synthetic function vectors of ``d`` values
(100-checkpoint runs in 4 groups, each run moving from its own random start towards
its group's function with a random walk on the way: softmax outputs on ``d / 10``
probes), writes them as an experiment's cached function vectors (float16, the
default), and in a fresh process each:

- fspace: ``fspace.evaluate`` (cache straight into one float32 matrix) and
  ``fspace.embed(..., "tsne")`` with its defaults (matrix-product or principal-component
  neighbours, openTSNE's FFT-interpolated gradient from 5,000 points);
- openTSNE: ``openTSNE.TSNE()`` with its defaults on the same float32 matrix;
- umap-learn: ``umap.UMAP()`` with its defaults on it.

Printed: wall time, peak resident memory over the float32 data (``VmHWM`` above the
process after its imports), the recall of fspace's 90 nearest neighbours (the ones
perplexity 30 uses) against exact ones for 500 points, and trustworthiness (k=10) of
each map on a 5,000-point subsample next to openTSNE with exact neighbours fitted on
that subsample.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).parent
PER_RUN = 100
SUBSAMPLE = 5000


def trajectories(run: int, d: int, group: int) -> np.ndarray:
    """Softmax vectors of one run's 100 checkpoints on ``d // 10`` probes, 10 classes: the
    run moves from its own random start towards its group's function, with a random walk
    on the way (neighbouring checkpoints close, late ones crowded, groups apart)."""
    gen = np.random.default_rng(run)
    target = 3 * np.random.default_rng(10_000 + group).normal(size=(d // 10, 10))
    start = 3 * gen.normal(size=(d // 10, 10))
    walk = np.cumsum(0.1 * gen.normal(size=(PER_RUN, d // 10, 10)), axis=0)
    a = 1 - np.exp(-np.arange(PER_RUN) / 20)[:, None, None]
    logits = (1 - a) * start + a * target + walk
    e = np.exp(logits - logits.max(-1, keepdims=True))
    return (e / e.sum(-1, keepdims=True)).reshape(PER_RUN, -1).astype(np.float32)


def build(path: Path, n: int, d: int) -> None:
    """An experiment of ``n`` tiny checkpoints with cached ``d``-value function vectors
    (``n / 100`` runs in 4 groups), stored as fspace stores them (float16)."""
    import torch

    from fspace import Experiment, ProbeSuite
    from fspace.outputs import OutputSpec, as_stored
    from fspace.store import CheckpointInfo, files, layout

    exp = Experiment.create(path)
    suite = ProbeSuite.from_array(np.zeros((1, 1), np.float32), name="probe")
    exp.add_probes(suite)
    spec = OutputSpec(kind="classification", form="prob")
    for r in range(max(1, n // PER_RUN)):
        run, group = f"r{r:05d}", f"g{r % 4}"
        layout.run_dir(path, run).mkdir(parents=True, exist_ok=True)
        body = {"id": run, "group": group, "seed": r, "config": {}}
        (layout.run_dir(path, run) / "run.json").write_text(json.dumps(body))
        for i, row in enumerate(trajectories(r, d, r % 4)):
            meta = {"kind": "checkpoint", "run": run, "epoch": i, "step": i}
            ckpt_path = layout.checkpoint_path(path, run, layout.checkpoint_name(i, i))
            files.write(ckpt_path, {"w": torch.zeros(1)}, {**meta, "metrics": {}})
            ckpt = CheckpointInfo(run, i, i, {}, ckpt_path)
            stored = as_stored(torch.from_numpy(row), spec)
            exp.save_vector(ckpt, suite.fingerprint, "prob", stored)


def rss_mb(field: str = "VmRSS") -> float:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1]) / 1024
    raise RuntimeError("no /proc/self/status")


def child(kind: str, path: Path, out: Path) -> dict:
    """One variant in this fresh process: its map saved to ``out``, its numbers returned."""
    import importlib

    for name in ("openTSNE", "fspace.embedding.neighbors", "numba", "sklearn.neighbors"):
        importlib.import_module(name)
    if kind == "umap":
        importlib.import_module("umap")
    from fspace import evaluate

    base = rss_mb()
    start = time.perf_counter()
    if kind == "fspace":
        from fspace import embed

        vectors = evaluate(path, progress=False)
        read = time.perf_counter() - start
        coords = embed(vectors, "tsne", random_state=0).coords
    else:
        vectors = evaluate(path, progress=False)  # the same matrix, for the same data
        read = time.perf_counter() - start
        matrix = np.ascontiguousarray(vectors.matrix)
        if kind == "opentsne":
            from openTSNE import TSNE

            coords = np.asarray(TSNE(n_jobs=2, random_state=0).fit(matrix))
        else:
            import umap

            coords = umap.UMAP(random_state=0, n_jobs=2).fit_transform(matrix)
    took = time.perf_counter() - start
    np.save(out, np.asarray(coords, dtype=np.float64))
    return {"base": base, "peak": rss_mb("VmHWM"), "s": took, "read": read}


def recall(matrix: np.ndarray, k: int = 90, queries: int = 500) -> float:
    """Fraction of the exact ``k`` nearest neighbours of ``queries`` points that the
    neighbours fspace's t-SNE uses at this size find."""
    import torch

    from fspace.embedding.neighbors import GramIndex, PCAIndex
    from fspace.embedding.tsne import GRAM_UP_TO

    n = matrix.shape[0]
    index = GramIndex(matrix, k) if n <= GRAM_UP_TO else PCAIndex(matrix, k, n_components=100)
    found, _ = index.build()
    pick = np.random.default_rng(0).choice(n, size=min(queries, n), replace=False)
    x = torch.from_numpy(np.ascontiguousarray(matrix[pick]))
    d = torch.zeros(len(pick), n)
    for a in range(0, n, 4096):
        d[:, a : a + 4096] = torch.cdist(x, torch.from_numpy(np.asarray(matrix[a : a + 4096])))
    d[torch.arange(len(pick)), torch.from_numpy(pick)] = float("inf")
    exact = d.topk(k, largest=False).indices.numpy()
    return float(
        np.mean([len(set(e) & set(f)) / k for e, f in zip(exact, found[pick], strict=True)])
    )


def quality(matrix: np.ndarray, maps: dict[str, np.ndarray]) -> dict[str, float]:
    """Trustworthiness of each map on a subsample, and of openTSNE with exact neighbours
    fitted on that subsample."""
    from bench_tsne import distances, trust
    from openTSNE import TSNE

    n = matrix.shape[0]
    pick = np.sort(np.random.default_rng(1).choice(n, size=min(SUBSAMPLE, n), replace=False))
    sub = np.ascontiguousarray(matrix[pick], dtype=np.float32)
    dist = distances(sub)
    out = {name: trust(dist, coords[pick]) for name, coords in maps.items()}
    exact = TSNE(neighbors="exact", n_jobs=2, random_state=0).fit(sub)
    out["opentsne-exact-subsample"] = trust(dist, np.asarray(exact))
    return out


def one_size(n: int, d: int, variants: list[str], check: bool = True) -> None:
    from fspace import evaluate

    data_mb = n * d * 4 / 2**20
    with tempfile.TemporaryDirectory(prefix="fspace-bench-scale-") as root:
        path = Path(root) / "exp"
        start = time.perf_counter()
        build(path, n, d)
        disk = sum(p.stat().st_size for p in path.glob("runs/*/vectors/*/*.safetensors"))
        print(
            f"\n{n} checkpoints x {d} values: float32 data {data_mb:.0f} MB; made and written "
            f"in {time.perf_counter() - start:.0f} s ({disk / n:.0f} bytes per checkpoint on "
            f"disk)",
            flush=True,
        )
        maps, times = {}, {}
        for kind in variants:
            out = Path(root) / f"{kind}.npy"
            done = subprocess.run(
                [sys.executable, __file__, "--child", kind, str(path), str(out)],
                capture_output=True,
                text=True,
                cwd=HERE,
            )
            if done.returncode != 0:
                print(f"{kind}: failed: {done.stderr.strip().splitlines()[-1:]}", flush=True)
                continue
            r = json.loads(done.stdout.strip().splitlines()[-1])
            maps[kind], times[kind] = np.load(out), r["s"]
            print(
                f"{kind:9s}: {r['s']:7.1f} s (reading the cache {r['read']:.1f} s), peak "
                f"+{r['peak'] - r['base']:.0f} MB = {(r['peak'] - r['base']) / data_mb:.2f}x "
                f"the data",
                flush=True,
            )
        matrix = evaluate(path, progress=False).matrix
        if not check:
            print(f"RESULT n={n}: fspace {times.get('fspace', float('nan')):.0f} s")
            return
        print(f"fspace neighbours: recall {recall(matrix):.3f} of the exact 90", flush=True)
        q = quality(matrix, maps)
        print(
            "trustworthiness on a 5,000 subsample: "
            + ", ".join(f"{k} {v:.4f}" for k, v in q.items())
        )
        ratios = ", ".join(f"{k} {times[k] / times['fspace']:.1f}x" for k in times if k != "fspace")
        print(f"RESULT n={n}: fspace {times.get('fspace', float('nan')):.0f} s; others: {ratios}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, nargs="+", default=[20_000])
    parser.add_argument("--d", type=int, default=10_000)
    parser.add_argument("--variants", nargs="+", default=["fspace", "opentsne", "umap"])
    parser.add_argument(
        "--check",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="measure neighbour recall and trustworthiness (--no-check: times only)",
    )
    parser.add_argument("--child", nargs=3, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        print(json.dumps(child(args.child[0], Path(args.child[1]), Path(args.child[2]))))
        return 0
    for n in args.n:
        one_size(n, args.d, args.variants, args.check)
    return 0


if __name__ == "__main__":
    sys.exit(main())
