"""Many checkpoints: evaluate from the cache and embed, against openTSNE and umap-learn.

    python benchmarks/bench_scale.py --n 100000            # the target: 100,000 x 10,000
    python benchmarks/bench_scale.py --n 5000 20000        # smaller sizes
    python benchmarks/bench_scale.py --n 100000 --variants fspace --keep DIR
    python benchmarks/bench_scale.py --n 100000 --variants opentsne umap --keep DIR
    python benchmarks/bench_scale.py --n 100000 --variants --keep DIR --reference exact-full

For each size, the benchmark makes ``n`` synthetic function vectors of ``d`` values
(100-checkpoint runs in 4 groups, each run moving from its own random start towards its
group's function with a random walk on the way: softmax outputs on ``d / 10`` probes)
and writes them as an experiment's cached function vectors, float16 (the default), one
checkpoint file and one vector file per checkpoint, as the Recorder writes them. Then,
each in a fresh process, one after the other, timed from its first read of the
experiment:

- fspace: ``evaluate(path, dtype="stored", memmap=True)`` (every cached vector read on a
  few threads straight into its row of one float16 matrix, memory-mapped on an unlinked
  temporary file) and ``embed(vectors, "tsne")`` with its defaults (above 20,000 points:
  randomised PCA over row blocks, neighbours among 100 components from an inverted file
  (``--pca-candidates N``: N candidates there, re-ranked by exact distance over all
  values), openTSNE's FFT-interpolated gradient, 2 threads);
- openTSNE: ``openTSNE.TSNE(n_jobs=2)`` with its other defaults (Annoy neighbours, PCA
  initialisation, FFT gradient), on the same values read into a float32 memory-mapped
  matrix (the dtype openTSNE and umap-learn work in);
- umap-learn: ``umap.UMAP()`` with its defaults (pynndescent neighbours, all cores), on
  that float32 matrix.

A variant still running after ``--cap`` seconds (default 45 minutes; fspace
``--fspace-cap``), or holding more than ``--mem-cap`` GB resident (default 14, what a
24 GB machine shared with other work can safely give one process), is stopped and
reported as such, with the wall and CPU time it had used; its ratio to fspace is then
a lower bound (``>=``). Nothing is extrapolated. ``--keep DIR`` keeps the experiment,
the maps and each variant's numbers under DIR and reuses them: variants run at another
time on the same data then join the comparison (marked as an earlier run).

Printed: wall time and CPU time (user + system, all threads; the fairer comparison on a
shared machine) and the ratios of each competitor's to fspace's; peak resident memory
(``VmHWM``, the memory-mapped pages it touched included) above the process after its
imports, over the data, which is the stored vectors' values: ``n * d * 2`` bytes of
float16 (file headers and checksums not counted); the recall of fspace's 90 neighbours
(the ones perplexity 30 uses) against exact Euclidean ones for 500 points;
trustworthiness (k=10, scikit-learn) of each map restricted to a 5,000-point random
subsample, next to openTSNE with exact neighbours fitted to that subsample alone.
``--reference exact-full`` (with or without ``subsample``) adds the reference the target
names: the exact 90 neighbours of all ``n`` points in the full space (blocked float32
matrix products of the float16 rows, ``_exact_knn.py``; kept in ``--keep``'s directory),
openTSNE's defaults on them, and that map's trustworthiness on the same subsample; and
the recall of fspace's neighbours over all ``n`` points.

Children run with ``OMP_WAIT_POLICY=PASSIVE``: on a machine whose cores other processes
keep busy, OpenMP threads that spin at every barrier make many small operations 4 to 6
times slower.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np

HERE = Path(__file__).parent
PER_RUN = 100
SUBSAMPLE = 5000
QUERIES = 500
K = 90


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


def build(path: Path, n: int, d: int, threads: int = 4) -> None:
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

    def one_run(r: int) -> None:
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

    with ThreadPoolExecutor(threads) as pool:  # the writes' fsyncs overlap
        list(pool.map(one_run, range(max(1, n // PER_RUN))))


def rss_mb(field: str = "VmRSS", pid: str = "self") -> float:
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1]) / 1024
    raise RuntimeError(f"no {field} in /proc/{pid}/status")


class Sampler(threading.Thread):
    """Resident memory sampled every 0.1 s: the peak of each step shows which one peaks."""

    def __init__(self) -> None:
        super().__init__(daemon=True)
        self.peak, self.stop = 0.0, False

    def run(self) -> None:
        while not self.stop:
            self.peak = max(self.peak, rss_mb())
            time.sleep(0.1)

    def step(self) -> float:
        """The peak since the last call."""
        peak, self.peak = max(self.peak, rss_mb()), 0.0
        return peak


def child(kind: str, path: Path, out: Path, candidates: int = 0) -> dict:
    """One variant in this fresh process: its map saved to ``out``, its numbers returned."""
    import importlib

    for name in ("openTSNE", "fspace.embedding.neighbors", "fspace.embedding.ivf", "numba"):
        importlib.import_module(name)
    if kind == "umap":
        importlib.import_module("umap")
    from fspace import embed, evaluate

    base = rss_mb()
    sampler = Sampler()
    sampler.start()
    start, cpu = time.perf_counter(), time.process_time()
    # fspace keeps the stored float16; the competitors get the float32 they expect.
    dtype = "stored" if kind == "fspace" else "float32"
    vectors = evaluate(path, progress=False, dtype=dtype, memmap=out.parent)
    read, read_peak = time.perf_counter() - start, sampler.step()
    if kind == "fspace":
        emb = embed(vectors, "tsne", random_state=0, pca_candidates=candidates)
        coords = emb.coords
        pick = np.random.default_rng(0).choice(len(vectors), QUERIES, replace=False)
        found = emb._state.affinities.knn_index.found.indices
        np.save(out.with_suffix(".knn.npy"), np.stack([pick, *found[pick].T], 1))
        np.save(out.with_suffix(".knn-all.npy"), np.asarray(found, dtype=np.int32))
    elif kind == "opentsne":
        from openTSNE import TSNE

        coords = np.asarray(TSNE(n_jobs=2, random_state=0).fit(vectors.matrix))
    else:
        import umap

        coords = umap.UMAP().fit_transform(vectors.matrix)
    took, cpu = time.perf_counter() - start, time.process_time() - cpu
    np.save(out, np.asarray(coords, dtype=np.float64))
    return {
        "cpu": cpu,
        "base": base,
        "peak": rss_mb("VmHWM"),
        "read_peak": read_peak,
        "embed_peak": sampler.step(),
        "s": took,
        "read": read,
        "dtype": str(vectors.matrix.dtype),
        "memmap": isinstance(vectors.matrix, np.memmap),
    }


def cpu_s(pid: int) -> float:
    """User plus system CPU seconds of process ``pid`` (all its threads) so far."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def run_child(
    kind: str, path: Path, out: Path, cap: float, mem_cap_gb: float, candidates: int = 0
) -> dict:
    """Run one variant; its numbers, or (``stopped`` / ``failed``) why it did not finish,
    with the wall and CPU seconds it had used by then."""
    env = {**os.environ, "OMP_WAIT_POLICY": "PASSIVE"}
    cmd = [sys.executable, __file__, "--child", kind, str(path), str(out)]
    cmd += ["--pca-candidates", str(candidates)]
    log = out.with_suffix(".log")
    with open(log, "w") as err:
        proc = subprocess.Popen(
            cmd, stdout=subprocess.PIPE, stderr=err, text=True, cwd=HERE, env=env
        )
        start, held, cpu = time.perf_counter(), 0.0, 0.0
        while proc.poll() is None:
            time.sleep(0.5)
            took = time.perf_counter() - start
            with contextlib.suppress(OSError, RuntimeError, IndexError):  # it may have ended
                held = max(held, rss_mb("VmRSS", str(proc.pid)) / 1024)
                cpu = cpu_s(proc.pid)
            if took > cap or held > mem_cap_gb:
                proc.kill()
                proc.wait()
                why = "--cap" if took > cap else f"{mem_cap_gb:g} GB resident, --mem-cap"
                return {
                    "stopped": f"stopped at {why}; {held:.1f} GB resident",
                    "s": took,
                    "cpu": cpu,
                }
    took = time.perf_counter() - start
    if proc.returncode != 0:
        last = log.read_text().strip().splitlines()[-1:]
        return {"failed": f"exit {proc.returncode}: {last}", "s": took, "cpu": cpu}
    return json.loads(proc.stdout.read().strip().splitlines()[-1])


