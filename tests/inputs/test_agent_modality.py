"""Agent-trajectory rounds through the pipeline and the CLI: the episode metrics, then the embedding suite."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np
import pytest

from metrics_core.registry import REGISTRY, metric_names
from monitor.meta_evaluation.loop_agent import agent_loop, episodes_jsonl
from monitor.modalities import MODALITY
from monitor.modalities.pipeline import AuditPipeline
from monitor.options import AuditOptions

# Hand-checkable episodes: (actions, errors, rewards, success, goals).
REFERENCE = [
    (["look", "open", "take"], [False, False, False], [0.0, 0.0, 1.0], True, [True, True]),
    (["look", "walk"], [False, True], [0.0, -1.0], False, [True, False]),
    (["open", "take", "walk", "look"], [False, False, False, False], [0.0, 0.0, 0.0, 1.0], True, [True, True]),
    (["walk"], [False], [0.5], False, [False, False]),
]
ROUND = [
    (["look", "open", "take"], [False, False, True], [0.0, 0.0, 0.0], False, [True, False]),
    (["look", "open", "take"], [False, False, False], [0.0, 0.0, 1.0], True, [True, True]),
    (["look", "open", "take"], [False, False, False], [0.0, 0.0, 1.0], True, [True, True]),
    (["walk", "walk"], [True, True], [-1.0, -1.0], None, [False, False]),
]


def _episode(actions, errors, rewards, success, goals) -> dict:
    steps = [{"action": a, "error": "failed" if e else None, "reward": r} for a, e, r in zip(actions, errors, rewards)]
    return {"steps": steps, "success": success, "goals": goals}


def _write(path, episodes) -> str:
    path.write_bytes(episodes_jsonl(episodes))
    return str(path)


@pytest.fixture
def files(tmp_path):
    # Each hand episode four times, so the k-NN suite (k = 3) has neighbours.
    return (_write(tmp_path / "ref.jsonl", [_episode(*e) for e in REFERENCE * 4]),
            _write(tmp_path / "round.jsonl", [_episode(*e) for e in ROUND * 4]))


def test_the_pipeline_computes_the_episode_metrics_then_the_embedding_suite(files, tmp_path):
    options = AuditOptions(modality="agent", k=3, n_boot=0)
    kind = MODALITY["agent"]
    assert kind.has_own_metrics and kind.reports_drift  # Evidently's text report on the action sequences
    reference = kind.load(files[0], "reference", None, options)
    round_ = kind.load(files[1], "round", 0, options, reference)
    kind.check_pair(reference, round_, options, 0)
    pipe = AuditPipeline("agent", reference.data, **options.pipeline_options())
    assert kind.reference_texts(pipe)[:2] == ["look\nopen\ntake", "look\nwalk"]  # actions, one per line
    audit = pipe.audit(round_.data)
    got = {name: est.value for name, est in audit.metrics.items()}
    assert got["exec_rate"] == pytest.approx(1 - 3 / 11)  # 3 failed steps of 3 + 3 + 3 + 2
    assert got["success_rate"] == pytest.approx(2 / 3)  # the fourth episode reports none
    assert got["percent_complete"] == pytest.approx((0.5 + 1 + 1 + 0) / 4)
    assert got["action_distinct_1"] == pytest.approx(4 / 44)  # look, open, take, walk over 4 x 11 actions
    assert got["action_distinct_2"] == pytest.approx(3 / 28)  # look-open, open-take, walk-walk over 4 x (2+2+2+1)
    assert got["duplicate_episode_rate"] == pytest.approx((16 - 2) / 16)  # two distinct sequences in 16
    # Lengths: round 3, 3, 3, 2; reference 3, 2, 4, 1: the empirical CDFs differ most at 2 (1/4 vs 2/4) and
    # at 3 (1 vs 3/4): KS = 1/4.
    assert got["episode_length_ks"] == pytest.approx(0.25)
    assert 0.0 < got["episode_return_ks"] <= 1.0
    own = [name for name in got if REGISTRY[name].modality == "agent"]
    assert own == [name for name in metric_names("agent") if name in got]  # registry order, first
    assert set(metric_names("embedding")) <= set(got)
    assert audit.embeddings.shape[0] == 16
    report = kind.drift_report(reference.data, round_.data, reference_embeddings=pipe.reference_embeddings,
                               round_embeddings=audit.embeddings, columns=None, html_path=tmp_path / "r.html", seed=0)
    assert 0.0 <= report.drift_share <= 1.0 and (tmp_path / "r.html").stat().st_size > 0


def test_a_generated_collapse_moves_the_diversity_metrics_the_bad_way():
    trace = agent_loop(seed=0, n_generations=20, n_audit=120, n_reference=120)
    options = AuditOptions(modality="agent", k=5, n_boot=0)
    from monitor.inputs.episodes import episodes_from_objects

    pipe = AuditPipeline("agent", episodes_from_objects(trace.reference, "reference"), **options.pipeline_options())
    first = pipe.modality_metrics(episodes_from_objects(trace.rounds[0], "round 0"))
    last = pipe.modality_metrics(episodes_from_objects(trace.rounds[-1], "round 20"))
    assert trace.onset is not None and trace.onset <= 20
    assert last["action_entropy"].value < first["action_entropy"].value - 0.2
    assert last["episode_length_ks"].value > first["episode_length_ks"].value + 0.2  # shorter, surer episodes
    assert last["duplicate_episode_rate"].value > first["duplicate_episode_rate"].value


def _env(home, tmp_path) -> dict:
    env = dict(os.environ)
    env.update(COLLAPSE_MONITOR_HOME=str(home), PREFECT_HOME=str(tmp_path / "prefect-home"),
               PREFECT_SERVER_ANALYTICS_ENABLED="false", PYTHONUNBUFFERED="1")
    return env


def test_cli_audits_an_agent_round_and_refuses_an_episode_without_steps_in_one_line(home, files, tmp_path):
    cli = [sys.executable, "-m", "monitor.cli", "--home", str(home), "audit", "agent-loop"]
    reference, round_ = files
    done = subprocess.run([*cli, "0", round_, "--reference", reference, "--modality", "agent", "--k", "3",
                           "--bootstrap", "20", "--json"],
                          capture_output=True, text=True, env=_env(home, tmp_path), timeout=300)
    assert done.returncode == 0, done.stderr
    metrics = json.loads(done.stdout)["metrics"]
    assert metrics["exec_rate"]["value"] == pytest.approx(1 - 3 / 11)
    assert metrics["exec_rate"]["ci_low"] <= metrics["exec_rate"]["value"] <= metrics["exec_rate"]["ci_high"]
    assert np.isfinite(metrics["vendi_score"]["value"])
    assert 0.0 <= metrics["evidently_drift_share"]["value"] <= 1.0  # Evidently's report on the action sequences

    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"steps": [{"action": "look"}]}\n{"steps": []}\n')
    refused = subprocess.run([*cli, "1", str(bad), "--reference", reference, "--modality", "agent", "--k", "3",
                              "--json"], capture_output=True, text=True, env=_env(home, tmp_path), timeout=300)
    assert refused.returncode == 1 and refused.stdout == ""
    assert refused.stderr.splitlines() == [
        f"collapse-monitor: error: {bad} (round, round 1): line 2: field 'steps': an episode needs at least one "
        "step, got an empty array"]
    status = subprocess.run([sys.executable, "-m", "monitor.cli", "--home", str(home), "status", "agent-loop",
                             "--json"], capture_output=True, text=True, env=_env(home, tmp_path), timeout=120)
    assert status.returncode == 0, status.stderr
    assert [e["round"] for e in json.loads(status.stdout)["rounds"]] == [0]  # the refused round stored nothing


def test_the_shipped_example_rounds_audit_and_show_the_collapse():
    from importlib.resources import files as package_files

    from monitor.inputs.episodes import load_episodes

    data = package_files("monitor.data")
    options = AuditOptions(modality="agent", k=5, n_boot=0)
    reference = load_episodes(str(data / "agent_reference.jsonl"), "reference")
    pipe = AuditPipeline("agent", reference, **options.pipeline_options())
    first, last = (pipe.modality_metrics(load_episodes(str(data / "agent_rounds" / f"round_{g}.jsonl"), "round", g))
                   for g in (0, 6))
    assert len(reference) == 120
    assert last["action_entropy"].value < first["action_entropy"].value - 0.1  # 2.266 -> 2.087 bits
    assert all(0.0 <= m["exec_rate"].value <= 1.0 for m in (first, last))
