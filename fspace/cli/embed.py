"""``fspace embed EXP``: embed the function vectors in 2-D."""

from __future__ import annotations

import argparse
import functools
import sys

from fspace.cli._args import add_embedding, add_vectors, embed_from_args, plural


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
    to_stdout = args.csv == "-"
    if args.csv and not to_stdout:
        from fspace.export import check_folder

        check_folder(args.csv)  # refuse before the slow part, not after
    emb = embed_from_args(args)
    frame = emb.frame
    say = functools.partial(print, file=sys.stderr if to_stdout else sys.stdout)
    say(
        f"{len(frame)} checkpoints of {plural(frame['run'].nunique(), 'run')} embedded with "
        f"{emb.method} {emb.params} on the {emb.distance} distance"
    )
    from fspace.embedding.quality import summary

    say(f"faithfulness: {summary(emb.quality)}")
    if to_stdout:
        frame.to_csv(sys.stdout, index=False)
    elif args.csv:
        from fspace.export import write_table

        write_table(args.csv, frame.to_csv(index=False))
        print(f"wrote {args.csv}")
    return 0