def recall(matrix: np.ndarray, found: np.ndarray) -> float:
    """Fraction of the exact ``K`` nearest neighbours of the query rows (``found[:, 0]``)
    among fspace's (``found[:, 1:]``); distances in float32 from the stored values."""
    import torch

    from fspace.embedding.neighbors import row_blocks

    pick = found[:, 0]
    x = torch.from_numpy(np.asarray(matrix[pick], dtype=np.float32))
    d = torch.empty(len(pick), matrix.shape[0])
    for rows, block in row_blocks(matrix):
        d[:, rows] = torch.cdist(x, block)
    d[torch.arange(len(pick)), torch.from_numpy(pick)] = float("inf")
    exact = d.topk(K, largest=False).indices.numpy()
    return float(
        np.mean([len(set(e) & set(f)) / K for e, f in zip(exact, found[:, 1:], strict=True)])
    )


def quality(
    matrix: np.ndarray, maps: dict[str, np.ndarray], subsample: bool = True
) -> dict[str, float]:
    """Trustworthiness of each map restricted to a random subsample, and (``subsample``)
    of openTSNE with exact neighbours fitted to that subsample alone."""
    from bench_tsne import distances, trust
    from openTSNE import TSNE

    n = matrix.shape[0]
    pick = np.sort(np.random.default_rng(1).choice(n, size=min(SUBSAMPLE, n), replace=False))
    sub = np.asarray(matrix[pick], dtype=np.float32)
    dist = distances(sub)
    out = {name: trust(dist, coords[pick]) for name, coords in maps.items()}
    if subsample:
        exact = TSNE(neighbors="exact", n_jobs=2, random_state=0).fit(sub)
        out["opentsne-exact-subsample"] = trust(dist, np.asarray(exact))
    return out


