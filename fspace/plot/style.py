"""How each group is drawn: a colour family, a marker symbol and a line dash.

Styles are assigned in order, never hashed: the groups of a figure are put in legend
order (:func:`group_order`: the groups of the built-in experiments first, then the
others sorted) and the i-th group gets the i-th colour and the i-th symbol, so any two
groups of one figure differ in both colour and marker (for up to 10 groups; beyond that
the (colour, symbol) pairs stay distinct up to 100). Figures of one experiment pass the
same groups and so draw each group alike.

>>> styles = group_styles(["ours", "baseline"])
>>> styles["baseline"].color != styles["ours"].color
True
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

# Symbols that Scatter, Scattergl and the static exporter all draw, most distinct first.
SYMBOLS = (
    "circle",
    "square",
    "diamond",
    "triangle-up",
    "cross",
    "x",
    "triangle-down",
    "star",
    "pentagon",
    "hexagon",
)
DASHES = ("solid", "dash", "dot", "dashdot", "longdash")
# Colour-blind-safe bases: Okabe-Ito (without yellow, which vanishes on white, and black,
# which marks the highlighted run), then Paul Tol's indigo, wine and olive, and grey.
COLORS = (
    "#0072B2",
    "#D55E00",
    "#009E73",
    "#CC79A7",
    "#E69F00",
    "#56B4E9",
    "#332288",
    "#882255",
    "#999933",
    "#7F7F7F",
)

# Legend order of the built-in experiments' groups (pre-training, then generative regimes).
KNOWN = (
    "pretrained",
    "random",
    "pretrained+backprop",
    "random+backprop",
    "pretrained+wake-sleep",
    "wake-sleep+backprop",
    "relu-pretrained+backprop",
    "relu-random+backprop",
    "conv-random+backprop",
)


@dataclass(frozen=True)
class GroupStyle:
    """Marker symbol, line dash and base colour of one group, and its colour family."""

    symbol: str
    dash: str
    color: str

    @property
    def colorscale(self) -> list[list]:
        """A sequential scale of the group's colour: light tint (early) to dark (late)."""
        return [
            [0.0, mix(self.color, "#FFFFFF", 0.78)],
            [0.5, self.color],
            [1.0, shade(self.color)],
        ]

    @property
    def open_symbol(self) -> str:
        """The hollow version of the symbol (``x`` and ``cross`` have none: a ring)."""
        return "circle-open" if self.symbol in ("x", "cross") else f"{self.symbol}-open"


def style_at(index: int) -> GroupStyle:
    """The style of the ``index``-th group of a figure."""
    n = len(COLORS)
    return GroupStyle(
        SYMBOLS[(index + index // n) % len(SYMBOLS)],
        DASHES[index % len(DASHES)],
        COLORS[index % n],
    )


def group_order(groups: Iterable[str]) -> list[str]:
    """``groups`` in legend order: the built-in groups first, then the others sorted."""
    unique = {str(g) for g in groups}
    return [g for g in KNOWN if g in unique] + sorted(unique - set(KNOWN), key=_natural)


def group_styles(groups: Iterable[str]) -> dict[str, GroupStyle]:
    """The style of each of ``groups``, assigned in legend order."""
    return {g: style_at(i) for i, g in enumerate(group_order(groups))}


def group_style(group: str, groups: Iterable[str] | None = None) -> GroupStyle:
    """The style of ``group`` among ``groups`` (default: the built-in groups, so the
    pre-training and generative groups look alike in every figure)."""
    pool = set(KNOWN) if groups is None else {str(g) for g in groups}
    return group_styles(pool | {str(group)})[str(group)]


def mix(color: str, other: str, weight: float) -> str:
    """``color`` moved ``weight`` of the way towards ``other`` (hex colours)."""
    a, b = _rgb(color), _rgb(other)
    return "#" + "".join(f"{round(x + (y - x) * weight):02X}" for x, y in zip(a, b, strict=True))


def shade(color: str) -> str:
    """A darker shade of ``color``."""
    return mix(color, "#000000", 0.4)


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


def _rgb(color: str) -> tuple[int, int, int]:
    h = color.lstrip("#")
    return int(h[0:2], 16), int(h[2:4], 16), int(h[4:6], 16)


def _natural(value: str) -> tuple:
    # "lr0.001" before "lr0.01", "depth2" before "depth10".
    import re

    parts = re.split(r"(\d+(?:\.\d+)?)", value)
    return tuple((0, float(p), p) if i % 2 else (1, 0.0, p) for i, p in enumerate(parts))
