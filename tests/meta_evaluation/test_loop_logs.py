"""Tests for the L9-log loop (meta_evaluation/loop_logs.py) and its example (scripts/make_log_example.py)."""

from __future__ import annotations

import importlib.util
import re
from pathlib import Path

import numpy as np
import pytest

from metrics_core.logs import fit_log_templates, match_templates, template_coverage, template_jsd
from monitor.inputs.logs import EXAMPLE_PATTERN, load_log_lines, log_lines_from_strings
from monitor.meta_evaluation import loop_logs as L

REPO = Path(__file__).resolve().parents[2]
DATA = REPO / "monitor" / "data"
SMALL = dict(n_samples=30, n_audit=20, n_reference=40)


def _same_trace(a, b) -> bool:
    return (a.name == b.name and a.onset == b.onset and a.reference == b.reference and a.rounds == b.rounds
            and np.array_equal(a.generations, b.generations) and a.truth.keys() == b.truth.keys()
            and all(np.array_equal(a.truth[k], b.truth[k]) for k in a.truth))


def _template_regexes() -> list[re.Pattern]:
    """One regex per generator template, built from its format string (each slot: one of its kind's values)."""
    out = []
    for severity, component, message in L.TEMPLATES:
        parts = re.split(r"\{(\w+)\}", message)
        body = "".join(re.escape(part) if i % 2 == 0 else "(" + "|".join(map(re.escape, L.VOCABULARIES[part])) + ")"
                       for i, part in enumerate(parts))
        out.append(re.compile(f"^{re.escape(severity)} {re.escape(component)}: {body}$"))
    return out


def _template_of(line: str, regexes) -> int:
    hits = [k for k, r in enumerate(regexes) if r.match(line)]
    assert len(hits) == 1, (line, hits)
    return hits[0]


# --------------------------------------------------------------------------
# The generator
# --------------------------------------------------------------------------


def test_generation_zero_by_hand():
    p, q = L.initial_generator()
    weights = np.array([(k + 1) ** -1.2 for k in range(14)])
    assert np.allclose(p, weights / weights.sum()) and p.sum() == pytest.approx(1.0)
    assert all(np.allclose(q[kind], 1 / len(v)) for kind, v in L.VOCABULARIES.items())
    assert all(len(set(v)) == len(v) for v in L.VOCABULARIES.values())
    truth = L.logs_truth([(p, q)])
    assert truth["template_entropy"][0] == pytest.approx(-(p * np.log2(p)).sum())
    assert truth["template_support"][0] == 14
    assert truth["tail_mass"][0] == pytest.approx(p[-5:].sum())
    expected = np.mean([np.log2(len(v)) for v in L.VOCABULARIES.values()])
    assert truth["parameter_entropy"][0] == pytest.approx(expected)


def test_sampled_lines_follow_the_generator():
    """Monte Carlo: the template frequencies of many lines are p's; every line renders one template exactly."""
    p, q = L.initial_generator()
    q = dict(q, dev=np.array([0, 0, 1.0, 0, 0, 0, 0, 0]))  # only sdc
    lines = L.sample_lines(p, q, 6000, np.random.default_rng(0))
    regexes = _template_regexes()
    counts = np.bincount([_template_of(line, regexes) for line in lines], minlength=14)
    se = np.sqrt(p * (1 - p) / len(lines))
    assert np.all(np.abs(counts / len(lines) - p) < 4 * se)
    with_dev = [line for line in lines if re.search(r"\bsd[a-h]\b", line)]
    assert with_dev and all(" sdc " in line + " " or "sdc," in line for line in with_dev)


def test_zero_probability_templates_are_never_sampled():
    p, q = L.initial_generator()
    p = np.zeros(14)
    p[[2, 13]] = [0.3, 0.7]
    regexes = _template_regexes()
    lines = L.sample_lines(p, q, 500, np.random.default_rng(1))
    assert {_template_of(line, regexes) for line in lines} == {2, 13}


def test_refit_is_the_maximum_likelihood_fit_and_zeros_are_absorbing():
    _, q = L.initial_generator()
    counts = np.array([3, 0, 1] + [0] * 11)
    values = {kind: np.zeros(len(v), dtype=np.int64) for kind, v in L.VOCABULARIES.items()}
    values["ip"][[0, 5]] = [3, 1]
    p1, q1 = L._refit(counts, values, q)
    assert p1.tolist() == [0.75, 0.0, 0.25] + [0.0] * 11
    assert q1["ip"][0] == 0.75 and q1["ip"][5] == 0.25 and q1["ip"].sum() == 1.0
    assert q1["user"] is q["user"]  # no slot of that kind in the sample: kept
    gens = L.logs_generators(3, 25, n_samples=20)
    for (a, _), (b, _) in zip(gens, gens[1:]):
        assert np.all(b[a == 0] == 0)  # a vanished template never comes back


# --------------------------------------------------------------------------
# The loop
# --------------------------------------------------------------------------


def test_same_seed_same_trace_and_seeds_differ():
    a, b = L.logs_loop(4, 6, **SMALL), L.logs_loop(4, 6, **SMALL)
    assert _same_trace(a, b)
    assert not _same_trace(a, L.logs_loop(5, 6, **SMALL))


def test_trace_shape_and_lines_parse():
    t = L.logs_loop(0, 4, 2, **SMALL)
    assert (t.name, t.kind, t.modality, t.seed) == ("L9-log", "collapse", "log", 0)
    assert t.generations.tolist() == [0, 2, 4] and [len(r) for r in t.rounds] == [20, 20, 20]
    assert len(t.reference) == 40 and all(len(v) == 5 for v in t.truth.values())
    loaded = log_lines_from_strings(t.rounds[0], "generated", pattern=EXAMPLE_PATTERN)
    assert len(loaded) == 20 and None not in loaded.severity and None not in loaded.component
    assert set(loaded.severity) <= {"DEBUG", "INFO", "WARN", "ERROR", "CRITICAL"}
    assert t.params["n_samples"] == 30 and t.params["workflow"] == "replace"


