r"""Structural validity of generated texts: empty, encoding noise, truncation, length.

The survey's validity dimension (§2.2) asks that generations be structurally
well-formed, and §2.4 names the breakdowns large automated pipelines still
produce: *encoding noise, formatting violations and truncation*. This module
checks each sample with four deterministic rules (no model involved) and
reports the share of samples that pass all of them.

Rules (a sample may fail several; each failure counts under its own reason):

* ``empty``: nothing but whitespace (``text.strip() == ""``).
* ``encoding``: a match of :data:`ENCODING_NOISE_RE`, i.e. the replacement
  character U+FFFD, a control character other than ``\t \n \r`` (C0
  U+0000–U+001F, DEL U+007F, C1 U+0080–U+009F), or mojibake (see
  :data:`MOJIBAKE_RE`).
* ``truncated`` (non-empty samples only, switchable): the text, right-stripped,
  does not end in terminal punctuation (:data:`TERMINAL_RE`), or it has an
  unterminated double quote or an unclosed bracket (:func:`has_unclosed_delimiters`).
* ``too_long``: more than ``max_chars`` code points (``len(text)``).

**Relative to the reference.** Real text fails some rules: dictionary
glosses, titles or short answers carry no final period. A rule that calls the
reference itself invalid teaches users to ignore validity. So, given the
reference's :class:`ValidityBaseline`, :func:`text_validity` first measures
each of the five checks (``empty``, ``encoding``, ``terminal_punctuation``,
``unclosed_delimiters``, ``too_long``; the last two make up ``truncated``) on
the reference, switches off every check the reference fails more often than
``failure_limit`` (default 20%), and reports the round's shares *relative to
the reference's*, under the checks left on.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

import numpy as np

from metrics_core._checks import (
    DEFAULT_FAILURE_LIMIT, _check_bootstrap, _check_failure_limit, _check_positive_int, _check_texts,
)
from metrics_core.bootstrap import DEFAULT_LEVEL, Estimate, mean_estimate

DEFAULT_MAX_CHARS = 20_000
VALIDITY_REASONS = ("empty", "encoding", "truncated", "too_long")
#: The checks behind the reasons: ``truncated`` is ``terminal_punctuation`` or ``unclosed_delimiters``.
VALIDITY_CHECKS = ("empty", "encoding", "terminal_punctuation", "unclosed_delimiters", "too_long")

# What cp1252 shows for the UTF-8 continuation bytes 0x80-0x9F (0x81, 0x8D, 0x8F,
# 0x90 and 0x9D are undefined there and decode as the C1 code points, as in latin-1).
_CP1252_CONTINUATION = "".join(
    bytes([b]).decode("cp1252", errors="ignore") or chr(b) for b in range(0x80, 0xA0)
)
#: UTF-8 text decoded as cp1252 or latin-1: a lead byte shown as ``Â`` (0xC2),
#: ``Ã`` (0xC3) or ``â`` (0xE2) followed by a continuation byte 0x80–0xBF as
#: latin-1 shows it (U+0080–U+00BF) or cp1252 does (``€ ‚ ƒ „ … † ‡ ˆ ‰ Š ‹ Œ Ž ‘ ’ “ ” • – — ˜ ™ š › œ ž Ÿ``).
#: 0xC2/0xC3 start U+0080–U+00FF (``Ã©`` is é, ``Ã¼`` is ü, ``Â`` + NBSP is NBSP),
#: 0xE2 starts U+2000–U+2FFF (``â€™`` is ’, ``â€œ`` is “, ``â‚¬`` is €). Other lead
#: bytes (``Ð`` for Cyrillic, ``Å``, ``Ä``) are not checked, since they begin
#: ordinary words too; ``Â`` or ``Ã`` followed by a plain space (an NBSP
#: already normalised away) is not flagged either.
MOJIBAKE_RE = re.compile("[\u00c2\u00c3\u00e2][\u0080-\u00bf" + re.escape(_CP1252_CONTINUATION) + "]")
#: Control characters other than tab, newline and carriage return.
CONTROL_RE = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]")
#: Any encoding noise: U+FFFD, a control character, or mojibake.
ENCODING_NOISE_RE = re.compile("\ufffd|" + CONTROL_RE.pattern + "|" + MOJIBAKE_RE.pattern)
#: Terminal punctuation (. ! ? … and the full-width 。！？), optionally followed by
#: closing quotes or brackets, at the very end of the right-stripped text.
TERMINAL_RE = re.compile("[.!?\u2026\u3002\uff01\uff1f][\"'\u201d\u2019\u00bb)\\]}]*\\Z")
_BRACKETS_RE = re.compile(r"[()\[\]{}]")
_OPENERS = {")": "(", "]": "[", "}": "{"}


def has_encoding_noise(text: str) -> bool:
    """True when ``text`` contains U+FFFD, a control character (not ``\\t\\n\\r``) or mojibake.

    Example:
        >>> has_encoding_noise("caf\u00c3\u00a9"), has_encoding_noise("it\u00e2\u20ac\u2122s"), has_encoding_noise("café")
        (True, True, False)
    """
    return ENCODING_NOISE_RE.search(text) is not None


def has_unclosed_delimiters(text: str) -> bool:
    r"""True when a double quote is unterminated or a bracket ``( [ {`` is never closed.

    Double quotes: an odd number of ASCII ``"``, or more ``“`` than ``”``.
    Brackets are matched with a stack; a closer pops its opener when that is
    on top and is ignored otherwise. Stray closers (list markers such as
    ``1)``, emoticons) therefore do not count: they are no sign of truncation,
    while an opener left on the stack is.

    Example:
        >>> has_unclosed_delimiters('He said "stop.'), has_unclosed_delimiters("f(x[0]) = 1."), has_unclosed_delimiters("(a [b) c.")
        (True, False, True)
    """
    if text.count('"') % 2 == 1 or text.count("\u201c") > text.count("\u201d"):
        return True
    stack: list[str] = []
    for ch in _BRACKETS_RE.findall(text):
        if ch in "([{":
            stack.append(ch)
        elif stack and stack[-1] == _OPENERS[ch]:
            stack.pop()
    return bool(stack)


def looks_truncated(text: str, *, require_terminal_punctuation: bool = True) -> bool:
    """True when ``text`` lacks terminal punctuation (if required) or has unclosed delimiters.

    Example:
        >>> looks_truncated("It ends here."), looks_truncated("It ends (here)."), looks_truncated("It ends in the")
        (False, False, True)
        >>> looks_truncated("A title", require_terminal_punctuation=False)
        False
    """
    if require_terminal_punctuation and TERMINAL_RE.search(text.rstrip()) is None:
        return True
    return has_unclosed_delimiters(text)


def _content_checks(texts: list[str]) -> np.ndarray:
    """``[n, 4]`` failures of the checks that do not depend on options: empty, encoding, terminal, delimiters."""
    out = np.zeros((len(texts), 4), dtype=bool)
    for i, t in enumerate(texts):
        empty = not t.strip()
        out[i, 0] = empty
        out[i, 1] = ENCODING_NOISE_RE.search(t) is not None
        if not empty:  # whitespace-only samples are empty, never truncated
            out[i, 2] = TERMINAL_RE.search(t.rstrip()) is None
            out[i, 3] = has_unclosed_delimiters(t)
    return out


def _with_length(content: np.ndarray, char_lengths: np.ndarray, max_chars: int) -> np.ndarray:
    return np.column_stack([content, char_lengths > max_chars])


def validity_checks(texts, *, max_chars: int = DEFAULT_MAX_CHARS) -> np.ndarray:
    """Per-sample failures of each check, a bool matrix ``[n, 5]`` in :data:`VALIDITY_CHECKS` order.

    Example:
        >>> validity_checks(["Fine.", "  ", "cut (off"]).astype(int).tolist()
        [[0, 0, 0, 0, 0], [1, 0, 0, 0, 0], [0, 0, 1, 1, 0]]
    """
    texts = _check_texts(texts, "texts")
    max_chars = _check_positive_int(max_chars, "max_chars")
    return _with_length(_content_checks(texts), np.fromiter(map(len, texts), np.int64, len(texts)), max_chars)


def _active_checks(check_truncation: bool, require_terminal_punctuation: bool) -> np.ndarray:
    return np.array([True, True, check_truncation and require_terminal_punctuation, check_truncation, True])


def _reasons(checks: np.ndarray, active: np.ndarray) -> np.ndarray:
    """``[n, 5]`` check failures -> ``[n, 4]`` reason failures under the ``active`` checks."""
    on = checks & active
    return np.column_stack([on[:, 0], on[:, 1], on[:, 2] | on[:, 3], on[:, 4]])


def invalid_reasons(
    texts,
    *,
    max_chars: int = DEFAULT_MAX_CHARS,
    check_truncation: bool = True,
    require_terminal_punctuation: bool = True,
) -> np.ndarray:
    """Per-sample failures of the validity rules, a bool matrix ``[n, 4]``.

    Columns follow :data:`VALIDITY_REASONS` (empty, encoding, truncated,
    too_long); see the module docstring for the rules. Whitespace-only samples
    are never counted as truncated.

    Args:
        texts: non-empty list of ``str``.
        max_chars: longest valid sample in code points.
        check_truncation: False disables the truncation rule entirely.
        require_terminal_punctuation: False keeps only the quote/bracket part
            of the truncation rule (corpora of titles or list items).

    Example:
        >>> invalid_reasons(["Fine.", "  ", "cut off"]).astype(int).tolist()
        [[0, 0, 0, 0], [1, 0, 0, 0], [0, 0, 1, 0]]
    """
    checks = validity_checks(texts, max_chars=max_chars)
    return _reasons(checks, _active_checks(check_truncation, require_terminal_punctuation))


@dataclass(frozen=True, eq=False)
class ValidityBaseline:
    """The reference's failures of each validity check (:func:`fit_validity_baseline`).

    Attributes:
        content_checks: ``[N, 4]`` bool failures of empty, encoding,
            terminal_punctuation and unclosed_delimiters per reference sample.
        char_lengths: ``[N]`` int64 code-point lengths (``too_long`` at any ``max_chars``).
    """

    content_checks: np.ndarray
    char_lengths: np.ndarray

    def checks(self, max_chars: int = DEFAULT_MAX_CHARS) -> np.ndarray:
        """``[N, 5]`` failures of the reference in :data:`VALIDITY_CHECKS` order."""
        return _with_length(self.content_checks, self.char_lengths, _check_positive_int(max_chars, "max_chars"))

    def check_shares(self, max_chars: int = DEFAULT_MAX_CHARS) -> dict[str, float]:
        """Share of reference samples failing each check."""
        return dict(zip(VALIDITY_CHECKS, self.checks(max_chars).mean(axis=0).tolist()))

    def switched_off(self, *, max_chars: int = DEFAULT_MAX_CHARS, check_truncation: bool = True,
                     require_terminal_punctuation: bool = True,
                     failure_limit: float = DEFAULT_FAILURE_LIMIT) -> dict[str, float]:
        """The enabled checks the reference fails more often than ``failure_limit``, with its share.

        Example:
            >>> fit_validity_baseline(["a gloss", "another gloss", "Fine."]).switched_off()
            {'terminal_punctuation': 0.6666666666666666}
        """
        limit = _check_failure_limit(failure_limit)
        active = _active_checks(check_truncation, require_terminal_punctuation)
        return {c: share for c, share, on in zip(VALIDITY_CHECKS, self.checks(max_chars).mean(axis=0).tolist(), active)
                if on and share > limit}


def fit_validity_baseline(texts) -> ValidityBaseline:
    """Run every validity check on the reference texts once.

    Example:
        >>> fit_validity_baseline(["Fine.", "cut (off"]).check_shares()["unclosed_delimiters"]
        0.5
    """
    texts = _check_texts(texts, "texts")
    lengths = np.fromiter(map(len, texts), np.int64, len(texts))
    return ValidityBaseline(content_checks=_content_checks(texts), char_lengths=lengths)


@dataclass(frozen=True, eq=False)
class TextValidityResult:
    r"""Validity of one set of texts (see :func:`text_validity`).

    Attributes:
        validity_rate: share of samples failing no rule, [0, 1], higher is
            better; relative to a reference: :math:`1 - (u - u_{ref})`, 1 when
            as valid as the reference.
        reason_shares: reason -> share of samples failing that rule
            (``invalid_empty`` etc. in :meth:`metrics`), [0, 1], lower is
            better; relative to a reference: the share minus the reference's.
        reason_counts: reason -> number of samples failing that rule (absolute).
        n_samples: number of samples.
        reference_shares: reason -> the reference's share (None without a reference).
        switched_off: check -> the reference's failure share, for each check
            switched off because the reference fails it too often.
    """

    validity_rate: Estimate
    reason_shares: dict[str, Estimate]
    reason_counts: dict[str, int]
    n_samples: int
    reference_shares: dict[str, float] | None = None
    switched_off: dict[str, float] = field(default_factory=dict)

    def metrics(self) -> dict[str, Estimate]:
        """``validity_rate`` and ``invalid_<reason>`` shares, as :class:`Estimate`."""
        out = {"validity_rate": self.validity_rate}
        out.update({f"invalid_{r}": self.reason_shares[r] for r in VALIDITY_REASONS})
        return out


def text_validity(
    texts,
    *,
    max_chars: int = DEFAULT_MAX_CHARS,
    check_truncation: bool = True,
    require_terminal_punctuation: bool = True,
    reference: ValidityBaseline | None = None,
    failure_limit: float = DEFAULT_FAILURE_LIMIT,
    n_boot: int = 0,
    level: float = DEFAULT_LEVEL,
    seed: int = 0,
) -> TextValidityResult:
    r"""Validity rate and per-reason failure shares (survey §2.2 validity, §2.4 breakdowns).

    With :math:`f_{ir} = 1` when sample :math:`i` fails rule :math:`r`
    (:func:`invalid_reasons`) and :math:`u_i = \max_r f_{ir}`:

    .. math::
        \text{validity\_rate} = 1 - \frac1n \sum_{i=1}^n u_i, \qquad
        \text{invalid\_}r = \frac1n \sum_{i=1}^n f_{ir}.

    The rate is in [0, 1], higher is better; a sample failing several rules
    counts once in the rate and once under each reason, so the reason shares
    may add up to more than ``1 - validity_rate``. Shares rather than counts
    keep rounds of different sizes comparable (the counts are kept too). The
    interval is the bootstrap of a mean of per-sample indicators
    (:func:`metrics_core.bootstrap.mean_estimate`).

    **Relative to a reference** (``reference``, from
    :func:`fit_validity_baseline`): every check the reference fails in more
    than ``failure_limit`` of its samples is switched off (listed in
    ``switched_off``), and with :math:`\bar u^{ref}` and
    :math:`\bar f^{ref}_r` the reference's shares under the checks left on,

    .. math::
        \text{validity\_rate} = 1 - \Big(\frac1n \sum_i u_i - \bar u^{ref}\Big), \qquad
        \text{invalid\_}r = \frac1n \sum_i f_{ir} - \bar f^{ref}_r:

    1 and 0 mean "as valid as the reference"; the rate lies in
    :math:`[\bar u^{ref}, 1 + \bar u^{ref}]` and a reason in [-1, 1].

    Args:
        texts: non-empty list of ``str``.
        max_chars: longest valid sample in code points (default 20,000).
        check_truncation: False disables the truncation rule.
        require_terminal_punctuation: False keeps only its quote/bracket check.
        reference: the reference's :class:`ValidityBaseline` (None: absolute shares).
        failure_limit: with a reference, the largest share of reference
            samples a check may fail and stay on (default 0.2).
        n_boot: bootstrap replicates (0: point estimates).
        level: confidence level.
        seed: bootstrap seed (every share uses the same replicates).

    Example:
        >>> res = text_validity(["Good.", "", "Trunc", "Bad \ufffd."])
        >>> res.validity_rate.value, res.reason_counts
        (0.25, {'empty': 1, 'encoding': 1, 'truncated': 1, 'too_long': 0})
        >>> glosses = fit_validity_baseline(["a gloss", "a (short) gloss", "an entry"])
        >>> res = text_validity(["a gloss", "a (cut gloss"], reference=glosses)
        >>> res.switched_off, res.validity_rate.value, res.reason_shares["truncated"].value
        ({'terminal_punctuation': 1.0}, 0.5, 0.5)
    """
    _check_bootstrap(n_boot, level)
    _check_failure_limit(failure_limit)
    checks = validity_checks(texts, max_chars=max_chars)
    active = _active_checks(check_truncation, require_terminal_punctuation)
    boot = {"n_boot": n_boot, "level": level, "seed": seed}
    switched_off: dict[str, float] = {}
    ref_reason = np.zeros(len(VALIDITY_REASONS))
    ref_invalid = 0.0
    if reference is not None:
        switched_off = reference.switched_off(max_chars=max_chars, check_truncation=check_truncation,
                                              require_terminal_punctuation=require_terminal_punctuation,
                                              failure_limit=failure_limit)
        active = active & np.array([c not in switched_off for c in VALIDITY_CHECKS])
        ref_checks = reference.checks(max_chars)
        ref_flags = _reasons(ref_checks, active)
        ref_reason, ref_invalid = ref_flags.mean(axis=0), float(ref_flags.any(axis=1).mean())
    flags = _reasons(checks, active)
    return TextValidityResult(
        validity_rate=mean_estimate((~flags.any(axis=1)) + ref_invalid, **boot),
        reason_shares={r: mean_estimate(flags[:, j] - ref_reason[j], **boot) for j, r in enumerate(VALIDITY_REASONS)},
        reason_counts={r: int(flags[:, j].sum()) for j, r in enumerate(VALIDITY_REASONS)},
        n_samples=int(flags.shape[0]),
        reference_shares=None if reference is None else dict(zip(VALIDITY_REASONS, ref_reason.tolist())),
        switched_off=switched_off,
    )
