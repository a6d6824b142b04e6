"""How each group is drawn: marker symbol, line dash and colour, the same in every figure.

The groups of the built-in experiments have fixed styles; any other group name is styled
by a hash of the name, so a group looks the same whichever other groups are shown with it.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

# Symbols and dashes that both Scatter and Scattergl can draw.
SYMBOLS = ("circle", "square", "diamond", "triangle-up", "cross", "x", "triangle-down", "star")
DASHES = ("solid", "dash", "dot", "dashdot", "longdash")
# Colour-blind-safe palette (Okabe-Ito; grey instead of yellow, which vanishes on white,
# and of black, which marks the highlighted run).
COLORS = ("#0072B2", "#D55E00", "#009E73", "#CC79A7", "#56B4E9", "#E69F00", "#7F7F7F")


@dataclass(frozen=True)
class GroupStyle:
    """Marker symbol, line dash and line colour of one group."""

    symbol: str
    dash: str
    color: str


FIXED = {
    "pretrained": GroupStyle("circle", "solid", COLORS[0]),
    "random": GroupStyle("square", "dash", COLORS[1]),
    # The training regimes of the generative experiment (fspace.experiments.generative).
    "random+backprop": GroupStyle("square", "dash", COLORS[1]),
    "pretrained+backprop": GroupStyle("circle", "solid", COLORS[0]),
    "pretrained+wake-sleep": GroupStyle("diamond", "solid", COLORS[2]),
    "wake-sleep+backprop": GroupStyle("triangle-up", "dot", COLORS[3]),
    "relu-random+backprop": GroupStyle("x", "dash", COLORS[5]),
    "relu-pretrained+backprop": GroupStyle("cross", "solid", COLORS[4]),
    "conv-random+backprop": GroupStyle("star", "dashdot", COLORS[6]),
}


def group_style(group: str) -> GroupStyle:
    """The style of ``group``: fixed for the groups of the built-in experiments, hashed
    for other names.

    >>> group_style("pretrained").symbol
    'circle'
    """
    if group in FIXED:
        return FIXED[group]
    # md5, not hash(): Python salts str hashes per process.
    digest = hashlib.md5(str(group).encode("utf-8"), usedforsecurity=False).digest()
    # Skip the first entries, taken by the fixed groups, so no group looks like those.
    symbols, dashes, colors = SYMBOLS[2:], DASHES[2:], COLORS[2:]
    return GroupStyle(
        symbols[digest[0] % len(symbols)],
        dashes[digest[1] % len(dashes)],
        colors[digest[2] % len(colors)],
    )


def group_order(groups: list[str]) -> list[str]:
    """``groups`` in legend order: the fixed groups first, then the others sorted."""
    unique = set(groups)
    return [g for g in FIXED if g in unique] + sorted(unique - set(FIXED), key=str)


def add_message(fig, text: str):
    """Write ``text`` in the middle of an otherwise empty figure; returns ``fig``."""
    fig.add_annotation(
        text=text,
        x=0.5,
        y=0.5,
        xref="paper",
        yref="paper",
        showarrow=False,
        font={"size": 18, "color": "grey"},
    )
    return fig
