"""``fspace export EXP -o FILE``: write the trajectory plot."""

from __future__ import annotations

import argparse

from fspace.cli._args import (
    add_embedding,
    add_experiment,
    add_vectors,
    embed_from_args,
    plural,
    positive_int,
)


def register(sub) -> None:
    p = sub.add_parser(
        "export",
        help="write the trajectory plot to PNG, SVG, PDF or HTML",
        description="Draw every run as a trajectory through function space, points coloured "
        "by epoch, and write it to a file. The format follows the suffix: .png, .svg, .pdf "
        "or .html (interactive, self-contained). Above 5,000 checkpoints the points are "
        "drawn as one picture of their density. No browser is needed.",
    )
    add_experiment(p)
    p.add_argument("-o", "--out", required=True, metavar="FILE", help="output file")
    add_vectors(p)
    add_embedding(p)
    fig = p.add_argument_group("figure")
    fig.add_argument("--title", help="figure title (default: the experiment's name)")
    fig.add_argument("--width", type=positive_int, default=1000, help="pixels (default: 1000)")
    fig.add_argument("--height", type=positive_int, default=750, help="pixels (default: 750)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from pathlib import Path

    from fspace.export import check_destination, write_figure
    from fspace.plot.density import map_figure

    check_destination(args.out)  # refuse before the slow part, not after
    emb = embed_from_args(args)
    title = args.title or f"{Path(args.experiment).name}: function space ({emb.method})"
    fig = map_figure(emb.frame, title=title)  # a picture above RASTER_LIMIT checkpoints
    path = write_figure(fig, args.out, width=args.width, height=args.height)
    runs = emb.frame["run"].nunique()
    print(f"wrote {path} ({plural(len(emb.frame), 'checkpoint')}, {plural(runs, 'run')})")
    return 0
