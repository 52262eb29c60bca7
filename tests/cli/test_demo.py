"""``collapse-monitor demo``: the L4 text loop audited by the ``audit_round`` flow; onset, alarm, lead time.

The end-to-end test runs the real demo at small sizes and checks every
printed verdict against an independent source: the onset against ``l4_text``
called again with the same seed, the alarm against the store's alert
history, the table's ground-truth column against the trace's truth, the files
against the trace's texts. Each audit costs ~10-15 s here whatever the sizes
(trajectory plots and the Evidently report), so the loop is made to collapse
fast: refits on M = 300 sentences keep under a third of the bigram support
after one generation (seed 0: D_1/D_0 = 0.296), and 500-sentence rounds make
the drop significant at once (the engine alarms at round 2, the earliest
round two consecutive conditions allow).
"""

import json
import os
import re

import pytest

from monitor.meta_evaluation.textloop import l4_text
from monitor.cli import main
from monitor.cli.demo import (alarm_summary, demo_loop_name, jsonl_bytes, lead_time_lines,
                                   worst_severity, write_if_changed)
from monitor.config import load_settings
from monitor.store import TrajectoryStore

ROUNDS, SEED, M, N_AUDIT, N_BOOT = 2, 0, 300, 500, 20
SMALL = ["--rounds", str(ROUNDS), "--seed", str(SEED), "--n-samples", str(M), "--n-audit", str(N_AUDIT),
         "--n-reference", str(N_AUDIT), "--bootstrap", str(N_BOOT), "--null-rounds", "200"]
_LEVEL = {"ok": 0, "warning": 1, "critical": 2}


# -- pure helpers ---------------------------------------------------------

def test_lead_time_is_onset_minus_alarm():
    lines = lead_time_lines(8, 5, 12, alarm_by="distinct_2 warning")
    assert lines == [
        "onset (ground truth): generation 8",
        "first alarm: round 5 (distinct_2 warning)",
        "lead time: +3 generations (onset 8 - alarm 5; positive = alarm before onset)",  # 8 - 5 = 3
    ]
    # A late alarm is a negative lead time: 4 - 6 = -2.
    assert lead_time_lines(4, 6, 12)[2].startswith("lead time: -2 generations")
    assert lead_time_lines(4, 4, 12)[2].startswith("lead time: +0 generations")


def test_lead_time_without_alarm_or_onset():
    missed = lead_time_lines(3, None, 10)
    assert missed[1] == "first alarm: none in rounds 0-10"
    assert "no alarm fired (missed)" in missed[2]
    early = lead_time_lines(None, 4, 10)
    assert early[0] == "onset (ground truth): not reached by generation 10"
    # The onset is at generation >= 11, so the lead is at least 11 - 4 = 7.
    assert early[2].startswith("lead time: at least +7 generations")
    assert "no alarm, and no onset by generation 10" in lead_time_lines(None, None, 10)[2]


@pytest.mark.parametrize("onset, alarm", [(-1, 2), (2, -1), (True, 1), (1.5, 1)])
def test_lead_time_rejects_bad_rounds(onset, alarm):
    with pytest.raises(ValueError, match="expected None or an int >= 0"):
        lead_time_lines(onset, alarm, 5)


def test_loop_name_tracks_reference_and_settings():
    ref = jsonl_bytes(["a b", "c d"])
    name = demo_loop_name(3, ref, {"n_boot": 20})
    assert re.fullmatch(r"demo-l4-text-s3-[0-9a-f]{6}", name)
    assert demo_loop_name(3, ref, {"n_boot": 20}) == name  # deterministic: a re-run re-audits the same loop
    assert demo_loop_name(3, ref, {"n_boot": 21}) != name
    assert demo_loop_name(3, jsonl_bytes(["a b", "c e"]), {"n_boot": 20}) != name
    with pytest.raises(ValueError, match="seed: expected an int >= 0, got -1"):
        demo_loop_name(-1, ref, {})
    with pytest.raises(ValueError, match="reference_bytes: expected bytes, got str"):
        demo_loop_name(0, "x", {})


def test_jsonl_round_trips_texts():
    texts = ["plain words", 'a "quoted" one', "back\\slash", "ünïcode"]
    lines = jsonl_bytes(texts).decode().splitlines()
    assert [json.loads(line) for line in lines] == [{"text": t} for t in texts]


