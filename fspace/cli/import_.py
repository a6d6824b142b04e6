"""``fspace import SRC EXP --run R``: bring existing checkpoints into an experiment."""

from __future__ import annotations

import argparse
import json


def register(sub) -> None:
    p = sub.add_parser(
        "import",
        help="bring existing checkpoints (.pt, .ckpt, safetensors, Trainer output) in",
        description="Import checkpoints saved by another training loop into one run of an "
        "experiment, without re-training: PyTorch state dicts (.pt, .pth, .bin, read with "
        "torch.load(weights_only=True)), Lightning .ckpt files, a Hugging Face Trainer "
        "output directory (its checkpoint-N folders) and .safetensors files. Epoch and step "
        "come from what the file stores, else from its name (epoch=3-step=120, e3, 10); "
        "--pattern overrides both. Checkpoints the run already holds are skipped, so "
        "importing again is safe. A file holding pickled Python objects is refused.",
    )
    p.add_argument("source", metavar="SRC", help="a checkpoint file or a folder of them")
    p.add_argument("experiment", metavar="EXP", help="experiment directory (created if needed)")
    p.add_argument("--run", required=True, help="run id to import into")
    p.add_argument("--group", default="default", help="the run's group (default: default)")
    p.add_argument("--seed", type=int, help="the run's seed, kept as a label")
    p.add_argument(
        "--model-factory",
        metavar="MODULE:FUNCTION",
        help="rebuilds the architecture, so that `fspace evaluate` can compute function "
        "vectors from the imported weights",
    )
    p.add_argument(
        "--model-kwargs",
        type=_json_object,
        metavar="JSON",
        help="keyword arguments for the model factory, as a JSON object",
    )
    p.add_argument(
        "--pattern",
        metavar="REGEX",
        help="read epoch and step from file names with named groups, e.g. "
        "'ep(?P<epoch>\\d+)_it(?P<step>\\d+)'; files it does not match are left out",
    )
    p.add_argument(
        "--strip-prefix",
        metavar="PREFIX",
        help="remove PREFIX from weight names (e.g. 'model.' for a LightningModule that "
        "wraps the network as self.model)",
    )
    p.add_argument("-q", "--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=run)


def _json_object(text: str) -> dict:
    try:
        value = json.loads(text)
    except ValueError as e:
        raise argparse.ArgumentTypeError(f"{text!r} is not JSON ({e})") from None
    if not isinstance(value, dict):
        raise argparse.ArgumentTypeError("give a JSON object like '{\"width\": 64}'")
    return value


def run(args: argparse.Namespace) -> int:
    from fspace.importing import import_checkpoints

    result = import_checkpoints(
        args.source,
        args.experiment,
        run=args.run,
        group=args.group,
        seed=args.seed,
        model_factory=args.model_factory,
        model_kwargs=args.model_kwargs,
        pattern=args.pattern,
        strip_prefix=args.strip_prefix,
        progress=not args.quiet,
    )
    print(
        f"imported {len(result.imported)} checkpoints into run {result.run!r} of "
        f"{result.experiment}; {len(result.skipped)} already there, skipped"
    )
    if result.left_out:
        names = ", ".join(p.name for p in result.left_out[:5])
        more = f" and {len(result.left_out) - 5} more" if len(result.left_out) > 5 else ""
        print(f"left out {len(result.left_out)} files --pattern does not match: {names}{more}")
    return 0
