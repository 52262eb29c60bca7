r"""Agent-trajectory metrics: execution and success rates, progress, action diversity, episode-shape fidelity.

Model collapse in agent data shows as trajectories that converge on one action sequence (falling action
diversity, episodes repeating each other), failing steps and goals, and episode lengths and returns that drift
from the reference's (LLM Data Auditor survey §7.2 validity, §7.3 diversity). Every metric here is a pure
function of the round's episodes (and, for the fidelity ones, of the reference's); :func:`agent_suite` computes
all of them from two :class:`Episodes`.

A round is a list of episodes; the functions take their fields as parallel sequences (one item per episode):

* ``actions``: ``[E]`` lists of ``str``, one action per step, at least one step; actions are compared as
  whole strings (no normalisation: the loader canonicalises non-string actions to JSON text);
* ``errors``: ``[E]`` lists of ``bool``, one per step: the step raised an error;
* ``rewards``: ``[E]`` lists of finite numbers, one per step, or ``None`` for an episode without rewards;
  an episode's return is the sum of its step rewards;
* ``success``: ``[E]`` ``bool`` or ``None`` (not reported);
* ``goals_achieved``, ``goals_total``: ``[E]`` ``int`` or ``None`` (both ``None``: no goals declared;
  else ``0 <= achieved <= total`` and ``total >= 1``).

A metric that needs a field no episode reports (success, goals, rewards) is undefined: it raises ValueError
naming the field, and :func:`agent_suite` leaves it out, as the reasoning modality leaves out ``pass_rate``
without a ``passed`` field.

Uncertainty: the rates are means of per-episode values and return a
:class:`~metrics_core.bootstrap.Estimate` whose interval resamples episodes (a trajectory's steps are not
independent): :func:`exec_rate` is a ratio of per-episode sums, :func:`success_rate` and
:func:`percent_complete` means over the reporting episodes, :func:`duplicate_episode_rate` the mean of its
fixed per-episode indicators (as for the text exact-duplicate rate). The n-gram metrics (distinct-n, entropy)
and the KS statistics are point estimates (``float``), as in :mod:`metrics_core.text`: resampling duplicates
episodes, which by itself lowers the diversity values and raises a KS distance, so a plain bootstrap interval
would not even cover the estimate.

The package holds :mod:`~metrics_core.agents.episodes` (the :class:`Episodes` container),
:mod:`~metrics_core.agents.validity`, :mod:`~metrics_core.agents.diversity`,
:mod:`~metrics_core.agents.fidelity` and :mod:`~metrics_core.agents.suite`.
"""

from metrics_core.agents.episodes import Episodes  # noqa: F401
from metrics_core.agents.validity import exec_rate, percent_complete, success_rate  # noqa: F401
from metrics_core.agents.diversity import (  # noqa: F401
    action_distinct_n,
    action_entropy,
    duplicate_episode_indicator,
    duplicate_episode_rate,
)
from metrics_core.agents.fidelity import (  # noqa: F401
    episode_length_ks,
    episode_lengths,
    episode_return_ks,
    episode_returns,
)
from metrics_core.agents.suite import AGENT_METRIC_NAMES, agent_suite  # noqa: F401
