"""``fspace embed EXP``: embed the function vectors in 2-D."""

from __future__ import annotations

import argparse

from fspace.cli._args import (
    add_embedding,
    add_vectors,
    check_csv,
    embed_from_args,
    plural,
    say_for,
    write_csv,
)


def register(sub) -> None:
    from fspace.embedding import METHODS

    labels = [entry.label for entry in METHODS]
    p = sub.add_parser(
        "embed",
        help=f"embed the function vectors in 2-D ({', '.join(labels)})",
        description="Evaluate any checkpoints that need it, embed all function vectors in "
        "2-D and cache the map in the experiment.",
    )
    p.add_argument(
        "experiment",
        metavar="EXP",
        nargs="+",
        help="experiment directory; several recorded on one probe suite make one map",
    )
    add_vectors(p)
    add_embedding(p)
    p.add_argument(
        "--csv",
        metavar="FILE",
        help="also write the coordinates with their labels ('-': to standard output, "
        "with the summary lines on standard error)",
    )
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    check_csv(args.csv)
    emb = embed_from_args(args)
    frame = emb.frame
    say = say_for(args.csv)
    say(
        f"{len(frame)} checkpoints of {plural(frame['run'].nunique(), 'run')} embedded with "
        f"{emb.method} {emb.params} on the {emb.distance} distance"
    )
    from fspace.embedding.quality import summary

    say(f"faithfulness: {summary(emb.quality)}")
    write_csv(args.csv, frame)
    return 0
