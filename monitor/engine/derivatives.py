r"""Round-over-round derivatives of a metric's trajectory that respect its noise.

For one metric with values :math:`v_i` at audited rounds :math:`t_1<t_2<\dots`
(gaps allowed, arrival order irrelevant), bootstrap standard errors
:math:`\mathrm{se}_i` and direction :math:`s=+1` if higher is better, else
:math:`-1` (from the metric registry), every quantity at round :math:`t_i`
uses only rounds :math:`t_1..t_i`, so adding a later round never rewrites an
earlier round's derivatives:

* noise :math:`\sigma_i = c\,\mathrm{se}_i` with the rule's ``noise_factor``
  :math:`c` (set by calibration). Without a standard error (``n_boot = 0``)
  :math:`\sigma_i = 1.4826\,\mathrm{MAD}(\Delta_{2..i})/\sqrt2`, the robust
  scale of the first differences so far (at least 3 of them);
* first difference :math:`\Delta_i=v_i-v_{i-1}`, relative change
  :math:`\Delta_i/|v_{i-1}|`, rate :math:`r_i=\Delta_i/(t_i-t_{i-1})` and
  second difference :math:`r_i-r_{i-1}`;
* EWMA slope :math:`e_2=r_2,\ e_i=\alpha r_i+(1-\alpha)e_{i-1}`;
* Theil--Sen slope :math:`b_i=\operatorname{median}_{j<l}(v_l-v_j)/(t_l-t_j)`
  over the last ``window`` audited rounds (Sen 1968), with standard error
  :math:`\mathrm{se}(b_i)=\kappa_n\sqrt{\sum_j w_j^2\sigma_j^2}`,
  :math:`w_j=(t_j-\bar t)/\sum(t-\bar t)^2` (the least-squares slope's error
  under the measurement noise) times :math:`\kappa_n`, the Theil--Sen to
  least-squares standard-error ratio for :math:`n` equally spaced points under
  Gaussian noise (simulated once, seeded);
* slope z :math:`z_i=s\,b_i/\mathrm{se}(b_i)`, oriented so that **negative
  means the bad direction**, defined from ``min_rounds`` rounds on;
* cumulative change from the baseline :math:`c_i=v_i-v_b` (the first audited
  round, or the metric's value of the reference against itself when the rule
  says ``baseline = "reference"`` and the registry defines it), the loss
  :math:`L_i=-s\,c_i` (divided by :math:`|v_b|` when ``loss_scale`` is
  relative) and its z :math:`-L_i^{abs}/\sqrt{\sigma_i^2+\sigma_b^2}` (negative = bad);
* CUSUM on the per-round changes in the bad direction (Page 1954):
  :math:`x_i=-s\Delta_i/\sqrt{\sigma_i^2+\sigma_{i-1}^2}`,
  :math:`S_1=0,\ S_i=\max(0,S_{i-1}+x_i-k)`. Because changes telescope,
  :math:`S_i` is the largest standardised drop over a recent stretch, less
  :math:`k` per round of it: a dip that recovers brings it back down;
* forecast: rounds until the threshold level :math:`T` (the rule's
  ``threshold``, else the critical-loss level :math:`v_b - s\,\ell\,|v_b|`)
  is crossed by the Theil--Sen line through the window, 0 when the value has
  crossed, none when the slope points away.

Arrays may carry leading batch dimensions (many trajectories on the same
rounds), which the calibration uses; the store path passes one trajectory.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np
import pandas as pd

from metrics_core.registry import get_spec
from monitor.engine.rules import MetricRule, RuleSet

# Columns of the derivatives table, in order.
COLUMNS = (
    "delta", "rel_change", "delta2", "ewma_slope", "slope", "slope_se", "zscore", "baseline",
    "cum_change", "loss", "cum_z", "cusum", "threshold", "rounds_to_threshold", "noise",
)
_MAD_TO_SD = 1.4826


def finite_or_none(x) -> float | None:
    """``x`` as a float, or None when it is missing, NaN or infinite (JSON and SQL have no NaN).

    >>> finite_or_none(float("nan")), finite_or_none(float("inf")), finite_or_none(2)
    (None, None, 2.0)
    """
    return None if x is None or pd.isna(x) or not np.isfinite(float(x)) else float(x)


@lru_cache(maxsize=None)
def theil_sen_se_ratio(n: int, draws: int = 20000, seed: int = 12345) -> float:
    """Standard error of the Theil-Sen slope over that of least squares, ``n`` equally spaced points.

    Simulated under i.i.d. Gaussian noise with a fixed seed, so it is
    deterministic. Two points give 1 (both are the same pairwise slope).

    >>> theil_sen_se_ratio(2)
    1.0
    >>> 1.0 < theil_sen_se_ratio(8) < 1.2
    True
    """
    if n < 2:
        raise ValueError(f"n: expected at least 2 points, got {n}")
    if n == 2:
        return 1.0
    rng = np.random.default_rng(seed)
    t = np.arange(n, dtype=np.float64)
    noise = rng.standard_normal((draws, n))
    j, l = np.triu_indices(n, 1)
    ts = np.median((noise[:, l] - noise[:, j]) / (t[l] - t[j]), axis=1)
    tc = t - t.mean()
    ols = noise @ (tc / (tc @ tc))
    return float(ts.std() / ols.std())


def _robust_noise_prefix(values: np.ndarray) -> np.ndarray:
    """Per round, the MAD-based noise of one value from the first differences so far (NaN below 3)."""
    out = np.full(values.shape, np.nan)
    diffs = np.diff(values, axis=-1)
    for i in range(3, values.shape[-1]):
        d = diffs[..., :i]
        mad = np.median(np.abs(d - np.median(d, axis=-1, keepdims=True)), axis=-1)
        out[..., i] = _MAD_TO_SD * mad / np.sqrt(2.0)
    return out


def metric_derivatives(
    rounds: np.ndarray,
    values: np.ndarray,
    std_errors: np.ndarray,
    rule: MetricRule,
) -> dict[str, np.ndarray]:
    """Every derivative of one metric's trajectory (see the module docstring).

    Args:
        rounds: ``[L]`` strictly increasing audited round numbers.
        values: ``[..., L]`` metric values.
        std_errors: ``[..., L]`` bootstrap standard errors (NaN where unknown).
        rule: the metric's resolved rule (direction, window, noise factor, ...).

    Returns:
        One ``[..., L]`` float array per name in :data:`COLUMNS` (NaN where undefined).

    >>> from monitor.engine.rules import load_rules
    >>> d = metric_derivatives(np.arange(4), np.array([0.9, 0.8, 0.7, 0.6]), np.full(4, 0.01),
    ...                        load_rules().for_metric("coverage"))
    >>> [round(float(x), 3) for x in d["slope"]], round(float(d["loss"][-1]), 3)
    ([nan, -0.1, -0.1, -0.1], 0.333)
    """
    t = np.asarray(rounds, dtype=np.float64)
    v = np.asarray(values, dtype=np.float64)
    se = np.asarray(std_errors, dtype=np.float64)
    if t.ndim != 1 or v.shape[-1] != t.shape[0] or se.shape != v.shape:
        raise ValueError(f"rounds [L], values and std_errors [..., L]: got {t.shape}, {v.shape}, {se.shape}")
    if t.shape[0] > 1 and not (np.diff(t) > 0).all():
        raise ValueError("rounds: expected strictly increasing round numbers")
    n_rounds = t.shape[0]
    s = 1.0 if rule.higher_is_better else -1.0
    nan = np.full(v.shape, np.nan)

    noise = rule.noise_factor * np.where(se > 0, se, np.nan)
    if np.isnan(noise).any():
        noise = np.where(np.isnan(noise), _robust_noise_prefix(v), noise)

    out = {name: nan.copy() for name in COLUMNS}
    out["noise"] = noise
    gaps = np.diff(t)
    delta = np.diff(v, axis=-1)
    rate = delta / gaps
    out["delta"][..., 1:] = delta
    prev = np.abs(v[..., :-1])
    with np.errstate(divide="ignore", invalid="ignore"):
        out["rel_change"][..., 1:] = np.where(prev > 0, delta / prev, np.nan)
    out["delta2"][..., 2:] = np.diff(rate, axis=-1)

    ewma = nan.copy()
    if n_rounds > 1:
        ewma[..., 1] = rate[..., 0]
        for i in range(2, n_rounds):
            ewma[..., i] = rule.ewma_alpha * rate[..., i - 1] + (1.0 - rule.ewma_alpha) * ewma[..., i - 1]
    out["ewma_slope"] = ewma

    # CUSUM of standardised bad-direction changes; an undefined change adds nothing.
    cusum = nan.copy()
    if n_rounds:
        cusum[..., 0] = 0.0
    step_noise = np.sqrt(noise[..., 1:] ** 2 + noise[..., :-1] ** 2)
    with np.errstate(divide="ignore", invalid="ignore"):
        x = -s * delta / step_noise
    for i in range(1, n_rounds):
        increment = np.where(np.isnan(x[..., i - 1]), 0.0, x[..., i - 1] - rule.cusum_k)
        cusum[..., i] = np.maximum(0.0, cusum[..., i - 1] + increment)
    out["cusum"] = cusum

    # Theil-Sen slope and its noise-based standard error over the trailing window.
    level = nan.copy()  # the Theil-Sen line's value at t_i
    for i in range(1, n_rounds):
        lo = max(0, i + 1 - rule.window)
        tw, vw, nw = t[lo : i + 1], v[..., lo : i + 1], noise[..., lo : i + 1]
        j, l = np.triu_indices(tw.shape[0], 1)
        slope = np.median((vw[..., l] - vw[..., j]) / (tw[l] - tw[j]), axis=-1)
        intercept = np.median(vw - slope[..., None] * tw, axis=-1)
        tc = tw - tw.mean()
        weights = tc / (tc @ tc)
        se_slope = theil_sen_se_ratio(tw.shape[0]) * np.sqrt((weights**2 * nw**2).sum(axis=-1))
        out["slope"][..., i] = slope
        out["slope_se"][..., i] = se_slope
        level[..., i] = intercept + slope * t[i]
        if tw.shape[0] >= rule.min_rounds:
            with np.errstate(divide="ignore", invalid="ignore"):
                out["zscore"][..., i] = s * slope / se_slope

    # Cumulative change from the baseline.
    spec = get_spec(rule.metric)
    if rule.baseline == "reference" and spec.self_value is not None:
        base, base_noise = np.full(v.shape[:-1], float(spec.self_value)), np.zeros(v.shape[:-1])
    else:
        base, base_noise = v[..., 0], noise[..., 0]
    cum = v - base[..., None]
    loss_abs = -s * cum
    scale = np.abs(base)[..., None] if rule.loss_scale == "relative" else np.ones_like(base)[..., None]
    with np.errstate(divide="ignore", invalid="ignore"):
        out["loss"] = np.where(scale > 1e-12, loss_abs / scale, np.nan)
        out["cum_z"] = -loss_abs / np.sqrt(noise**2 + base_noise[..., None] ** 2)
    out["baseline"] = np.broadcast_to(base[..., None], v.shape).copy()
    out["cum_change"] = cum

    # Forecast: rounds until the threshold level is crossed along the Theil-Sen line.
    if rule.threshold is not None:
        threshold = np.full(v.shape, float(rule.threshold))
    else:
        threshold = np.broadcast_to((base[..., None] - s * rule.critical_loss * scale), v.shape).copy()
        threshold[np.broadcast_to(scale <= 1e-12, v.shape)] = np.nan
    out["threshold"] = threshold
    slope = out["slope"]
    with np.errstate(divide="ignore", invalid="ignore"):
        ahead = s * (level - threshold) / (-s * slope)
    crossed = s * (v - threshold) <= 0
    towards = (s * slope < 0) & ~np.isnan(threshold)
    out["rounds_to_threshold"] = np.where(crossed, 0.0, np.where(towards, np.maximum(ahead, 0.0), np.nan))
    return out


def compute_derivatives(trajectory: pd.DataFrame, rules: RuleSet) -> pd.DataFrame:
    """Derivatives of every metric of one loop.

    Args:
        trajectory: rows with columns ``round, metric, value, std_error``.
        rules: the resolved rule set (direction, window and noise factor per metric).

    Returns:
        Columns ``round, metric`` and :data:`COLUMNS` (NaN where undefined).
    """
    out = []
    for metric, group in trajectory.groupby("metric", sort=True):
        g = group.sort_values("round")
        std_errors = pd.to_numeric(g["std_error"], errors="coerce").to_numpy(dtype=np.float64) \
            if "std_error" in g else np.full(len(g), np.nan)
        d = metric_derivatives(
            g["round"].to_numpy(), g["value"].to_numpy(dtype=np.float64), std_errors, rules.for_metric(metric)
        )
        out.append(pd.DataFrame({"round": g["round"].to_numpy(), "metric": metric, **d}))
    if not out:
        return pd.DataFrame(columns=["round", "metric", *COLUMNS])
    return pd.concat(out, ignore_index=True)
