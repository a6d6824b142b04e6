"""``fspace experiment pretraining``: record the pre-training experiment."""

from __future__ import annotations

import argparse

from fspace.cli._args import add_data_options, int_list, positive_float, positive_int
from fspace.cli.evaluate import add_ray_option


def register(sub) -> None:
    p = sub.add_parser(
        "experiment",
        help="run a ready-made experiment (pretraining, generative)",
        description="Run a ready-made experiment, recording every run into an experiment "
        "directory. A rerun skips completed runs and finishes interrupted ones.",
    )
    kinds = p.add_subparsers(dest="kind", metavar="KIND", required=True)
    pre = kinds.add_parser(
        "pretraining",
        help="unsupervised pre-training + fine-tuning vs random initialisation",
        description="For every depth and seed, fine-tune one MLP initialised from a greedily "
        "pre-trained stack (RBMs or denoising autoencoders) and one from small random "
        "weights, with the same minibatches, recording every epoch in function space.",
    )
    add_pretraining_options(pre)
    pre.add_argument("-q", "--quiet", action="store_true", help="no progress bars")
    add_ray_option(pre, "train the runs as tasks on a Ray cluster")
    pre.set_defaults(func=run)
    from fspace.cli import generative

    gen = kinds.add_parser(
        "generative",
        help="backprop vs wake-sleep fine-tuning, rectified and convolutional nets",
        description="Record the training regimes of the generative experiment (random init, "
        "pre-training + backprop, pre-training + contrastive wake-sleep, rectified units, a "
        "convolutional net) into one experiment, so they share one function-space map.",
    )
    generative.add_generative_options(gen)
    gen.set_defaults(func=generative.run)


def add_pretraining_options(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "-o",
        "--out",
        default="checkpoints/pretraining",
        metavar="EXP",
        help="experiment directory (default: checkpoints/pretraining)",
    )
    p.add_argument("--seeds", type=positive_int, default=3, metavar="N", help="seeds 0..N-1")
    p.add_argument("--depths", type=int_list, default=(1, 2, 3), help="e.g. 1,2,3,4")
    p.add_argument("--method", choices=("rbm", "dae"), default="rbm", help="default: rbm")
    p.add_argument("--width", type=positive_int, default=500, help="hidden units per layer")
    add_data_options(p)
    p.add_argument("--pretrain-epochs", type=int, default=10, help="per layer (default: 10)")
    p.add_argument("--finetune-epochs", type=positive_int, default=20, help="default: 20")
    p.add_argument("--lr", type=positive_float, default=0.3, help="fine-tuning SGD step")
    p.add_argument("--pretrain-lr", type=positive_float, default=0.05)
    p.add_argument("--pretrain-batch-size", type=positive_int, default=50)
    p.add_argument("--batch-size", type=positive_int, default=32)
    p.add_argument("--no-distort", action="store_true", help="train on the plain digits")


def config_from_args(args: argparse.Namespace, **overrides):
    from fspace.experiments.pretraining import PretrainingConfig

    values = dict(
        dataset=args.dataset,
        seeds=tuple(range(args.seeds)),
        depths=tuple(args.depths),
        method=args.method,
        width=args.width,
        n_probe=args.n_probe,
        n_train=args.n_train,
        pretrain_epochs=args.pretrain_epochs,
        pretrain_lr=args.pretrain_lr,
        pretrain_batch_size=args.pretrain_batch_size,
        finetune_epochs=args.finetune_epochs,
        lr=args.lr,
        batch_size=args.batch_size,
        distort=not args.no_distort,
    )
    values.update(overrides)
    return PretrainingConfig(**values)


def run(args: argparse.Namespace) -> int:
    import time

    from fspace.experiments.pretraining import run_pretraining

    cfg = config_from_args(args)
    start = time.perf_counter()
    if args.ray is not None:
        from fspace.distributed import record_pretraining_on_ray

        counts = record_pretraining_on_ray(args.out, cfg, address=args.ray, progress=not args.quiet)
    else:
        counts = run_pretraining(args.out, cfg, progress=not args.quiet)
    took = time.perf_counter() - start
    print(
        f"{args.out}: {counts['recorded']} runs recorded, {counts['resumed']} resumed, "
        f"{counts['skipped']} already complete ({took:.0f} s)"
    )
    return 0
