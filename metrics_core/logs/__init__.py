r"""Log metrics: template parse rate and coverage, template, severity and component divergences (survey §5.2-5.3).

Model collapse in generated logs shows as a generator that keeps emitting its common messages and forgets its
rare ones (falling template coverage, a template distribution drifting from the reference's), and as lines of
formats no real system wrote (a falling parse rate). Templates are mined from the reference with Drain (He et
al. 2017, ICWS; the Drain3 library) and every round is read against them; :func:`log_suite` computes every
metric of a round.

A round is a list of log lines, the functions taking:

* ``lines``: ``[N]`` ``str``, one log line each (the loader skips blank lines; a line is tokenised by
  whitespace after the templates' masking, see :mod:`~metrics_core.logs.templates`);
* ``templates``: the reference's :class:`LogTemplates` (:func:`fit_log_templates`), fitted once per
  reference: the round-independent state, as :class:`metrics_core.clusters.ClusterReference` is for embeddings;
* ``round_severity`` / ``reference_severity`` and ``round_component`` / ``reference_component``: ``[N]``
  ``str`` or ``None``, one per line, what a log pattern's ``severity`` and ``component`` named groups captured
  (``None``: the pattern did not parse the line; such lines count in an "unparsed" category).

Uncertainty: :func:`template_parse_rate` is the mean of fixed per-line indicators and returns a
:class:`~metrics_core.bootstrap.Estimate` whose interval resamples lines. Coverage and the divergences are point
estimates (``float``), as the distribution metrics of :mod:`metrics_core.text`: resampling lines duplicates
some and drops others, which by itself lowers coverage and raises a divergence, so a plain bootstrap interval
would not even cover the estimate.

The package holds :mod:`~metrics_core.logs.templates` (fitting and matching), :mod:`~metrics_core.logs.metrics`
and :mod:`~metrics_core.logs.suite`. drain3 is needed only to fit templates, and imported there.
"""

from metrics_core.logs.templates import (  # noqa: F401
    DRAIN3_MISSING,
    WILDCARD,
    LogTemplates,
    fit_log_templates,
    match_templates,
    tokenize,
)
from metrics_core.logs.metrics import (  # noqa: F401
    UNPARSED,
    category_histograms,
    component_jsd,
    severity_jsd,
    template_coverage,
    template_histograms,
    template_jsd,
    template_parse_rate,
)
from metrics_core.logs.suite import LOG_METRIC_NAMES, log_suite  # noqa: F401
