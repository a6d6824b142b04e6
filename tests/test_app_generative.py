"""The dashboard's regimes page, on a tiny recorded generative experiment."""

from __future__ import annotations

import pytest
from dash import dcc
from test_generative_experiment import TINY

from fspace import Experiment
from fspace.app.generative import regime_cards
from fspace.experiments.generative import GenerativeConfig, run_generative


@pytest.mark.slow
def test_regime_page_shows_every_figure(tmp_path):
    cfg = GenerativeConfig(**{**TINY, "regimes": ("random+backprop", "pretrained+wake-sleep")})
    run_generative(tmp_path / "gen", cfg, progress=False)
    cards = regime_cards(Experiment(tmp_path / "gen"))
    graphs = [c.children[1] for c in cards]
    assert all(isinstance(g, dcc.Graph) for g in graphs)
    trajectories = graphs[0].figure
    shown = {t.legendgroup for t in trajectories.data if t.showlegend is not False}
    assert {"random+backprop", "pretrained+wake-sleep"} <= shown
    assert len(cards) >= 6  # map, errors, curves, separation and the denoising figures


def test_regime_page_explains_other_experiments(recorded):
    (card,) = regime_cards(Experiment(recorded))
    assert "no run of the generative experiment" in card.children