def test_write_if_changed_keeps_identical_files(tmp_path):
    path = tmp_path / "round_0.jsonl"
    assert write_if_changed(path, b"x\n") is True
    os.utime(path, (1_000_000, 1_000_000))
    assert write_if_changed(path, b"x\n") is False
    assert path.stat().st_mtime == 1_000_000  # untouched: serve --watch sees nothing new
    assert write_if_changed(path, b"y\n") is True
    assert path.read_bytes() == b"y\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["round_0.jsonl"]  # no temporary left behind


def test_alarm_summary_names_the_worst_first():
    assert alarm_summary({}) == ""
    assert alarm_summary({"b": "warning", "a": "warning", "c": "critical", "d": "ok"}) == \
        "c critical, a warning, b warning"
    assert alarm_summary({f"m{i}": "warning" for i in range(5)}, shown=2) == "m0 warning, m1 warning, +3 more"


def test_worst_severity():
    assert worst_severity({}) == "ok"
    assert worst_severity({"a": "ok", "b": "warning"}) == "warning"
    assert worst_severity({"a": "critical", "b": "warning", "c": "ok"}) == "critical"


def test_demo_refuses_impossible_sizes(home, capsys):
    # The shipped corpus has 20,000 glosses; the error names the limit, before any audit.
    assert main(["demo", "--n-reference", "20001", "--no-serve"]) == 1
    err = capsys.readouterr().err
    assert "n_reference: expected at most 20000 (corpus size), got 20001" in err


# -- the real demo ----------------------------------------------------------

def _verdict(out: str) -> dict:
    onset = re.search(r"^onset \(ground truth\): (?:generation (\d+)|not reached by generation \d+)$", out, re.M)
    alarm = re.search(r"^first alarm: (?:round (\d+)(?: \(.*\))?|none in rounds 0-\d+)$", out, re.M)
    lead = re.search(r"^lead time: (.*)$", out, re.M)
    assert onset and alarm and lead, out
    as_int = lambda m: None if m.group(1) is None else int(m.group(1))  # noqa: E731
    return {"onset": as_int(onset), "alarm": as_int(alarm), "lead": lead.group(1)}


def _table_rows(out: str) -> dict[int, list[str]]:
    """Table rows by round: the cells between the box-drawing bars."""
    rows = {}
    for line in out.splitlines():
        cells = [c.strip() for c in line.split("│")[1:-1]]
        if cells and cells[0].isdigit():
            rows[int(cells[0])] = cells
    return rows


def _first_raise(history) -> int | None:
    raised = [int(r["round"]) for r in history.to_dict("records")
              if _LEVEL[r["to_severity"]] > _LEVEL[r["from_severity"]]]
    return min(raised) if raised else None


