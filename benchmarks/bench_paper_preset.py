"""How long the pre-training experiment's ``paper`` preset takes on this machine.

    python benchmarks/bench_paper_preset.py            # the paper preset
    python benchmarks/bench_paper_preset.py --preset demo
    python benchmarks/bench_paper_preset.py --width 800  # the paper's network size

Times the pieces of a preset on one torch thread (drawing a distorted digit, one
fine-tuning update at every depth, one RBM update and one pass of a minibatch through a
trained layer) and multiplies them by how often the preset does each: fine-tuning of
every run and every learning-rate trial, a greedy stack per seed (and per pre-training
rate for the trials), and each seed's stream of distorted digits. Prints hours of one
core; ``--ray`` on N cores divides the runs' share by about N. Recording and evaluation
(a function vector per recorded interval) are small next to these and left out.
"""

from __future__ import annotations

import argparse
import os
import time


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--preset", default="paper")
    parser.add_argument("--width", type=int, help="hidden units (default: the preset's)")
    args = parser.parse_args(argv)
    import torch

    from fspace.experiments.digits import Stream, load_data, sgd_epoch
    from fspace.experiments.pretraining import PRESETS, PretrainingConfig
    from fspace.models.mlp import make_mlp
    from fspace.training.rbm import RBM

    torch.set_num_threads(1)
    width = {"width": args.width} if args.width else {}
    cfg = PretrainingConfig(**{**PRESETS[args.preset], **width})
    print(f"preset {args.preset}, width {cfg.width}, init {cfg.init}")
    print(f"load average {os.getloadavg()[0]:.2f} on {os.cpu_count()} cores")
    data = load_data(cfg)
    stream = Stream(data, cfg, seed=0)
    start = time.perf_counter()
    stream.items(0, 8192)
    item = (time.perf_counter() - start) / 8192
    x, y = stream.batches(0, 200, cfg.batch_size)
    update = {}
    for depth in cfg.depths:
        model = make_mlp(
            int(x.shape[1]), [cfg.width] * depth, data.n_classes, seed=0, init=cfg.init
        )
        start = time.perf_counter()
        sgd_epoch(model, x, y, 1.0, cfg.batch_size)
        update[depth] = (time.perf_counter() - start) / 200
        print(f"fine-tuning update, depth {depth}: {update[depth] * 1e3:.2f} ms")
    chunk = stream.items(0, 100 * cfg.pretrain_batch_size)[0]
    rbm = RBM(n_hidden=cfg.width, batch_size=cfg.pretrain_batch_size, random_state=0)
    start = time.perf_counter()
    rbm.partial_fit(chunk)
    rbm_update = (time.perf_counter() - start) / 100
    start = time.perf_counter()
    rbm.transform(chunk)
    through = (time.perf_counter() - start) / 100
    print(
        f"stream item {item * 1e6:.0f} us, RBM update {rbm_update * 1e3:.2f} ms, "
        f"one minibatch through a layer {through * 1e3:.2f} ms"
    )
    seeds, budget = len(cfg.seeds), cfg.finetune_updates
    n_lr, n_plr = len(cfg.lrs()), len(cfg.pretrain_lrs())
    stack = sum(cfg.pretrain_updates * (rbm_update + i * through) for i in range(max(cfg.depths)))
    hours = {
        "runs": sum(2 * seeds * budget * update[d] for d in cfg.depths),
        "trials": sum((n_lr + n_lr * n_plr) * cfg.trial_updates * update[d] for d in cfg.depths),
        "pre-training": (seeds + n_plr) * stack,
        "distorted digits": (seeds + 1)
        * max(budget * cfg.batch_size, cfg.pretrain_updates * cfg.pretrain_batch_size)
        * item,
    }
    hours["total"] = sum(hours.values())
    for name, seconds in hours.items():
        print(f"{name:>16}: {seconds / 3600:6.2f} h of one core")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
