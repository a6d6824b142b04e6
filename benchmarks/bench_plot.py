"""How long the trajectory figure takes to build for many runs.

    python benchmarks/bench_plot.py                  # 1,000 runs x 20 epochs
    python benchmarks/bench_plot.py --runs 5000 --epochs 20 --rounds 5

The frame is made of random-walk paths (two groups); printed: median and max build
time of :func:`fspace.plot.trajectory_figure`, points per second, and the number of
traces (few traces keep the browser fast).
"""

from __future__ import annotations

import argparse
import statistics
import time

import numpy as np
import pandas as pd

from fspace.plot import trajectory_figure


def make_frame(runs_per_group: int, epochs: int, seed: int = 0) -> pd.DataFrame:
    """Random-walk paths for two groups, rows shuffled."""
    gen = np.random.default_rng(seed)
    steps = gen.normal(size=(2, runs_per_group, epochs, 2)).cumsum(axis=2)
    group, run, epoch = np.meshgrid(
        np.arange(2), np.arange(runs_per_group), np.arange(epochs), indexing="ij"
    )
    names = np.array(["pretrained", "random"])[group.ravel()]
    frame = pd.DataFrame(
        {
            "run": [f"{g}-s{r}" for g, r in zip(names, run.ravel(), strict=True)],
            "group": names,
            "seed": run.ravel(),
            "epoch": epoch.ravel(),
            "step": 100 * epoch.ravel(),
            "x": steps[..., 0].ravel(),
            "y": steps[..., 1].ravel(),
        }
    )
    frame["checkpoint"] = frame["run"] + "/epoch-" + frame["epoch"].astype(str)
    return frame.sample(frac=1.0, random_state=seed).reset_index(drop=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=1000, help="runs in all (two groups)")
    parser.add_argument("--epochs", type=int, default=20)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    frame = make_frame(args.runs // 2, args.epochs)
    times = []
    for _ in range(args.rounds):
        start = time.perf_counter()
        fig = trajectory_figure(frame, highlight_run="random-s7")
        times.append(time.perf_counter() - start)
    median = statistics.median(times)
    print(f"points: {len(frame)}  runs: {frame['run'].nunique()}  traces: {len(fig.data)}")
    print(f"trajectory_figure: median {median:.3f} s, max {max(times):.3f} s")
    print(f"rate: {len(frame) / median:,.0f} points/s")


if __name__ == "__main__":
    main()
