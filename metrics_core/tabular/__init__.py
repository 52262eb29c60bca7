r"""Tabular fidelity, validity and coverage of a round's table against a reference table.

The metrics follow the LLM Data Auditor survey (§4.2 validity and fidelity,
§4.3 CovGap) and TabSyn's low-order-statistics protocol (Zhang et al. 2024,
"Mixed-type tabular data synthesis with score-based diffusion in latent
space", ICLR 2024, App. E.3), which reads SDMetrics' column shapes (KS, TVD)
and column pair trends (correlation and contingency similarity).

**Schema.** :func:`infer_schema` calls a column *numeric* when it has an
integer or float dtype and more than ``max_categorical_levels`` (default 20)
distinct non-null values, and *categorical* otherwise (bool, object, string
and category dtypes always). ``overrides`` force a kind per column.

**The fitted reference.** :func:`fit_tabular_reference` stores everything a
round is compared with: sorted numeric values (KS), means and standard
deviations (:func:`encode_rows`), quantile bin edges (contingency tables),
the categories and their counts (TVD, chi-squared, coverage, CovGap), the
Pearson correlations, a level code for every reference cell and the encoded
reference rows for DetScore, so a round is scored without the reference table.

**Level codes.** Every cell is mapped to an integer level: a categorical
column with :math:`K` reference categories uses ``0..K-1`` for them, ``K``
for null and ``K+1`` for any value the reference never holds ("unseen"); a
numeric column uses its quantile bins ``0..B-1`` and ``B`` for null. Merging
all unseen values into one level leaves every total variation distance
unchanged: on cells where the reference has mass 0,
:math:`\sum_c |0 - S_c| = |0 - \sum_c S_c|`.

**Nulls.** KS and Pearson drop them (per column, and pairwise-complete rows
per pair); TVD, CovGap and contingency tables count null as one more category
(or bin); chi-squared counts null as a category when the reference has nulls
and as unseen otherwise; category coverage counts non-null reference
categories only; :func:`encode_rows` maps a null to zeros. A reference or
round column that is entirely null, a missing reference column in the round
and a numeric reference column that is not numeric in the round are refused.
Round columns absent from the schema are ignored and listed.

The package holds one module per family: :mod:`~metrics_core.tabular.schema`,
:mod:`~metrics_core.tabular.reference`, :mod:`~metrics_core.tabular.marginals`,
:mod:`~metrics_core.tabular.pairs`, :mod:`~metrics_core.tabular.chi2`, :mod:`~metrics_core.tabular.detection`,
:mod:`~metrics_core.tabular.coverage`, :mod:`~metrics_core.tabular.constraints`,
:mod:`~metrics_core.tabular.suite`.
"""

from metrics_core.tabular.schema import (  # noqa: F401
    CATEGORICAL,
    DEFAULT_CHI2_ALPHA,
    DEFAULT_DET_MAX_ROWS,
    DEFAULT_MAX_CATEGORICAL_LEVELS,
    DEFAULT_MAX_ITER,
    DEFAULT_MIN_EXPECTED,
    DEFAULT_N_BINS,
    DEFAULT_N_SPLITS,
    DEFAULT_RARE_SHARE,
    KINDS,
    NUMERIC,
    TableSchema,
    infer_schema,
)
from metrics_core.tabular.reference import (  # noqa: F401
    TabularReference,
    encode_rows,
    encoded_feature_names,
    fit_tabular_reference,
)
from metrics_core.tabular.marginals import (  # noqa: F401
    ks_statistics,
    tvd_distances,
)
from metrics_core.tabular.pairs import (  # noqa: F401
    PairScore,
    contingency_score,
    pearson_score,
)
from metrics_core.tabular.chi2 import (  # noqa: F401
    Chi2Result,
    chi2_tests,
)
from metrics_core.tabular.detection import (  # noqa: F401
    DetectionResult,
    detection_score,
)
from metrics_core.tabular.coverage import (  # noqa: F401
    CoverageResult,
    category_coverage,
    cov_gap,
)
from metrics_core.tabular.constraints import (  # noqa: F401
    AllowedValuesConstraint,
    Constraint,
    FunctionalDependency,
    RangeConstraint,
    UniqueConstraint,
    ViolationBaseline,
    ViolationResult,
    constraint_from_dict,
    fit_violation_baseline,
    load_constraints,
    violation_rate,
)
from metrics_core.tabular.suite import (  # noqa: F401
    TABULAR_METRICS,
    TabularResult,
    tabular_suite,
)