@pytest.mark.usefixtures("prefect_harness")
def test_demo_audits_the_l4_loop_and_reports_lead_time(home, capsys):
    assert main(["demo", *SMALL, "--port", "0"]) == 0
    out = capsys.readouterr().out
    trace = l4_text(SEED, ROUNDS, n_samples=M, n_audit=N_AUDIT, n_reference=N_AUDIT)

    settings = load_settings()
    with TrajectoryStore(settings.store_url) as store:
        (loop,) = store.loops()
        rounds = sorted(store.trajectory(loop)["round"].unique().tolist())
        history = store.alert_history(loop)
        all_history = store.alert_history(loop, include_superseded=True)
    assert loop.startswith(f"demo-l4-text-s{SEED}-") and f"loop {loop}:" in out
    assert rounds == list(range(ROUNDS + 1))
    assert re.search(r"^exporter: http://127\.0\.0\.1:\d+/metrics$", out, re.M)

    # The files audited are the trace's texts, one JSON object per line, where serve --watch would find them.
    workdir = settings.home / "demo" / loop
    read = lambda p: [json.loads(line)["text"] for line in p.read_text().splitlines()]  # noqa: E731
    assert read(workdir / "reference.jsonl") == trace.reference
    for g in range(ROUNDS + 1):
        assert read(workdir / f"round_{g}.jsonl") == trace.rounds[g]
    assert (workdir / "loop.toml").read_text() == f'bootstrap = {N_BOOT}\npool = "pool.jsonl"\nnull_rounds = 200\n'
    pool = read(workdir / "pool.jsonl")  # the loop without feedback: 64 rounds' worth of generation 0's sentences
    assert len(pool) == 64 * N_AUDIT and pool[:N_AUDIT] != trace.rounds[0]
    from mlflow.tracking import MlflowClient

    from monitor.publishing.tracking import find_round_run

    run = find_round_run(settings.mlflow_uri, loop, 0, settings.artifact_root)  # the Evidently report: in MLflow only
    assert "round_0.html" in [a.path for a in MlflowClient(settings.mlflow_uri).list_artifacts(run.info.run_id)]
    assert not (settings.home / "reports" / loop / "round_0.html").exists()

    # One table row per round; the ground-truth column is the trace's D_g / D_0.
    rows = _table_rows(out)
    assert sorted(rows) == list(range(ROUNDS + 1))
    truth = trace.truth["distinct_bigram_ratio"]
    for g, cells in rows.items():
        assert float(cells[5].split()[0]) == pytest.approx(truth[g], abs=5e-4)
        assert cells[7] in ("ok", "warning", "critical")
        assert 0.0 <= float(cells[4]) <= 1.0  # validity relative to the reference (1: as valid as the glosses)

    # The one validity check the real glosses fail (no final period) is off, and the demo says so once.
    assert out.count("validity: ") == 1 and "terminal punctuation (100% of the reference fails it)" in out
    verdict = _verdict(out)
    assert trace.onset == 1  # M = 300 halves the support in one generation
    assert verdict["onset"] == trace.onset
    rules = settings.rules()
    first_raise = _first_raise(history[[rules.signal_of(m) == "collapse" for m in history["metric"]]])
    assert first_raise is not None  # the collapse signal alarms within the run
    assert verdict["alarm"] == first_raise
    # The status column (collapse or drift) leaves ok exactly at the first raise of any metric.
    assert [g for g, cells in sorted(rows.items()) if cells[7] != "ok"][0] == _first_raise(history)
    assert re.search(r"^false-alarm guarantee: ARL0 >= 1000 rounds \(null of 200 pseudo-rounds", out, re.M)
    assert re.search(r"^drift signal \(the text moving away from the reference\): (quiet|raised at round \d)", out,
                     re.M)
    assert verdict["lead"].startswith(f"{trace.onset - first_raise:+d} generations")  # e.g. 1 - 2 = -1: late
    assert f"status {loop}" in out and f"report {loop} --format html" in out

    # A re-run in the same home re-audits the same files into the same loop. Here it re-audits rounds 0-1 only
    # (--rounds 1, to keep the test short): their rows and the stored loop are unchanged, nothing is duplicated.
    metrics_before = _stored_metrics(settings.store_url, loop)
    mtimes = {p.name: p.stat().st_mtime_ns for p in workdir.iterdir()}
    assert main(["demo", *SMALL[2:], "--rounds", "1", "--no-serve"]) == 0
    rerun = capsys.readouterr().out
    assert f"loop {loop}:" in rerun
    assert _table_rows(rerun) == {0: rows[0], 1: rows[1]}  # rows follow causal replays: later rounds change nothing
    assert f"note: the store also holds rounds 2-{ROUNDS} of this loop" in rerun
    # round 0 is generation 0 itself, a no-feedback draw: the causal replay raises nothing there
    assert _verdict(rerun)["alarm"] in (None, 1) and "0" not in [str(_first_raise(history))]
    assert {p.name: p.stat().st_mtime_ns for p in workdir.iterdir()} == mtimes
    with TrajectoryStore(settings.store_url) as store:
        assert store.loops() == [loop]
        assert store.alert_history(loop)["id"].tolist() == history["id"].tolist()
        assert len(store.alert_history(loop, include_superseded=True)) == len(all_history)
    metrics_after = _stored_metrics(settings.store_url, loop)
    assert metrics_after.keys() == metrics_before.keys()
    assert all(metrics_after[k] == pytest.approx(v, rel=1e-12) for k, v in metrics_before.items())


def _stored_metrics(store_url: str, loop: str) -> dict[tuple[int, str], float]:
    with TrajectoryStore(store_url) as store:
        t = store.trajectory(loop)
    return {(int(r), m): float(v) for r, m, v in zip(t["round"], t["metric"], t["value"])}


