r"""Template and metadata metrics of a log round: parse rate, template coverage, template, severity and component JSD.

Part of :mod:`metrics_core.logs` (its docstring states the round's layout and the uncertainty rules). The
divergences are :func:`metrics_core.clusters.jensen_shannon_divergence`, the project's one JSD (base 2).
"""

from __future__ import annotations

import numpy as np

from metrics_core._checks import _check_categories
from metrics_core.bootstrap import DEFAULT_LEVEL, Estimate, mean_estimate
from metrics_core.clusters import jensen_shannon_divergence
from metrics_core.logs.templates import _check_log_templates, _counts, match_templates

#: The category a line falls in when the log pattern did not parse its severity or component (``None`` values).
UNPARSED = "<unparsed>"


def template_parse_rate(lines, templates, *, n_boot: int = 0, level: float = DEFAULT_LEVEL,
                        seed: int = 0) -> Estimate:
    r"""Parse rate (survey §5.2): share of the round's lines that match one of the reference's templates.

    .. math:: \text{ParseRate} = \frac1N \sum_{i=1}^N 1[\exists\, t: \text{line}_i \text{ matches } t],

    matching as :func:`~metrics_core.logs.match_templates` (every constant token of the template, as many
    tokens). Range [0, 1], higher is better: lines of formats the reference never logged (a generator
    inventing messages, garbled lines) lower it; the reference against itself scores 1. The interval
    bootstraps the mean of the fixed per-line indicators.

    Args:
        lines: ``[N]`` the round's log lines (``str``).
        templates: the reference's :class:`~metrics_core.logs.LogTemplates`.
        n_boot: bootstrap replicates (0: point estimate).
        level: confidence level.
        seed: bootstrap seed.

    Example:
        >>> from metrics_core.logs import LogTemplates
        >>> t = LogTemplates((("open", "<*>"), ("close",)), (3, 1))
        >>> template_parse_rate(["open a", "open b c", "close", "halt"], t).value  # 2 of 4 match
        0.5
    """
    matched = match_templates(lines, templates) >= 0
    return mean_estimate(matched, n_boot=n_boot, level=level, seed=seed)


def template_coverage(lines, templates) -> float:
    r"""Template coverage (survey §5.3): share of the reference's templates that at least one round line matches.

    .. math:: \text{TemplateCoverage} = \frac{|\{t : \exists\, i,\ m(\text{line}_i) = t\}|}{K},

    :math:`m` the most specific matching template (:func:`~metrics_core.logs.match_templates`), :math:`K`
    the reference's templates. Range [0, 1], higher is better: a generator whose template distribution narrows
    stops emitting its rare messages, and they go uncovered. It depends on the round's size (a small round
    misses rare templates by chance), so compare rounds of one size. Point estimate (see the package
    docstring).

    Args:
        lines: ``[N]`` the round's log lines (``str``).
        templates: the reference's :class:`~metrics_core.logs.LogTemplates`.

    Example:
        >>> from metrics_core.logs import LogTemplates
        >>> t = LogTemplates((("open", "<*>"), ("close",), ("halt",)), (3, 1, 1))
        >>> template_coverage(["open a", "open b", "close", "reboot"], t)  # 2 of 3 templates
        0.6666666666666666
    """
    index = match_templates(lines, templates)
    return float(np.unique(index[index >= 0]).size) / len(templates)


def template_histograms(lines, templates) -> tuple[np.ndarray, np.ndarray]:
    r"""``([K + 1], [K + 1])`` line counts per reference template, then the unmatched, of the round and of the
    reference (whose unmatched count is 0).

    Example:
        >>> from metrics_core.logs import LogTemplates
        >>> t = LogTemplates((("open", "<*>"), ("close",)), (3, 1))
        >>> [h.tolist() for h in template_histograms(["open a", "halt", "halt"], t)]
        [[1, 0, 2], [3, 1, 0]]
    """
    templates = _check_log_templates(templates)
    index = match_templates(lines, templates)
    k = len(templates)
    round_counts = np.append(_counts(index, k), int((index < 0).sum()))
    return round_counts, np.append(np.asarray(templates.reference_counts, dtype=np.int64), 0)