def exact_full(root: Path, matrix: np.ndarray) -> np.ndarray:
    """openTSNE's defaults on the exact neighbours of all points (computed once, kept in
    ``root``): its map, kept in ``root`` too; prints the neighbours' and the map's times
    and fspace's recall of the exact neighbours over all points."""
    import torch
    from _exact_knn import cached_exact_knn, opentsne_from_knn, recall_all

    from fspace.embedding.neighbors import principal_coordinates

    n = matrix.shape[0]
    torch.set_num_threads(2)
    start = time.perf_counter()
    indices, distances, cpu = cached_exact_knn(matrix, K, root)
    took = (
        f"{time.perf_counter() - start:.0f} s wall, {cpu:.0f} s CPU" if cpu is not None else "kept"
    )
    print(
        f"exact neighbours of all {n:,} points ({K} each, all {matrix.shape[1]:,} values): {took}",
        flush=True,
    )
    found = root / "fspace.knn-all.npy"
    if found.exists():
        print(
            f"fspace neighbours: recall {recall_all(indices, np.load(found)):.3f} of the exact "
            f"{K}, all {n:,} points",
            flush=True,
        )
    saved = root / "opentsne-exact-full.npy"
    if saved.exists():
        print(f"opentsne-exact-full: the map kept in {saved}", flush=True)
        return np.load(saved)
    start, cpu0 = time.perf_counter(), time.process_time()
    # openTSNE's PCA initialisation (2 components, 7 power iterations as scikit-learn's
    # randomised PCA), from the float16 rows without a float32 copy of the matrix.
    init = principal_coordinates(matrix, 2, random_state=0, power_iterations=7).coords
    pca = time.perf_counter() - start
    coords = opentsne_from_knn(indices, distances, init.double().numpy(), random_state=0)
    print(
        f"opentsne-exact-full: {time.perf_counter() - start:.1f} s wall, "
        f"{time.process_time() - cpu0:.1f} s CPU (initial PCA {pca:.1f} s)",
        flush=True,
    )
    np.save(saved, coords)
    return coords


