"""L6-agent in the meta-evaluation: registration, schedules, quick mode, the audit path and one tiny family run.

The tiny run (L6-agent with C0, C1, C2 and D0, one seed, 41 episodes per round, audited generations 0, 2, 4 and
6, a null of 30 pseudo-rounds) is run once per module in-process and checked against direct calls of the
metric functions; the full-size numbers are measured by ``collapse-monitor meta-evaluate --loops 'L6*'``.
"""

from __future__ import annotations

import numpy as np
import pytest

from metrics_core.agents import agent_suite
from monitor.errors import InputError
from monitor.inputs.episodes import LoadedEpisodes, episodes_from_objects
from monitor.meta_evaluation import loop_agent as A
from monitor.meta_evaluation import report, runner
from monitor.meta_evaluation.audit import pipeline_input, truth_crossing
from monitor.engine.rules import load_rules

pytestmark = pytest.mark.usefixtures("single_torch_thread")

FAMILY = "L6-agent"
MEMBERS = ["L6-agent", "C0-L6-agent", "C1-L6-agent", "C2-L6-agent", "D0-L6-agent"]
TINY = runner.BenchSettings(quick=True, seeds=(0,), n_audit=41, n_boot=0, n_permutations=19,
                            schedules={FAMILY: (6, 2)}, evidently_check="collapse", null_rounds=30, pool_ratio=8,
                            c0_generations=8)


# --------------------------------------------------------------------------------------------------------------
# registration, schedules, sizes
# --------------------------------------------------------------------------------------------------------------


def test_l6_is_a_family_with_three_controls_and_a_drift_control():
    assert runner.COLLAPSE_LOOPS[FAMILY] is A.agent_loop and list(runner.COLLAPSE_LOOPS)[-6] == FAMILY  # then L7-L11
    assert runner.family_members(FAMILY) == MEMBERS
    assert all(runner.family_of(m) == FAMILY for m in MEMBERS)
    for control, workflow in (("C0", "no_feedback"), ("C1", "accumulate"), ("C2", "fresh_real")):
        trace = runner.CONTROL_LOOPS[f"{control}-{FAMILY}"](0, 2, n_samples=30, n_audit=5, n_reference=5)
        assert (trace.name, trace.kind, trace.onset, trace.params["workflow"]) == (f"{control}-{FAMILY}", "control",
                                                                                  None, workflow)
    assert runner.select_families("C1-L6-*") == [FAMILY]


def test_l6_schedules_seeds_and_sizes():
    full, quick = runner.default_settings(False), runner.default_settings(True)
    assert full.schedule(FAMILY) == full.schedule("D0-L6-agent") == A.SUGGESTED_SCHEDULE == (30, 1)
    assert quick.schedule(FAMILY) == quick.schedule("C2-L6-agent") == A.QUICK_SCHEDULE == (12, 2)
    # not a text family: every seed, and the no-feedback control counts false alarms on 3,000 rounds
    assert not runner.is_text_family(FAMILY) and full.seeds_of(FAMILY) == tuple(range(8))
    assert full.schedule("C0-L6-agent")[0] * len(full.seeds_of(FAMILY)) == 3000
    # rounds and reference capped at AGENT_MAX_AUDIT episodes (full: 201 of 301), the null's pool sized from them
    assert runner.loop_overrides("C0-L6-agent", 301) == runner.loop_overrides("D0-L6-agent", 301) == \
        {"n_audit": 201, "n_reference": 201} == {"n_audit": runner.AGENT_MAX_AUDIT, "n_reference": 201}
    assert runner.loop_overrides("C1-L6-agent", 101) == {"n_audit": 101, "n_reference": 101}
    trace = runner.generate_trace("C2-L6-agent", 1, quick)
    assert trace.modality == "agent" and trace.generations.tolist() == [0, 2, 4, 6, 8, 10, 12]
    assert len(trace.reference) == 101 and all(len(r) == 101 for r in trace.rounds)


def test_quick_mode_runs_every_l6_member_at_every_seed():
    quick = runner.default_settings(True)
    jobs = runner.make_jobs([FAMILY], quick, rules=None)
    assert sorted((j.run_id, j.seed) for j in jobs) == sorted((m, s) for m in MEMBERS for s in quick.seeds)
    assert [(j.family, j.seed) for j in runner.make_null_jobs([FAMILY], quick)] == [(FAMILY, 0), (FAMILY, 1)]
    # costed as agent rounds (twice an embedding round), below the text loops
    assert runner._job_cost("L6-agent", quick) == 2 * runner._job_cost("L1-d1-M20", runner.BenchSettings(
        True, (0,), 101, 0, 49, schedules={"L1-d1-M20": (12, 2)})) < runner._job_cost("null-L4-text", quick)


def test_pipeline_input_parses_agent_rounds_once_and_names_them():
    trace = A.agent_loop(0, 1, n_samples=20, n_audit=6, n_reference=4)
    loaded = pipeline_input("agent", trace.rounds[1], "L6-agent generation 1")
    assert isinstance(loaded, LoadedEpisodes) and len(loaded) == 6
    assert loaded.actions == episodes_from_objects(trace.rounds[1], "x").actions
    array = np.zeros((3, 2))
    assert pipeline_input("embedding", array, "x") is array
    with pytest.raises(InputError, match="L6-agent generation 3: line 2: field 'steps'"):
        pipeline_input("agent", [trace.rounds[0][0], {"steps": []}], "L6-agent generation 3")


