r"""The adaptive e-CUSUM: one chart over several metrics whose direction follows the evidence, predictably.

References: J. Shin, A. Ramdas and A. Rinaldo, "E-detectors: a nonparametric
framework for sequential change detection", New England Journal of Statistics
in Data Science (2023), Sections 2-3 (e-detectors from predictable e-values);
G. Lorden and M. Pollak, "Nonanticipating estimation applied to sequential
analysis and changepoint detection", Annals of Statistics 33 (2005) (the
plug-in of a post-change parameter estimated from past observations only).

A round has oriented null scores :math:`z_t\in\mathbb R^K` (positive means the bad
direction, in null standard deviations; NaN where a metric is undefined). A sum
:math:`\mathbf 1^\top z_t/\sqrt{\mathbf 1^\top R\mathbf 1}` is the right statistic
when every metric moves, and dilutes a change that moves a few of them by
:math:`\sqrt K`. Here the direction is estimated from the **past** rounds only:

.. math:: a_t = \lambda\mathbf 1 + \max(\bar z_{t-1}, 0), \qquad
   \bar z_t = (1-\alpha)\,\bar z_{t-1} + \alpha z_t,\quad \bar z_0 = 0,

(an exponentially weighted mean per metric; a missing score keeps its mean), and
the round's score is the projection

.. math:: s_t = a_t^\top z_t \,/\, \sqrt{a_t^\top R\, a_t}

over the metrics defined at round :math:`t` (:math:`R`: the null's correlation).
Its e-value per shift :math:`\delta_k` is
:math:`\exp(\delta_k(s_t-b))/\hat m_{k,t}`, with :math:`\hat m_{k,t}` the upper
confidence bound of :math:`\mathbb E_0[e^{\delta_k s}]` over the null's
pseudo-rounds projected on the same :math:`a_t`
(:func:`~monitor.engine.detectors.e_cusum.log_mgf_upper_bound`) and :math:`b` the
null's offset bound. :math:`a_t` is fixed before round :math:`t` is seen, so under
no feedback :math:`\mathbb E_0[e_{k,t}\mid\text{past}]\le 1` exactly as for a fixed
direction: the CUSUM e-detectors :math:`M_{k,t}=e_{k,t}\max(M_{k,t-1},1)` and their
weighted average keep the guarantee :math:`\text{ARL}_0\ge A` of alarming at :math:`M_t\ge A`.
When all metrics move alike :math:`a_t` stays near :math:`\mathbf 1` (the sum);
when a few move, it turns towards them within a few rounds.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from monitor.engine.detectors.e_cusum import DEFAULT_DELTAS, ShiftMixture, delta_weights, log_mgf_upper_bound

DEFAULT_PRIOR = 0.5  # lambda: the equal weight every metric keeps, in null SDs of its mean score
DEFAULT_SMOOTHING = 0.5  # alpha: the direction follows about the last two rounds


@dataclass
class AdaptiveECusum(ShiftMixture):
    r"""Mixture over shift sizes of CUSUM e-detectors on a predictably weighted sum of metric scores.

    Args:
        null_scores: ``[B, K]`` oriented null scores of the metrics (NaN where undefined).
        correlation: ``[K, K]`` the null's correlation of those scores.
        deltas: shift sizes, in null standard deviations of the projection.
        offset: :math:`b`, how far the null's level may be off (null standard deviations).
        shift_weights: mixture weights of the shifts (:func:`~monitor.engine.detectors.e_cusum.delta_weights`).
        prior: :math:`\lambda`, every metric's weight before any evidence.
        smoothing: :math:`\alpha` of the direction's exponentially weighted mean.

    One metric of three moves by 4 SDs: the direction turns to it after a round, and the chart
    grows faster than one on the plain sum (:class:`~monitor.engine.detectors.e_cusum.ECusum` on
    :math:`\mathbf 1^\top z/\sqrt 3`).

    >>> from monitor.engine.detectors.e_cusum import ECusum
    >>> null = np.random.default_rng(0).standard_normal((4000, 3))
    >>> det = AdaptiveECusum(null, np.eye(3))
    >>> [round(det.update(np.array([4.0, 0.0, 0.0])), 2) for _ in range(3)]
    [1.97, 7.34, 13.12]
    >>> det.weights().round(2).tolist()
    [4.0, 0.5, 0.5]
    >>> plain = ECusum.from_null(null.sum(axis=1) / np.sqrt(3))
    >>> [round(plain.update(4.0 / np.sqrt(3)), 2) for _ in range(3)]
    [1.97, 4.14, 6.4]
    """

    null_scores: np.ndarray
    correlation: np.ndarray
    deltas: tuple = DEFAULT_DELTAS
    offset: float = 0.0
    shift_weights: tuple | None = None
    prior: float = DEFAULT_PRIOR
    smoothing: float = DEFAULT_SMOOTHING

    def __post_init__(self) -> None:
        self.null_scores = np.asarray(self.null_scores, dtype=np.float64)
        self.correlation = np.asarray(self.correlation, dtype=np.float64)
        self.deltas = np.asarray(self.deltas, dtype=np.float64)
        if self.deltas.ndim != 1 or not (self.deltas > 0).all():
            raise ValueError(f"deltas: expected positive shift sizes, got {self.deltas}")
        self.shift_weights = delta_weights(self.deltas, self.shift_weights)
        if self.null_scores.ndim != 2 or self.null_scores.shape[0] < 2:
            raise ValueError(f"null_scores: expected [B >= 2, K] scores, got shape {self.null_scores.shape}")
        k = self.null_scores.shape[1]
        if self.correlation.shape != (k, k):
            raise ValueError(f"correlation: expected shape {(k, k)}, got {self.correlation.shape}")
        if not np.isfinite(self.offset) or self.offset < 0:
            raise ValueError(f"offset: expected a finite value >= 0, got {self.offset}")
        if not self.prior > 0:
            raise ValueError(f"prior: expected a weight > 0, got {self.prior}")
        if not 0 < self.smoothing <= 1:
            raise ValueError(f"smoothing: expected a value in (0, 1], got {self.smoothing}")
        defined = np.isfinite(self.null_scores)
        self._null_filled = np.where(defined, self.null_scores, 0.0)
        # pseudo-rounds grouped by which metrics they define (nearly always one group): one norm per group
        self._patterns, self._pattern_of = np.unique(defined, axis=0, return_inverse=True)
        self._pattern_of = self._pattern_of.reshape(-1)
        self.reset()

    def reset(self) -> None:
        super().reset()
        self.direction = np.zeros(self.null_scores.shape[1])

    def weights(self) -> np.ndarray:
        """``[K]`` :math:`a_t`, the weights the next round is projected on."""
        return self.prior + np.maximum(self.direction, 0.0)

    def _null_projection(self, weights: np.ndarray, defined: np.ndarray) -> np.ndarray:
        """``[B]`` the pseudo-rounds projected as a round defined on ``defined`` is (each on its own defined
        metrics, normalised by their own variance)."""
        out = np.full(self._null_filled.shape[0], np.nan)
        for p, pattern in enumerate(self._patterns):
            a = np.where(pattern & defined, weights, 0.0)
            variance = a @ self.correlation @ a
            if variance > 0:
                rows = self._pattern_of == p
                out[rows] = self._null_filled[rows] @ a / np.sqrt(variance)
        return out

    def log_evalues(self, scores) -> np.ndarray:
        """``[K_deltas]`` log e-values of one round's scores under the current direction (0 when none is defined)."""
        z = np.asarray(scores, dtype=np.float64)
        defined = np.isfinite(z)
        if not defined.any():
            return np.zeros_like(self.deltas)
        weights = self.weights()
        a = np.where(defined, weights, 0.0)
        projection = float(a @ np.where(defined, z, 0.0) / np.sqrt(a @ self.correlation @ a))
        log_mgf = log_mgf_upper_bound(self._null_projection(weights, defined), self.deltas)
        return self.deltas * (projection - self.offset) - log_mgf

    def update(self, scores) -> float:
        """Add one round's ``[K]`` scores; returns :math:`\\log M_t`. The direction moves only afterwards."""
        z = np.asarray(scores, dtype=np.float64)
        if z.shape != self.direction.shape:
            raise ValueError(f"scores: expected {self.direction.size} metric scores, got shape {z.shape}")
        log_statistic = super().update(z)
        defined = np.isfinite(z)
        self.direction[defined] += self.smoothing * (z[defined] - self.direction[defined])
        return log_statistic
