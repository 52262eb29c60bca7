r"""Scoring a detector on the benchmark: lead time, false alarms, ROC-AUC and equal-rate thresholds.

Survey §8.1 (meta-evaluation): every detector (our alert engine, or a
baseline whose per-round score is thresholded) yields one boolean *alarm
state* series per run, ``alarms[r]`` = "an alarm is raised at audited round
``r``". The definitions below are the benchmark's; each function restates the
part it implements.

**Collapse runs.** The detection is the *first* raised round; its generation
``a`` is compared with the ground-truth onset generation ``o`` (the first
generation past onset, :class:`~monitor.meta_evaluation.trace.LoopTrace`):
lead time :math:`\ell = o - a` (positive: early). A run whose loop reaches
onset but whose detector never alarms is a **miss**. A run whose loop never
reaches onset has no lead time and is neither a hit nor a miss: leave it out
of :func:`summarise_lead_times` (its alarms still show in the ROC-AUC).

* Lead-time quantiles are over the *detected* runs (late detections give
  negative :math:`\ell` and are included), reported with the number of misses.
* :math:`P(\text{alarm before onset}) = \#\{\ell \ge 1\} / (\#\text{detected} + \#\text{missed})`:
  strictly before, because generation ``o`` is already past onset, so an alarm
  raised on it (:math:`\ell = 0`) saw collapsed data; misses count as failures.

**Control runs** (no feedback, every alarm is false). Each run is monitored
from its first round until its first raise, as an in-control run length
(:func:`monitor.engine.calibrate.arl_estimate` counts the same way): a run of
:math:`R` rounds with first raise at index :math:`i` contributes one false
alarm and :math:`i+1` rounds at risk; a run without one contributes 0 and
:math:`R` (censored). With :math:`F` false alarms in :math:`T` rounds at risk,

.. math::
    \text{false alarms per 1000 rounds} = 1000\,F/T, \qquad
    \mathrm{ARL}_0 = T/F = 1000 / \text{rate},

the exponential (geometric) MLE, so the two numbers are one quantity. Later
raises in an already alarmed control are not counted: a raised monitoring
alarm stops the loop for inspection, and an alarm state carries memory (the
engine's hysteresis, CUSUM), so what follows is not in-control monitoring.
Confidence: the exact one-sided Poisson (Garwood) upper bound on :math:`F`,
:math:`F_u = \tfrac12\chi^2_{1-\alpha}(2F+2)`; for :math:`F = 0` it is
:math:`-\ln\alpha \approx 3` ("rule of three", :math:`\alpha = 0.05`).

**Thresholded scores.** A score detector alarms on ``score >= threshold``,
passed through an ``alarm_rule`` (a map from the exceedance series to the
alarm series, e.g. :func:`sustained_rule`), the same rule on controls and
on collapse runs. :func:`threshold_for_false_alarm_rate` puts a detector at a
given false-alarm rate on the controls.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
from scipy import stats

AlarmRule = Callable[[np.ndarray], np.ndarray]
DEFAULT_CONFIDENCE = 0.95


# --------------------------------------------------------------------------
# Input checks
# --------------------------------------------------------------------------


def _check_alarms(alarms, name: str = "alarms") -> np.ndarray:
    """A non-empty 1-D boolean array (bool dtype; 0/1 integers are refused, not guessed)."""
    arr = np.asarray(alarms)
    if arr.dtype != np.bool_:
        raise ValueError(f"{name}: expected a boolean array, got dtype {arr.dtype}")
    if arr.ndim != 1 or arr.size == 0:
        raise ValueError(f"{name}: expected a non-empty 1-D boolean array [R], got shape {arr.shape}")
    return arr


def _check_scores(scores, name: str = "scores") -> np.ndarray:
    """A non-empty 1-D float array without NaN (+-inf allowed: -inf is 'no evidence')."""
    arr = np.asarray(scores)
    if arr.dtype == object or not (np.issubdtype(arr.dtype, np.floating) or np.issubdtype(arr.dtype, np.integer)):
        raise ValueError(f"{name}: expected a real-valued array, got dtype {arr.dtype}")
    arr = arr.astype(np.float64)
    if arr.ndim != 1 or arr.size == 0:
        raise ValueError(f"{name}: expected a non-empty 1-D array [R], got shape {arr.shape}")
    if np.isnan(arr).any():
        raise ValueError(f"{name}: expected no NaN, got {int(np.isnan(arr).sum())} (first at index "
                         f"{int(np.flatnonzero(np.isnan(arr))[0])}); map a missing score to -inf (never alarms)")
    return arr


def _check_generation(value, name: str) -> int | None:
    if value is None:
        return None
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, np.integer)):
        raise ValueError(f"{name}: expected an int generation or None, got {value!r}")
    if value < 0:
        raise ValueError(f"{name}: expected a generation >= 0, got {value}")
    return int(value)


def _check_confidence(confidence: float) -> float:
    if not (isinstance(confidence, (float, int)) and 0.0 < confidence < 1.0):
        raise ValueError(f"confidence: expected a float in (0, 1), got {confidence!r}")
    return float(confidence)


def _check_runs(runs, name: str) -> list:
    if isinstance(runs, np.ndarray) or not isinstance(runs, Sequence) or len(runs) == 0:
        raise ValueError(f"{name}: expected a non-empty list of per-run arrays, got {type(runs).__name__} "
                         f"of length {len(runs) if hasattr(runs, '__len__') else 'n/a'}")
    return list(runs)


# --------------------------------------------------------------------------
# Alarms and lead time
# --------------------------------------------------------------------------


def first_alarm(alarms) -> int | None:
    r"""Index of the first raised round, :math:`\min\{r : \text{alarms}_r\}`, or None when none is raised.

    Args:
        alarms: ``[R]`` boolean alarm states, ``R >= 1``.

    Example:
        >>> first_alarm([False, False, True, True]), first_alarm([False, False])
        (2, None)
    """
    arr = _check_alarms(alarms)
    hits = np.flatnonzero(arr)
    return int(hits[0]) if hits.size else None


def alarm_generation(alarms, generations) -> int | None:
    r"""Generation of the first raised round, ``generations[first_alarm(alarms)]``, or None.

    Args:
        alarms: ``[R]`` boolean alarm states.
        generations: ``[R]`` int, the audited generation of each round (``LoopTrace.generations``).

    Example:
        >>> alarm_generation([False, True, False], [0, 5, 10])
        5
    """
    arr = _check_alarms(alarms)
    gens = np.asarray(generations)
    if gens.shape != arr.shape or not np.issubdtype(gens.dtype, np.integer):
        raise ValueError(f"generations: expected an int array of shape {arr.shape} like alarms, "
                         f"got dtype {gens.dtype} shape {gens.shape}")
    idx = first_alarm(arr)
    return None if idx is None else int(gens[idx])


def lead_time(onset_generation: int | None, alarm_generation: int | None) -> int | None:
    r"""Lead time :math:`\ell = o - a` in generations (positive: the alarm came first).

    None when either is missing: no onset (the run has no lead time; leave it
    out of :func:`summarise_lead_times`) or no alarm (a miss there).

    Args:
        onset_generation: :math:`o`, first generation past onset, or None.
        alarm_generation: :math:`a`, generation of the first alarm, or None.

    Example:
        >>> lead_time(12, 9), lead_time(12, 14), lead_time(12, None), lead_time(None, 3)
        (3, -2, None, None)
    """
    onset = _check_generation(onset_generation, "onset_generation")
    alarm = _check_generation(alarm_generation, "alarm_generation")
    if onset is None or alarm is None:
        return None
    return onset - alarm


def summarise_lead_times(lead_times: Sequence[int | None], confidence: float = DEFAULT_CONFIDENCE) -> dict:
    r"""Lead-time median and IQR over detected runs, misses, and :math:`P(\text{alarm before onset})`.

    Over the runs of one loop x detector that reached onset, ``None`` = missed:

    * ``median``, ``q25``, ``q75``: quantiles of :math:`\ell` over the detected
      runs (numpy's linear interpolation, Hyndman-Fan type 7); NaN if none;
    * ``n_detected``, ``n_missed``, ``n_runs``;
    * ``n_before_onset`` :math:`=\#\{\ell \ge 1\}` (strictly before: at
      :math:`\ell=0` the alarm saw the first collapsed generation);
    * ``p_alarm_before_onset`` :math:`= \#\{\ell\ge1\}/n_{\text{runs}}`, misses counted as failures;
    * ``p_alarm_before_onset_lower``: one-sided Clopper-Pearson lower bound at
      ``confidence``, :math:`B^{-1}(\alpha; k, n-k+1)` (0 when :math:`k=0`), to
      read a "at least 90% of seeds" target against.

    Args:
        lead_times: per run, :func:`lead_time` (an int) or None for a miss.
        confidence: level of the lower bound.

    Example:
        >>> s = summarise_lead_times([4, 2, -1, None])
        >>> s["median"], s["q25"], s["q75"], s["n_detected"], s["n_missed"], s["p_alarm_before_onset"]
        (2.0, 0.5, 3.0, 3, 1, 0.5)
    """
    confidence = _check_confidence(confidence)
    if isinstance(lead_times, np.ndarray) or not isinstance(lead_times, Sequence) or len(lead_times) == 0:
        raise ValueError(f"lead_times: expected a non-empty list of int or None, got {lead_times!r}")
    detected = []
    for i, v in enumerate(lead_times):
        if v is None:
            continue
        if isinstance(v, (bool, np.bool_)) or not isinstance(v, (int, np.integer)):
            raise ValueError(f"lead_times[{i}]: expected an int or None, got {v!r}")
        detected.append(int(v))
    n = len(lead_times)
    k = sum(1 for v in detected if v >= 1)
    if detected:
        q25, median, q75 = (float(q) for q in np.percentile(np.asarray(detected, dtype=np.float64), [25, 50, 75]))
    else:
        q25 = median = q75 = float("nan")
    lower = float(stats.beta.ppf(1.0 - confidence, k, n - k + 1)) if k > 0 else 0.0
    return {
        "median": median, "q25": q25, "q75": q75,
        "n_runs": n, "n_detected": len(detected), "n_missed": n - len(detected),
        "n_before_onset": k, "p_alarm_before_onset": k / n, "p_alarm_before_onset_lower": lower,
    }


# --------------------------------------------------------------------------
# False alarms on controls
# --------------------------------------------------------------------------


def _events_and_exposure(first_alarms: list[int | None], lengths: list[int]) -> tuple[int, int]:
    """False alarms (runs that raised) and rounds at risk (up to and including the first raise)."""
    events = sum(1 for f in first_alarms if f is not None)
    exposure = sum(length if f is None else f + 1 for f, length in zip(first_alarms, lengths))
    return events, exposure


def false_alarm_summary(control_alarms: Sequence, confidence: float = DEFAULT_CONFIDENCE) -> dict:
    r"""False alarms per 1,000 control rounds and :math:`\mathrm{ARL}_0`, with one-sided bounds.

    Each control run is at risk from its first round until its first raise
    (inclusive): :math:`F` = runs that raised, :math:`T = \sum_{\text{runs}}
    (\text{first raise} + 1 \text{ or } R)`. Then

    .. math::
        \text{rate} = 1000\,F/T,\quad \mathrm{ARL}_0 = T/F\ (\infty \text{ if } F=0),\quad
        F_u = \tfrac12\chi^2_{c}(2F+2),\quad
        \text{rate}_u = 1000\,F_u/T,\quad \mathrm{ARL}_{0,l} = T/F_u,

    :math:`F_u` the exact (Garwood) one-sided Poisson upper bound at
    confidence :math:`c` (:math:`-\ln(1-c) \approx 3` for :math:`F=0`, the rule of three).

    Args:
        control_alarms: per control run, ``[R_i]`` boolean alarm states.
        confidence: level of the bounds.

    Returns:
        dict with ``n_runs``, ``n_rounds`` (all rounds), ``rounds_at_risk``,
        ``n_false_alarms``, ``rate_per_1000``, ``rate_per_1000_upper``,
        ``arl0``, ``arl0_lower``.

    Example:
        >>> # raise at index 1 (2 rounds at risk) + a clean run of 8: F = 1, T = 10
        >>> s = false_alarm_summary([[False, True, True], [False] * 8])
        >>> s["n_false_alarms"], s["rounds_at_risk"], s["rate_per_1000"], s["arl0"]
        (1, 10, 100.0, 10.0)
    """
    confidence = _check_confidence(confidence)
    runs = [_check_alarms(a, f"control_alarms[{i}]")
            for i, a in enumerate(_check_runs(control_alarms, "control_alarms"))]
    events, exposure = _events_and_exposure([first_alarm(a) for a in runs], [len(a) for a in runs])
    upper = 0.5 * float(stats.chi2.ppf(confidence, 2 * events + 2))
    return {
        "n_runs": len(runs),
        "n_rounds": int(sum(len(a) for a in runs)),
        "rounds_at_risk": exposure,
        "n_false_alarms": events,
        "rate_per_1000": 1000.0 * events / exposure,
        "rate_per_1000_upper": 1000.0 * upper / exposure,
        "arl0": exposure / events if events else float("inf"),
        "arl0_lower": exposure / upper,
    }


# --------------------------------------------------------------------------
# Thresholded scores
# --------------------------------------------------------------------------


def sustained_rule(rounds: int) -> AlarmRule:
    r"""Alarm rule "raised once the score has exceeded for ``rounds`` consecutive rounds".

    :math:`\text{alarm}_r = \bigwedge_{s=r-k+1}^{r} \text{exceed}_s` (False for
    :math:`r < k-1`), the engine's ``sustain_rounds`` raise logic
    (:func:`monitor.engine.alerts.first_raise_index`). ``rounds=1`` is the identity.
    Monotone: more exceedances never delay a raise, as
    :func:`threshold_for_false_alarm_rate` requires.

    Args:
        rounds: :math:`k \ge 1`.

    Example:
        >>> sustained_rule(2)(np.array([True, False, True, True, True])).tolist()
        [False, False, False, True, True]
    """
    if isinstance(rounds, (bool, np.bool_)) or not isinstance(rounds, (int, np.integer)) or rounds < 1:
        raise ValueError(f"rounds: expected an int >= 1, got {rounds!r}")
    k = int(rounds)

    def rule(exceed: np.ndarray) -> np.ndarray:
        held = np.cumsum(exceed, dtype=np.int64)
        held[k:] -= held[:-k].copy()  # exceedances in the trailing window of k rounds
        return held >= k

    return rule


def alarms_from_scores(scores, threshold: float, alarm_rule: AlarmRule | None = None) -> np.ndarray:
    r"""Alarm states of the detector :math:`\text{rule}(\text{score}_r \ge t)`.

    :math:`t=+\infty` means "never alarms" (all False, even for scores of
    :math:`+\infty`): it is what :func:`threshold_for_false_alarm_rate`
    returns when no threshold meets the rate. :math:`t = -\infty` alarms on
    every round (before the rule).

    Args:
        scores: ``[R]`` per-round scores, higher = more alarming, no NaN.
        threshold: :math:`t`.
        alarm_rule: map ``exceed [R] bool -> alarms [R] bool`` (None: identity).

    Example:
        >>> alarms_from_scores(np.array([0.2, 0.7, 0.5]), 0.5).tolist()
        [False, True, True]
    """
    arr = _check_scores(scores)
    t = float(threshold)
    if np.isnan(t):
        raise ValueError("threshold: expected a float or +-inf, got NaN")
    exceed = np.zeros(arr.shape, dtype=bool) if t == np.inf else arr >= t
    if alarm_rule is None:
        return exceed
    out = np.asarray(alarm_rule(exceed))
    if out.dtype != np.bool_ or out.shape != arr.shape:
        raise ValueError(f"alarm_rule: expected a boolean array of shape {arr.shape}, got dtype {out.dtype} "
                         f"shape {out.shape}")
    return out


def threshold_for_false_alarm_rate(
    control_scores: Sequence, rate_per_1000: float, alarm_rule: AlarmRule | None = None
) -> float:
    r"""Smallest threshold :math:`t` whose control false-alarm rate is at most ``rate_per_1000``.

    The detector is :func:`alarms_from_scores` ``(score, t, alarm_rule)``, its
    rate on the controls :math:`1000\,F(t)/T(t)` (:func:`false_alarm_summary`).
    Returns :math:`\min\{t : 1000\,F(t) \le \text{rate}\cdot T(t)\}` over the floats:

    The alarms change only where :math:`t` crosses a control score. With the
    distinct control scores :math:`v_0 < \dots < v_{K-1}`, every
    :math:`t\in(v_{j-1}, v_j]` alarms exactly like :math:`v_j`, and the
    smallest float in that class is ``nextafter(v_{j-1}, +inf)``; the first
    class is :math:`t=-\infty` (every round exceeds), the last
    ``nextafter(v_{K-1}, +inf)`` (no round exceeds). So the result is
    :math:`-\infty`, or just above a control score, never the score itself: a
    collapse-loop score tied with that control score does not alarm, anything
    above it does. Of all thresholds meeting the rate on the controls this one
    is the most sensitive on the collapse loops, i.e. the most favourable to
    the baseline, so an equal-rate comparison is conservative for our engine.

    For a monotone ``alarm_rule`` (more exceedances never delay the first
    raise, e.g. :func:`sustained_rule`), :math:`F` is non-increasing and
    :math:`T` non-decreasing in :math:`t`, so the rate is non-increasing and the
    classes are bisected (:math:`O(\log K)` evaluations). If even "no round
    exceeds" breaks the rate (only possible with :math:`+\infty` control
    scores or a rule that raises without exceedances) the result is
    :math:`+\infty`: never alarm.

    Args:
        control_scores: per control run, ``[R_i]`` scores (no NaN; -inf allowed).
        rate_per_1000: target false raise events per 1,000 rounds at risk, ``>= 0``
            (e.g. the engine's own rate, or a target such as 1 when it has none).
        alarm_rule: the raise rule (None: identity), the same as on the collapse runs.

    Example:
        >>> # controls [0.1, 0.5, 0.3], [0.2, 0.4, 0.9]: above 0.5 one alarm (at 0.9) in 3 + 3 rounds
        >>> # = 167/1000 <= 200; at or below 0.5 two alarms in 2 + 3 rounds = 400/1000
        >>> t = threshold_for_false_alarm_rate([np.array([0.1, 0.5, 0.3]), np.array([0.2, 0.4, 0.9])], 200.0)
        >>> t > 0.5, t - 0.5 == 2.0**-53  # the next float above 0.5 (t = 0.5 would alarm on 0.5)
        (True, True)
    """
    runs = [_check_scores(s, f"control_scores[{i}]")
            for i, s in enumerate(_check_runs(control_scores, "control_scores"))]
    rate = float(rate_per_1000)
    if not (np.isfinite(rate) and rate >= 0.0):
        raise ValueError(f"rate_per_1000: expected a finite float >= 0, got {rate_per_1000!r}")
    values = np.unique(np.concatenate(runs))
    # candidates[j]: the smallest threshold of class j (see docstring), increasing in j
    candidates = np.concatenate([[-np.inf], np.nextafter(values, np.inf)])
    lengths = [len(s) for s in runs]

    def meets(t: float) -> bool:
        events, exposure = _events_and_exposure([first_alarm(alarms_from_scores(s, t, alarm_rule)) for s in runs],
                                                lengths)
        return 1000.0 * events <= rate * exposure  # multiplied out: no rounding of the ratio

    if not meets(float(candidates[-1])):
        return float("inf")
    lo, hi = -1, len(candidates) - 1  # meets(candidates[hi]) holds; lo = -1 a virtual failing class
    while hi - lo > 1:
        mid = (lo + hi) // 2
        if meets(float(candidates[mid])):
            hi = mid
        else:
            lo = mid
    return float(candidates[hi])


# --------------------------------------------------------------------------
# ROC-AUC
# --------------------------------------------------------------------------


def past_onset_labels(generations, onset_generation: int | None) -> np.ndarray:
    r"""Per round, "past onset": :math:`\text{generation}_r \ge o` (all False when :math:`o` is None).

    Args:
        generations: ``[R]`` int audited generations.
        onset_generation: :math:`o` (``LoopTrace.onset``), or None for controls and runs without onset.

    Example:
        >>> past_onset_labels(np.array([0, 2, 4, 6]), 4).tolist()
        [False, False, True, True]
    """
    gens = np.asarray(generations)
    if gens.ndim != 1 or gens.size == 0 or not np.issubdtype(gens.dtype, np.integer):
        raise ValueError(f"generations: expected a non-empty 1-D int array, got dtype {gens.dtype} shape {gens.shape}")
    onset = _check_generation(onset_generation, "onset_generation")
    return np.zeros(gens.shape, dtype=bool) if onset is None else gens >= onset


def _midranks(x: np.ndarray) -> np.ndarray:
    """1-based ranks, tied values sharing the mean of their ranks."""
    order = np.argsort(x, kind="stable")
    xs = x[order]
    starts = np.flatnonzero(np.concatenate([[True], xs[1:] != xs[:-1]]))
    ends = np.concatenate([starts[1:], [len(xs)]])
    # ranks starts+1 .. ends: mean (starts + 1 + ends) / 2
    sorted_ranks = np.repeat((starts + 1 + ends) / 2.0, ends - starts)
    ranks = np.empty(len(x))
    ranks[order] = sorted_ranks
    return ranks


def roc_auc(scores, labels) -> float:
    r"""Area under the ROC curve via the Mann-Whitney U statistic (ties count one half).

    .. math::
        \mathrm{AUC} = \frac{U}{n_1 n_0}
            = \frac{\sum_{i:\,y_i=1}\operatorname{rank}(s_i) - n_1(n_1+1)/2}{n_1 n_0}
            = P(s^+ > s^-) + \tfrac12 P(s^+ = s^-),

    with midranks for tied scores (Mann & Whitney 1947; Hanley & McNeil
    1982). Equal to ``sklearn.metrics.roc_auc_score``. Scores may be
    :math:`\pm\infty` (ranked at the ends), not NaN.

    Args:
        scores: ``[n]`` per-round scores, higher = more alarming.
        labels: ``[n]`` boolean, True = positive ("past onset"); both classes needed.

    Example:
        >>> # positives {0.8, 0.4}, negatives {0.4, 0.1}: pairs win 1 + 1 + 0.5 (tie) + 1 = 3.5 of 4
        >>> roc_auc(np.array([0.8, 0.4, 0.4, 0.1]), np.array([True, True, False, False]))
        0.875
    """
    s = _check_scores(scores)
    y = _check_alarms(labels, "labels")
    if y.shape != s.shape:
        raise ValueError(f"labels: expected shape {s.shape} like scores, got {y.shape}")
    n1 = int(y.sum())
    n0 = len(y) - n1
    if n1 == 0 or n0 == 0:
        raise ValueError(f"labels: ROC-AUC needs both classes, got {n1} positive and {n0} negative")
    u = _midranks(s)[y].sum() - n1 * (n1 + 1) / 2.0
    return float(u / (n1 * n0))


def pooled_roc_auc(runs: Sequence[tuple]) -> float:
    r"""ROC-AUC of per-round scores against "past onset", pooled over runs.

    All rounds of all runs form one sample (controls and pre-onset rounds as
    negatives); :func:`roc_auc` of the concatenation. Pooling compares scores
    across runs, so a score must mean the same in every run.

    Args:
        runs: ``[(scores [R_i], past_onset [R_i]), ...]`` (:func:`past_onset_labels`).

    Example:
        >>> pooled_roc_auc([(np.array([0.1, 0.9]), np.array([False, True])),
        ...                 (np.array([0.5, 0.2]), np.array([False, False]))])
        1.0
    """
    pairs = _check_runs(runs, "runs")
    scores, labels = [], []
    for i, pair in enumerate(pairs):
        if not (isinstance(pair, tuple) and len(pair) == 2):
            raise ValueError(f"runs[{i}]: expected a (scores, past_onset) tuple, got {type(pair).__name__}")
        s = _check_scores(pair[0], f"runs[{i}] scores")
        y = _check_alarms(pair[1], f"runs[{i}] past_onset")
        if s.shape != y.shape:
            raise ValueError(f"runs[{i}]: scores shape {s.shape} and past_onset shape {y.shape} differ")
        scores.append(s)
        labels.append(y)
    return roc_auc(np.concatenate(scores), np.concatenate(labels))