def template_jsd(lines, templates) -> float:
    r"""Jensen-Shannon divergence (Lin 1991), base 2, of the round's and the reference's template distributions.

    .. math:: \text{TemplateJSD} = \tfrac12 \mathrm{KL}(r \,\Vert\, m) + \tfrac12 \mathrm{KL}(q \,\Vert\, m),
        \quad m = \tfrac12 (r + q),

    :math:`r` the round's line shares over the :math:`K` reference templates plus one "unmatched" bucket
    (lines matching none), :math:`q` the reference's shares (``reference_counts``; its unmatched share is 0).
    Range [0, 1], lower is better: 0 when the round uses the templates as often as the reference, 1 when no
    line matches. A collapsing generator concentrates on a few templates and raises it. Point estimate.

    Args:
        lines: ``[N]`` the round's log lines (``str``).
        templates: the reference's :class:`~metrics_core.logs.LogTemplates`.

    Example:
        >>> from metrics_core.logs import LogTemplates
        >>> t = LogTemplates((("open", "<*>"), ("close",)), (1, 1))
        >>> template_jsd(["open a", "close"], t), template_jsd(["halt"], t)
        (0.0, 1.0)
        >>> round(template_jsd(["open a", "open b"], t), 6)  # r = (1, 0, 0), q = (1/2, 1/2, 0)
        0.311278
    """
    return jensen_shannon_divergence(*template_histograms(lines, templates))


def category_histograms(round_values, reference_values, name: str = "round_values",
                        reference_name: str = "reference_values") -> tuple[list, np.ndarray, np.ndarray]:
    r"""The union of both sides' categories (sorted, :data:`UNPARSED` for ``None`` last) and each side's counts.

    Example:
        >>> category_histograms(["INFO", None, "INFO"], ["WARN", "INFO"])
        (['INFO', 'WARN', '<unparsed>'], array([2, 0, 1]), array([1, 1, 0]))
    """
    values = _check_categories(round_values, name)
    reference = _check_categories(reference_values, reference_name)
    named = sorted({v for v in values + reference if v is not None})
    categories = named + ([None] if None in values or None in reference else [])
    position = {c: i for i, c in enumerate(categories)}

    def counts(vs: list) -> np.ndarray:
        return np.bincount([position[v] for v in vs], minlength=len(categories))

    shown = [UNPARSED if c is None else c for c in categories]
    return shown, counts(values), counts(reference)


def _category_jsd(round_values, reference_values, field: str) -> float:
    _, p, q = category_histograms(round_values, reference_values, f"round_{field}", f"reference_{field}")
    return jensen_shannon_divergence(p, q)


def severity_jsd(round_values, reference_values) -> float:
    r"""Jensen-Shannon divergence (Lin 1991), base 2, of the round's and the reference's severity distributions.

    .. math:: \text{SeverityJSD} = \mathrm{JSD}_2(p_\text{round}, p_\text{ref}),

    :math:`p` the share of lines at each severity level (``"INFO"``, ``"ERROR"``, ...: the ``severity`` group
    of the log pattern) over the union of the levels either side shows; a line the pattern did not parse
    (``None``) counts in one extra category, "unparsed" (so a round of unparseable lines diverges too). Levels
    are compared as strings, exactly. Range [0, 1], lower is better; 0 for equal distributions. Collapse shows
    as one level taking over (the generator's common messages are INFO, its rare ones WARN and ERROR). Point
    estimate.

    Args:
        round_values: ``[N]`` each round line's severity, ``str`` or ``None`` (not parsed).
        reference_values: ``[N_ref]`` each reference line's, likewise.

    Example:
        >>> severity_jsd(["INFO", "ERROR"], ["ERROR", "INFO", "INFO", "ERROR"]), severity_jsd(["INFO"], [None])
        (0.0, 1.0)
    """
    return _category_jsd(round_values, reference_values, "severity")


def component_jsd(round_values, reference_values) -> float:
    r"""Jensen-Shannon divergence (Lin 1991), base 2, of the round's and the reference's component distributions.

    .. math:: \text{ComponentJSD} = \mathrm{JSD}_2(p_\text{round}, p_\text{ref}),

    :math:`p` the share of lines logged by each component (``"sshd"``, ``"kernel"``, ...: the ``component``
    group of the log pattern) over the union of both sides' components, ``None`` (not parsed) counting in one
    "unparsed" category, as :func:`severity_jsd`. Range [0, 1], lower is better. Point estimate.

    Args:
        round_values: ``[N]`` each round line's component, ``str`` or ``None`` (not parsed).
        reference_values: ``[N_ref]`` each reference line's, likewise.

    Example:
        >>> round(component_jsd(["sshd", "sshd"], ["sshd", "kernel"]), 6)  # (1, 0) vs (1/2, 1/2)
        0.311278
    """
    return _category_jsd(round_values, reference_values, "component")
