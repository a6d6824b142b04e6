"""InPCA, intensive principal component analysis (Quinn et al., PNAS 2019; used by Mao,
Griniasty et al., PNAS 2024 with the intensive Bhattacharyya distance).

Classical scaling of the double-centred squared distances, keeping the two eigenvalues
largest in absolute value, negative ones included. An axis with a negative eigenvalue
is time-like: the map's squared distance is ``sum_a sign_a (x_a - y_a)^2``, which is
what makes the embedding isometric for divergences such as the Bhattacharyya distance
(used as the squared distance itself). The fitted map reports its explained stress and
the sign of each axis (``Embedding.quality``), and places new checkpoints by Gower's
formula (exactly onto themselves for checkpoints already in the map).
"""

from __future__ import annotations

from fspace.embedding.base import register
from fspace.embedding.mds import ScalingMethod


@register(
    "inpca",
    label="InPCA",
    help="intensive PCA: classical scaling keeping the two largest |eigenvalues|, signed",
    params=(),
    metric=True,
    distances="any",
)
class InPCAMethod(ScalingMethod):
    """Intensive PCA of any distance: eigenvalues ranked by absolute value, each axis's
    sign in ``quality["axis_signs"]``; best with a divergence (``bhattacharyya``)."""

    min_points = 2
    by_magnitude = True
