r"""Reasoning and code metrics: verified accuracy, pass@k, self-consistency, agreement, syntax, templates.

Model collapse in reasoning data shows as falling verified accuracy, samples that
agree on one answer more and more without getting it right more often, and
rationales that turn into one template with the numbers and names swapped
(LLM Data Auditor survey §3.2 reasoning, §3.3 code). Every metric here is a pure
function of the round's records; none runs generated code.

A round is a list of records with a ``question_id`` (``str`` or ``int``), a
``rationale`` and a final ``answer`` (``str``), possibly :math:`K` samples per
question; the functions take the fields as parallel sequences (one item per
record). Questions are taken in order of their first record. Final answers are
compared after :func:`normalize_answer` (numbers as exact fractions, the rest
as normalised strings). Gold answers come as a mapping question id -> answer.

Uncertainty: every rate is a mean of per-record or per-question values and
returns a :class:`~metrics_core.bootstrap.Estimate` (``n_boot=0``: the point
estimate alone). The per-question metrics and :func:`acc_verify` resample
questions, not records, since a question's samples are not independent;
:func:`syntax_valid_rate` and :func:`template_collapse_rate` resample the
per-record indicators (the latter's indicators are fixed by the whole round, as
for the exact-duplicate rate).

The package holds two modules: :mod:`~metrics_core.reasoning.answers` (final
answers) and :mod:`~metrics_core.reasoning.generations` (programs and rationales).
"""

from metrics_core.reasoning.answers import (  # noqa: F401
    MAX_EXPONENT,
    acc_verify,
    answer_agreement,
    answers_match,
    distinct_answers_per_question,
    majority_answer,
    normalize_answer,
    self_consistency_accuracy,
)
from metrics_core.reasoning.generations import (  # noqa: F401
    DEFAULT_TEMPLATE_THRESHOLD,
    NAME_MASK,
    NUM_MASK,
    SUPPORTED_LANGUAGES,
    mean_pass_at_k,
    pass_at_k,
    rationale_skeleton,
    syntax_valid_indicator,
    syntax_valid_rate,
    template_collapse_indicator,
    template_collapse_rate,
)
