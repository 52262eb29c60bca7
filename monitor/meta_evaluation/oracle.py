r"""The oracle detector: a likelihood-ratio e-CUSUM that knows every generation's true model.

For an audited round :math:`X_g = (x_1, \dots, x_n)` of generation ``g`` the oracle's log e-value is

.. math:: \log e_g = \sum_{x \in X_g} \bigl[\log p_g(x) - \log p_0(x)\bigr],

the log-likelihood ratio of the round under generation ``g``'s true model against generation
0's. The models are fixed before the round is drawn (they depend on the training
dynamics, not on the audit streams), so under the null "the round is drawn from
:math:`p_0`" :math:`E_{p_0}[e_g] = \int_{p_0 > 0} p_g \le 1`, with equality when
:math:`p_g \ll p_0`: an exact e-value, and under no feedback (C0) :math:`p_g = p_0` and
:math:`\log e_g = 0` exactly. The alarm is the e-CUSUM (the CUSUM of the log e-values),

.. math:: S_t = \max(S_{t-1}, 0) + \log e_t,\quad S_{-1} = 0,

raised at the first audited round with :math:`S_t \ge \log(\text{ARL}_0)` (default
:math:`\text{ARL}_0 = 1000`). :math:`e^{S_t} = \max(e^{S_{t-1}}, 1)\, e_t` is the e-CUSUM e-detector
of Shin, Ramdas & Rinaldo (2024, "E-detectors"): with independent rounds and
:math:`E_{p_0} e_t \le 1` its expected run length to a false alarm is at least :math:`\text{ARL}_0`.
A round with :math:`e_t = 0` gives :math:`S_t = -\infty` (the next round restarts from 0).

What :math:`p_g` is, per family (models regenerated from the seed by the loop modules'
parameter functions, never estimated from audited data):

* L1: :math:`N(\mu_g, \Sigma_g)` (:func:`~monitor.meta_evaluation.loops.gaussian_refit_parameters`,
  :func:`~monitor.meta_evaluation.drift.drift_gaussian_parameters`); eigenvalues of a numerically
  singular late covariance are floored at the smallest positive double.
* L2: the mixture density (:func:`~monitor.meta_evaluation.loops.gmm_refit_models`,
  :func:`~monitor.meta_evaluation.drift.drift_gmm_models`).
* L3: the categorical token probabilities of the rendered documents, token ``"w<i>"`` = word
  ``i - 1`` (:func:`~monitor.meta_evaluation.loops.zipf_refit_distributions`,
  :func:`~monitor.meta_evaluation.drift.drift_zipf_distributions`); rounds are drawn from :math:`p_g`
  itself (not its temperature law). :math:`p_0` is a Zipf law with full support, so a word
  with :math:`p_0 = 0 < p_g` cannot occur; it is checked (AssertionError).
* L4: sentence probabilities of the bigram (n-gram) model at the sampling temperature
  :math:`\tau` the run used, conditioned on the length cap the sampler enforces:
  :math:`\log p(s) = \sum_t \log P_\tau(w_t \mid h_t) - \log P_\tau(L \le L_{\max})`, the
  acceptance probability computed exactly by propagating the history distribution
  :math:`L_{\max} + 1` steps. Refits only remove n-grams under L4 and C1, so
  :math:`\operatorname{supp} p_g \subseteq \operatorname{supp} p_0`; this is verified on the
  models (AssertionError otherwise). C2 refits on fresh real glosses, which bring n-grams
  generation 0 never saw: a sentence using one has :math:`p_0 = 0` and the round gets
  :math:`\log e = +\infty` (in practice from generation 1 on: C2's model truly leaves
  :math:`p_0`'s support). Rounds are mapped back to token ids by splitting on spaces.
* L5: not the joint copula density. The wine marginals are interpolated empirical quantile
  functions of columns with many ties (39-139 zero-width gaps of 177 per column), so every
  marginal has atoms and the joint law is a mixture over atom patterns: its density needs,
  per row, a Gaussian rectangle probability over the atom coordinates (up to 13-dimensional,
  only available by quasi-Monte Carlo, hence not exact). The latent-Gaussian ratio on the
  latent scores is no substitute: the marginals are not invertible (atoms) and L5, C1 and C2
  refit them every generation (D0-L5 shifts them). The oracle is instead the exact
  *marginal* e-value :math:`e_g = \frac1p\sum_{j=1}^{p}\prod_{x \in X_g} r_j(x_j)`, the mean
  over columns of each column's likelihood ratio, exact for the mixed atom/continuous
  marginal laws (w.r.t. Lebesgue measure plus counting measure on both models' atoms: a
  point that is an atom of either model is compared by point masses, any other by the
  piecewise-constant densities :math:`1/((m-1)(x_{(k+1)} - x_{(k)}))`). Each column's product
  is an e-value (rows are i.i.d.), so their mean is one. It sees every marginal change
  (L5's collapse is the marginals' loss of spread) and is blind to a change of dependence
  alone. D0-L5 translates the bounded marginals, so shifted rows leave generation 0's
  support or land off its atoms: its log e-value is :math:`+\infty` from generation 1 on.
* L6 (agent): episode probabilities of the true policy tables :math:`\pi_g(a \mid c)`
  (:func:`~monitor.meta_evaluation.loop_agent.agent_policies`). An episode is a start-goal pair
  drawn from a law that no generation changes, then actions drawn from the policy in the context
  (goal direction, last step failed) the deterministic environment puts the agent in, so the pair's
  probability cancels and :math:`\log p_g(x) - \log p_0(x) = \sum_t [\log\pi_g(a_t \mid c_t) -
  \log\pi_0(a_t \mid c_t)]` (:func:`agent_log_ratios`). The contexts need the goal, which an episode
  that failed does not show, so the oracle regenerates each round's simulation from the audit stream
  (the environment it knows) and checks that its actions are the round's. Generation 0 gives every
  action positive probability; a refit can zero one (no smoothing), and an episode taking an action
  with :math:`\pi_g(a \mid c) = 0` has likelihood ratio 0, so its round gets :math:`\log e = -\infty`
  (rounds are drawn from :math:`\pi_g` itself, so the loop's and controls' own rounds never do).
  D0-L6 keeps the policy and moves the pair law to :math:`q_g`
  (:func:`~monitor.meta_evaluation.drift.drift_agent_pair_probabilities`): there the ratio is the
  pair's, :math:`\log q_g(s, z) - \log q_0(s, z)`.
* L7 (json): the likelihood ratio of each output's latent draws, not of its line
  (:func:`~monitor.meta_evaluation.loop_json_records.json_log_evalues`). A malformed output is a prefix of
  some record's text; its exact probability sums over every record that could complete it, which is
  intractable. The oracle regenerates the round's draws from the audit stream (checked: they render the
  round's lines) and takes the ratio of the six per-record values, the tags, the written score (its exact
  mass under the clipped, rounded normal of :math:`(\mu_g, \sigma_g)`) and whether the output is bad
  (:math:`v_g` against :math:`v_0`); the fault's kind and cut cancel. It is an exact e-value for "the round's
  draws are generation 0's", hence for the round, and as the lines are a function of the draws, at least as
  powerful as a detector seeing only the lines.
* L8 (graph): exact graph probabilities
  (:func:`~monitor.meta_evaluation.loop_graphs.graphs_log_evalues`),
  :math:`p_g(G) = \sum_k \pi_{g,k} P_g(n \mid k) P(G \mid k, n)`: the family weights and the clipped, rounded
  normal sizes are the generation's; the structure given family and size (a uniform labelled tree
  :math:`n^{-(n-2)}`, the cycle, the grid, the two-block model's edge probabilities) is every generation's, so
  it is computed, not cancelled (a small community graph can be a tree or a cycle too).
* L9 (log): exact line probabilities (:func:`~monitor.meta_evaluation.loop_logs.logs_log_evalues`): the
  template's probability times its slot values'. The round's draws are regenerated from the audit stream
  (checked against its lines); a line shows its template and values, so their ratio is the line's.
* L10 (image_text): exact pair densities
  (:func:`~monitor.meta_evaluation.loop_image_text.image_text_log_evalues`), a mixture over the image's
  unseen concept :math:`c`: :math:`p_g(x, t, j) = \frac1K\sum_c \varphi(x - p_c)\, C_g(c, j)\,
  \varphi(t - x - p_j + p_c)`, the naming matrix :math:`C_g` from the generation's true prior.
* L11 (reasoning): exact record probabilities
  (:func:`~monitor.meta_evaluation.loop_reasoning.reasoning_log_evalues`): a rationale shows its strategy's
  template, and the error coin, slip sign and question given the strategy are every generation's, so a
  record's ratio is its strategy's, :math:`\log w_g(s) - \log w_0(s)`. The round's draws are regenerated from
  the audit stream (checked against its records).
* Their controls use the same code with the control's true models; C1 and C2 of L8, L9 and L11 change the
  model (the e-values move with its drift), C0 does not.
* C0 of every family: zeros, exactly (the generator never changes).
"""

