r"""The log suite: every log metric of a round in one call.

Part of :mod:`metrics_core.logs` (its docstring states the round's layout and the uncertainty rules).
"""

from __future__ import annotations

from metrics_core._checks import _check_bootstrap, _check_seed, _check_texts
from metrics_core.bootstrap import DEFAULT_LEVEL, DEFAULT_N_BOOT, Estimate
from metrics_core.logs.metrics import (
    component_jsd,
    severity_jsd,
    template_coverage,
    template_jsd,
    template_parse_rate,
)
from metrics_core.logs.templates import _check_log_templates

#: The log metrics, in the registry's order (:func:`metrics_core.registry.metric_names` of ``"log"``).
LOG_METRIC_NAMES = ("template_parse_rate", "template_coverage", "template_jsd", "severity_jsd", "component_jsd")


def log_suite(
    lines,
    templates,
    *,
    round_severity=None,
    reference_severity=None,
    round_component=None,
    reference_component=None,
    n_boot: int = DEFAULT_N_BOOT,
    level: float = DEFAULT_LEVEL,
    seed: int = 0,
) -> dict[str, Estimate]:
    """Every defined log metric of one round, keyed by :data:`LOG_METRIC_NAMES`, in that order.

    ``severity_jsd`` is left out unless both ``round_severity`` and ``reference_severity`` are given (the log
    pattern has a ``severity`` group), ``component_jsd`` likewise. ``template_parse_rate`` carries a bootstrap
    interval (lines resampled, with ``seed``); the others are point estimates (``ci_low`` etc. None).

    Args:
        lines: ``[N]`` the round's log lines.
        templates: the reference's :class:`~metrics_core.logs.LogTemplates`.
        round_severity: ``[N]`` each round line's severity (``str`` or ``None``: not parsed), or ``None``.
        reference_severity: ``[N_ref]`` each reference line's severity, or ``None``.
        round_component: ``[N]`` each round line's component, or ``None``.
        reference_component: ``[N_ref]`` each reference line's component, or ``None``.
        n_boot: bootstrap replicates (0: point estimates only).
        level: confidence level.
        seed: bootstrap seed.

    Example:
        >>> from metrics_core.logs import LogTemplates
        >>> t = LogTemplates((("INFO", "open", "<*>"), ("ERROR", "halt")), (3, 1))
        >>> out = log_suite(["INFO open a", "INFO open b", "WARN odd"], t, round_severity=["INFO", "INFO", "WARN"],
        ...                 reference_severity=["INFO"] * 3 + ["ERROR"], n_boot=0)
        >>> list(out)
        ['template_parse_rate', 'template_coverage', 'template_jsd', 'severity_jsd']
        >>> round(out["template_parse_rate"].value, 4), out["template_coverage"].value
        (0.6667, 0.5)
    """
    _check_bootstrap(n_boot, level)
    seed = _check_seed(seed)
    lines = _check_texts(lines, "lines")
    templates = _check_log_templates(templates)
    out = {
        "template_parse_rate": template_parse_rate(lines, templates, n_boot=n_boot, level=level, seed=seed),
        "template_coverage": Estimate(template_coverage(lines, templates)),
        "template_jsd": Estimate(template_jsd(lines, templates)),
    }
    if round_severity is not None and reference_severity is not None:
        out["severity_jsd"] = Estimate(severity_jsd(round_severity, reference_severity))
    if round_component is not None and reference_component is not None:
        out["component_jsd"] = Estimate(component_jsd(round_component, reference_component))
    return out