@pytest.mark.usefixtures("prefect_harness")
def test_demo_modality_agent_audits_the_l6_loop_through_the_same_flow(home, capsys):
    from monitor.meta_evaluation.loop_agent import agent_loop, episodes_jsonl

    # M = 20 successful-episode refits halve the policy's entropy within two generations (seed 0).
    args = ["--modality", "agent", "--rounds", "2", "--seed", "0", "--n-samples", "20", "--n-audit", "100",
            "--n-reference", "100", "--bootstrap", "20", "--null-rounds", "200", "--no-serve"]
    assert main(["demo", *args]) == 0
    out = capsys.readouterr().out
    trace = agent_loop(0, 2, n_samples=20, n_audit=100, n_reference=100)
    settings = load_settings()
    with TrajectoryStore(settings.store_url) as store:
        (loop,) = store.loops()
        assert sorted(store.trajectory(loop)["round"].unique().tolist()) == [0, 1, 2]
        metrics = set(store.trajectory(loop)["metric"])
    assert loop.startswith("demo-l6-agent-s0-") and f"loop {loop}:" in out
    assert {"exec_rate", "action_entropy", "duplicate_episode_rate", "vendi_score"} <= metrics
    workdir = settings.home / "demo" / loop
    assert (workdir / "reference.jsonl").read_bytes() == episodes_jsonl(trace.reference)
    for g in range(3):
        assert (workdir / f"round_{g}.jsonl").read_bytes() == episodes_jsonl(trace.rounds[g])
    assert (workdir / "loop.toml").read_text() == \
        'modality = "agent"\nbootstrap = 20\npool = "pool.jsonl"\nnull_rounds = 200\n'
    assert len((workdir / "pool.jsonl").read_bytes().splitlines()) == 64 * 100

    rows = _table_rows(out)
    assert sorted(rows) == [0, 1, 2]
    entropy = trace.truth["action_entropy"]
    for g, cells in rows.items():
        assert float(cells[5].split()[0]) == pytest.approx(entropy[g] / entropy[0], abs=5e-4)
        assert cells[7] in ("ok", "warning", "critical")
    verdict = _verdict(out)
    assert trace.onset is not None and verdict["onset"] == trace.onset
    assert re.search(r"^false-alarm guarantee: ARL0 >= 1000 rounds \(null of 200 pseudo-rounds", out, re.M)
    assert re.search(r"^drift signal \(the episodes moving away from the reference\): ", out, re.M)


@pytest.mark.parametrize("modality", ["reasoning", "json", "graph", "log", "image_text"])
def test_demo_builds_files_its_modality_reads_for_every_new_loop(modality, tmp_path):
    """The demo's files for the L7-L11 loops (no flow run: the flow is the agent test's): the reference, the pool
    and every round load through the modality's own loader with the demo's options, round 0 is audited against
    the reference, and the truth column is the trace's."""
    import tomllib

    from monitor.cli import build_parser
    from monitor.cli import demo
    from monitor.inputs.watch import LOOP_OPTIONS
    from monitor.modalities import MODALITY
    from monitor.modalities.pipeline import AuditPipeline
    from monitor.options import AuditOptions

    # reasoning: the reference is the question bank the pool's questions come from (16 x 30 needs 480)
    n_reference = "600" if modality == "reasoning" else "60"
    args = build_parser().parse_args(["demo", "--modality", modality, "--rounds", "2", "--n-audit", "30",
                                      "--n-reference", n_reference, "--bootstrap", "5"])
    built = {"reasoning": demo._reasoning_loop}.get(modality, demo._structured_loop)(args, 64 * 30)
    assert built.modality == modality and len(built.round_bytes) == 3 and built.trace.truth is not None
    assert built.truth[0] == 1.0 and len(built.truth) == 3
    files = {}
    for name, content in [("reference", built.reference_bytes), ("pool", built.pool_bytes),
                          *((f"round_{g}", b) for g, b in enumerate(built.round_bytes))]:
        files[name] = tmp_path / f"{name}{built.extension}"
        files[name].write_bytes(content)
    values = dict(built.options)
    for field, file_name, content in built.option_files:
        (tmp_path / file_name).write_bytes(content)
        values[field] = str(tmp_path / file_name)
        assert field.removesuffix("_path") in LOOP_OPTIONS  # loop.toml names it so for serve --watch
    assert all(key in LOOP_OPTIONS for key, _ in built.options)
    options = AuditOptions(modality=modality, n_boot=0, k=3, **values)
    kind = MODALITY[modality]
    kind.check_option_files(options.constraints_path, options.schema_path)
    reference = kind.load(files["reference"], "reference", None, options)
    pool = kind.load_pool(files["pool"], options, reference.data)
    round_ = kind.load(files["round_0"], "round", 0, options, reference)
    kind.check_pair(reference, round_, options, 0)
    from monitor.engine.null import unit_count

    assert unit_count(pool.data) >= 16 * unit_count(round_.data)  # a pool big enough for full sensitivity
    audit = AuditPipeline(modality, reference.data, **options.pipeline_options()).audit(round_.data, n_boot=0)
    assert set(built.columns) & set(audit.metrics) and "vendi_score" in audit.metrics
    tomllib.loads("".join(f"{key} = {json.dumps(value)}\n" for key, value in built.options))  # valid TOML lines
