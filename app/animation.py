"""The epoch window's animation on the Trajectories page: the play button starts a timer
that moves the window's upper end one epoch per tick and stops at the last epoch."""

from __future__ import annotations

from typing import Any

from dash import Input, Output, State, no_update

from fspace.app import ids

PLAY, PAUSE = "▶ play", "❚❚ pause"


def play(_n: Any, stopped: bool, value: list[int] | None, top: int) -> tuple:
    """Start or stop the animation; starting at the end replays from the window start."""
    if not stopped:
        return True, PLAY, no_update
    lo, hi = value or (0, top)
    return False, PAUSE, [lo, lo] if hi >= top else no_update


def step(_n: Any, value: list[int] | None, top: int) -> tuple:
    """Move the window's upper end one epoch on; stop at the last epoch."""
    lo, hi = value or (0, top)
    hi = min(hi + 1, top)
    done = hi >= top
    return [lo, hi], done, PLAY if done else no_update


def register(callback: Any) -> None:
    """Declare the play button's and the timer's callbacks with the page's collector."""
    callback(
        Output(ids.PLAY_TIMER, "disabled"),
        Output(ids.PLAY, "children"),
        Output(ids.EPOCHS, "value", allow_duplicate=True),
        Input(ids.PLAY, "n_clicks"),
        State(ids.PLAY_TIMER, "disabled"),
        State(ids.EPOCHS, "value"),
        State(ids.EPOCHS, "max"),
        prevent_initial_call=True,
    )(play)
    callback(
        Output(ids.EPOCHS, "value", allow_duplicate=True),
        Output(ids.PLAY_TIMER, "disabled", allow_duplicate=True),
        Output(ids.PLAY, "children", allow_duplicate=True),
        Input(ids.PLAY_TIMER, "n_intervals"),
        State(ids.EPOCHS, "value"),
        State(ids.EPOCHS, "max"),
        prevent_initial_call=True,
    )(step)
