r"""Run lengths of a CUSUM with Gaussian increments: what a detector would achieve without its corrections.

Siegmund's approximation (D. Siegmund, *Sequential Analysis*, Springer 1985,
eq. 10.19; see also Montgomery, *Statistical Quality Control*, §9.1.6) for the
average run length of :math:`S_t=\max(0,S_{t-1}+X_t)` with i.i.d.
:math:`X_t\sim N(\mu,\sigma^2)` and threshold :math:`h`:

.. math:: \mathrm{ARL} \approx \frac{e^{-2\mu h'/\sigma^2} - 1 + 2\mu h'/\sigma^2}{2\mu^2/\sigma^2},
   \qquad h' = h + 1.166\,\sigma,

and :math:`(h'/\sigma)^2` at :math:`\mu = 0`.
"""

from __future__ import annotations

import numpy as np


def siegmund_arl(mean: float, sd: float, threshold: float) -> float:
    """Approximate average run length of a one-sided CUSUM with Gaussian increments.

    Args:
        mean: the increments' mean :math:`\\mu` (negative under the null).
        sd: their standard deviation (> 0).
        threshold: :math:`h` (> 0).

    >>> round(siegmund_arl(-0.5, 1.0, np.log(1000)), -1)   # the e-CUSUM at delta = 1 under the null
    6400.0
    >>> siegmund_arl(0.0, 1.0, 3.0) == (3.0 + 1.166) ** 2
    True
    """
    if not sd > 0 or not threshold > 0:
        raise ValueError(f"sd, threshold: expected positive values, got {sd}, {threshold}")
    h = threshold + 1.166 * sd
    if mean == 0:
        return float((h / sd) ** 2)
    a = 2.0 * mean * h / sd**2
    return float((np.expm1(-a) + a) / (2.0 * mean**2 / sd**2))
