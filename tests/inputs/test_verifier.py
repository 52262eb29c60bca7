"""The user's verifier of reasoning answers: a contained subprocess, verdicts per record, one-line refusals."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from monitor.errors import InputError
from monitor.modalities import MODALITY
from monitor.modalities.pipeline import AuditPipeline
from monitor.modalities.verifier import check_spec, probe, run_verifier
from monitor.options import AuditOptions

VERIFIER = '''
import os, time

def verify(answer, gold, question_id):
    if answer == "loop":
        while True:
            pass
    if answer == "sleep":
        time.sleep(60)
    if answer == "memory":
        bytearray(4 * 1024 ** 3)
    if answer == "exit":
        os._exit(3)
    if answer == "raise":
        raise ValueError("no verdict")
    if answer == "forge":
        print('{"passed": true}')  # what the verified code prints cannot become a verdict
        return False
    if answer == "int":
        return 1
    if answer == "write":
        with open("big.bin", "wb") as fh:
            fh.write(b"x" * (128 * 1024 * 1024))
        return True
    if answer == "where":
        return os.listdir(".") == [] and os.path.dirname(os.getcwd()) == os.environ.get("HOME")
    namespace = {}
    exec(answer, namespace)  # generated code: run only because the user's verifier says so
    return namespace["f"]() == gold

def broken(answer, gold, question_id):
    raise RuntimeError("verifier bug")
'''


@pytest.fixture
def verifier_dir(tmp_path, monkeypatch):
    (tmp_path / "my_checks.py").write_text(VERIFIER)
    monkeypatch.chdir(tmp_path)  # the verifier's module is found from the directory the monitor runs in
    return tmp_path


def test_verdicts_per_record_and_every_failure_mode_is_contained(verifier_dir):
    answers = ["def f(): return '4'", "def f(): return '5'", "loop", "def f(): return '4'", "memory", "exit",
               "raise", "forge", "int", "write", "where", "def f(): return '4'"]
    run = run_verifier("my_checks:verify", list(range(len(answers))), answers, dict.fromkeys(range(12), "4"),
                       timeout_s=1.5)
    assert run.passed == [True, False, False, True, False, False, False, False, False, False, True, True]
    assert run.timeouts == 1  # "loop": killed at the timeout, and the next record ran in a fresh worker
    # "exit" kills its worker; "memory" hits the address-space limit (MemoryError), "write" the file-size limit
    # (OSError: Python ignores SIGXFSZ), "raise" raises and "int" is no verdict: four errors. "forge" is a False.
    assert (run.crashes, run.errors) == (1, 4)
    assert run.first_error == "MemoryError: "
    assert run.summary("my_checks:verify").startswith("verifier my_checks:verify: of 12 records, 1 timed out, ")
    assert not (verifier_dir / "big.bin").exists()  # it ran in its own empty directory
    assert run_verifier("my_checks:verify", [1], ["def f(): return '4'"], {1: "4"}).summary("x") is None


def test_a_verifier_that_cannot_run_is_refused_in_one_line(verifier_dir):
    with pytest.raises(InputError) as info:
        run_verifier("no_such_module:verify", [1], ["x"], {1: "x"}, where="r.jsonl (round, round 2)")
    assert str(info.value) == ("r.jsonl (round, round 2): verifier no_such_module:verify: cannot import it: "
                               "ModuleNotFoundError: No module named 'no_such_module'")
    with pytest.raises(InputError, match=r"^verifier: verifier my_checks:missing: cannot import it: AttributeError"):
        probe("my_checks:missing")
    probe("my_checks:verify")
    with pytest.raises(InputError) as info:
        run_verifier("my_checks:broken", [1, 2], ["a", "b"], {1: "a", 2: "b"}, where="round")
    assert str(info.value) == "round: verifier my_checks:broken failed every record with an error (first: " \
                              "RuntimeError: verifier bug)"
    with pytest.raises(InputError, match=r"^verifier 'my_checks\.py': expected module:function"):
        check_spec("my_checks.py")


WORDS = ["apples", "boxes", "pencils", "rivers", "clocks", "lamps", "chairs", "doors", "birds", "coins"]


def _rationale(q: int, i: int) -> str:
    return f"count the {WORDS[q]} and the {WORDS[(q + i + 3) % 10]} then add {WORDS[(2 * q + i) % 10]}"


def _write(path, records):
    path.write_text("".join(json.dumps(r) + "\n" for r in records), encoding="utf-8")
    return path


def test_the_verifier_drives_pass_rate_and_pass_at_k_and_excludes_a_passed_field(verifier_dir):
    reference = _write(verifier_dir / "ref.jsonl", [{"question_id": q, "answer": "4", "rationale": _rationale(q, i)}
                                                    for q in range(4) for i in range(2)])
    programs = ["def f(): return '4'", "def f(): return '3'"]
    round_path = _write(verifier_dir / "round.jsonl", [
        {"question_id": q, "answer": programs[(q + i) % 2 if q < 3 else 1], "rationale": _rationale(q + 4, i), "ok": True}
        for q in range(4) for i in range(2)])
    options = AuditOptions(modality="reasoning", k=3, n_boot=0, verifier="my_checks:verify")
    kind = MODALITY["reasoning"]
    ref = kind.load(reference, "reference", None, options)
    round_ = kind.load(round_path, "round", 0, options, ref)
    kind.check_pair(ref, round_, options, 0)
    pipe = AuditPipeline("reasoning", ref.data, **options.pipeline_options())
    got = {name: est.value for name, est in pipe.modality_metrics(round_.data).items()}
    assert got["pass_rate"] == pytest.approx(3 / 8)  # questions 0-2 pass one of two samples, question 3 none
    assert got["pass_at_1"] == pytest.approx(3 / 8)
    assert got["pass_at_k"] == pytest.approx(3 / 4)
    assert got["acc_verify"] == 0.0  # the answers are programs, never equal to the gold text "4"

    both = AuditOptions(modality="reasoning", k=3, n_boot=0, verifier="my_checks:verify", passed_field="ok")
    with pytest.raises(InputError) as info:
        kind.check_pair(ref, kind.load(round_path, "round", 0, both, ref), both, 0)
    assert str(info.value) == "verifier my_checks:verify and passed field 'ok': both judge each record; choose one"


def test_the_cache_key_follows_the_verifier_source(verifier_dir):
    options = AuditOptions(modality="reasoning", verifier="my_checks:verify")
    before = options.cache_key()
    assert before != AuditOptions(modality="reasoning").cache_key()
    (verifier_dir / "my_checks.py").write_text(VERIFIER + "\n# edited\n")
    assert options.cache_key() != before  # an edited verifier must not reuse cached verdicts


def test_cli_audits_with_a_verifier_and_refuses_an_unimportable_one(home, verifier_dir):
    reference = _write(verifier_dir / "ref.jsonl", [{"question_id": q, "answer": "4", "rationale": _rationale(q, i)}
                                                    for q in range(4) for i in range(2)])
    round_path = _write(verifier_dir / "round.jsonl", [
        {"question_id": q, "answer": "def f(): return '4'" if i else "loop", "rationale": _rationale(q + 4, i)}
        for q in range(4) for i in range(2)])
    env = dict(os.environ, COLLAPSE_MONITOR_HOME=str(home), PREFECT_HOME=str(verifier_dir / "prefect-home"),
               PREFECT_SERVER_ANALYTICS_ENABLED="false")
    cli = [sys.executable, "-m", "monitor.cli", "--home", str(home), "audit", "verified"]
    refused = subprocess.run([*cli, "0", str(round_path), "--reference", str(reference), "--modality", "reasoning",
                              "--k", "3", "--verifier", "my_checks:nope"], capture_output=True, text=True,
                             env=env, cwd=verifier_dir, timeout=300)
    assert refused.returncode == 1
    assert refused.stderr.splitlines() == [
        "collapse-monitor: error: verifier: verifier my_checks:nope: cannot import it: AttributeError: module "
        "'my_checks' has no attribute 'nope'"]
    assert not (home / "store.db").exists() or "verified" not in (home / "store.db").read_bytes().decode("latin-1")
    done = subprocess.run([*cli, "0", str(round_path), "--reference", str(reference), "--modality", "reasoning",
                           "--k", "3", "--bootstrap", "0", "--verifier", "my_checks:verify", "--verifier-timeout", "1",
                           "--json"], capture_output=True, text=True, env=env, cwd=verifier_dir, timeout=300)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["metrics"]["pass_rate"]["value"] == pytest.approx(0.5)  # the loops time out
    assert "verifier my_checks:verify: of 8 records, 4 timed out" in done.stderr
