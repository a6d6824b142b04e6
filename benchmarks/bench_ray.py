"""Pre-training runs per minute on a local Ray instance with 1 and 2 workers.

    python benchmarks/bench_ray.py                  # seeds 0,1; depths 1,2 (8 runs)
    python benchmarks/bench_ray.py --seeds 3 --finetune-epochs 10 --rounds 1

A small pre-training configuration (8x8 digits, 256 hidden units per layer) is recorded
into fresh experiments: by the ordinary sequential runner (torch on all cores, then on
one thread), and, in alternating rounds, by ``record_pretraining_on_ray`` on a local
Ray instance started with 1, then 2 CPUs (one task per CPU, torch on one thread each).
Ray's start-up is timed apart from the runs. On a real cluster the same call spreads
the tasks over every node; see the README for ``--ray ADDRESS``.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

from fspace.experiments.pretraining import PretrainingConfig, run_pretraining
from fspace.experiments.pretraining.distributed import pretraining_units, record_pretraining_on_ray


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=2)
    parser.add_argument("--finetune-epochs", type=int, default=30)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args(argv)
    import ray
    import torch

    cfg = PretrainingConfig(
        dataset="digits",
        seeds=tuple(range(args.seeds)),
        depths=(1, 2),
        width=256,
        n_probe=300,
        n_valid=0,
        lr_grid=None,
        pretrain_updates=100,
        finetune_updates=args.finetune_epochs * 50,
        finetune_epochs=args.finetune_epochs,
        distort=False,
    )
    n_runs = len(list(cfg.plan()))
    print(f"{n_runs} runs in {len(pretraining_units(cfg))} independent tasks")
    with tempfile.TemporaryDirectory(prefix="fspace-bench-ray-") as root:
        for threads in (torch.get_num_threads(), 1):
            torch.set_num_threads(threads)
            start = time.perf_counter()
            run_pretraining(Path(root) / f"local{threads}", cfg, progress=False)
            took = time.perf_counter() - start
            print(
                f"sequential runner, torch on {threads} thread(s): {took:6.1f} s, "
                f"{60 * n_runs / took:5.1f} runs/min"
            )
        rates: dict[int, list[float]] = {1: [], 2: []}
        for r in range(args.rounds):
            for workers in (1, 2):
                start = time.perf_counter()
                ray.init(num_cpus=workers, include_dashboard=False, log_to_driver=False)
                up = time.perf_counter() - start
                start = time.perf_counter()
                counts = record_pretraining_on_ray(
                    Path(root) / f"ray{workers}-{r}", cfg, progress=False
                )
                took = time.perf_counter() - start
                ray.shutdown()
                assert counts["recorded"] == n_runs, counts
                rates[workers].append(60 * n_runs / took)
                print(
                    f"round {r + 1}, Ray with {workers} worker(s): {took:6.1f} s, "
                    f"{rates[workers][-1]:5.1f} runs/min (Ray start-up {up:.1f} s, not included)"
                )
    one, two = statistics.median(rates[1]), statistics.median(rates[2])
    print(f"RESULT runs/min (median): 1 worker {one:.1f}, 2 workers {two:.1f} ({two / one:.2f}x)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
