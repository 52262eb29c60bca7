r"""Log templates: mined from the reference with Drain3, and matched line by line against a round.

Part of :mod:`metrics_core.logs` (its docstring states the round's layout and the uncertainty rules).

Drain (He et al. 2017, "Drain: An Online Log Parsing Approach with Fixed Depth Tree", ICWS) groups log lines
into templates: token tuples where a constant token stays and a variable one (an id, an address, a duration)
is the wildcard ``<*>``. :func:`fit_log_templates` runs the Drain3 implementation (pinned at 0.9.1) over the
reference once; drain3 0.9.1 has no ``match()``, so :func:`match_templates` is this module's and never changes
the templates: a round is read against the reference's templates, never mined itself.

Tokenisation (Drain3's, kept exactly here): the masking instructions are applied in order, each replacing every
match of its regex with ``<name>``; the masked line is split on whitespace (:meth:`str.split`, which also
drops leading and trailing whitespace).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np

from metrics_core._checks import (
    _check_drain_depth,
    _check_masking,
    _check_similarity_threshold,
    _check_texts,
    _is_count,
)

#: Drain's wildcard token: any one token.
WILDCARD = "<*>"
DRAIN3_MISSING = "log rounds need drain3: pip install 'collapse-monitor[logs]'"


@dataclass(frozen=True)
class LogTemplates:
    r"""The reference's log templates and how often each is the reference lines' match.

    Attributes:
        templates: ``[K]`` token tuples, in Drain's creation order; ``"<*>"`` is a wildcard.
        reference_counts: ``[K]`` how many reference lines :func:`match_templates` gives each template (every
            fitted template has at least one: a template that no reference line picks is dropped).
        similarity_threshold: Drain's ``sim_th`` the templates were fitted with.
        depth: Drain's tree depth the templates were fitted with.
        masking: the ``(regex, name)`` masking instructions, applied to round lines too.

    Example:
        >>> t = LogTemplates((("open", "<*>"), ("close",)), (3, 1))
        >>> len(t), t.strings, t.n_reference
        (2, ('open <*>', 'close'), 4)
    """

    templates: tuple[tuple[str, ...], ...]
    reference_counts: tuple[int, ...]
    similarity_threshold: float = 0.4
    depth: int = 4
    masking: tuple[tuple[str, str], ...] = ()

    def __post_init__(self) -> None:
        templates = self.templates
        if not isinstance(templates, (list, tuple)) or not templates:
            raise ValueError("templates: expected a non-empty list of token tuples")
        for i, t in enumerate(templates):
            if not isinstance(t, (list, tuple)) or not all(isinstance(tok, str) for tok in t):
                raise ValueError(f"templates[{i}]: expected a tuple of str tokens, got {type(t).__name__}")
        counts = self.reference_counts
        if not isinstance(counts, (list, tuple)) or len(counts) != len(templates):
            raise ValueError(f"reference_counts: expected {len(templates)} counts to match templates")
        if not all(_is_count(c) for c in counts) or sum(counts) == 0:
            raise ValueError(f"reference_counts: expected integers >= 0 with a positive sum, got {tuple(counts)}")
        object.__setattr__(self, "templates", tuple(tuple(t) for t in templates))
        object.__setattr__(self, "reference_counts", tuple(int(c) for c in counts))
        object.__setattr__(self, "similarity_threshold", _check_similarity_threshold(self.similarity_threshold))
        object.__setattr__(self, "depth", _check_drain_depth(self.depth))
        object.__setattr__(self, "masking", _check_masking(self.masking))

    def __len__(self) -> int:
        return len(self.templates)

    @property
    def strings(self) -> tuple[str, ...]:
        """Each template as Drain3 shows it: its tokens joined by one space."""
        return tuple(" ".join(t) for t in self.templates)

    @property
    def n_reference(self) -> int:
        """The number of reference lines the templates were fitted on."""
        return sum(self.reference_counts)


def _check_log_templates(value, name: str = "templates") -> LogTemplates:
    if not isinstance(value, LogTemplates):
        raise ValueError(f"{name}: expected metrics_core.logs.LogTemplates, got {type(value).__name__}")
    return value


def _masker(masking: tuple[tuple[str, str], ...]):
    """Drain3's ``RegexMasker.mask``: each instruction's ``regex.sub("<name>", line)``, in order."""
    compiled = [(re.compile(regex), f"<{name}>") for regex, name in masking]

    def mask(line: str) -> str:
        for regex, wrapped in compiled:
            line = regex.sub(wrapped, line)
        return line

    return mask


def tokenize(line: str, masking=None) -> tuple[str, ...]:
    """A line's tokens as Drain3 sees them: masked (``(regex, name)`` pairs, in order), split on whitespace.

    Example:
        >>> tokenize("  took 12 ms from 10.0.0.1 ", [(r"\\d+\\.\\d+\\.\\d+\\.\\d+", "IP")])
        ('took', '12', 'ms', 'from', '<IP>')
    """
    return tuple(_masker(_check_masking(masking))(line).split())


def _drain3():
    try:
        from drain3.masking import MaskingInstruction
        from drain3.template_miner import TemplateMiner
        from drain3.template_miner_config import TemplateMinerConfig
    except ImportError as exc:
        raise ImportError(DRAIN3_MISSING) from exc
    return MaskingInstruction, TemplateMiner, TemplateMinerConfig


def fit_log_templates(reference_lines, *, similarity_threshold: float = 0.4, depth: int = 4,
                      masking=None) -> LogTemplates:
    r"""Mine the reference's log templates with Drain3 (He et al. 2017, ICWS), one pass over its lines in order.

    Drain routes a line down a fixed-depth tree: first by its token count, then by its first ``depth - 2``
    tokens (a token holding a digit goes down the wildcard branch); at the leaf it joins the template whose
    similarity (the share of positions whose token equals the template's non-wildcard token) is highest, if
    that is at least ``similarity_threshold``, turning every position where they differ into ``<*>``; else it
    starts a new template. Drain3 is run with no persistence (its state is never saved or loaded), at most 100
    children per tree node and no limit on the number of templates (its defaults).

    The reference lines are then matched (:func:`match_templates`) against the final templates to count them:
    a line always matches the template it joined, though a more specific one can take it. A template that
    no reference line picks is dropped (rare), so that the reference audited against itself has parse rate 1,
    coverage 1 and template JSD 0 exactly.

    Args:
        reference_lines: ``[N]`` the reference's log lines (``str``).
        similarity_threshold: Drain's ``sim_th`` in [0, 1], default 0.4 (Drain3's): lower merges more lines
            into fewer, more general templates.
        depth: Drain's tree depth, an integer >= 3, default 4 (Drain3's): ``depth - 2`` leading tokens route
            a line.
        masking: ``None`` or ``(regex, name)`` pairs, Drain3's masking instructions: every match is replaced
            by ``<name>`` before tokenising (default none, as Drain3's).

    Raises:
        ImportError: drain3 is not installed (``pip install 'collapse-monitor[logs]'``).

    Example:
        >>> t = fit_log_templates(["open file a.txt", "open file b.txt", "close all"])
        >>> t.strings, t.reference_counts
        (('open file <*>', 'close all'), (2, 1))
    """
    lines = _check_texts(reference_lines, "reference_lines")
    similarity_threshold = _check_similarity_threshold(similarity_threshold)
    depth = _check_drain_depth(depth)
    masking = _check_masking(masking)
    MaskingInstruction, TemplateMiner, TemplateMinerConfig = _drain3()
    config = TemplateMinerConfig()  # not config.load(): no drain3.ini is read
    config.drain_sim_th = similarity_threshold
    config.drain_depth = depth
    config.masking_instructions = [MaskingInstruction(regex, name) for regex, name in masking]
    miner = TemplateMiner(persistence_handler=None, config=config)
    for line in lines:
        miner.add_log_message(line)
    mined = [c.log_template_tokens for c in sorted(miner.drain.clusters, key=lambda c: c.cluster_id)]
    counts = _counts(_match(lines, mined, masking), len(mined))
    kept = [i for i in range(len(mined)) if counts[i] > 0]
    # Dropping a template no reference line picked changes no reference line's match.
    return LogTemplates(tuple(tuple(mined[i]) for i in kept), tuple(int(counts[i]) for i in kept),
                        similarity_threshold, depth, masking)


def _counts(index: np.ndarray, k: int) -> np.ndarray:
    """``[k]`` lines per template (the unmatched, -1, left out)."""
    return np.bincount(index[index >= 0], minlength=k)


class _Index:
    """The templates grouped by (token count, first token or None for a wildcard), each group most specific first."""

    def __init__(self, templates) -> None:
        self.groups: dict[tuple[int, str | None], list] = {}
        for i, t in enumerate(templates):
            fixed = tuple((j, tok) for j, tok in enumerate(t) if tok != WILDCARD)
            key = (len(t), t[0] if t and t[0] != WILDCARD else None)
            self.groups.setdefault(key, []).append((len(t) - len(fixed), i, fixed))
        self.candidates: dict[tuple[int, str | None], list] = {}

    def match(self, tokens: tuple[str, ...]) -> int:
        key = (len(tokens), tokens[0] if tokens else None)
        found = self.candidates.get(key)
        if found is None:
            found = list(self.groups.get(key, []))
            if tokens:
                found += self.groups.get((len(tokens), None), [])
            found.sort(key=lambda c: (c[0], c[1]))  # fewest wildcards, then lowest index
            self.candidates[key] = found
        for _, i, fixed in found:
            if all(tokens[j] == tok for j, tok in fixed):
                return i
        return -1


def _match(lines: list[str], templates, masking) -> np.ndarray:
    index, mask = _Index(templates), _masker(masking)
    return np.fromiter((index.match(tuple(mask(line).split())) for line in lines), dtype=np.int64, count=len(lines))


def match_templates(lines, templates: LogTemplates) -> np.ndarray:
    r"""The index of the reference template each line matches, -1 for none.

    A line matches template :math:`t` when, tokenised as Drain3 tokenises (the templates' masking, then split
    on whitespace), it has as many tokens as :math:`t` and equals :math:`t` at every position where
    :math:`t` is not ``<*>`` (a wildcard takes exactly one token). Of several matching templates the most
    specific wins: the fewest wildcards, then the lowest index. Unlike Drain's own search no similarity
    threshold is involved: a line either has a template's every constant token or does not match it.

    Args:
        lines: ``[N]`` log lines (``str``).
        templates: the reference's :class:`LogTemplates` (:func:`fit_log_templates`).

    Returns:
        ``[N]`` int64 template indices into ``templates.templates``, -1 for an unmatched line.

    Example:
        >>> t = LogTemplates((("open", "<*>"), ("open", "log"), ("<*>", "<*>", "<*>")), (1, 1, 1))
        >>> match_templates(["open x", "open log", "close x", "a b c"], t).tolist()
        [0, 1, -1, 2]
    """
    templates = _check_log_templates(templates)
    return _match(_check_texts(lines, "lines"), templates.templates, templates.masking)