from __future__ import annotations

import re

import numpy as np
import scipy.sparse
from scipy import special

from monitor.meta_evaluation import drift as D
from monitor.meta_evaluation import loop_agent as A
from monitor.meta_evaluation import loop_graphs, loop_image_text, loop_json_records, loop_logs, loop_reasoning
from monitor.meta_evaluation import loops as L
from monitor.meta_evaluation import ngram as N
from monitor.meta_evaluation import textloop as T
from monitor.meta_evaluation.trace import LoopTrace
from monitor.engine.simulate import GaussianMixture

DEFAULT_ARL0 = 1000.0
_PREFIX = re.compile(r"^[CD]\d-")
# L7-L11: each loop module computes its own (exact e-values of its true models; module docstring)
_STRUCTURED = {"L7": (loop_json_records, loop_json_records.json_log_evalues),
               "L8": (loop_graphs, loop_graphs.graphs_log_evalues),
               "L9": (loop_logs, loop_logs.logs_log_evalues),
               "L10": (loop_image_text, loop_image_text.image_text_log_evalues),
               "L11": (loop_reasoning, loop_reasoning.reasoning_log_evalues)}


# --- densities ---------------------------------------------------------------------------------------------------


def gaussian_logpdf(x: np.ndarray, mean: np.ndarray, cov: np.ndarray) -> np.ndarray:
    r"""Row log densities of :math:`N(\mu, \Sigma)`: :math:`-\tfrac12[\sum_i (v_i^\top(x-\mu))^2/\lambda_i
    + \sum_i\log\lambda_i + d\log 2\pi]` over the eigenpairs of :math:`\Sigma` (floored at the smallest double).

    >>> round(float(gaussian_logpdf(np.array([[1.0]]), np.zeros(1), np.eye(1))[0]), 6)  # -1/2 - log(2 pi)/2
    -1.418939
    """
    x, mean, cov = np.atleast_2d(np.asarray(x, dtype=float)), np.asarray(mean, dtype=float), np.asarray(cov, float)
    if x.shape[1] != mean.shape[0] or cov.shape != (mean.shape[0],) * 2:
        raise ValueError(f"x: expected [n, {mean.shape[0]}] rows for cov {cov.shape}, got {x.shape}")
    values, vectors = np.linalg.eigh(cov)
    values = np.clip(values, np.finfo(float).tiny, None)
    z = (x - mean) @ vectors
    return -0.5 * ((z * z / values).sum(axis=1) + np.log(values).sum() + mean.shape[0] * np.log(2 * np.pi))


