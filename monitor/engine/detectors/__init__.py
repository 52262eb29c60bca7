"""Sequential detectors, one per module behind :class:`~monitor.engine.detectors.base.Detector`."""

from monitor.engine.detectors.adaptive_e_cusum import AdaptiveECusum
from monitor.engine.detectors.base import Detector
from monitor.engine.detectors.e_cusum import (
    DEFAULT_DELTA_WEIGHTS, DEFAULT_DELTAS, ECusum, delta_weights, log_mgf_upper_bound,
)
from monitor.engine.detectors.run_length import siegmund_arl

__all__ = ["AdaptiveECusum", "DEFAULT_DELTA_WEIGHTS", "DEFAULT_DELTAS", "delta_weights", "Detector", "ECusum", "log_mgf_upper_bound", "siegmund_arl"]
