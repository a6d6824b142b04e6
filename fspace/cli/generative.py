"""``fspace experiment generative``: record the generative-versus-discriminative regimes.

:func:`add_generative_options` fills a parser with the options of
:class:`~fspace.experiments.generative.GenerativeConfig`; :func:`run` records the
experiment and, with ``--figures DIR``, writes its figures and numbers.
"""

from __future__ import annotations

import argparse

from fspace.cli._args import add_data_options, int_list, positive_float, positive_int


def _regimes(text: str) -> tuple[str, ...]:
    from fspace.experiments.generative import REGIMES

    values = tuple(t.strip() for t in text.split(",") if t.strip())
    unknown = [v for v in values if v not in REGIMES]
    if unknown or not values:
        raise argparse.ArgumentTypeError(
            f"unknown regime(s) {', '.join(unknown) or '(none given)'}; choose from "
            f"{', '.join(REGIMES)}"
        )
    return values


def add_generative_options(p: argparse.ArgumentParser) -> None:
    """Add the options of ``fspace experiment generative`` to ``p``."""
    p.add_argument(
        "-o",
        "--out",
        default="checkpoints/generative",
        metavar="EXP",
        help="experiment directory (default: checkpoints/generative)",
    )
    p.add_argument("--seeds", type=positive_int, default=3, metavar="N", help="seeds 0..N-1")
    p.add_argument(
        "--regimes",
        type=_regimes,
        metavar="R1,R2",
        help="which regimes (default: all): random+backprop, pretrained+backprop, "
        "pretrained+wake-sleep, wake-sleep+backprop, relu-random+backprop, "
        "relu-pretrained+backprop, conv-random+backprop",
    )
    p.add_argument(
        "--hidden", type=int_list, default=(500, 500), help="layers below the top, e.g. 500,500"
    )
    p.add_argument("--n-top", type=positive_int, default=2000, help="top layer (default: 2000)")
    add_data_options(p)
    p.add_argument("--epochs", type=positive_int, default=10, help="fine-tuning epochs")
    p.add_argument("--pretrain-epochs", type=int, default=10, help="per layer (default: 10)")
    p.add_argument("--batch-size", type=positive_int, default=32, help="backprop minibatch")
    p.add_argument("--lr", type=positive_float, default=0.3, help="SGD step, logistic MLPs")
    p.add_argument("--relu-lr", type=positive_float, default=0.05, help="SGD step, ReLU MLPs")
    p.add_argument("--conv-lr", type=positive_float, default=0.05, help="SGD step, convnet")
    p.add_argument("--dbn-lr", type=positive_float, default=0.2, help="SGD step, joint model")
    p.add_argument("--conv-channels", type=int_list, default=(16, 32), help="e.g. 16,32")
    p.add_argument("--wake-sleep-lr", type=positive_float, default=0.01)
    p.add_argument("--wake-sleep-cd-k", type=positive_int, default=3, help="Gibbs steps at the top")
    p.add_argument("--distort", action="store_true", help="train on distorted digits")
    p.add_argument(
        "--figures", metavar="DIR", help="afterwards, write the figures (PNG, HTML) into DIR"
    )
    p.add_argument("-q", "--quiet", action="store_true", help="no progress bars")


def config_from_args(args: argparse.Namespace, **overrides):
    """The :class:`GenerativeConfig` that the parsed options describe."""
    from fspace.experiments.generative import REGIMES, GenerativeConfig

    values = dict(
        dataset=args.dataset,
        seeds=tuple(range(args.seeds)),
        regimes=tuple(args.regimes or REGIMES),
        hidden=tuple(args.hidden),
        n_top=args.n_top,
        n_probe=args.n_probe,
        n_train=args.n_train,
        distort=args.distort,
        epochs=args.epochs,
        pretrain_epochs=args.pretrain_epochs,
        batch_size=args.batch_size,
        lr=args.lr,
        relu_lr=args.relu_lr,
        conv_lr=args.conv_lr,
        dbn_lr=args.dbn_lr,
        conv_channels=tuple(args.conv_channels),
        wake_sleep_lr=args.wake_sleep_lr,
        wake_sleep_cd_k=args.wake_sleep_cd_k,
    )
    values.update(overrides)
    return GenerativeConfig(**values)


def run(args: argparse.Namespace) -> int:
    """Record the experiment the options describe; print what was done."""
    import time

    import torch

    from fspace.experiments.generative import run_generative

    cfg = config_from_args(args)
    start = time.perf_counter()
    # The models are small: one thread per process avoids oversubscribing shared cores.
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        counts = run_generative(args.out, cfg, progress=not args.quiet)
    finally:
        torch.set_num_threads(threads)
    print(
        f"{args.out}: {counts['recorded']} runs recorded, {counts['resumed']} resumed, "
        f"{counts['skipped']} already complete ({time.perf_counter() - start:.0f} s)"
    )
    if args.figures:
        from fspace.analysis.generative import format_generative_summary, write_generative_report

        numbers, written = write_generative_report(args.out, args.figures, progress=not args.quiet)
        print(format_generative_summary(numbers))
        print(f"wrote {len(written)} files into {args.figures}")
    return 0