def test_audit_every_does_not_change_the_dynamics_or_the_audit_samples():
    every, strided = L.logs_loop(2, 6, 1, **SMALL), L.logs_loop(2, 6, 3, **SMALL)
    assert all(np.array_equal(every.truth[k], strided.truth[k]) for k in every.truth)
    assert strided.rounds == [every.rounds[g] for g in (0, 3, 6)] and strided.reference == every.reference


@pytest.mark.parametrize("seed", range(5))
def test_truth_collapses_and_the_onset_is_found_mid_run_at_the_defaults(seed):
    t = L.logs_loop(seed, 30, n_audit=5, n_reference=5)
    h, support = t.truth["template_entropy"], t.truth["template_support"]
    assert t.onset is not None and 3 <= t.onset <= 27
    assert h[t.onset] < 0.5 * h[0] and np.all(h[:t.onset] >= 0.5 * h[0])
    assert np.all(np.diff(support) <= 0) and support[0] == 14 and support[-1] <= 4
    final_p, _ = L.logs_generators(seed, 30)[-1]
    assert (final_p[list(L.TAIL)] > 0).sum() < 5  # some rare template vanished (its mass may still grow: drift)
    assert t.truth["parameter_entropy"][-1] < t.truth["parameter_entropy"][0]


def test_no_feedback_control_has_constant_truth_and_no_onset():
    c0 = L.logs_loop(0, 10, **SMALL, workflow="no_feedback")
    assert (c0.name, c0.kind, c0.onset) == ("C0-L9-log", "control", None)
    assert all(len(set(v.tolist())) == 1 for v in c0.truth.values())
    loop = L.logs_loop(0, 10, **SMALL)
    assert c0.reference == loop.reference and c0.rounds[0] == loop.rounds[0]  # generation 0 is shared
    assert c0.rounds[1] != c0.rounds[2]  # fresh draws each round
    assert L.CONTROLS["C0-L9-log"](0, 10, **SMALL).truth["template_entropy"].tolist() == \
        c0.truth["template_entropy"].tolist()


@pytest.mark.parametrize("workflow", ["accumulate", "fresh_real"])
def test_real_data_controls_keep_more_diversity(workflow):
    kept, lost = [], []
    for seed in range(5):
        control = L.logs_generators(seed, 30, workflow=workflow)
        loop = L.logs_generators(seed, 30)
        kept.append(L.logs_truth(control)["template_support"][-1])
        lost.append(L.logs_truth(loop)["template_support"][-1])
        assert L.logs_loop(seed, 3, **SMALL, workflow=workflow).onset is None
    assert min(kept) > max(lost), (kept, lost)


def test_log_metrics_see_the_collapse():
    t = L.logs_loop(0, 30, n_audit=200, n_reference=400)
    templates = fit_log_templates(t.reference)
    assert len(templates) == 14  # Drain recovers the generator's templates from generation 0
    first, last = t.rounds[0], t.rounds[-1]
    assert template_coverage(first, templates) > 0.85 > template_coverage(last, templates)
    assert template_jsd(first, templates) < 0.05 < 0.3 < template_jsd(last, templates)
    assert (match_templates(t.reference, templates) >= 0).all()


@pytest.mark.parametrize("kwargs, match", [
    ({"workflow": "mixed"}, "workflow: expected one of"),
    ({"n_samples": 0}, "n_samples: expected a positive integer, got 0"),
    ({"n_audit": 0}, "n_audit: expected a positive integer, got 0"),
    ({"fresh_fraction": 1.5, "workflow": "fresh_real"}, r"fresh_fraction: expected a number in \(0, 1\)"),
])
def test_loop_argument_errors(kwargs, match):
    with pytest.raises(ValueError, match=match):
        L.logs_loop(0, 2, **kwargs)


def test_log_text_round_trips_through_the_loader(tmp_path):
    t = L.logs_loop(1, 2, **SMALL)
    path = tmp_path / "r.log"
    path.write_bytes(L.log_text(t.rounds[2]))
    loaded = load_log_lines(path, "round", 2, pattern=EXAMPLE_PATTERN)
    assert loaded.lines == tuple(t.rounds[2])
    assert loaded.fingerprint == log_lines_from_strings(t.rounds[2], "generated").fingerprint


# --------------------------------------------------------------------------
# The shipped example
# --------------------------------------------------------------------------


def _example_script():
    spec = importlib.util.spec_from_file_location("make_log_example", REPO / "scripts" / "make_log_example.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_shipped_example_is_what_the_script_writes(tmp_path, capsys):
    script = _example_script()
    assert script.main(["--out", str(tmp_path)]) == 0
    assert "true onset: generation 3" in capsys.readouterr().out
    written = sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*.log"))
    assert written == [Path("log_reference.log")] + [Path("log_rounds") / f"round_{g}.log" for g in range(7)]
    for rel in written:
        assert (tmp_path / rel).read_bytes() == (DATA / rel).read_bytes(), rel
    assert sum((DATA / rel).stat().st_size for rel in written) < 200_000
    reference = load_log_lines(DATA / "log_reference.log", "reference", pattern=EXAMPLE_PATTERN)
    templates = fit_log_templates(reference.lines)
    coverage = [template_coverage(load_log_lines(DATA / "log_rounds" / f"round_{g}.log", "round", g).lines,
                                  templates) for g in (0, 6)]
    assert coverage[0] > coverage[1]
