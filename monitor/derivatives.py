r"""Round-over-round derivatives of each metric's trajectory.

For a metric with values :math:`v_t` at the audited rounds :math:`t_1 < t_2 < \dots`
(gaps allowed, arrival order irrelevant):

* first difference :math:`\Delta_i = v_{t_i} - v_{t_{i-1}}` (none at the first round);
* slope: the least-squares slope of :math:`v` on :math:`t` over the last
  ``window`` audited rounds up to :math:`t_i` (at least two), in units per round.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

DEFAULT_SLOPE_WINDOW = 5


def ols_slope(rounds: np.ndarray, values: np.ndarray) -> float:
    r"""Least-squares slope :math:`\sum (t-\bar t)(v-\bar v) / \sum (t-\bar t)^2`."""
    t = rounds.astype(np.float64) - rounds.mean()
    return float((t * (values - values.mean())).sum() / (t * t).sum())


def compute_derivatives(trajectory: pd.DataFrame, window: int = DEFAULT_SLOPE_WINDOW) -> pd.DataFrame:
    """Derivatives of every metric of one loop.

    Args:
        trajectory: rows with columns ``round``, ``metric``, ``value``.
        window: number of audited rounds in the slope window (``>= 2``).

    Returns:
        Columns ``round, metric, delta, slope`` (NaN where undefined).
    """
    if window < 2:
        raise ValueError(f"window: expected at least 2 rounds, got {window}")
    out = []
    for metric, group in trajectory.groupby("metric", sort=True):
        g = group.sort_values("round")
        rounds = g["round"].to_numpy()
        values = g["value"].to_numpy(dtype=np.float64)
        delta = np.full(len(g), np.nan)
        delta[1:] = np.diff(values)
        slope = np.full(len(g), np.nan)
        for i in range(1, len(g)):
            lo = max(0, i + 1 - window)
            slope[i] = ols_slope(rounds[lo : i + 1], values[lo : i + 1])
        out.append(pd.DataFrame({"round": rounds, "metric": metric, "delta": delta, "slope": slope}))
    if not out:
        return pd.DataFrame(columns=["round", "metric", "delta", "slope"])
    return pd.concat(out, ignore_index=True)
