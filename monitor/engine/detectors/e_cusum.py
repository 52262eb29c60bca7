r"""The e-CUSUM detector: a CUSUM of e-values, with a false-alarm guarantee that needs no simulation.

Reference: J. Shin, A. Ramdas and A. Rinaldo, "E-detectors: a nonparametric
framework for sequential change detection", New England Journal of Statistics
in Data Science (2023), Sections 2-3.

A round's score :math:`z_t` is a level deviation from the loop's null,
oriented so that large means bad, and in units of the null's standard
deviation. For each shift size :math:`\delta_k` of a grid the round's e-value is

.. math:: e_{k,t} = \exp\!\big(\delta_k (z_t - b)\big) \,/\, \hat m_k,
   \qquad \hat m_k \ge \mathbb E_0\big[e^{\delta_k z}\big],

where :math:`\hat m_k` is an upper confidence bound of the moment generating
function over the null's pseudo-rounds (their scores inflated by ``spread``,
the finite-population correction of pseudo-rounds drawn from a finite pool)
and :math:`b\ge 0` bounds how far the null's level may be off (the pool's own
sampling error). Under no feedback :math:`\mathbb E_0[e_{k,t}\mid\text{past}]\le 1`.
Each shift runs the CUSUM e-detector
:math:`M_{k,t} = e_{k,t}\max(M_{k,t-1}, 1)` and the detector is their weighted
average :math:`M_t = \sum_k \pi_k M_{k,t}` (:math:`\sum_k \pi_k = 1`), an
e-detector again (averages of e-detectors are e-detectors). Alarming when :math:`M_t \ge A` gives an average
run length under the null of **at least** :math:`A` rounds (Shin et al.,
Theorem 2.4); the state kept is :math:`\log M_{k,t}`.

A missing score (the metric was undefined that round) has :math:`e = 1`.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from monitor.engine.detectors.base import Detector

DEFAULT_DELTAS = (0.25, 0.5, 1.0, 2.0)
# The MGF at delta = 2 is dominated by null scores near 2, which a thousand pseudo-rounds show; beyond
# that it rests on tails they cannot show. Larger shifts still cross quickly at delta = 2.
DEFAULT_DELTA_WEIGHTS = (0.125, 0.125, 0.25, 0.5)
# Half the mixture on delta = 2: a loop that collapses in a few audits needs each round's evidence whole
# (log 2 lost instead of log 4); a small sustained shift pays log 8 once and accumulates over many rounds.


def delta_weights(deltas, weights=None) -> np.ndarray:
    """``[K]`` mixture weights of the shifts: ``weights`` checked, else :data:`DEFAULT_DELTA_WEIGHTS` for the
    default grid and equal weights for any other.

    >>> delta_weights(DEFAULT_DELTAS).tolist(), delta_weights([1.0, 2.0]).tolist()
    ([0.125, 0.125, 0.25, 0.5], [0.5, 0.5])
    """
    deltas = np.asarray(deltas, dtype=np.float64)
    if weights is None:
        same = deltas.shape == (len(DEFAULT_DELTAS),) and np.allclose(deltas, DEFAULT_DELTAS)
        weights = DEFAULT_DELTA_WEIGHTS if same else np.full(deltas.shape, 1.0 / max(deltas.size, 1))
    weights = np.asarray(weights, dtype=np.float64)
    if weights.shape != deltas.shape or not (weights > 0).all() or abs(weights.sum() - 1.0) > 1e-9:
        raise ValueError(f"weights: expected one positive weight per shift, summing to 1, got {weights.tolist()}")
    return weights


def mixture_log_statistic(log_cusums: np.ndarray, weights: np.ndarray) -> float:
    """:math:`\\log\\sum_k \\pi_k M_{k,t}` from the per-shift :math:`\\log M_{k,t}` (``-inf`` before any round).

    >>> round(mixture_log_statistic(np.array([0.0, np.log(3.0)]), np.array([0.5, 0.5])), 4)   # log((1 + 3) / 2)
    0.6931
    """
    finite = np.isfinite(log_cusums)
    if not finite.any():
        return -np.inf
    terms = log_cusums[finite] + np.log(weights[finite])
    top = terms.max()
    return float(top + np.log(np.exp(terms - top).sum()))


def log_mgf_upper_bound(null_scores: np.ndarray, deltas, *, spread: float = 1.0, z_ucb: float = 2.0) -> np.ndarray:
    r"""Log of an upper confidence bound of :math:`\mathbb E_0[e^{\delta z}]` per shift, from null scores.

    .. math:: \hat m(\delta) = \max\Big(\bar w + z_{\mathrm{ucb}}\,\frac{s_w}{\sqrt B},\;
              e^{\delta^2 s^2 / 2}\Big), \quad w_b = e^{\delta\, s\, z_b}

    with :math:`s` = ``spread`` (the Gaussian term guards a sample whose tail is too
    short to show; the scores are standardised, so it is their MGF were they normal).

    Args:
        null_scores: ``[B]`` standardised scores of the null's pseudo-rounds (NaN ignored).
        deltas: shift sizes.
        spread: factor on the null scores' spread (finite-population correction).
        z_ucb: standard errors added to the empirical mean.

    >>> z = np.random.default_rng(0).standard_normal(20000)
    >>> bool(abs(log_mgf_upper_bound(z, [1.0])[0] - 0.5) < 0.05)
    True
    """
    z = np.asarray(null_scores, dtype=np.float64)
    z = z[np.isfinite(z)]
    if z.size < 2:
        raise ValueError(f"null_scores: expected at least 2 finite scores, got {z.size}")
    out = []
    for delta in deltas:
        w = np.exp(delta * spread * z)
        ucb = w.mean() + z_ucb * w.std(ddof=1) / np.sqrt(z.size)
        out.append(max(np.log(ucb), 0.5 * (delta * spread) ** 2))
    return np.asarray(out)


class ShiftMixture(Detector):
    """What every e-CUSUM here shares: per-shift :math:`\\log M_{k,t}` in ``log_cusums``, the CUSUM step on a
    round's log e-values (:meth:`log_evalues`, each detector's own), their mixture with ``shift_weights``, and a
    run over a stream from a fresh state."""

    deltas: np.ndarray
    log_cusums: np.ndarray
    shift_weights: np.ndarray

    def log_evalues(self, score) -> np.ndarray:
        """``[K]`` log e-values of one round (0 when it carries no score)."""
        raise NotImplementedError

    def reset(self) -> None:
        self.log_cusums = np.full(self.deltas.shape, -np.inf)  # M_0 = 0: max(M_0, 1) = 1 at the first round
        self.n_updates = 0

    def update(self, score) -> float:
        """Add one round; returns :math:`\\log M_t`."""
        self.log_cusums = np.maximum(self.log_cusums, 0.0) + self.log_evalues(score)
        self.n_updates += 1
        return self.log_statistic

    @property
    def log_statistic(self) -> float:
        """:math:`\\log M_t` (``-inf`` before the first round)."""
        return mixture_log_statistic(self.log_cusums, self.shift_weights)

    def run(self, scores) -> np.ndarray:
        """``[T]`` :math:`\\log M_t` over a stream of rounds (scores, or rows of scores), from a fresh state."""
        self.reset()
        return np.array([self.update(z) for z in np.asarray(scores, dtype=np.float64)])


@dataclass
class ECusum(ShiftMixture):
    r"""Mixture over shift sizes of CUSUM e-detectors on one standardised score stream.

    Args:
        log_mgf: ``[K]`` log upper bounds of the null MGF at ``deltas`` (:func:`log_mgf_upper_bound`).
        deltas: ``[K]`` shift sizes, in null standard deviations.
        offset: :math:`b`, how far the null's level may be off (null standard deviations).
        shift_weights: ``[K]`` mixture weights :math:`\pi_k` (:func:`delta_weights`; None: its default).

    >>> det = ECusum.from_null(np.random.default_rng(1).standard_normal(4000))
    >>> [round(det.update(z), 2) for z in (0.0, 3.0, 3.0)]
    [-0.85, 3.2, 6.81]
    >>> det.n_updates, round(det.log_statistic, 2)
    (3, 6.81)
    """

    log_mgf: np.ndarray
    deltas: np.ndarray
    offset: float = 0.0
    shift_weights: np.ndarray | None = None

    def __post_init__(self) -> None:
        self.deltas = np.asarray(self.deltas, dtype=np.float64)
        self.shift_weights = delta_weights(self.deltas, self.shift_weights)
        self.log_mgf = np.asarray(self.log_mgf, dtype=np.float64)
        if self.deltas.ndim != 1 or self.deltas.shape != self.log_mgf.shape or not (self.deltas > 0).all():
            raise ValueError(f"deltas, log_mgf: expected equal-length positive shifts, got {self.deltas}, {self.log_mgf}")
        if not np.isfinite(self.offset) or self.offset < 0:
            raise ValueError(f"offset: expected a finite value >= 0, got {self.offset}")
        self.reset()

    @classmethod
    def from_null(cls, null_scores, *, deltas=DEFAULT_DELTAS, spread: float = 1.0, offset: float = 0.0) -> "ECusum":
        """A detector whose e-values are calibrated on the null's pseudo-round scores."""
        return cls(log_mgf_upper_bound(null_scores, deltas, spread=spread), np.asarray(deltas, float), offset)

    def log_evalues(self, score: float) -> np.ndarray:
        """``[K]`` log e-values of one score (0 when the score is missing)."""
        if score is None or not np.isfinite(score):
            return np.zeros_like(self.deltas)
        return self.deltas * (float(score) - self.offset) - self.log_mgf