def report(kind: str, r: dict, data_mb: float) -> None:
    if "stopped" in r or "failed" in r:
        what = "did not finish" if "stopped" in r else "failed"
        print(
            f"{kind:9s}: {what} in {r['s']:.0f} s wall, {r['cpu']:.0f} s CPU "
            f"({r.get('stopped') or r.get('failed')})",
            flush=True,
        )
        return
    over = lambda mb: (mb - r["base"]) / data_mb  # noqa: E731
    print(
        f"{kind:9s}: {r['s']:7.1f} s wall, {r['cpu']:7.1f} s CPU (reading the cache "
        f"{r['read']:.1f} s into a {r['dtype']} "
        f"{'memory-mapped' if r['memmap'] else 'in-memory'} matrix), peak "
        f"+{r['peak'] - r['base']:.0f} MB = {over(r['peak']):.2f}x the data (reading "
        f"{over(r['read_peak']):.2f}x, embedding {over(r['embed_peak']):.2f}x)",
        flush=True,
    )


def ratios(results: dict[str, dict], earlier: set[str]) -> None:
    """Each competitor's wall and CPU time over fspace's; ``>=`` for one stopped by a cap."""
    ours = results.get("fspace")
    if ours is None or "s" not in ours or "stopped" in ours or "failed" in ours:
        return
    for kind, r in results.items():
        if kind == "fspace":
            continue
        note = " (an earlier run, kept by --keep)" if earlier & {kind, "fspace"} else ""
        if "failed" in r:
            print(f"RESULT {kind}/fspace: none ({r['failed']}){note}", flush=True)
            continue
        bound = ">= " if "stopped" in r else ""
        print(
            f"RESULT {kind}/fspace: wall {bound}{r['s'] / ours['s']:.1f}x "
            f"({r['s']:.0f} s / {ours['s']:.0f} s), CPU {bound}{r['cpu'] / ours['cpu']:.1f}x "
            f"({r['cpu']:.0f} s / {ours['cpu']:.0f} s)"
            + (f"; {kind} {r['stopped']}" if bound else "")
            + note,
            flush=True,
        )


def prepare(root: Path, n: int, d: int) -> None:
    """The experiment under ``root / "exp"``, made unless a complete one is there."""
    path, done = root / "exp", root / "complete.json"
    if done.exists() and json.loads(done.read_text()) == {"n": n, "d": d}:
        print(f"\n{n} checkpoints x {d} values: reusing {path}", flush=True)
        return
    if path.exists():
        import shutil

        shutil.rmtree(path)  # an interrupted build
    start = time.perf_counter()
    build(path, n, d)
    done.write_text(json.dumps({"n": n, "d": d}))
    disk = sum(p.stat().st_size for p in path.glob("runs/*/vectors/*/*.safetensors"))
    print(
        f"\n{n} checkpoints x {d} values: data {n * d * 2 / 2**20:.0f} MB (float16 values); "
        f"made and written in {time.perf_counter() - start:.0f} s ({disk / n:.0f} bytes per "
        f"checkpoint on disk)",
        flush=True,
    )


def one_size(n: int, d: int, args: argparse.Namespace) -> None:
    if args.keep:
        root = Path(args.keep) / f"n{n}-d{d}"
        root.mkdir(parents=True, exist_ok=True)
        measure(root, n, d, args)
        return
    with tempfile.TemporaryDirectory(prefix="fspace-bench-scale-", dir=args.dir) as tmp:
        measure(Path(tmp), n, d, args)