def mixture_logpdf(x: np.ndarray, mixture: GaussianMixture) -> np.ndarray:
    r"""Row log densities :math:`\log\sum_k w_k N(x; \mu_k, \Sigma_k)` of a Gaussian mixture.

    >>> m = GaussianMixture(np.array([0.5, 0.5]), np.array([[-1.0], [1.0]]), np.ones((2, 1, 1)))
    >>> one = gaussian_logpdf(np.ones((1, 1)), np.zeros(1), np.eye(1))[0]  # both components at distance 1
    >>> bool(np.isclose(mixture_logpdf(np.zeros((1, 1)), m)[0], one))
    True
    """
    parts = [np.log(w) + gaussian_logpdf(x, mu, cov)
             for w, mu, cov in zip(mixture.weights, mixture.means, mixture.covs)]
    return special.logsumexp(np.stack(parts, axis=1), axis=1)


def marginal_log_measure(sorted_column: np.ndarray, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    r"""``(log point mass, log density)`` at ``x`` of the interpolated empirical marginal of sorted values ``s``.

    The law of :math:`Q(U)`, :math:`U \sim U(0,1)` (see :class:`~monitor.meta_evaluation.loops.GaussianCopula`):
    a value repeated ``c >= 2`` times is an atom of mass :math:`(c-1)/(m-1)`; elsewhere in
    :math:`[s_0, s_{m-1}]` the density is :math:`1/((m-1)(s_{k+1} - s_k))` on :math:`[s_k, s_{k+1})`;
    outside, 0 (log: ``-inf``).

    >>> mass, density = marginal_log_measure(np.array([0.0, 1.0, 1.0, 3.0]), np.array([0.5, 1.0, 2.0, 4.0]))
    >>> np.exp(mass).round(4).tolist(), np.exp(density).round(4).tolist()
    ([0.0, 0.3333, 0.0, 0.0], [0.3333, 0.1667, 0.1667, 0.0])
    """
    s, x = np.asarray(sorted_column, dtype=float), np.asarray(x, dtype=float)
    m = s.size
    lo, hi = np.searchsorted(s, x, "left"), np.searchsorted(s, x, "right")
    k = np.clip(hi - 1, 0, m - 2)
    width = s[k + 1] - s[k]
    inside = (x >= s[0]) & (x <= s[-1]) & (width > 0)
    with np.errstate(divide="ignore"):
        log_mass = np.log(np.clip(hi - lo - 1, 0, None) / (m - 1))
        log_density = np.where(inside, -np.log((m - 1) * np.where(width > 0, width, 1.0)), -np.inf)
    return log_mass, log_density


def copula_log_evalue(x: np.ndarray, model_g: L.GaussianCopula, model_0: L.GaussianCopula) -> float:
    r"""L5's marginal log e-value :math:`\log\frac1p\sum_j\prod_i r_j(x_{ij})` of rows ``x`` (module docstring).

    >>> c0 = L.fit_gaussian_copula(np.array([[0.0], [2.0]]))  # U[0, 2]
    >>> cg = L.fit_gaussian_copula(np.array([[0.5], [1.5]]))  # U[0.5, 1.5]: density 1 against 1/2
    >>> bool(np.isclose(copula_log_evalue(np.array([[1.0], [0.7]]), cg, c0), 2 * np.log(2)))
    True
    """
    if model_g is model_0:
        return 0.0
    x = np.atleast_2d(np.asarray(x, dtype=float))
    log_r = np.empty_like(x)
    for j in range(x.shape[1]):
        mass_g, dens_g = marginal_log_measure(model_g.sorted_columns[:, j], x[:, j])
        mass_0, dens_0 = marginal_log_measure(model_0.sorted_columns[:, j], x[:, j])
        atom = (mass_g > -np.inf) | (mass_0 > -np.inf)
        with np.errstate(invalid="ignore"):
            log_r[:, j] = np.where(atom, mass_g - mass_0, dens_g - dens_0)
    with np.errstate(invalid="ignore"):
        columns = log_r.sum(axis=0)
    if np.isnan(columns).any():
        raise ValueError("x: a row is impossible under both models")
    if np.isposinf(columns).any():
        return float(np.inf)
    top = columns.max()
    return float(top + np.log(np.mean(np.exp(columns - top)))) if top > -np.inf else float(-np.inf)


def _ngram_codes(grams: np.ndarray, n_types: int) -> np.ndarray:
    if float(n_types) ** grams.shape[1] >= 2.0 ** 63:
        raise ValueError(f"order: {grams.shape[1]}-grams over {n_types} types do not fit int64 codes")
    codes = np.zeros(len(grams), dtype=np.int64)
    for j in range(grams.shape[1]):
        codes = codes * n_types + grams[:, j]
    return codes


def length_acceptance(model: N.NgramModel, tau: float, max_tokens: int) -> float:
    r""":math:`P_\tau(L \le L_{\max})`, the probability that a sentence ends within ``max_tokens`` words.

    The history distribution :math:`\pi_{t+1} = Q^\top\pi_t` (``</s>`` absorbs) from the start history;
    the answer is :math:`\sum_{t=0}^{L_{\max}} \pi_t^\top e`, ``e`` each history's ``</s>`` probability.

    >>> m = N.fit_ngram([np.array([2]), np.array([2, 2])], n_types=3)  # after "a": </s> 2/3, "a" 1/3
    >>> round(length_acceptance(m, 1.0, 1), 6), round(length_acceptance(m, 1.0, 2), 6)  # 2/3, 2/3 + 2/9
    (0.666667, 0.888889)
    """
    probabilities = N.transition_probabilities(model, tau)
    n_rows = len(model.row_ptr) - 1
    row_of = np.repeat(np.arange(n_rows), np.diff(model.row_ptr))
    ends = model.next_context < 0
    end_probability = np.bincount(row_of[ends], probabilities[ends], minlength=n_rows)
    q_transposed = scipy.sparse.csr_matrix((probabilities[~ends], (model.next_context[~ends], row_of[~ends])),
                                           shape=(n_rows, n_rows))
    running = np.zeros(n_rows)
    running[model.start_context] = 1.0
    total = 0.0
    for _ in range(int(max_tokens) + 1):
        total += float(running @ end_probability)
        running = q_transposed @ running
    return total


def ngram_log_probabilities(model: N.NgramModel, sentences: list[np.ndarray], tau: float = 1.0,
                            max_tokens: int | None = None) -> np.ndarray:
    r"""``[S]`` log probabilities of word-id sentences under :math:`P_\tau`, conditioned on
    :math:`L \le` ``max_tokens`` when given (longer sentences: ``-inf``); an unseen n-gram gives ``-inf``.

    >>> m = N.fit_ngram([np.array([2, 3]), np.array([2, 4])], n_types=5)
    >>> np.exp(ngram_log_probabilities(m, [np.array([2, 3]), np.array([3])])).tolist()
    [0.5, 0.0]
    """
    order = model.order
    lengths = np.fromiter((len(s) for s in sentences), dtype=np.int64, count=len(sentences))
    offsets = np.concatenate([[0], np.cumsum(lengths + order)])  # n - 1 starts, the words, one end
    stream = np.full(int(offsets[-1]), N.BOS_ID, dtype=np.int64)
    if lengths.sum():
        stream[np.repeat(offsets[:-1] + order - 1 - np.cumsum(lengths) + lengths, lengths)
               + np.arange(lengths.sum())] = np.concatenate(sentences)
    stream[offsets[1:] - 1] = N.EOS_ID
    n_windows = lengths + 1
    sentence_of = np.repeat(np.arange(len(sentences)), n_windows)
    starts = np.repeat(offsets[:-1] - np.cumsum(n_windows) + n_windows, n_windows) + np.arange(n_windows.sum())
    windows = stream[starts[:, None] + np.arange(order)]
    model_codes = _ngram_codes(model.grams, model.n_types)  # sorted: grams are lexicographic
    codes = _ngram_codes(windows, model.n_types)
    at = np.clip(np.searchsorted(model_codes, codes), 0, len(model_codes) - 1)
    with np.errstate(divide="ignore"):
        log_p = np.where(model_codes[at] == codes, np.log(N.transition_probabilities(model, tau))[at], -np.inf)
    out = np.bincount(sentence_of, log_p, minlength=len(sentences))
    out[np.isnan(out)] = -np.inf
    if max_tokens is not None:
        out = out - np.log(length_acceptance(model, tau, max_tokens))
        out[np.array([len(s) > max_tokens for s in sentences], dtype=bool)] = -np.inf
    return out


# --- true models of a trace --------------------------------------------------------------------------------------


def _parts(name: str) -> tuple[str, str]:
    prefix = _PREFIX.match(name)
    return (prefix.group(0)[:2] if prefix else ""), _PREFIX.sub("", name)


def _kind(family: str) -> str:
    """``"L1"`` ... ``"L10"``: the loop number of a family id (``family[:2]`` would read L10 as L1)."""
    return family.split("-", 1)[0]


def oracle_models(trace: LoopTrace, **overrides) -> list:
    r"""The true model of every generation ``0..G`` behind ``trace``, regenerated from its seed and params.

    L1: ``(mean, cov)`` pairs; L2: :class:`~monitor.engine.simulate.GaussianMixture`; L3: ``[V]`` probability
    vectors; L4: :class:`~monitor.meta_evaluation.ngram.NgramModel`; L5: :class:`~monitor.meta_evaluation.loops.GaussianCopula`;
    L6: ``[16, 5]`` policy tables (D0-L6: generation 0's, every generation). L7-L11: their loop modules'
    (:func:`oracle_log_evalues` calls them), ValueError here.
    ``overrides``: only ``corpus`` (L4 traces of a custom corpus).

    >>> t = L.gaussian_refit_loop(0, 3, n_audit=2, n_reference=2)
    >>> [round(float(cov[0, 0]), 4) for _, cov in oracle_models(t)] == t.truth["trace_cov"].round(4).tolist()
    True
    """
    prefix, family = _parts(trace.name)
    kind, params, seed = _kind(family), trace.params, trace.seed
    if kind == "L4":
        return _l4_run(trace, **overrides)[1]
    if kind in _STRUCTURED:
        raise ValueError(f"trace: {trace.name}'s models are its loop module's (oracle_log_evalues computes them)")
    if overrides:
        raise ValueError(f"overrides: only L4 traces take overrides, got {sorted(overrides)}")
    n = params["n_generations"]
    drifting = prefix == "D0"
    if kind == "L1":
        args = dict(d=params["d"], M=params["M"])
        means, covs = (D.drift_gaussian_parameters(seed, n, **args, horizon=params["horizon"],
                                                   final_shift=params["final_shift"]) if drifting else
                       L.gaussian_refit_parameters(seed, n, **args, workflow=params["workflow"],
                                                   fresh_fraction=params["fresh_fraction"]))
        return list(zip(means, covs))
    if kind == "L2":
        args = dict(K=params["K"], d=params["d"], spread=params["spread"])
        if drifting:
            return D.drift_gmm_models(seed, n, **args, horizon=params["horizon"], final_shift=params["final_shift"])
        return L.gmm_refit_models(seed, n, **args, M=params["M"], workflow=params["workflow"],
                                  fresh_fraction=params["fresh_fraction"], em_iters=params["em_iters"])
    if kind == "L3":
        args = dict(V=params["V"], beta=params["beta"], tau=params["tau"])
        if drifting:
            return list(D.drift_zipf_distributions(seed, n, **args, horizon=params["horizon"],
                                                   final_mass=params["final_mass"]))
        return list(L.zipf_refit_distributions(seed, n, **args, T=params["T"], workflow=params["workflow"],
                                               fresh_fraction=params["fresh_fraction"]))
    if kind == "L6":
        if drifting:
            return [A.initial_policy()] * (n + 1)
        return list(A.agent_policies(seed, n, workflow=params["workflow"], n_samples=params["n_samples"],
                                     max_steps=params["max_steps"], fresh_fraction=params["fresh_fraction"]))
    if kind == "L5":
        if drifting:
            return D.drift_copula_models(seed, n, dataset=params["dataset"], horizon=params["horizon"],
                                         final_shift=params["final_shift"])
        return L.copula_refit_models(seed, n, dataset=params["dataset"], M=params["M"], workflow=params["workflow"],
                                     fresh_fraction=params["fresh_fraction"])
    raise ValueError(f"trace: expected an L1-L11 loop, control or drift trace, got {trace.name!r}")


def _l4_run(trace: LoopTrace, **overrides) -> tuple[LoopTrace, list]:
    params, prefix = trace.params, _parts(trace.name)[0]
    args = {key: params[key] for key in ("order", "n_train", "n_samples", "n_audit", "n_reference", "tau",
                                         "max_tokens")}
    if prefix == "C2":
        args["fresh_fraction"] = params["fresh_fraction"]
    if prefix == "C0":
        args["source"] = params["source"]
    if params["corpus"] == "custom" and "corpus" not in overrides:
        raise ValueError("corpus: this L4 trace used a custom corpus; pass it as corpus=...")
    generations = trace.generations
    last = max(int(generations[-1]), 1)
    every = int(generations[1] - generations[0]) if len(generations) > 1 else last + 1
    rerun, models = T.run_with_models(trace.name, trace.seed, last, every,
                                      **args, **overrides)
    if rerun.rounds != trace.rounds[: len(rerun.rounds)] or len(rerun.rounds) != len(trace.rounds):
        raise ValueError(f"trace: {trace.name} seed {trace.seed} does not match its regeneration from params")
    return rerun, models


# --- log e-values ------------------------------------------------------------------------------------------------


def _l4_log_evalues(trace: LoopTrace, models: list, corpus=None) -> np.ndarray:
    prefix = _parts(trace.name)[0]
    tau, max_tokens = trace.params["tau"], trace.params["max_tokens"]
    model0 = models[0]
    support0 = _ngram_codes(model0.grams, model0.n_types)
    vocabulary = (N._encoded_wordnet() if corpus is None else N.encode_corpus(corpus)).vocabulary
    index = {token: i for i, token in enumerate(vocabulary)}
    out = np.zeros(len(trace.rounds))
    for r, (g, texts) in enumerate(zip(trace.generations, trace.rounds)):
        model = models[g]
        if model is model0:
            continue
        if prefix != "C2" and not np.isin(_ngram_codes(model.grams, model.n_types), support0).all():
            raise AssertionError(f"{trace.name}: generation {g} has n-grams generation 0 lacks")
        try:
            sentences = [np.array([index[w] for w in text.split(" ")], dtype=np.int64) for text in texts]
        except KeyError as error:
            raise ValueError(f"trace: round {r} has a word outside the corpus vocabulary: {error}") from None
        with np.errstate(invalid="ignore"):
            out[r] = np.sum(ngram_log_probabilities(model, sentences, tau, max_tokens)
                            - ngram_log_probabilities(model0, sentences, tau, max_tokens))
    return out


def agent_log_ratios(contexts: np.ndarray, actions: np.ndarray, policy_g: np.ndarray,
                     policy_0: np.ndarray) -> np.ndarray:
    r"""``[E]`` episode log-likelihood ratios :math:`\sum_t [\log\pi_g(a_t \mid c_t) - \log\pi_0(a_t \mid c_t)]`.

    Args:
        contexts: ``[E, T]`` context indices (:data:`~monitor.meta_evaluation.loop_agent.CONTEXTS`), ``-1``
            past an episode's end.
        actions: ``[E, T]`` action indices (:data:`~monitor.meta_evaluation.loop_agent.ACTIONS`), ``-1`` there too.
        policy_g, policy_0: ``[16, 5]`` policy tables.

    Returns:
        An episode with a step of :math:`\pi_g(a \mid c) = 0` gives ``-inf`` (likelihood ratio 0), one with
        :math:`\pi_0(a \mid c) = 0 < \pi_g(a \mid c)` gives ``+inf``.

    Raises:
        ValueError: a step's action has probability 0 under both policies.

    >>> p0 = np.full((16, 5), 0.2)
    >>> pg = p0.copy(); pg[0] = [0.5, 0.5, 0.0, 0.0, 0.0]  # context 0 only: two actions left
    >>> ctx, act = np.array([[0, 8, -1], [0, -1, -1]]), np.array([[1, 4, -1], [2, -1, -1]])
    >>> agent_log_ratios(ctx, act, pg, p0).round(6).tolist()  # [log(0.5 / 0.2) + 0, log 0]
    [0.916291, -inf]
    """
    contexts, actions = np.asarray(contexts, dtype=np.int64), np.asarray(actions, dtype=np.int64)
    if contexts.shape != actions.shape or contexts.ndim != 2:
        raise ValueError(f"contexts, actions: expected two [E, T] arrays, got {contexts.shape} and {actions.shape}")
    taken = actions >= 0
    c, a = np.where(taken, contexts, 0), np.where(taken, actions, 0)
    p_g, p_0 = np.asarray(policy_g, dtype=float)[c, a], np.asarray(policy_0, dtype=float)[c, a]
    if np.any(taken & (p_g == 0) & (p_0 == 0)):
        raise ValueError("actions: a step takes an action of probability 0 under both policies")
    with np.errstate(divide="ignore"):
        step = np.where(taken, np.log(np.where(taken, p_g, 1.0)) - np.log(np.where(taken, p_0, 1.0)), 0.0)
    impossible_0 = (taken & (p_0 == 0)).any(axis=1)
    impossible_g = (taken & (p_g == 0)).any(axis=1)
    with np.errstate(invalid="ignore"):
        out = step.sum(axis=1)
    out[impossible_g] = -np.inf
    out[impossible_0] = np.inf
    return out


def _sum_log_ratios(log_r: np.ndarray) -> float:
    """A round's log e-value from its units' log ratios: ``+inf`` if any unit is impossible under :math:`p_0`."""
    if np.isposinf(log_r).any():
        return float(np.inf)
    return float(np.sum(log_r))


def _l6_log_evalues(trace: LoopTrace) -> np.ndarray:
    prefix, params, seed = _parts(trace.name)[0], trace.params, trace.seed
    n, max_steps = params["n_generations"], params["max_steps"]
    policies = oracle_models(trace)
    q = (D.drift_agent_pair_probabilities(n, horizon=params["horizon"], final_mass=params["final_mass"])
         if prefix == "D0" else None)
    out = np.zeros(len(trace.rounds))
    for r, (g, episodes) in enumerate(zip(trace.generations, trace.rounds)):
        pairs = None if q is None else D.agent_round_pairs(q, g)
        sim = A._simulate(policies[g], len(episodes), L._audit_stream(seed, g), max_steps, pairs)
        simulated = [[A.ACTIONS[a] for a in row if a >= 0] for row in sim["actions"].tolist()]
        if simulated != [[step["action"] for step in e["steps"]] for e in episodes]:
            raise ValueError(f"trace: {trace.name} seed {seed} round {r} does not match its regeneration from params")
        log_r = agent_log_ratios(sim["contexts"], sim["actions"], policies[g], policies[0])
        if pairs is not None:
            log_r = log_r + np.log(pairs[sim["pair"]] * len(pairs))  # q_g / q_0, q_0 uniform
        out[r] = _sum_log_ratios(log_r)
    return out


def _round_log_evalue(kind: str, sample, model, model0) -> float:
    if kind == "L1":
        return float(np.sum(gaussian_logpdf(sample, *model) - gaussian_logpdf(sample, *model0)))
    if kind == "L2":
        return 0.0 if model is model0 else float(np.sum(mixture_logpdf(sample, model) - mixture_logpdf(sample, model0)))
    if kind == "L3":
        if np.any((model0 == 0) & (model > 0)):
            raise AssertionError("L3: a word with probability 0 under p_0 has positive probability under p_g")
        words = np.array([int(token[1:]) - 1 for document in sample for token in document.split(" ")])
        with np.errstate(divide="ignore"):
            return float(np.sum(np.log(model[words]) - np.log(model0[words])))
    return copula_log_evalue(np.asarray(sample, dtype=float), model, model0)


def oracle_log_evalues(trace_or_run_id: LoopTrace | str, seed: int | None = None, n_generations: int | None = None,
                       audit_every: int = 1, **overrides) -> np.ndarray:
    r"""``[R]`` oracle log e-values :math:`\log e_g = \sum_{x \in X_g}[\log p_g(x) - \log p_0(x)]`, one per round.

    Args:
        trace_or_run_id: a :class:`LoopTrace`, or a loop / control / drift id, then generated as
            ``fn(seed, n_generations, audit_every, **overrides)`` (L4 in one pass with its models).
        seed, n_generations, audit_every: the run (ids only; a trace carries its own).
        **overrides: the run's keyword arguments (ids), or ``corpus`` (a custom-corpus L4 trace).

    >>> oracle_log_evalues("C0-L1-d1-M20", 0, 3, n_audit=5, n_reference=5).tolist()
    [0.0, 0.0, 0.0, 0.0]
    """
    if isinstance(trace_or_run_id, LoopTrace):
        if seed is not None and seed != trace_or_run_id.seed:
            raise ValueError(f"seed: the trace has seed {trace_or_run_id.seed}, got {seed}")
        trace, models = trace_or_run_id, None
    elif isinstance(trace_or_run_id, str):
        if seed is None or n_generations is None:
            raise ValueError("seed, n_generations: required with a run id")
        if _parts(trace_or_run_id)[1] == "L4-text":
            trace, models = T.run_with_models(trace_or_run_id, seed, n_generations, audit_every, **overrides)
            return _l4_log_evalues(trace, models, overrides.get("corpus"))
        registry = {**L.LOOPS, **L.CONTROLS, **A.LOOPS, **A.CONTROLS, **D.DRIFT_CONTROLS}
        for module, _ in _STRUCTURED.values():
            registry.update({**module.LOOPS, **module.CONTROLS})
        if trace_or_run_id not in registry:
            raise ValueError(f"trace_or_run_id: expected a LoopTrace or a loop, control or drift id, got "
                             f"{trace_or_run_id!r}")
        trace, models, overrides = registry[trace_or_run_id](seed, n_generations, audit_every, **overrides), None, {}
    else:
        raise ValueError(f"trace_or_run_id: expected a LoopTrace or a str, got {type(trace_or_run_id).__name__}")
    prefix, family = _parts(trace.name)
    if prefix == "C0":
        return np.zeros(len(trace.rounds))
    kind = _kind(family)
    if kind == "L4":
        rerun, models = _l4_run(trace, **overrides)
        return _l4_log_evalues(rerun, models, overrides.get("corpus"))
    if kind in _STRUCTURED:
        if overrides:
            raise ValueError(f"overrides: only L4 traces take overrides, got {sorted(overrides)}")
        return _STRUCTURED[kind][1](trace)
    if kind == "L6":
        if overrides:
            raise ValueError(f"overrides: only L4 traces take overrides, got {sorted(overrides)}")
        return _l6_log_evalues(trace)
    models = oracle_models(trace, **overrides)
    return np.array([_round_log_evalue(kind, sample, models[g], models[0])
                     for g, sample in zip(trace.generations, trace.rounds)])


def wishart_log_ratio(sample: np.ndarray, cov_g: np.ndarray, cov_0: np.ndarray) -> float:
    r"""Log likelihood ratio of a round's centred scatter matrix under :math:`\Sigma_g` against :math:`\Sigma_0`.

    With :math:`A = \sum_i (x_i - \bar x)(x_i - \bar x)^\top \sim W_d(\Sigma, n - 1)` whatever the mean,

    .. math:: \log\frac{f_W(A; \Sigma_g)}{f_W(A; \Sigma_0)} = -\tfrac12 \operatorname{tr}\big((\Sigma_g^{-1}
              - \Sigma_0^{-1}) A\big) - \tfrac{n-1}{2}\big(\log|\Sigma_g| - \log|\Sigma_0|\big),

    an exact e-value under :math:`\Sigma_0` that no change of the mean moves (eigenvalues floored as in
    :func:`gaussian_logpdf`).

    >>> x = np.array([[0.0], [2.0]])  # A = 2, n - 1 = 1
    >>> round(wishart_log_ratio(x, np.eye(1) * 0.5, np.eye(1)), 6)  # -(2 - 1) * 2 / 2 - log(0.5) / 2
    -0.653426
    >>> flat = np.array([[0.0, 1.0], [0.0, -1.0], [0.0, 3.0]])  # no spread in the first coordinate
    >>> round(wishart_log_ratio(flat, np.diag([0.0, 1.0]), np.eye(2)), 1)  # floored there: huge, never NaN
    708.4
    """
    x = np.atleast_2d(np.asarray(sample, dtype=float))
    centred = x - x.mean(axis=0)

    def quadratic_and_logdet(cov):
        # tr(S^-1 A) = sum_i |centred v_i|^2 / lambda_i in S's eigenbasis: a floored eigenvalue gives a large or
        # infinite term, never the inf * 0 = NaN of an explicit inverse times a scatter without spread there.
        values, vectors = np.linalg.eigh(np.asarray(cov, dtype=float))
        values = np.clip(values, np.finfo(float).tiny, None)
        spread = ((centred @ vectors) ** 2).sum(axis=0)
        with np.errstate(over="ignore", divide="ignore"):
            return float(np.sum(spread / values)), float(np.log(values).sum())

    quad_g, logdet_g = quadratic_and_logdet(cov_g)
    quad_0, logdet_0 = quadratic_and_logdet(cov_0)
    return float(-0.5 * (quad_g - quad_0) - 0.5 * (x.shape[0] - 1) * (logdet_g - logdet_0))


def spread_log_evalues(trace: LoopTrace) -> np.ndarray | None:
    r"""``[R]`` log e-values of the **collapse oracle** of a Gaussian loop (L1 and its controls), else None.

    The oracle for a detector that must ignore drift: it knows each generation's true covariance,
    sees only the round's scatter matrix (blind to the mean, as the collapse signal is to a pure
    shift) and bets only on a loss of spread,
    :math:`\log e_g = \mathbf 1[\operatorname{tr}\Sigma_g < \operatorname{tr}\Sigma_0]\,
    \log\frac{f_W(A_g; \Sigma_g)}{f_W(A_g; \Sigma_0)}` (:func:`wishart_log_ratio`; the indicator
    depends on the model alone, so each factor is an e-value). Its P(alarm before onset) is what a
    collapse detector with the truth could reach; the likelihood-ratio oracle also cashes in on the
    mean's random walk and on spread that grows.

    >>> t = L.gaussian_refit_loop(0, 3, n_audit=5, n_reference=5)
    >>> spread_log_evalues(t).shape, spread_log_evalues(L.CONTROLS["C0-L1-d1-M20"](0, 2, 1)).tolist()
    ((4,), [0.0, 0.0, 0.0])
    """
    prefix, family = _parts(trace.name)
    if _kind(family) != "L1":
        return None
    if prefix == "C0":
        return np.zeros(len(trace.rounds))
    models = oracle_models(trace)
    cov_0 = models[0][1]
    return np.array([wishart_log_ratio(sample, models[g][1], cov_0) if np.trace(models[g][1]) < np.trace(cov_0)
                     else 0.0 for g, sample in zip(trace.generations, trace.rounds)])


# --- the e-CUSUM -------------------------------------------------------------------------------------------------


def oracle_cusum(log_e: np.ndarray) -> np.ndarray:
    r"""The e-CUSUM path :math:`S_t = \max(S_{t-1}, 0) + \log e_t`, :math:`S_{-1} = 0`; ``-inf`` stays ``-inf``.

    >>> oracle_cusum(np.array([1.0, -3.0, 2.0, 0.5])).tolist()
    [1.0, -2.0, 2.0, 2.5]
    """
    log_e = np.asarray(log_e, dtype=float)
    if log_e.ndim != 1 or np.isnan(log_e).any():
        raise ValueError(f"log_e: expected a 1-d array without NaN, got shape {log_e.shape}")
    path, s = np.empty_like(log_e), 0.0
    for t, value in enumerate(log_e):
        s = value if value == -np.inf else max(s, 0.0) + value
        path[t] = s
    return path


def oracle_alarms(log_e: np.ndarray, arl0: float = DEFAULT_ARL0) -> np.ndarray:
    r"""``[R]`` booleans: True from the first round whose e-CUSUM reaches :math:`\log(\text{ARL}_0)` on.

    >>> oracle_alarms(np.array([3.0, 3.0, 1.0, -9.0]), arl0=np.exp(6)).tolist()
    [False, True, True, True]
    """
    if not (isinstance(arl0, (int, float)) and arl0 > 1):
        raise ValueError(f"arl0: expected a number > 1, got {arl0!r}")
    return np.logical_or.accumulate(oracle_cusum(log_e) >= np.log(arl0))


def oracle_first_alarm(log_e: np.ndarray, arl0: float = DEFAULT_ARL0) -> int | None:
    r"""Index of the first alarmed round (:func:`oracle_alarms`), or None.

    >>> oracle_first_alarm(np.array([3.0, 3.0, 1.0]), np.exp(6)), oracle_first_alarm(np.zeros(3), 1000.0)
    (1, None)
    """
    alarms = oracle_alarms(log_e, arl0)
    return int(np.argmax(alarms)) if alarms.any() else None
