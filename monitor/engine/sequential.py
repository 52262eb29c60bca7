r"""The alarm: e-CUSUM charts on level deviations from the loop's null, with a guaranteed false-alarm rate.

Every metric of a round is scored against the loop's null
(:mod:`monitor.engine.null`): :math:`z_{t,m}`, positive in the bad direction, in null
standard deviations. Each metric feeds one **signal** (its rule's ``signal``):

* ``collapse``: the round's own spread contracts (diversity: effective rank,
  log-volume, distinct-n, entropies, type-token ratios, compression,
  duplicates, Zipf exponent);
* ``drift``: the round moves away from the reference (fidelity, coverage,
  validity, and the direction-based Vendi score and self-cosine similarity,
  which a mean shift reads as lost diversity).

The charts, all e-CUSUMs calibrated on the null's pseudo-round scores, with the null's offset bound:

* per signal, the **combined** chart (:class:`monitor.engine.detectors.AdaptiveECusum`) on
  :math:`s_t=a_t^\top z_{t}/\sqrt{a_t^\top R\,a_t}` over the signal's metrics defined at round
  :math:`t`, with :math:`R` the null's shrunk correlation and weights :math:`a_t` that follow
  the past rounds' scores (equal at first: the plain sum; turned towards the metrics that moved,
  so a change that moves a few of many metrics is not diluted);
* per metric, its own :math:`z_{t,m}` (:class:`monitor.engine.detectors.ECusum`; they name the
  metric that crossed).

They are one mixture e-detector :math:`\sum_j w_j M_{j,t}` with weights summing
to 1 (:func:`chart_weights`: the collapse signal three quarters, the drift signal
one quarter; within each, half for the combined chart and half split over the
per-metric charts), and chart :math:`j` raises its signal when
:math:`\log M_{j,t} \ge \log(A/w_j)`. Every alarm is then an alarm of the
mixture at :math:`A`, so the loop's average run length to **any** alarm under
no feedback is at least :math:`A` rounds, the ``arl0`` target (default 1,000).
``critical`` needs 100 times the evidence: :math:`\log(100A/w_j)`. A raised
signal is lowered when every chart is back below its threshold less
:math:`\log 10`.

The guarantee assumes that, without feedback, rounds are independent draws of
the distribution the pool was drawn from, audited with the options the null
was built with; the pool's finite size is covered by the offset bound.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from metrics_core.registry import get_spec
from monitor.engine.detectors import DEFAULT_DELTAS, AdaptiveECusum, ECusum, siegmund_arl
from monitor.engine.null import POOL_RATIO_MIN, LoopNull

SIGNALS = ("collapse", "drift")
DEFAULT_ARL0 = 1000.0
CRITICAL_FACTOR = 100.0
CLEAR_LOG = float(np.log(10.0))
COMBINED_SHARE = 0.5  # of a signal's budget, for its combined chart; its unit charts share the rest
# The collapse signal is what pages (CollapseWarning); a drift worth knowing about builds large evidence
# quickly (docs/meta-evaluation.md: first drift alerts precede collapse ones), so it gets the smaller share.
SIGNAL_SHARES = {"collapse": 0.75, "drift": 0.25}
IDENTICAL_CORRELATION = 0.999  # null correlation at which two metrics are one chart (metric_units)
NAMED_LOG_EVIDENCE = float(np.log(20.0))  # a metric's own chart this high names it in an alarm
POOL_RATIO_FULL = 64.0  # pool rows per round row for the offset to cost little sensitivity


def orientation(metric: str) -> float:
    """+1 when higher is better (a drop is bad), -1 when lower is better."""
    return 1.0 if get_spec(metric).higher_is_better else -1.0


def chart_weights(signal_units: dict[str, list[tuple[str, ...]]]) -> dict[str, float]:
    """Mixture weights of the distinct charts: ``signal:<name>`` combined charts and ``metric:<first member>``
    unit charts.

    The signals split the false-alarm budget by :data:`SIGNAL_SHARES` (a signal alone takes all of it), so a
    signal fed by many metrics (drift) does not dilute one fed by few (collapse). Within a signal the combined
    chart takes half the share and the units (metrics the null cannot tell apart, :func:`metric_units`) split the other half.
    A signal with a single unit has a single chart: its combined score is that unit's score, and the chart
    takes the whole share (the unit's ``metric:`` names alias it).

    >>> w = chart_weights({"collapse": [("a",), ("b", "c")], "drift": [("d",)]})
    >>> w["signal:collapse"], w["metric:a"], w["metric:b"], w["signal:drift"], "metric:d" in w
    (0.375, 0.1875, 0.1875, 0.25, False)
    """
    signals = [s for s, units in signal_units.items() if units]
    out: dict[str, float] = {}
    for s in signals:
        share = SIGNAL_SHARES[s] / sum(SIGNAL_SHARES[t] for t in signals)  # renormalised over present signals
        units = signal_units[s]
        if len(units) == 1:
            out[f"signal:{s}"] = share
            continue
        out[f"signal:{s}"] = COMBINED_SHARE * share
        out.update({f"metric:{unit[0]}": (1.0 - COMBINED_SHARE) * share / len(units) for unit in units})
    return out


def metric_units(null_z: np.ndarray, metrics: list[str], threshold: float = IDENTICAL_CORRELATION) -> list[tuple[str, ...]]:
    """Group metrics whose oriented null scores are (near) identical, each group one chart.

    ``distinct_1`` and ``ttr`` of a text round are the same number; two charts on it would each take a share
    of the budget for one piece of evidence. Grouping is decided on the null alone (complete linkage on the
    correlation of the pseudo-rounds' scores, pairs of rows where both are defined), so the weights are fixed
    before the first round, as the guarantee needs.

    Args:
        null_z: ``[B, K]`` oriented null scores of ``metrics``.
        metrics: the ``K`` metric names, in order.
        threshold: correlation at or above which two metrics are one unit.

    >>> z = np.random.default_rng(0).standard_normal((200, 2))
    >>> metric_units(np.column_stack([z[:, 0], z[:, 0], z[:, 1]]), ["a", "b", "c"])
    [('a', 'b'), ('c',)]
    """
    k = len(metrics)
    corr = np.eye(k)
    for i in range(k):
        for j in range(i + 1, k):
            both = np.isfinite(null_z[:, i]) & np.isfinite(null_z[:, j])
            if both.sum() > 2:
                a, b = null_z[both, i], null_z[both, j]
                if a.std() > 0 and b.std() > 0:
                    corr[i, j] = corr[j, i] = float(np.corrcoef(a, b)[0, 1])
    units: list[list[int]] = []
    for i in range(k):
        for unit in units:
            if all(corr[i, j] >= threshold for j in unit):
                unit.append(i)
                break
        else:
            units.append([i])
    return [tuple(metrics[i] for i in unit) for unit in units]


def unit_scores(z: np.ndarray, null_z: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``([T], [B])``: a unit's score (the mean of its members' defined scores, in the null's SD of that mean)
    on the rounds ``z`` ``[T, K]`` and on the null's pseudo-rounds ``null_z`` ``[B, K]``.

    >>> u, n = unit_scores(np.array([[2.0, 2.0]]), np.array([[1.0, 1.0], [-1.0, -1.0]]))
    >>> u.round(4).tolist(), n.round(4).tolist()
    ([1.4142], [0.7071, -0.7071])
    """
    with np.errstate(invalid="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # a round where no member is defined: NaN
        null_mean = np.nanmean(null_z, axis=1)
        round_mean = np.nanmean(z, axis=1)
    sd = float(np.nanstd(null_mean, ddof=1))
    return round_mean / sd, null_mean / sd


@dataclass
class Guarantee:
    """What the loop's null supports: the false-alarm guarantee and its cost."""

    arl0: float
    null_rounds: int
    pool_size: int
    round_size: int
    offset: float
    source: str
    uncorrected_arl0: float  # what the charts would give without the offset discount, were the level off by b

    @property
    def pool_ratio(self) -> float:
        return self.pool_size / self.round_size

    @property
    def pool_too_small(self) -> bool:
        return self.pool_ratio < POOL_RATIO_MIN

    def message(self) -> str:
        held_out = (f"a pool of {self.pool_size} rows" if self.source == "pool" else
                    f"{self.pool_size} rows held out of the reference (no pool was given: the reference was split)")
        text = (f"ARL0 >= {self.arl0:g} rounds (null of {self.null_rounds} pseudo-rounds from {held_out}, "
                f"{self.pool_ratio:.1f}x the round size; level known to +-{self.offset:.2f} null SD)")
        if self.pool_too_small:
            what = "the pool" if self.source == "pool" else "the held-out part of the reference"
            text += (f"; {what} is too small for full sensitivity: without discounting that offset the charts "
                     f"would support only ARL0 ~{self.uncorrected_arl0:.0f}, and shifts under ~{2 * self.offset:.1f} "
                     f"null SD go undetected. Give a pool (--pool) of >= {POOL_RATIO_FULL:.0f}x the round size")
        return text

    def as_dict(self) -> dict:
        return {"arl0": self.arl0, "null_rounds": self.null_rounds, "pool_size": self.pool_size,
                "round_size": self.round_size, "pool_ratio": self.pool_ratio, "offset": self.offset,
                "source": self.source, "uncorrected_arl0": self.uncorrected_arl0,
                "pool_too_small": self.pool_too_small, "message": self.message()}


def guarantee_of(null: LoopNull, arl0: float) -> Guarantee:
    # Without the discount, a level off by b turns each shift's increment mean from -d^2/2 into d b - d^2/2.
    uncorrected = min(siegmund_arl(d * null.offset - d * d / 2, d, np.log(arl0)) for d in DEFAULT_DELTAS)
    return Guarantee(float(arl0), null.n_rounds, null.pool_size, null.round_size, null.offset, null.source,
                     float(min(uncorrected, arl0)))


@dataclass
class SequentialEvaluation:
    """Every chart of a loop over its rounds.

    Attributes:
        rounds: ``[T]`` audited rounds, increasing.
        scores: metric -> ``[T]`` oriented null z (NaN where not audited).
        charts: chart name -> ``[T]`` :math:`\\log M_t`.
        thresholds: chart name -> warning threshold :math:`\\log(A/w)`.
        signal_metrics: signal -> metrics feeding it.
        levels: signal -> ``[T]`` state 0 ok, 1 warning, 2 critical (with the clearing hysteresis).
    """

    rounds: np.ndarray
    scores: dict[str, np.ndarray]
    charts: dict[str, np.ndarray]
    thresholds: dict[str, float]
    signal_metrics: dict[str, list[str]]
    levels: dict[str, np.ndarray]
    guarantee: Guarantee
    null_level: dict[str, tuple[float, float]] = field(default_factory=dict)  # metric -> (mean, sd of a round)

    def charts_of(self, signal: str) -> list[str]:
        return [f"signal:{signal}", *(f"metric:{m}" for m in self.signal_metrics.get(signal, []))]

    def alarms(self, signal: str | None = None) -> np.ndarray:
        """``[T]`` whether the signal (any signal when None) is raised at each round."""
        signals = SIGNALS if signal is None else (signal,)
        out = np.zeros(len(self.rounds), dtype=bool)
        for s in signals:
            if s in self.levels:
                out |= self.levels[s] > 0
        return out

    def named_metrics(self, signal: str, index: int) -> list[str]:
        """Metrics an alarm of ``signal`` at round ``index`` names: their own chart is high, else the strongest."""
        metrics = self.signal_metrics.get(signal, [])
        evidence = {m: self.charts[f"metric:{m}"][index] for m in metrics}
        named = sorted((m for m, e in evidence.items() if e >= NAMED_LOG_EVIDENCE), key=lambda m: -evidence[m])
        if not named and evidence:
            best = max(evidence, key=lambda m: evidence[m])
            if np.isfinite(evidence[best]):
                named = [best]
        return named

    def evidence(self, chart: str) -> np.ndarray:
        """``[T]`` chart statistic over its threshold (1 at the threshold, 0 at or below no evidence)."""
        return np.maximum(self.charts[chart], 0.0) / self.thresholds[chart]


def evaluate_sequential(trajectory: pd.DataFrame, null: LoopNull, signal_of: dict[str, str],
                        arl0: float = DEFAULT_ARL0) -> SequentialEvaluation:
    """Run every chart of a loop over its stored rounds.

    Args:
        trajectory: rows ``round, metric, value`` (any order; other columns ignored).
        null: the loop's null.
        signal_of: metric -> ``"collapse"``, ``"drift"`` or ``"none"`` (from the rules).
        arl0: the average run length to a false alarm to guarantee, in rounds.
    """
    if not arl0 > 1:
        raise ValueError(f"arl0: expected a number of rounds > 1, got {arl0}")
    rounds = np.array(sorted(trajectory["round"].unique()), dtype=np.int64) if len(trajectory) else np.zeros(0, int)
    wide = trajectory.pivot_table(index="round", columns="metric", values="value", aggfunc="last") \
        if len(trajectory) else pd.DataFrame()
    wide = wide.reindex(index=rounds)
    signal_metrics: dict[str, list[str]] = {s: [] for s in SIGNALS}
    for j, metric in enumerate(null.metrics):
        s = signal_of.get(metric, "none")
        if s in SIGNALS and null.usable[j] and metric in wide.columns:
            signal_metrics[s].append(metric)
    orient = np.array([orientation(m) for m in null.metrics])
    null_z = null.null_scores(orient)
    values = np.column_stack([wide[m].to_numpy(dtype=np.float64) if m in wide.columns else np.full(len(rounds), np.nan)
                              for m in null.metrics]) if len(null.metrics) else np.zeros((len(rounds), 0))
    z = null.scores(values, orient)
    signal_units = {s: metric_units(null_z[:, [null.index(m) for m in ms]], ms) if ms else []
                    for s, ms in signal_metrics.items()}
    weights = chart_weights(signal_units)
    scores, charts, thresholds = {}, {}, {}
    for signal, metrics in signal_metrics.items():
        if not metrics:
            continue
        for m in metrics:
            scores[m] = z[:, null.index(m)]
        units, name = signal_units[signal], f"signal:{signal}"
        unit_charts = {}
        for unit in units:
            cols = [null.index(m) for m in unit]
            round_u, null_u = (z[:, cols[0]], null_z[:, cols[0]]) if len(cols) == 1 else \
                unit_scores(z[:, cols], null_z[:, cols])
            unit_charts[unit] = ECusum.from_null(null_u, offset=null.offset).run(round_u)
        if len(units) == 1:  # one chart: the combined score is the unit's score
            charts[name] = unit_charts[units[0]]
        else:
            cols = np.array([null.index(m) for m in metrics])
            corr = null.correlation(orient, cols)
            charts[name] = AdaptiveECusum(null_z[:, cols], corr, offset=null.offset).run(z[:, cols])
        thresholds[name] = float(np.log(arl0 / weights[name]))
        for unit in units:
            # every member's name shows its unit's chart, at the unit's weight (the signal's if it is alone)
            weight = weights[name] if len(units) == 1 else weights[f"metric:{unit[0]}"]
            for m in unit:
                charts[f"metric:{m}"] = charts[name] if len(units) == 1 else unit_charts[unit]
                thresholds[f"metric:{m}"] = float(np.log(arl0 / weight))
    levels = {}
    for signal, metrics in signal_metrics.items():
        names = [f"signal:{signal}", *(f"metric:{m}" for m in metrics)] if metrics else []
        level = np.zeros(len(rounds), dtype=np.int64)
        state = 0
        for t in range(len(rounds)):
            raw, holding = 0, False
            for n in names:
                stat, thr = charts[n][t], thresholds[n]
                raw = max(raw, 2 if stat >= thr + np.log(CRITICAL_FACTOR) else 1 if stat >= thr else 0)
                holding |= stat >= thr - CLEAR_LOG
            state = raw if raw >= state or not holding else state
            level[t] = state
        levels[signal] = level
    null_level = {m: (float(null.mean[null.index(m)]), float(null.sd[null.index(m)] * null.spread))
                  for ms in signal_metrics.values() for m in ms}
    return SequentialEvaluation(rounds, scores, charts, thresholds, signal_metrics, levels,
                                guarantee_of(null, arl0), null_level)