def measure(root: Path, n: int, d: int, args: argparse.Namespace) -> None:
    """Every variant on the experiment under ``root``; with ``--keep``, the results and
    maps of variants run earlier on it join the comparison."""
    data_mb = n * d * 2 / 2**20
    prepare(root, n, d)
    saved = root / "results.json"
    results = json.loads(saved.read_text()) if args.keep and saved.exists() else {}
    earlier = set(results) - set(args.variants)
    for kind in args.variants:
        out = root / f"{kind}.npy"
        out.unlink(missing_ok=True)
        cap = args.fspace_cap if kind == "fspace" else args.cap
        results[kind] = run_child(kind, root / "exp", out, cap, args.mem_cap, args.pca_candidates)
        report(kind, results[kind], data_mb)
        if args.keep:
            saved.write_text(json.dumps(results, indent=1))
    for kind in sorted(earlier):
        print(f"earlier run, kept in {saved}:")
        report(kind, results[kind], data_mb)
    ours = results.get("fspace")
    if ours is not None and "peak" in ours:
        status = "met" if ours["s"] <= 300 else "missed"
        peak = (ours["peak"] - ours["base"]) / data_mb
        print(
            f"RESULT n={n}: fspace {ours['s']:.0f} s (target <= 300 s: {status}); peak "
            f"{peak:.2f}x the data (target <= 1.5x: {'met' if peak <= 1.5 else 'missed'})",
            flush=True,
        )
    ratios(results, earlier)
    maps = {k: np.load(root / f"{k}.npy") for k in results if (root / f"{k}.npy").exists()}
    if args.check and "fspace" in maps:
        check(root, n, maps, args.reference)


def check(root: Path, n: int, maps: dict[str, np.ndarray], references: list[str]) -> None:
    """Print fspace's neighbour recall and the maps' trustworthiness on a subsample, next
    to each reference's: openTSNE exact on the subsample alone, on all points."""
    from fspace import evaluate

    matrix = evaluate(root / "exp", progress=False, dtype="stored", memmap=root).matrix
    found = np.load(root / "fspace.knn.npy")
    print(f"fspace neighbours: recall {recall(matrix, found):.3f} of the exact {K}", flush=True)
    if "exact-full" in references:
        maps = {**maps, "opentsne-exact-full": exact_full(root, matrix)}
    q = quality(matrix, maps, subsample="subsample" in references)
    print(
        f"trustworthiness (k=10) on a {min(SUBSAMPLE, n):,} subsample: "
        + ", ".join(f"{k} {v:.4f}" for k, v in q.items())
    )
    for ref in references:
        name = "opentsne-exact-" + ("full" if ref == "exact-full" else ref)
        diff = q["fspace"] - q[name]
        what = "the subsample alone" if ref == "subsample" else f"all {n:,} points"
        print(
            f"RESULT trustworthiness: fspace {q['fspace']:.4f} vs openTSNE exact on {what} "
            f"{q[name]:.4f}, difference {diff:+.4f} (target within 0.01: "
            f"{'met' if abs(diff) <= 0.01 or diff > 0 else 'missed'})",
            flush=True,
        )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, nargs="+", default=[20_000])
    parser.add_argument("--d", type=int, default=10_000)
    parser.add_argument(
        "--variants",
        nargs="*",
        default=["fspace", "opentsne", "umap"],
        help="variants to run (none, with --keep: report the kept results again)",
    )
    parser.add_argument("--cap", type=float, default=2700, help="seconds a competitor may run")
    parser.add_argument("--fspace-cap", type=float, default=3600, help="seconds fspace may run")
    parser.add_argument("--mem-cap", type=float, default=14.0, help="GB a variant may hold")
    parser.add_argument("--dir", default=None, help="where to write the experiment")
    parser.add_argument(
        "--keep",
        default=None,
        help="keep the experiment, maps and results in this directory and reuse them: "
        "variants run earlier on the same size join the comparison",
    )
    parser.add_argument(
        "--check",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="measure neighbour recall and trustworthiness (--no-check: times only)",
    )
    parser.add_argument(
        "--pca-candidates",
        type=int,
        default=0,
        help="fspace: candidates among the components re-ranked by exact distance (0: none)",
    )
    parser.add_argument(
        "--reference",
        nargs="+",
        choices=["subsample", "exact-full"],
        default=["subsample"],
        help="trustworthiness references: openTSNE with exact neighbours fitted to the "
        "subsample alone, or fitted to all points (exact neighbours of all n points, by "
        "blocked matrix products: 5 * 10^13 multiply-adds at 100,000 x 10,000; kept in "
        "--keep's directory)",
    )
    parser.add_argument("--child", nargs=3, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        kind, path, out = args.child
        print(json.dumps(child(kind, Path(path), Path(out), args.pca_candidates)))
        return 0
    print(f"load average {os.getloadavg()[0]:.1f}; cores {os.cpu_count()}", flush=True)
    for n in args.n:
        one_size(n, args.d, args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
