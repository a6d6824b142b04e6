"""Layer-wise pre-training from a stream: ``partial_fit`` continues where ``fit`` would,
and a stack grown one layer at a time is the stack trained at once."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from fspace.training.dae import DenoisingAutoencoder
from fspace.training.pretrain import pretrain_stack_online
from fspace.training.rbm import RBM


@pytest.fixture(scope="module")
def data():
    rng = np.random.default_rng(0)
    return torch.from_numpy((rng.random((120, 20)) < 0.3).astype(np.float32))


@pytest.mark.parametrize("cls", [RBM, DenoisingAutoencoder], ids=["rbm", "dae"])
def test_partial_fit_passes_equal_fit_epochs(cls, data):
    fitted = cls(n_hidden=8, epochs=3, batch_size=10, random_state=4).fit(data)
    online = cls(n_hidden=8, batch_size=10, random_state=4)
    for _ in range(3):
        online.partial_fit(data)
    torch.testing.assert_close(online.weight_, fitted.weight_)
    torch.testing.assert_close(online.hbias_, fitted.hbias_)
    assert online.reconstruction_errors_ == pytest.approx(fitted.reconstruction_errors_)


@pytest.mark.parametrize("method", ["rbm", "dae"])
def test_a_stack_grown_layer_by_layer_is_the_stack_trained_at_once(method, data):
    def chunks(layer):
        return [data[:60], data[60:]]

    whole = pretrain_stack_online(chunks, [8, 6], method, random_state=3, batch_size=10)
    first = pretrain_stack_online(chunks, [8], method, random_state=3, batch_size=10)
    second = pretrain_stack_online(chunks, [6], method, below=first, random_state=3, batch_size=10)
    assert len(whole) == 2 and len(second) == 1
    for a, b in zip(whole, [*first, *second], strict=True):
        torch.testing.assert_close(a.weight_, b.weight_)
    assert whole[1].weight_.shape == (8, 6)


def test_an_empty_stream_is_refused(data):
    from fspace.errors import ConfigError

    with pytest.raises(ConfigError, match="gave no data"):
        pretrain_stack_online(lambda i: [], [4], "rbm", random_state=0)