def test_small_drift_controls_are_scored_with_the_loops_onset_rule():
    for run_id in ("C1-L6-agent", "C2-L6-agent"):
        trace = runner.CONTROL_LOOPS[run_id](0, 12, n_samples=20, n_audit=3, n_reference=3)
        h = trace.truth["action_entropy"]
        below = np.flatnonzero(h < 0.5 * h[0])
        assert truth_crossing(trace) == (int(below[0]) if below.size else None)
    # M = 20 collapses C2 too within 12 generations (seed 0): the crossing is a real generation
    assert truth_crossing(runner.CONTROL_LOOPS["C2-L6-agent"](0, 12, n_samples=20, n_audit=3, n_reference=3)) \
        is not None
    d0 = runner.CONTROL_LOOPS["D0-L6-agent"](0, 3, n_audit=3, n_reference=3)
    assert truth_crossing(d0) is None  # the drift control's policy never changes
    loop = A.agent_loop(0, 12, n_samples=20, n_audit=3, n_reference=3)
    assert truth_crossing(loop) == loop.onset is not None


# --------------------------------------------------------------------------------------------------------------
# one tiny family run, in-process
# --------------------------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def bench():
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        return runner.run_benchmark(TINY, load_rules(None), families=[FAMILY], workers=1, progress=False,
                                    rules_sources=["shipped defaults"])
    finally:
        torch.set_num_threads(threads)


def test_every_member_is_audited_as_agent_rounds(bench):
    assert sorted(r.run_id for r in bench.runs) == sorted(MEMBERS)
    for r in bench.runs:
        expected = list(range(9)) if r.run_id.startswith("C0-") else [0, 2, 4, 6]
        assert r.modality == "agent" and r.generations.tolist() == expected
        metrics = set(r.trajectory["metric"])
        assert {"action_entropy", "duplicate_episode_rate", "success_rate", "vendi_score"} <= metrics
        # the daemon records Evidently's text report on the action sequences: the benchmark records its share too
        shares = r.trajectory[r.trajectory["metric"] == runner.DRIFT_SHARE].sort_values("round")["value"]
        assert np.array_equal(shares.to_numpy(), r.drift_share) and len(r.drift_share) == len(expected)
        assert np.all((r.drift_share >= 0) & (r.drift_share <= 1))
        assert r.oracle_alarms is not None and len(r.oracle_alarms) == len(expected)
        assert r.collapse_oracle_alarms is None  # the spread-loss oracle is the Gaussian loops' only
    assert bench.evidently_check and all(c["fast"] == c["full"] for c in bench.evidently_check)


def test_fast_drift_share_is_the_daemons_text_report_on_the_action_sequences():
    from metrics_core.featurize import fit_hashing_featurizer
    from monitor.publishing import evidently_report

    trace = A.agent_loop(0, 10, 10, n_samples=20, n_audit=60, n_reference=60)
    reference, current = (episodes_from_objects(x, "x") for x in (trace.reference, trace.rounds[1]))
    featurizer = fit_hashing_featurizer(reference.texts, seed=0)
    ref_emb, cur_emb = featurizer.transform(reference.texts), featurizer.transform(current.texts)
    frames = runner.evidently_columns("agent", reference, current, ref_emb, cur_emb)
    assert frames[2][:5] == list(evidently_report.TEXT_DESCRIPTOR_COLUMNS) and frames[3] == []
    full = evidently_report.text_drift_report(reference.texts, current.texts, reference_embeddings=ref_emb,
                                              round_embeddings=cur_emb).drift_share
    assert runner.evidently_drift_share(*frames) == full > 0  # generation 10 of M = 20 has collapsed


def test_round_metrics_are_the_agent_suite_on_the_parsed_episodes(bench):
    run = next(r for r in bench.runs if r.run_id == FAMILY)
    trace = runner.generate_trace(FAMILY, 0, TINY)
    reference = episodes_from_objects(trace.reference, "reference").episodes()
    direct = agent_suite(episodes_from_objects(trace.rounds[2], "round").episodes(), reference, n_boot=0, seed=0)
    stored = run.trajectory[run.trajectory["round"] == 4].set_index("metric")["value"]
    for name, estimate in direct.items():
        assert stored[name] == pytest.approx(estimate.value, rel=1e-12, abs=1e-15)


def test_the_null_is_built_from_generation0_episodes(bench):
    null = bench.nulls[(FAMILY, 0)]
    assert null.n_rounds == 30 and null.round_size == 41 and null.pool_size == 8 * 41
    assert {"action_entropy", "action_distinct_2", "episode_length_ks"} <= set(null.metrics)
    assert null.info == {"family": FAMILY, "seed": 0}


def test_the_family_is_scored_and_reported(bench):
    fam = bench.families[FAMILY]
    assert fam["modality"] == "agent" and fam["engine"]["drift_control"]["n_runs"] == 1
    assert [row["loop"] for row in bench.headline] == [FAMILY] and bench.headline[0]["d0_runs"] == 1
    text = report.render_markdown(bench, {}, "results.json", "out")
    assert f"## `{FAMILY}`" in text and "agent loop (" in text
    assert bench.timings["per_modality"]["agent"]["rounds"] == sum(len(r.generations) for r in bench.runs)
